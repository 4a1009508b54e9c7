//! `partyline-catalog`: writes the unsigned catalog of a driver package (what inf2cat writes on
//! Windows), for `osslsigncode sign` to sign. Used by scripts/sign-linux.sh.
//!
//!   partyline-catalog --out partyline.cat --hwid PL_PARTYLINE partyline.inf partyline.sys
//!
//! Each FILE is listed under its file name. The time is `SOURCE_DATE_EPOCH` when set (for
//! reproducible packages), else now.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use partyline_catalog::{hex, make_catalog, member_hash, Member, Options};

#[derive(Parser)]
#[command(
    name = "partyline-catalog",
    version,
    about = "Make a driver package's catalog (.cat) without inf2cat"
)]
struct Args {
    /// Where to write the catalog.
    #[arg(long)]
    out: PathBuf,
    /// The catalog's OS attribute (inf2cat's name for /os:10_X64).
    #[arg(long, default_value = "_v100_X64")]
    os: String,
    /// Each file's OSAttr attribute (platform 2 = Windows NT, version 10.0).
    #[arg(long, default_value = "2:10.0")]
    os_attr: String,
    /// A hardware or component id of the INF's models sections (repeatable).
    #[arg(long = "hwid")]
    hardware_ids: Vec<String>,
    /// The package's files (the INF and every file it copies).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn time() -> Result<Duration, String> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| format!("SOURCE_DATE_EPOCH={text:?} is not a number of seconds: {e}")),
        Err(_) => {
            SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| format!("the clock is before 1970: {e}"))
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let mut contents = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: not a file name", path.display()))?
            .to_owned();
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        contents.push((name, bytes));
    }
    let members: Vec<Member<'_>> = contents.iter().map(|(name, bytes)| Member { name, bytes }).collect();
    let options = Options {
        os: args.os.clone(),
        os_attr: args.os_attr.clone(),
        hardware_ids: args.hardware_ids.clone(),
        time: time()?,
    };
    let catalog = make_catalog(&members, &options).map_err(|e| e.to_string())?;
    std::fs::write(&args.out, &catalog).map_err(|e| format!("{}: {e}", args.out.display()))?;
    for member in &members {
        let hash = member_hash(member.bytes).map_err(|e| e.to_string())?;
        println!("{}  {}", hex(&hash), member.name);
    }
    println!("catalog: {} ({} bytes, unsigned)", args.out.display(), catalog.len());
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("partyline-catalog: {e}");
            ExitCode::FAILURE
        }
    }
}
