//! The `partyline.sys` kernel image, built by this crate's build script for
//! `x86_64-pc-windows-msvc` and embedded here, so that the simulator and the `partyline` command
//! always run the very image that would be installed on Windows.

/// Where the build put `partyline.sys`.
pub const SYS_PATH: &str = env!("PARTYLINE_SYS_PATH");

/// Where the build put `partyline.pdb`.
pub const PDB_PATH: &str = env!("PARTYLINE_PDB_PATH");

/// The bytes of `partyline.sys`.
pub static IMAGE: &[u8] = include_bytes!(env!("PARTYLINE_SYS_PATH"));
