//! The Linux test-signing path (`scripts/sign-linux.sh`, what `cargo make sign` runs on Linux)
//! really signs `partyline.sys`: run on a copy of the image, the result carries an Authenticode
//! signature that `osslsigncode verify` accepts, a valid PE checksum, and otherwise the same bytes.
//!
//! Read: "Attribute certificate table" in the PE format
//! (https://learn.microsoft.com/windows/win32/debug/pe-format#the-attribute-certificate-table-image-only).
//!
//! Needs `openssl` and `osslsigncode`. Without them the test passes with a loud message, unless
//! the `CI` variable is set (CI installs osslsigncode): then it fails.
#![cfg(unix)]

#[path = "support/pe.rs"]
mod pe_bytes;
use pe_bytes::{optional_header, pe_checksum, u16_at, u32_at};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile64};
use object::LittleEndian as LE;

/// WIN_CERTIFICATE.wRevision and wCertificateType of an Authenticode signature.
const WIN_CERT_REVISION_2_0: u16 = 0x0200;
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;

fn tool_present(tool: &str) -> bool {
    Command::new(tool).arg("version").output().is_ok()
}

/// A directory for this run, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("partyline-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn aligned_copy(bytes: &[u8]) -> (Vec<u8>, usize) {
    let mut buffer = vec![0; bytes.len() + 8];
    let start = buffer.as_ptr().align_offset(8);
    buffer[start..start + bytes.len()].copy_from_slice(bytes);
    (buffer, start)
}

#[test]
fn linux_signing_script_signs_a_copy_of_the_image() {
    let missing: Vec<&str> =
        ["openssl", "osslsigncode"].into_iter().filter(|tool| !tool_present(tool)).collect();
    if !missing.is_empty() {
        let message = format!(
            "\n\n*** the Linux signing path is NOT TESTED: {} missing (apt-get install -y osslsigncode openssl) ***\n",
            missing.join(" and ")
        );
        if std::env::var_os("CI").is_some() {
            panic!("{message}CI is set, so this is a failure: CI must install the signing tools.");
        }
        // Straight to the process's stderr: the harness hides `eprintln!` of a passing test.
        let _ = std::io::stderr().write_all(message.as_bytes());
        return;
    }

    let scratch = Scratch::new("sign");
    let unsigned_path = scratch.0.join("partyline.sys");
    let signed_path = scratch.0.join("signed").join("partyline.sys");
    std::fs::create_dir_all(signed_path.parent().unwrap()).unwrap();
    let unsigned = partyline_image::IMAGE;
    std::fs::write(&unsigned_path, unsigned).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sign-linux.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&unsigned_path)
        .arg(&signed_path)
        .arg(scratch.0.join("cert"))
        .output()
        .expect("run bash");
    let log =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{} failed:\n{log}", script.display());
    assert!(log.contains("Signature verification: ok"), "osslsigncode verify did not confirm:\n{log}");
    assert!(scratch.0.join("cert/partyline-test.cer").is_file(), "no DER certificate for the test machine");

    let signed = std::fs::read(&signed_path).expect("read the signed image");
    let (buffer, start) = aligned_copy(&signed);
    let file = PeFile64::parse(&buffer[start..]).expect("the signed image still parses as PE32+");

    // The attribute certificate table: a file offset (not an RVA), after the image, holding one
    // WIN_CERTIFICATE with a PKCS#7 SignedData.
    let security = file.data_directory(pe::IMAGE_DIRECTORY_ENTRY_SECURITY).expect("a security directory");
    let (offset, size) = (security.virtual_address.get(LE) as usize, security.size.get(LE) as usize);
    assert!(
        size > 8 && offset >= unsigned.len() && offset + size <= signed.len(),
        "certificate table {offset:#x}+{size:#x}"
    );
    assert_eq!(u32_at(&signed, offset) as usize, size, "WIN_CERTIFICATE.dwLength");
    assert_eq!(u16_at(&signed, offset + 4), WIN_CERT_REVISION_2_0);
    assert_eq!(u16_at(&signed, offset + 6), WIN_CERT_TYPE_PKCS_SIGNED_DATA);

    // Signing sets the checksum (the image as linked has none) and changes nothing else of it.
    let checksum = file.nt_headers().optional_header().check_sum();
    assert_eq!(checksum, pe_checksum(&signed), "the signed image's PE checksum is wrong");
    let optional = optional_header(unsigned);
    let security_entry = optional + 112 + 8 * pe::IMAGE_DIRECTORY_ENTRY_SECURITY;
    let changed: Vec<usize> = (0..unsigned.len())
        .filter(|&at| unsigned[at] != signed[at])
        .filter(|&at| {
            !(optional + 64..optional + 68).contains(&at)
                && !(security_entry..security_entry + 8).contains(&at)
        })
        .collect();
    assert!(changed.is_empty(), "signing changed image bytes at {changed:#x?}");
}

#[test]
fn pe_checksum_matches_a_known_value() {
    // Two words 0x0201 and 0x0403 (the checksum field lies beyond this tiny buffer's header, so
    // build a minimal header: e_lfanew = 0x40, optional header at 0x58, CheckSum at 0x98).
    let mut image = vec![0u8; 0xa0];
    image[0x3c] = 0x40;
    image[0x98..0x9c].copy_from_slice(&0xdead_beef_u32.to_le_bytes()); // ignored by the sum
    image[0] = 0x01;
    image[1] = 0x02;
    image[2] = 0x03;
    image[3] = 0x04;
    // 0x0201 + 0x0403 + 0x40 (e_lfanew word) = 0x0644, plus the length 0xa0.
    assert_eq!(pe_checksum(&image), 0x0644 + 0xa0);
}
