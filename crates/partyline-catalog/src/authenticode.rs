//! The Authenticode hash of a PE image: what a catalog records for `partyline.sys`.
//!
//! Read: "Windows Authenticode Portable Executable Signature Format" (the hash excludes the
//! optional header's CheckSum, the Certificate Table data-directory entry and the attribute
//! certificate table itself) and "PE Format", "The Attribute Certificate Table"
//! (https://learn.microsoft.com/windows/win32/debug/pe-format#the-attribute-certificate-table-image-only):
//! the table is addressed by a file offset and lies after the image's sections, at the file's end.
//!
//! Flow: find the CheckSum field and the Certificate Table entry in the optional header; hash the
//! file in order, skipping those two fields, up to the certificate table (or the end of an
//! unsigned file, padded with zeros to a multiple of 8 bytes as signing pads it, so that the
//! hash is the same before and after embedded signing). This equals the section-by-section hash
//! of the format document for images whose sections follow the headers in file order with nothing
//! else between them, which [`pe_image_hash`] checks.

use sha2::{Digest, Sha256};

/// Why a file is not an image this module can hash.
#[derive(Debug, PartialEq, Eq)]
pub struct NotAnImage(pub String);

impl std::fmt::Display for NotAnImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a PE image that can be hashed: {}", self.0)
    }
}

impl std::error::Error for NotAnImage {}

const IMAGE_NT_OPTIONAL_HDR32_MAGIC: u16 = 0x10b;
const IMAGE_NT_OPTIONAL_HDR64_MAGIC: u16 = 0x20b;
const IMAGE_DIRECTORY_ENTRY_SECURITY: usize = 4;
/// Offset of CheckSum in the optional header (the same in PE32 and PE32+).
const CHECKSUM_OFFSET: usize = 64;

fn u16_at(bytes: &[u8], at: usize) -> Result<u16, NotAnImage> {
    bytes
        .get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| NotAnImage(format!("truncated at {at:#x}")))
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, NotAnImage> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| NotAnImage(format!("truncated at {at:#x}")))
}

/// Whether `bytes` start like a PE image (`MZ`, then `PE\0\0` where `e_lfanew` points).
pub fn is_pe_image(bytes: &[u8]) -> bool {
    bytes.starts_with(b"MZ")
        && u32_at(bytes, 0x3c)
            .ok()
            .and_then(|pe| bytes.get(pe as usize..pe as usize + 4))
            .is_some_and(|signature| signature == b"PE\0\0")
}

/// The SHA-256 Authenticode hash of the PE image `bytes`.
pub fn pe_image_hash(bytes: &[u8]) -> Result<[u8; 32], NotAnImage> {
    if !is_pe_image(bytes) {
        return Err(NotAnImage("no MZ/PE signature".into()));
    }
    let coff = u32_at(bytes, 0x3c)? as usize + 4;
    let sections = u16_at(bytes, coff + 2)? as usize;
    let optional_size = u16_at(bytes, coff + 16)? as usize;
    let optional = coff + 20;
    let (directories, count_at) = match u16_at(bytes, optional)? {
        IMAGE_NT_OPTIONAL_HDR64_MAGIC => (optional + 112, optional + 108),
        IMAGE_NT_OPTIONAL_HDR32_MAGIC => (optional + 96, optional + 92),
        magic => return Err(NotAnImage(format!("optional header magic {magic:#x}"))),
    };
    if (u32_at(bytes, count_at)? as usize) <= IMAGE_DIRECTORY_ENTRY_SECURITY {
        return Err(NotAnImage("no Certificate Table data-directory entry".into()));
    }
    let checksum = optional + CHECKSUM_OFFSET;
    let security = directories + 8 * IMAGE_DIRECTORY_ENTRY_SECURITY;
    if security + 8 > optional + optional_size {
        return Err(NotAnImage("the data directories overrun the optional header".into()));
    }
    let (table, table_size) = (u32_at(bytes, security)? as usize, u32_at(bytes, security + 4)? as usize);
    let end = if table_size == 0 {
        bytes.len()
    } else if table.checked_add(table_size) == Some(bytes.len()) {
        table
    } else {
        return Err(NotAnImage(format!(
            "the certificate table {table:#x}+{table_size:#x} does not end the {:#x}-byte file",
            bytes.len()
        )));
    };

    // The section table follows the optional header; every section's raw data must lie in file
    // order between the headers and `end` for the linear hash to equal the section-wise one.
    let table_at = optional + optional_size;
    let size_of_headers = u32_at(bytes, optional + 60)? as usize;
    let mut previous_end = size_of_headers;
    let mut raw: Vec<(usize, usize)> = (0..sections)
        .map(|index| {
            let header = table_at + 40 * index;
            Ok((u32_at(bytes, header + 20)? as usize, u32_at(bytes, header + 16)? as usize))
        })
        .collect::<Result<_, NotAnImage>>()?;
    raw.retain(|&(_, size)| size != 0);
    raw.sort_unstable();
    for &(offset, size) in &raw {
        if offset < previous_end || offset + size > end {
            return Err(NotAnImage(format!(
                "section data at {offset:#x}+{size:#x} overlaps the headers or another section, or runs past {end:#x}"
            )));
        }
        previous_end = offset + size;
    }

    let mut hash = Sha256::new();
    hash.update(&bytes[..checksum]);
    hash.update(&bytes[checksum + 4..security]);
    hash.update(&bytes[security + 8..end]);
    if table_size == 0 {
        hash.update(&[0u8; 8][..(8 - end % 8) % 8]);
    }
    Ok(hash.finalize().into())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal PE32+ header: one section of 0x200 bytes at 0x200, no certificate table.
    pub(crate) fn tiny_image() -> Vec<u8> {
        let mut image = vec![0u8; 0x400];
        image[0..2].copy_from_slice(b"MZ");
        image[0x3c] = 0x40;
        image[0x40..0x44].copy_from_slice(b"PE\0\0");
        let coff = 0x44;
        image[coff + 2] = 1; // one section
        image[coff + 16] = 240; // SizeOfOptionalHeader
        let optional = coff + 20;
        image[optional..optional + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        image[optional + 60..optional + 64].copy_from_slice(&0x200u32.to_le_bytes()); // SizeOfHeaders
        image[optional + 108] = 16; // NumberOfRvaAndSizes
        let section = optional + 240;
        image[section..section + 5].copy_from_slice(b".text");
        image[section + 16..section + 20].copy_from_slice(&0x200u32.to_le_bytes()); // SizeOfRawData
        image[section + 20..section + 24].copy_from_slice(&0x200u32.to_le_bytes()); // PointerToRawData
        image[0x200..0x400].fill(0xcc);
        image
    }

    #[test]
    fn checksum_and_certificate_entry_are_not_hashed() {
        let image = tiny_image();
        let hash = pe_image_hash(&image).unwrap();
        let mut changed = image.clone();
        changed[0x58 + CHECKSUM_OFFSET] = 0x5a; // CheckSum
        assert_eq!(pe_image_hash(&changed).unwrap(), hash);
        changed[0x300] ^= 1; // a byte of section data
        assert_ne!(pe_image_hash(&changed).unwrap(), hash);
    }

    #[test]
    fn a_signed_copy_has_the_unsigned_hash() {
        let image = tiny_image();
        let mut signed = image.clone();
        let security = 0x58 + 112 + 8 * IMAGE_DIRECTORY_ENTRY_SECURITY;
        signed[security..security + 4].copy_from_slice(&(image.len() as u32).to_le_bytes());
        signed[security + 4..security + 8].copy_from_slice(&16u32.to_le_bytes());
        signed.extend_from_slice(&[0xee; 16]);
        assert_eq!(pe_image_hash(&signed).unwrap(), pe_image_hash(&image).unwrap());
    }

    #[test]
    fn an_unaligned_unsigned_image_is_hashed_padded() {
        let mut image = tiny_image();
        image.extend_from_slice(&[1, 2, 3]);
        let mut padded = image.clone();
        padded.extend_from_slice(&[0; 5]);
        // (The padded copy is hashed as it is: a multiple of 8 needs no padding.)
        assert_eq!(pe_image_hash(&image).unwrap(), pe_image_hash(&padded).unwrap());
    }

    #[test]
    fn refuses_what_is_not_an_image() {
        assert!(pe_image_hash(b"[Version]\r\n").is_err());
        let mut image = tiny_image();
        image[0x58 + 108] = 4; // no security entry
        assert!(pe_image_hash(&image).is_err());
        let mut image = tiny_image();
        let section = 0x58 + 240;
        image[section + 20..section + 24].copy_from_slice(&0x100u32.to_le_bytes()); // inside the headers
        assert!(pe_image_hash(&image).unwrap_err().0.contains("overlaps"));
    }
}
