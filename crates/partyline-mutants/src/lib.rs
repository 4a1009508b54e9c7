//! The planted-bug runner: each `mutants/*.patch` is a realistic bug in the driver and names the
//! simulator rule that must catch it; this crate plants it in a copy of the tree, builds that
//! `partyline.sys`, runs the unmodified `partyline` command on it and says whether the rule fired.
//!
//! Flow ([`run_mutant`]): [`tree::Tree::sync`] makes the copy equal to the repository's files
//! again, [`tree::Tree::apply`] plants the patch (`git apply`; one that does not apply is STALE),
//! [`image::build`] builds the mutated image with the same build script as every other build
//! (`crates/partyline-image/build.rs`, one shared target dir, so a mutant rebuilds only what its
//! patch changed), and [`runs`] runs `partyline --image <it>` as a child process: the default
//! scenario, every shipped scenario, then `campaign --short`, until the named rule fires.
//! [`outcome::classify`] gives the verdict; [`coverage`] says which catalogue rules no patch
//! covers (nor `mutants/EXEMPT.md`).

pub mod coverage;
pub mod exempt;
pub mod header;
pub mod image;
pub mod outcome;
pub mod runs;
pub mod tree;

use std::path::{Path, PathBuf};

/// The names of every rule of the catalogue.
pub fn catalogue() -> Vec<&'static str> {
    ndis_sim::rules::ALL.iter().map(|rule| rule.name).collect()
}

/// One planted bug: `mutants/<name>.patch`.
#[derive(Clone, Debug)]
pub struct Patch {
    pub name: String,
    pub path: PathBuf,
    pub text: String,
    pub header: header::Header,
}

/// The folder of planted bugs in `root`.
pub fn mutants_dir(root: &Path) -> PathBuf {
    root.join("mutants")
}

/// Every `mutants/*.patch` of `root`, by name, with its header checked against the catalogue.
/// Any patch with a bad header is an error (all of them are listed).
pub fn load_patches(root: &Path) -> Result<Vec<Patch>, String> {
    let dir = mutants_dir(root);
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "patch"))
        .collect();
    paths.sort();
    let catalogue = catalogue();
    let mut patches = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(format!("mutants/{name}.patch: {e}"));
                continue;
            }
        };
        match header::parse(text.lines().next().unwrap_or_default(), &catalogue) {
            Ok(header) => patches.push(Patch { name, path, text, header }),
            Err(e) => errors.push(format!("mutants/{name}.patch: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(patches)
    } else {
        Err(errors.join("\n"))
    }
}

/// `mutants/EXEMPT.md` of `root` (none is an empty list).
pub fn load_exemptions(root: &Path) -> Result<Vec<exempt::Exemption>, String> {
    let path = mutants_dir(root).join("EXEMPT.md");
    match std::fs::read_to_string(&path) {
        Ok(text) => exempt::parse(&text, &catalogue()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The patches called `names` (with or without `.patch`, or as a path), in the order given.
pub fn select<'a>(patches: &'a [Patch], names: &[String]) -> Result<Vec<&'a Patch>, String> {
    if names.is_empty() {
        return Ok(patches.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            let short = Path::new(name).file_name().map_or(name.as_str(), |f| f.to_str().unwrap_or(name));
            let short = short.strip_suffix(".patch").unwrap_or(short);
            patches.iter().find(|p| p.name == short).ok_or_else(|| {
                let all: Vec<&str> = patches.iter().map(|p| p.name.as_str()).collect();
                format!("{name}: no such planted bug in mutants/ (there are: {})", all.join(", "))
            })
        })
        .collect()
}

/// Where everything of one runner invocation lives, under the target dir.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// The repository whose `mutants/` and sources are used.
    pub root: PathBuf,
    /// `<target>/mutants`: `tree/` (the copy), `build/` (its target dir), `images/<name>.sys`,
    /// `logs/<name>/…`, `baseline/` (the unmodified driver's runs).
    pub dir: PathBuf,
}

impl Workspace {
    pub fn tree(&self) -> PathBuf {
        self.dir.join("tree")
    }
    pub fn build_dir(&self) -> PathBuf {
        self.dir.join("build")
    }
    pub fn image(&self, name: &str) -> PathBuf {
        self.dir.join("images").join(format!("{name}.sys"))
    }
    pub fn logs(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(name)
    }
}

/// Options of one mutant's runs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The host `partyline` command (unmodified).
    pub partyline: PathBuf,
    /// The runs to make, in order ([`runs::plans`]).
    pub plans: Vec<runs::Plan>,
    /// Keep running after the named rule fired.
    pub all_runs: bool,
}

/// Plants, builds and runs one patch; `progress` hears each stage.
pub fn run_mutant(
    workspace: &Workspace,
    tree: &mut tree::Tree,
    patch: &Patch,
    options: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> (outcome::Outcome, Vec<outcome::Run>) {
    let logs = workspace.logs(&patch.name);
    // Old logs would mislead: this run's are the only ones left.
    let _ = std::fs::remove_dir_all(&logs);
    if let Err(e) = std::fs::create_dir_all(&logs) {
        return (outcome::Outcome::BuildFailed(format!("{}: {e}", logs.display())), Vec::new());
    }
    if let Err(e) = tree.sync() {
        return (outcome::Outcome::BuildFailed(format!("could not copy the sources: {e}")), Vec::new());
    }
    if let Err(e) = tree.apply(patch) {
        return (outcome::Outcome::Stale(e), Vec::new());
    }
    progress("building");
    let image = workspace.image(&patch.name);
    if let Err(e) = image::build(&tree.dir, &workspace.build_dir(), &image, &logs.join("build.txt")) {
        return (outcome::Outcome::BuildFailed(e), Vec::new());
    }
    let mut done = Vec::new();
    for plan in &options.plans {
        progress(&plan.label);
        let run = runs::run(&options.partyline, Some(&image), plan, &logs);
        let caught = run.fired.contains(&patch.header.rule);
        done.push(run);
        if caught && !options.all_runs {
            break;
        }
    }
    (outcome::classify(&patch.header.rule, &done), done)
}
