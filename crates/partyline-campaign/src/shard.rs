//! Campaigns beyond one machine: `--shard I/N` runs the I-th of N disjoint seed ranges of every
//! seeded campaign (and the I-th part of the systematic campaign's pairs; the soak runs in shard
//! 1), `--json FILE` writes what a run found as a [`ResultFile`], and `partyline campaign merge`
//! combines the files of every shard into exactly the figures one run over all the seeds gives
//! ([`merge`]).
//!
//! A shard does not shrink its failing runs: which ones are shrunk depends on the failures of
//! every shard, so the merge does it (see [`crate::plan`]).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::{Figures, Options};

/// The `index`-th (from 1) of `count` shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let wrong = || format!("{text:?} is not a shard: I/N, the I-th of N (1 <= I <= N), e.g. 3/8");
        let (index, count) = text.split_once('/').ok_or_else(wrong)?;
        let index: u64 = index.trim().parse().map_err(|_| wrong())?;
        let count: u64 = count.trim().parse().map_err(|_| wrong())?;
        if index == 0 || count == 0 || index > count {
            return Err(wrong());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What `--json FILE` writes: the run's options, which shard it was, and its figures.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResultFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when written.
    pub version: u32,
    pub options: Options,
    /// The driver image the run loaded: its size and FNV-1a hash (shards of one run load one
    /// image).
    pub image: String,
    /// The version of the partyline that ran it.
    pub partyline: String,
    /// The shard, or `1/1` for a whole run.
    pub shard: Shard,
    pub figures: Figures,
}

/// The `format` of a result file.
pub const FORMAT: &str = "partyline-campaign-result";
/// The version of the result format; files of another version are not merged.
pub const VERSION: u32 = 1;

impl ResultFile {
    /// The result of a run of `options` (its shard `shard`, or all of it) that found `figures`.
    pub fn new(options: &Options, shard: Option<Shard>, figures: &Figures) -> ResultFile {
        ResultFile {
            format: FORMAT.into(),
            version: VERSION,
            options: Options { verbose: false, ..options.clone() },
            image: image_identity(partyline_image::image()),
            partyline: env!("CARGO_PKG_VERSION").into(),
            shard: shard.unwrap_or(Shard { index: 1, count: 1 }),
            figures: figures.clone(),
        }
    }

    /// Writes it to `path` (pretty JSON).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads the result file at `path`.
    pub fn read(path: &Path) -> Result<ResultFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(format!("{}: not a campaign result (no \"format\": \"{FORMAT}\")", path.display()));
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(VERSION) => {}
            other => {
                return Err(format!(
                    "{}: result format version {}, this partyline reads version {VERSION}",
                    path.display(),
                    other.map_or("(none)".into(), |v| v.to_string())
                ))
            }
        }
        let file: ResultFile = serde_json::from_value(value)
            .map_err(|e| format!("{}: not a campaign result: {e}", path.display()))?;
        if file.shard.index == 0 || file.shard.index > file.shard.count {
            return Err(format!(
                "{}: shard {} is not one of its {}",
                path.display(),
                file.shard,
                file.shard.count
            ));
        }
        Ok(file)
    }
}

/// The options and the assembled figures of the shards `files` (each with the path it came
/// from, for errors): every shard of one run exactly once, with the same options. The failing
/// random runs are not shrunk yet.
pub fn merge(files: &[(String, ResultFile)]) -> Result<(Options, Figures), String> {
    let Some((first_path, first)) = files.first() else {
        return Err("nothing to merge: name the result files of every shard".into());
    };
    let count = first.shard.count;
    let mut seen: Vec<Option<&str>> = vec![None; count as usize];
    for (path, file) in files {
        if file.options != first.options {
            return Err(format!(
                "{path} and {first_path} are not shards of one run: their options differ ({} against {})",
                describe(&file.options),
                describe(&first.options)
            ));
        }
        if (&file.image, &file.partyline) != (&first.image, &first.partyline) {
            return Err(format!(
                "{path} and {first_path} are not shards of one run: one ran image {} with partyline {}, the other image {} with partyline {}",
                file.image, file.partyline, first.image, first.partyline
            ));
        }
        if file.shard.count != count {
            return Err(format!(
                "{path} is shard {} and {first_path} shard {}: not shards of one run",
                file.shard, first.shard
            ));
        }
        let slot = &mut seen[file.shard.index as usize - 1];
        if let Some(other) = slot {
            return Err(format!("shard {} is given twice: {other} and {path}", file.shard));
        }
        *slot = Some(path);
    }
    let missing: Vec<String> = (1..=count)
        .filter(|i| seen[*i as usize - 1].is_none())
        .map(|i| Shard { index: i, count }.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!("shards missing: {}", missing.join(", ")));
    }
    let outcomes = files.iter().map(|(_, file)| crate::plan::Outcome::Figures(file.figures.clone()));
    Ok((first.options.clone(), crate::plan::assemble(&first.options, outcomes)))
}

/// `bytes`' size and 64-bit FNV-1a hash: which driver image a run loaded.
pub fn image_identity(bytes: &[u8]) -> String {
    let hash = bytes
        .iter()
        .fold(0xCBF2_9CE4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3));
    format!("{} bytes, fnv1a {hash:016x}", bytes.len())
}

/// The options as JSON, for an error message.
fn describe(options: &Options) -> String {
    serde_json::to_string(options).unwrap_or_default()
}
