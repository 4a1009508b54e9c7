//! The Linux test-signing path (`scripts/sign-linux.sh`, what `cargo make package` and
//! `cargo make sign` run on Linux) really signs the package: run on a package folder with a copy
//! of the image and the INF, `partyline.sys` carries an Authenticode signature that
//! `osslsigncode verify` accepts, a valid PE checksum and otherwise the same bytes; and the
//! catalog the project makes (crates/partyline-catalog) is proven by tools that share no code with
//! it: `osslsigncode verify -catalog` accepts `partyline.sys` and rejects a modified copy, openssl
//! parses the signed catalog (PKCS#7 SignedData with the certificate trust list, szOID_CTL), and
//! the SHA-256 that `openssl dgst` computes for `partyline.inf` is listed in it.
//!
//! Read: "Attribute certificate table" in the PE format
//! (https://learn.microsoft.com/windows/win32/debug/pe-format#the-attribute-certificate-table-image-only),
//! "Catalog Files and Digital Signatures"
//! (https://learn.microsoft.com/windows-hardware/drivers/install/catalog-files).
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

fn run(command: &mut Command) -> (bool, String) {
    let output = command.output().expect("run a tool");
    let log =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), log)
}

/// `osslsigncode verify -catalog`: does the catalog vouch for `file`?
fn catalog_accepts(cert: &Path, catalog: &Path, file: &Path) -> (bool, String) {
    run(Command::new("osslsigncode")
        .args(["verify", "-CAfile"])
        .arg(cert)
        .arg("-catalog")
        .arg(catalog)
        .arg("-in")
        .arg(file))
}

#[test]
fn linux_signing_script_signs_the_package_and_its_catalog() {
    let missing: Vec<&str> =
        ["openssl", "osslsigncode"].into_iter().filter(|tool| !tool_present(tool)).collect();
    if !missing.is_empty() {
        let message = format!(
            "\n\n*** the Linux signing path and the catalog are NOT TESTED: {} missing (apt-get install -y osslsigncode openssl) ***\n",
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
    let package = scratch.0.join("package");
    std::fs::create_dir_all(&package).unwrap();
    let unsigned = partyline_image::IMAGE;
    let inf = include_str!("../inf/partyline.inf");
    std::fs::write(package.join("partyline.sys"), unsigned).unwrap();
    std::fs::write(package.join("partyline.inf"), inf).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sign-linux.sh");
    let (ok, log) = run(Command::new("bash")
        .arg(&script)
        .arg(&package)
        .arg(scratch.0.join("cert"))
        // The catalog tool with the profile the tests were built with: no release build here.
        .env("PARTYLINE_TOOL_PROFILE", "dev"));
    assert!(ok, "{} failed:\n{log}", script.display());
    assert_eq!(
        log.matches("Signature verification: ok").count(),
        3,
        "osslsigncode verify did not confirm:\n{log}"
    );
    for file in ["partyline.sys", "partyline.inf", "partyline.cat", "partyline-test.cer"] {
        assert!(package.join(file).is_file(), "the package lacks {file}");
    }
    let cert = scratch.0.join("cert/partyline-test.pem");

    // The signed image.
    let signed = std::fs::read(package.join("partyline.sys")).expect("read the signed image");
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

    // The catalog vouches for the .sys ...
    let catalog = package.join("partyline.cat");
    let (ok, log) = catalog_accepts(&cert, &catalog, &package.join("partyline.sys"));
    assert!(
        ok && log.contains("Signature verification: ok"),
        "the catalog does not vouch for partyline.sys:\n{log}"
    );
    // ... and not for a copy with one byte of code changed (the first section's first byte).
    let first_section = file.section_table().iter().next().expect("a section");
    let code_at = first_section.pointer_to_raw_data.get(LE) as usize;
    let mut modified = signed.clone();
    modified[code_at] ^= 0xff;
    let modified_path = scratch.0.join("modified.sys");
    std::fs::write(&modified_path, &modified).unwrap();
    let (ok, log) = catalog_accepts(&cert, &catalog, &modified_path);
    assert!(!ok, "the catalog vouches for a modified partyline.sys:\n{log}");
    assert!(log.contains("Catalog verification: failed"), "rejected, but not by the catalog check:\n{log}");

    // openssl reads the signed catalog: a PKCS#7 SignedData of a certificate trust list, signed
    // by the test certificate.
    let (ok, log) = run(Command::new("openssl")
        .args(["pkcs7", "-inform", "DER", "-print_certs", "-noout", "-in"])
        .arg(&catalog));
    assert!(ok && log.contains("CN = partyline test signing"), "openssl pkcs7 -print_certs:\n{log}");
    let (ok, dump) = run(Command::new("openssl").args(["asn1parse", "-inform", "DER", "-in"]).arg(&catalog));
    assert!(ok, "openssl asn1parse:\n{dump}");
    for oid in
        ["pkcs7-signedData", ":1.3.6.1.4.1.311.10.1", ":1.3.6.1.4.1.311.12.1.1", ":1.3.6.1.4.1.311.12.1.3"]
    {
        assert!(dump.contains(oid), "the catalog lacks {oid}:\n{dump}");
    }
    // The .inf is listed by the SHA-256 of its bytes, as openssl computes it.
    let (ok, digest) =
        run(Command::new("openssl").args(["dgst", "-sha256", "-r"]).arg(package.join("partyline.inf")));
    assert!(ok, "openssl dgst:\n{digest}");
    let inf_hash = digest.split_whitespace().next().unwrap().to_ascii_uppercase();
    assert_eq!(inf_hash.len(), 64, "{digest}");
    assert!(
        dump.contains(&format!("[HEX DUMP]:{inf_hash}")),
        "the catalog does not list partyline.inf ({inf_hash}):\n{dump}"
    );
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
