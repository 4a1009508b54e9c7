//! Kernel link flags for `partyline.sys`, applied only when the driver is built for Windows.
//!
//! The flags are those windows-drivers-rs (`wdk-build`) passes for a WDM driver, plus what
//! rust-lld does not do by itself that MSVC's linker does for `/DRIVER` images: mark every code and
//! data section non-pageable (windows-drivers-rs issue 182: rust-lld drivers bugchecked 0x1A
//! because their sections were pageable). `tests/image.rs` checks the result.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.ends_with("-pc-windows-msvc") {
        return;
    }
    let flags = [
        "/NOLOGO",
        "/DRIVER",
        "/NODEFAULTLIB",
        "/SUBSYSTEM:NATIVE,10.00",
        "/ENTRY:DriverEntry",
        "/INTEGRITYCHECK",
        "/NXCOMPAT",
        "/DYNAMICBASE",
        "/HIGHENTROPYVA",
        "/OPT:REF,ICF",
        "/MANIFEST:NO",
        "/INCREMENTAL:NO",
        // A valid PE checksum: required for drivers (MSVC /RELEASE page); lld-link computes it.
        "/RELEASE",
        "/MERGE:.edata=.rdata",
        "/MERGE:.rustc=.data",
        // Resident sections. In lld-link's /SECTION syntax `P` sets IMAGE_SCN_MEM_NOT_PAGED.
        "/SECTION:.text,ERP",
        "/SECTION:.rdata,RP",
        "/SECTION:.data,RWP",
        "/SECTION:.pdata,RP",
        "/SECTION:.reloc,RDP",
        "/DEBUG",
        "/PDBALTPATH:partyline.pdb",
    ];
    for flag in flags {
        println!("cargo:rustc-cdylib-link-arg={flag}");
    }
}
