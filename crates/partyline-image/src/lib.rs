//! The `partyline.sys` kernel image, built by this crate's build script for
//! `x86_64-pc-windows-msvc` and embedded here, so that the simulator and the `partyline` command
//! always run the very image that would be installed on Windows.

/// Where the build put `partyline.sys`.
pub const SYS_PATH: &str = env!("PARTYLINE_SYS_PATH");

/// Where the build put `partyline.pdb`.
pub const PDB_PATH: &str = env!("PARTYLINE_PDB_PATH");

/// The bytes of `partyline.sys`.
pub static IMAGE: &[u8] = include_bytes!(env!("PARTYLINE_SYS_PATH"));

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// An image read from a file instead of the embedded one (`partyline --image FILE`): a driver
/// built elsewhere, or one with a planted bug (`partyline-mutants`).
static FROM_FILE: OnceLock<(PathBuf, &'static [u8])> = OnceLock::new();

/// The image the simulator loads: the file [`use_file`] named, else the embedded [`IMAGE`].
pub fn image() -> &'static [u8] {
    FROM_FILE.get().map_or(IMAGE, |(_, bytes)| bytes)
}

/// The file [`use_file`] named, if any (so a worker process can be told the same).
pub fn file() -> Option<&'static Path> {
    FROM_FILE.get().map(|(path, _)| path.as_path())
}

/// Makes [`image`] return the bytes of `path` for the rest of the process. The file must be a PE
/// image (it starts with `MZ`); the loader checks the rest. Once per process.
pub fn use_file(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !bytes.starts_with(b"MZ") {
        return Err(format!("{}: not a PE image (it does not start with MZ)", path.display()));
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    FROM_FILE
        .set((absolute, Vec::leak(bytes)))
        .map_err(|_| format!("{}: an image file was already chosen", path.display()))
}
