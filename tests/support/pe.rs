//! Byte-level helpers over PE images shared by the image and signing tests.

#![allow(dead_code)]

pub fn u16_at(data: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes(data[offset..offset + 2].try_into().unwrap())
}

pub fn u32_at(data: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(data[offset..offset + 4].try_into().unwrap())
}

/// The offset of the optional header.
pub fn optional_header(image: &[u8]) -> usize {
    u32_at(image, 0x3c) as usize + 4 + 20
}

/// The offset of the optional header's CheckSum field.
pub fn checksum_field(image: &[u8]) -> usize {
    optional_header(image) + 64
}

/// The PE image checksum (the algorithm of imagehlp's CheckSumMappedFile): 16-bit one's-complement
/// style sum of the file with the CheckSum field taken as zero, plus the file length.
pub fn pe_checksum(image: &[u8]) -> u32 {
    let checksum_field = checksum_field(image);
    let mut sum: u64 = 0;
    for (index, chunk) in image.chunks(2).enumerate() {
        let at = index * 2;
        if (checksum_field..checksum_field + 4).contains(&at) {
            continue;
        }
        let word = u16::from_le_bytes([chunk[0], chunk.get(1).copied().unwrap_or(0)]);
        sum += u64::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32) + image.len() as u32
}
