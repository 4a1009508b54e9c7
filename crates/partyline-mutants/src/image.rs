//! Builds the mutated `partyline.sys` with the build every other build uses: `cargo build -p
//! partyline-image` in the copy, whose build script (`crates/partyline-image/build.rs`) builds the
//! kernel image with a nested cargo into `<target>/driver/partyline.sys`. Every mutant shares one
//! target dir, so each rebuilds only the crates its patch changed.

use std::path::Path;
use std::process::{Command, Stdio};

/// Builds the image of the tree at `tree` in `target`, copies it to `image`, and keeps the
/// build's output in `log`. The error is the compiler's first error line.
pub fn build(tree: &Path, target: &Path, image: &Path, log: &Path) -> Result<(), String> {
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err_file = log_file.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(tree)
        .args(["build", "--release", "--locked", "-p", "partyline-image"])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file);
    scrub_environment(&mut command);
    command.env("CARGO_TARGET_DIR", target);
    let status = command.status().map_err(|e| format!("could not run cargo: {e}"))?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        // The compiler's own first error (the nested build indents it), else cargo's.
        let errors: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with("error")).collect();
        let first = errors
            .iter()
            .find(|l| l.starts_with("error["))
            .or(errors.first())
            .copied()
            .unwrap_or("cargo failed");
        return Err(format!("{first} (the whole output: {})", log.display()));
    }
    let built = target.join("driver").join("partyline.sys");
    if let Some(parent) = image.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::copy(&built, image).map_err(|e| format!("copying {}: {e}", built.display()))?;
    Ok(())
}

/// The nested build must see the copy's own configuration, not that of whatever started the
/// runner (`cargo run` sets CARGO_* variables; RUSTFLAGS would replace the kernel target's flags;
/// wrappers do not belong in the image): the same scrubbing as the image's build script.
pub fn scrub_environment(command: &mut Command) {
    const KEEP: [&str; 3] = ["CARGO_HOME", "CARGO_NET_OFFLINE", "CARGO_TERM_COLOR"];
    for (key, _) in std::env::vars_os() {
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
