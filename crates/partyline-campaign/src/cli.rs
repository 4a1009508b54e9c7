//! The campaigns' command line, shared by `partyline campaign` and the `partyline-campaign`
//! binary: the options, checked as they are parsed, and the run that prints the figures.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::shard::{self, ResultFile, Shard};
use crate::{ops, workers, Campaign, Executor, Figures, Options};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CampaignArgs {
    /// Seeds per seeded campaign (hostile uses a quarter of them).
    #[arg(long, default_value_t = 200)]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// Operations per schedule, low-resources and concurrency run.
    #[arg(long, default_value_t = 60)]
    pub steps: u64,
    /// Host threads delivering callbacks in the concurrency campaign.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub threads: u64,
    /// IOCTL inputs per hostile run.
    #[arg(long, default_value_t = 400)]
    pub ioctl_inputs: u64,
    /// Low-resources failure probability per 10,000 calls (Driver Verifier's default: 600).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub probability: u32,
    /// Low-resources pool-tag filter (repeatable; four characters, e.g. PlPt).
    #[arg(long = "tag", value_parser = parse_tag)]
    pub tags: Vec<u32>,
    /// Low-resources warm-up, in 100 ns ticks of virtual time.
    #[arg(long = "warmup", default_value_t = 0)]
    pub warmup_ticks: u64,
    /// Run only these campaigns (repeatable; default: all).
    #[arg(long, value_parser = parse_campaign)]
    pub only: Vec<Campaign>,
    /// The short version the test suite runs (the other numeric options are ignored).
    #[arg(long)]
    pub short: bool,
    /// Print each failing run as it is found.
    #[arg(long)]
    pub verbose: bool,
    /// Run exactly these operations (a minimised failure's replay) instead of random ones; needs
    /// --only schedule, --only low-resources or --only concurrency.
    #[arg(long, value_parser = parse_replay)]
    pub replay: Option<Replay>,
    /// Do not minimise failing random runs.
    #[arg(long)]
    pub no_minimise: bool,
    /// Add/drop cycles of the soak campaign (`--only soak --cycles 1000000` for the full soak).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub cycles: u64,
    /// Run without Driver Verifier's special pool (on by default: a guard page after every
    /// driver allocation, freed blocks made inaccessible).
    #[arg(long)]
    pub no_special_pool: bool,
    /// Worker processes (default: one per processor; 1 runs everything in this process). The
    /// figures do not depend on it.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jobs: Option<u64>,
    /// Run only the I-th of N disjoint parts of the seeds (1 <= I <= N), e.g. `--shard 3/8`; merge
    /// the `--json` files of every shard with `partyline campaign merge`.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Also write what the run found to FILE, as JSON (what `partyline campaign merge` reads).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[command(subcommand)]
    pub action: Option<CampaignAction>,
}

/// What `partyline campaign` can do besides running campaigns.
#[derive(clap::Subcommand)]
pub enum CampaignAction {
    /// Combine the `--json` files of every shard of a run into the table one run over all the
    /// seeds gives (shrinking its failing random runs, as that run would).
    Merge {
        /// The result files, one per shard (any order).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Worker processes for the shrinking (default: one per processor).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
        jobs: Option<u64>,
        /// Also write the merged result to FILE, as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    text.parse()
}

/// The operations of `--replay` (one value, so clap keeps the list whole).
#[derive(Clone, Debug)]
pub struct Replay(pub Vec<ops::Op>);

fn parse_replay(text: &str) -> Result<Replay, String> {
    ops::parse(text).map(Replay)
}

fn parse_campaign(name: &str) -> Result<Campaign, String> {
    Campaign::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Campaign::ALL.iter().map(|c| c.name()).collect();
        format!("unknown campaign {name:?} (one of: {})", names.join(", "))
    })
}

fn parse_tag(tag: &str) -> Result<u32, String> {
    if tag.is_empty() || tag.len() > 4 || !tag.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{tag:?} is not a pool tag (1 to 4 printable ASCII characters, e.g. PlPt)"));
    }
    let mut bytes = [b' '; 4];
    bytes[..tag.len()].copy_from_slice(tag.as_bytes());
    Ok(u32::from_le_bytes(bytes))
}

/// Runs the campaigns `args` select (or merges shards) and prints the figures: exit 0 when clean,
/// 1 when something was found, 2 for options that mean nothing together or files that do not
/// merge.
pub fn run(args: CampaignArgs) -> ExitCode {
    if let Some(CampaignAction::Merge { files, jobs, json }) = args.action {
        return merge(&files, jobs, json.as_deref());
    }
    let options = if args.short {
        Options {
            only: args.only,
            verbose: args.verbose,
            special_pool: !args.no_special_pool,
            ..Options::short()
        }
    } else {
        Options {
            seeds: args.seeds,
            first_seed: args.first_seed,
            steps: args.steps,
            threads: args.threads as usize,
            ioctl_inputs: args.ioctl_inputs,
            probability: args.probability,
            tags: args.tags,
            warmup_ticks: args.warmup_ticks,
            only: args.only,
            verbose: args.verbose,
            replay: args.replay.map(|r| r.0),
            minimise: !args.no_minimise,
            special_pool: !args.no_special_pool,
            cycles: args.cycles,
        }
    };
    if let Err(e) = options.check() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let started = std::time::Instant::now();
    let jobs = jobs_or_default(args.jobs);
    let figures = match with_executor(jobs, |executor| crate::run_with(&options, args.shard, executor)) {
        Ok(figures) => figures,
        Err(e) => {
            eprintln!("partyline campaign: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{figures}");
    if let Some(shard) = args.shard {
        println!(
            "(shard {shard}: its part of the seeds, failing runs not shrunk; `partyline campaign merge` \
             the --json files of every shard for the whole table)"
        );
    }
    println!("({:.1} s, {})", started.elapsed().as_secs_f64(), describe(jobs));
    finish(&figures, args.json.map(|path| (path, ResultFile::new(&options, args.shard, &figures))))
}

/// `partyline campaign merge FILES`.
fn merge(files: &[PathBuf], jobs: Option<u64>, json: Option<&std::path::Path>) -> ExitCode {
    let mut read = Vec::new();
    for path in files {
        match ResultFile::read(path) {
            Ok(file) => read.push((path.display().to_string(), file)),
            Err(e) => {
                eprintln!("partyline campaign merge: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let started = std::time::Instant::now();
    let jobs = jobs_or_default(jobs);
    let merged = shard::merge(&read).and_then(|(options, mut figures)| {
        with_executor(jobs, |executor| crate::minimise(&options, &mut figures, executor))?;
        Ok((options, figures))
    });
    let (options, figures) = match merged {
        Ok(merged) => merged,
        Err(e) => {
            eprintln!("partyline campaign merge: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{figures}");
    println!("({} shards merged; {:.1} s, {})", read.len(), started.elapsed().as_secs_f64(), describe(jobs));
    finish(&figures, json.map(|path| (path.to_path_buf(), ResultFile::new(&options, None, &figures))))
}

fn jobs_or_default(jobs: Option<u64>) -> usize {
    jobs.map_or_else(workers::default_jobs, |j| j as usize)
}

/// Runs `f` in this process for one job, else on workers started from this very program.
fn with_executor<T>(jobs: usize, f: impl FnOnce(Executor<'_>) -> Result<T, String>) -> Result<T, String> {
    if jobs <= 1 {
        return f(Executor::InProcess);
    }
    let program =
        std::env::current_exe().map_err(|e| format!("cannot find this program to start workers: {e}"))?;
    f(Executor::Workers { jobs, program: &program })
}

fn describe(jobs: usize) -> String {
    if jobs <= 1 {
        "in this process".into()
    } else {
        format!("{jobs} worker processes")
    }
}

/// Writes the result file if asked, and the exit status of `figures`.
fn finish(figures: &Figures, json: Option<(PathBuf, ResultFile)>) -> ExitCode {
    if let Some((path, file)) = json {
        if let Err(e) = file.write(&path) {
            eprintln!("partyline campaign: {e}");
            return ExitCode::from(2);
        }
    }
    if figures.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_little_endian_and_padded_like_pool_tags() {
        assert_eq!(parse_tag("PlPt"), Ok(u32::from_le_bytes(*b"PlPt")));
        assert_eq!(parse_tag("Pl"), Ok(u32::from_le_bytes(*b"Pl  ")));
        assert!(parse_tag("").is_err());
        assert!(parse_tag("PlPtX").is_err());
        assert!(parse_tag("P t").is_err());
    }

    #[derive(clap::Parser)]
    struct Harness {
        #[command(flatten)]
        campaign: CampaignArgs,
    }

    #[test]
    fn campaign_options_parse_into_campaign_options() {
        use clap::Parser;
        let args = Harness::try_parse_from([
            "x",
            "--only",
            "schedule",
            "--first-seed",
            "18",
            "--replay",
            "make 1 2; drain",
            "--tag",
            "PlPt",
        ])
        .expect("valid options")
        .campaign;
        assert_eq!(args.only, [Campaign::Schedule]);
        assert_eq!(args.replay.map(|r| r.0.len()), Some(2));
        assert_eq!(args.tags, [u32::from_le_bytes(*b"PlPt")]);
        let error = Harness::try_parse_from(["x", "--replay", "make 0"]).err().expect("leaf 0 is refused");
        assert!(error.to_string().contains("leaf 0"), "{error}");
    }

    #[test]
    fn campaigns_are_named_as_in_the_docs() {
        assert_eq!(parse_campaign("concurrency"), Ok(Campaign::Concurrency));
        assert!(parse_campaign("everything").unwrap_err().contains("systematic"));
    }
}
