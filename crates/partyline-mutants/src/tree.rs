//! The copy of the source tree a planted bug is applied to: the files `git ls-files -co
//! --exclude-standard` lists (tracked and new, not ignored: the working tree as it is, uncommitted
//! edits included), kept between mutants and runner invocations so cargo rebuilds only what a
//! patch changed. Before each mutant, [`Tree::sync`] rewrites the files that differ from the
//! repository's (those the previous patch touched) and removes the files a patch or an older
//! listing left behind; only changed files are written, so the others keep their times.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Patch;

/// The copy at `dir` of the repository at `root`.
pub struct Tree {
    pub root: PathBuf,
    pub dir: PathBuf,
}

impl Tree {
    pub fn new(root: &Path, dir: &Path) -> Tree {
        Tree { root: root.to_path_buf(), dir: dir.to_path_buf() }
    }

    /// The list of the files the last sync copied (to remove those that left the listing).
    fn manifest(&self) -> PathBuf {
        self.dir.with_extension("files")
    }

    /// The files the patch applied last touched (to remove those it created).
    fn applied(&self) -> PathBuf {
        self.dir.with_extension("applied")
    }

    /// Makes the copy equal to the repository's listed files.
    pub fn sync(&mut self) -> Result<(), String> {
        let files = source_files(&self.root)?;
        let listed: BTreeSet<&str> = files.iter().map(String::as_str).collect();
        let mut stale: Vec<String> = Vec::new();
        for previous in [self.manifest(), self.applied()] {
            if let Ok(text) = std::fs::read_to_string(&previous) {
                stale.extend(text.lines().filter(|l| !l.is_empty() && !listed.contains(l)).map(String::from));
            }
        }
        for file in stale {
            let path = self.dir.join(&file);
            if path.is_file() {
                std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        for file in &files {
            let from = self.root.join(file);
            // Listed but deleted in the working tree: not part of it.
            let Ok(bytes) = std::fs::read(&from) else { continue };
            let to = self.dir.join(file);
            if std::fs::read(&to).is_ok_and(|old| old == bytes) {
                continue;
            }
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            std::fs::write(&to, &bytes).map_err(|e| format!("{}: {e}", to.display()))?;
        }
        std::fs::write(self.manifest(), files.join("\n"))
            .map_err(|e| format!("{}: {e}", self.manifest().display()))?;
        let _ = std::fs::remove_file(self.applied());
        Ok(())
    }

    /// Plants `patch` in the copy (`git apply`); the error says why it does not apply.
    pub fn apply(&mut self, patch: &Patch) -> Result<(), String> {
        let touched = touched_paths(&patch.text);
        if touched.is_empty() {
            return Err("the patch changes no file (no `diff --git` line)".into());
        }
        std::fs::write(self.applied(), touched.join("\n"))
            .map_err(|e| format!("{}: {e}", self.applied().display()))?;
        git_apply(&self.dir, &patch.path, false)
    }
}

/// Checks that `patch` applies to the working tree at `root`, changing nothing.
pub fn check_applies(root: &Path, patch: &Path) -> Result<(), String> {
    git_apply(root, patch, true)
}

/// `git apply [--check] <patch>` in `dir`. Outside a repository (the copy) git applies to the
/// directory; GIT_CEILING_DIRECTORIES keeps it from finding an enclosing repository (a target
/// dir inside the checkout), in which it would skip the paths outside its subdirectory.
fn git_apply(dir: &Path, patch: &Path, check_only: bool) -> Result<(), String> {
    let patch = std::path::absolute(patch).map_err(|e| format!("{}: {e}", patch.display()))?;
    let mut command = Command::new("git");
    command.current_dir(dir).arg("apply");
    if check_only {
        command.arg("--check");
    } else {
        // All or nothing: check first, so a stale patch leaves the copy untouched.
        let mut check = Command::new("git");
        check.current_dir(dir).args(["apply", "--check"]).arg(&patch);
        ceiling(&mut check, dir);
        let output = check.output().map_err(|e| format!("could not run git: {e}"))?;
        if !output.status.success() {
            return Err(first_lines(&String::from_utf8_lossy(&output.stderr)));
        }
    }
    command.arg(&patch);
    ceiling(&mut command, dir);
    let output = command.output().map_err(|e| format!("could not run git: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(first_lines(&String::from_utf8_lossy(&output.stderr)))
    }
}

fn ceiling(command: &mut Command, dir: &Path) {
    // The checkout itself must still be found when checking against it.
    if !dir.join(".git").exists() {
        if let Some(parent) = dir.parent() {
            command.env("GIT_CEILING_DIRECTORIES", parent);
        }
    }
}

fn first_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(3).collect();
    if lines.is_empty() {
        "git apply failed".into()
    } else {
        lines.join(" / ")
    }
}

/// The files `git ls-files -co --exclude-standard` lists in `root`.
pub fn source_files(root: &Path) -> Result<Vec<String>, String> {
    let output = Command::new("git")
        .current_dir(root)
        .args(["ls-files", "-co", "--exclude-standard", "-z"])
        .output()
        .map_err(|e| format!("could not run git: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`git ls-files` failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let mut files: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(String::from)
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// The paths a patch touches, both sides of each `diff --git a/X b/Y` line.
pub fn touched_paths(patch: &str) -> Vec<String> {
    let mut paths = BTreeSet::new();
    for line in patch.lines() {
        if let Some(rest) = line.strip_prefix("diff --git a/") {
            if let Some((a, b)) = rest.split_once(" b/") {
                paths.insert(a.to_string());
                paths.insert(b.to_string());
            }
        }
    }
    paths.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_paths_are_both_sides_of_each_diff() {
        let patch = "# rule: X — y\ndiff --git a/src/a.rs b/src/a.rs\n--- a/src/a.rs\n+++ b/src/a.rs\n\
                     diff --git a/src/old.rs b/src/new.rs\n";
        assert_eq!(touched_paths(patch), ["src/a.rs", "src/new.rs", "src/old.rs"]);
        assert!(touched_paths("# rule: X — y\n").is_empty());
    }
}
