//! Builds `partyline.sys` for `x86_64-pc-windows-msvc` with a nested cargo, from any host build.
//!
//! This is what makes the README's commands work on a fresh machine: the first host build that
//! needs the image (the `partyline` command, the simulator's tests, the image tests) builds it
//! here, installing the Windows target with rustup first if the toolchain lacks it. The image
//! lands in `<target-dir>/driver/partyline.sys`, with `partyline.pdb` beside it.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

const KERNEL_TARGET: &str = "x86_64-pc-windows-msvc";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("../..").canonicalize().expect("workspace root exists");
    for input in [
        "src",
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
        "crates/ndis-sys",
        "crates/partyline-core",
        "crates/partyline-ioctl",
        ".cargo/config.toml",
        "rust-toolchain.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| if dir.is_absolute() { dir } else { root.join(dir) })
        .unwrap_or_else(|| root.join("target"));
    let driver_dir = target_dir.join("driver");

    ensure_target_installed();

    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["build", "--release", "-p", "partyline", "--target", KERNEL_TARGET])
        // The engine is optimised for size in the image: the image must stay within 64 KiB
        // (issue 6; tests/image.rs), and the engine is most of its code (docs/BENCHMARKS.md, "Image
        // size", has the figures). Only the engine, and only in this build: the glue keeps level 3
        // (at "s" it grows a panic path, KeBugCheckEx, that tests/image.rs refuses), and so do
        // host builds.
        .args(["--config", "profile.release.package.partyline-core.opt-level='s'", "--target-dir"])
        .arg(&driver_dir);
    scrub_environment(&mut command);
    let status = command.status().unwrap_or_else(|error| fail(&format!("could not run cargo: {error}")));
    if !status.success() {
        fail("building partyline.sys failed (see the cargo output above)");
    }

    let built = driver_dir.join(KERNEL_TARGET).join("release");
    let sys = driver_dir.join("partyline.sys");
    let pdb = driver_dir.join("partyline.pdb");
    copy(&built.join("partyline.dll"), &sys);
    copy(&built.join("partyline.pdb"), &pdb);
    println!("cargo:rustc-env=PARTYLINE_SYS_PATH={}", sys.display());
    println!("cargo:rustc-env=PARTYLINE_PDB_PATH={}", pdb.display());
}

/// rustup 1.29 does not install a target that `rust-toolchain.toml` lists; do it here, and say so.
fn ensure_target_installed() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", KERNEL_TARGET])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let installed =
        libdir.as_deref().and_then(|dir| std::fs::read_dir(dir).ok()).is_some_and(|mut entries| {
            entries.any(|entry| entry.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libcore-")))
        });
    if installed {
        return;
    }
    println!("cargo:warning=the Rust target {KERNEL_TARGET} is missing: installing it with `rustup target add {KERNEL_TARGET}`");
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", KERNEL_TARGET]);
    if let Some(toolchain) = env::var_os("RUSTUP_TOOLCHAIN") {
        rustup.arg("--toolchain").arg(toolchain);
    }
    match rustup.status() {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!("`rustup target add {KERNEL_TARGET}` failed ({status}); install the target and build again")),
        Err(error) => fail(&format!(
            "the Rust target {KERNEL_TARGET} is missing and rustup could not be run ({error}); install the target and build again"
        )),
    }
}

/// The nested build must see the repository's own configuration, not the outer build's: flags
/// such as RUSTFLAGS would replace the kernel target's rustflags, and wrappers (clippy, coverage)
/// do not belong in the kernel image.
fn scrub_environment(command: &mut Command) {
    const KEEP: [&str; 3] = ["CARGO_HOME", "CARGO_NET_OFFLINE", "CARGO_TERM_COLOR"];
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let cargo_var = key.starts_with("CARGO_") && !KEEP.contains(&key.as_str());
        let flags = matches!(
            key.as_str(),
            "RUSTFLAGS"
                | "RUSTDOCFLAGS"
                | "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "MAKEFLAGS"
                | "MFLAGS"
        ) || key.starts_with("CLIPPY");
        if cargo_var || flags {
            command.env_remove(&key);
        }
    }
}

fn copy(from: &Path, to: &Path) {
    if let Err(error) = std::fs::copy(from, to) {
        fail(&format!("could not copy {} to {}: {error}", from.display(), to.display()));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
