//! Campaigns on every core: the units of a run ([`crate::plan`]) spread over worker processes,
//! each this very program started again with [`WORKER_ENV`] set.
//!
//! Processes rather than threads: the simulator ends its process on a bug check, so a worker that
//! stops costs only its unit. That unit is run again seed by seed on fresh workers, so the seed
//! that stops the simulator is reported as a stopped run, with what the worker said last, and
//! the campaign goes on. The figures are those of the same run in one process ([`crate::run`]),
//! whatever the number of workers: each unit depends on its seeds alone, and
//! [`crate::plan::assemble`] orders everything.
//!
//! Protocol (lines on the worker's stdin and stdout): the parent sends a [`Hello`] (the options,
//! the image file if not the embedded one); the worker answers `ready`; then one [`Unit`] per line,
//! each answered by its [`Outcome`]. The worker's answers carry a marker, so anything else it
//! prints goes to the parent's standard error untouched; so does its standard error.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};

use crate::plan::{self, Outcome, Unit};
use crate::{Figures, Options};

/// Set in a worker's environment: the program serves units instead of parsing its command line.
pub const WORKER_ENV: &str = "PARTYLINE_CAMPAIGN_WORKER";

/// Starts each line a worker answers with.
const MARK: &str = "\u{1}partyline-campaign-worker ";

/// The protocol version; a worker of another refuses to start.
const PROTOCOL: u32 = 1;

/// Lines of a worker's standard error kept to report why it stopped.
const SAID_LINES: usize = 12;

/// What a worker is told first.
#[derive(serde::Serialize, serde::Deserialize)]
struct Hello {
    protocol: u32,
    options: Options,
    image: Option<PathBuf>,
    /// The processor the worker keeps to (see [`allowed_processors`]).
    processor: Option<usize>,
}

/// The processors this process may run on, in order: worker `k` of a pool keeps to the `k`-th
/// (modulo their number). A run's simulated processors are host threads that hand the machine to
/// each other at every DDI boundary; on one host processor each hand-over is a local wake-up
/// rather than a cross-processor one, and workers do not disturb each other: measured on the
/// 2-core VM, one worker's runs take 2.75 s pinned against 3.97 s free, and two pinned workers
/// scale almost linearly where free ones did not (docs/BENCHMARKS.md).
fn allowed_processors() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity fills it for this process.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET reads the set for indices below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).filter(|cpu| unsafe { libc::CPU_ISSET(*cpu, &set) }).collect()
}

/// Keeps this process's threads, and the threads it starts from now on, to `processor`.
fn keep_to(processor: usize) -> Result<(), String> {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET adds one processor below CPU_SETSIZE.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if processor >= libc::CPU_SETSIZE as usize {
        return Err(format!("processor {processor} is beyond CPU_SETSIZE"));
    }
    // SAFETY: as above.
    unsafe { libc::CPU_SET(processor, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is this thread.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(format!("cannot keep to processor {processor}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// If this process was started as a worker ([`WORKER_ENV`]), serves units until its standard
/// input closes and exits; otherwise returns at once. Called first thing by every program that
/// runs campaigns (`partyline`, `partyline-campaign`).
pub fn dispatch() {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let code = match serve() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("partyline campaign worker: {e}");
            2
        }
    };
    std::process::exit(code);
}

fn serve() -> Result<(), String> {
    let mut lines = std::io::stdin().lines();
    let first = lines.next().ok_or("no hello line")?.map_err(|e| e.to_string())?;
    let hello: Hello = serde_json::from_str(&first).map_err(|e| format!("hello line: {e}"))?;
    if hello.protocol != PROTOCOL {
        return Err(format!("protocol {} asked, this worker speaks {PROTOCOL}", hello.protocol));
    }
    if let Some(image) = &hello.image {
        partyline_image::use_file(image)?;
    }
    if let Some(processor) = hello.processor {
        keep_to(processor)?;
    }
    crate::modes::install_crash_reporter();
    answer("ready")?;
    for line in lines {
        let line = line.map_err(|e| e.to_string())?;
        let unit: Unit = serde_json::from_str(&line).map_err(|e| format!("unit line {line:?}: {e}"))?;
        let outcome = plan::run_unit(&hello.options, &unit);
        answer(&serde_json::to_string(&outcome).map_err(|e| e.to_string())?)?;
    }
    Ok(())
}

/// Writes one answer line (not holding standard output meanwhile: the simulator's threads may
/// print).
fn answer(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout();
    writeln!(out, "{MARK}{text}").and_then(|()| out.flush()).map_err(|e| format!("writing an answer: {e}"))
}

/// One worker process, seen from the parent.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// The last lines of its standard error.
    said: Arc<Mutex<VecDeque<String>>>,
    stderr: Option<std::thread::JoinHandle<()>>,
}

/// A worker that ended while running a unit: what it said last and how it ended.
struct Ended(String);

impl Worker {
    /// Starts `program` as a worker for `options`, kept to `processor`, and waits for its
    /// `ready`.
    fn start(program: &Path, options: &Options, processor: Option<usize>) -> Result<Worker, String> {
        let mut child = Command::new(program)
            .env(WORKER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start a campaign worker ({}): {e}", program.display()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("a campaign worker came without its pipes".into());
        };
        let said = Arc::new(Mutex::new(VecDeque::new()));
        let kept = Arc::clone(&said);
        let stderr = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
                if kept.len() == SAID_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        let mut worker =
            Worker { child, stdin: Some(stdin), stdout: BufReader::new(stdout), said, stderr: Some(stderr) };
        let hello = Hello {
            protocol: PROTOCOL,
            options: options.clone(),
            image: partyline_image::file().map(Into::into),
            processor,
        };
        let started = serde_json::to_string(&hello)
            .map_err(|e| e.to_string())
            .and_then(|line| worker.send(&line).map_err(|Ended(said)| said))
            .and_then(|()| worker.receive().map_err(|Ended(said)| said));
        match started {
            Ok(line) if line == "ready" => Ok(worker),
            Ok(line) => Err(format!("{} answered {line:?} instead of ready", program.display())),
            Err(said) => Err(format!(
                "{} did not start as a campaign worker (a program that runs campaigns calls \
                 partyline_campaign::workers::dispatch first): {said}",
                program.display()
            )),
        }
    }

    /// Runs `unit` on the worker.
    fn ask(&mut self, unit: &Unit) -> Result<Outcome, Ended> {
        let line = serde_json::to_string(unit).map_err(|e| Ended(e.to_string()))?;
        self.send(&line)?;
        let answer = self.receive()?;
        serde_json::from_str(&answer)
            .map_err(|e| Ended(format!("an answer that does not parse ({e}): {answer}")))
    }

    fn send(&mut self, line: &str) -> Result<(), Ended> {
        let sent = match &mut self.stdin {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        sent.map_err(|_| self.end())
    }

    /// The next answer; other lines on its standard output go to standard error.
    fn receive(&mut self) -> Result<String, Ended> {
        loop {
            let mut line = String::new();
            match self.stdout.read_line(&mut line) {
                Ok(0) | Err(_) => return Err(self.end()),
                Ok(_) => match line.trim_end_matches('\n').strip_prefix(MARK) {
                    Some(answer) => return Ok(answer.to_string()),
                    None => eprint!("{line}"),
                },
            }
        }
    }

    /// Closes its input, waits for it, and says how it ended.
    fn end(&mut self) -> Ended {
        self.stdin = None;
        let status = self.child.wait();
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.join();
        }
        let said: Vec<String> = self.said.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
        let status = match status {
            Ok(status) => status.to_string(),
            Err(e) => format!("cannot wait for it: {e}"),
        };
        let said = if said.is_empty() { "nothing".to_string() } else { said.join(" | ") };
        Ended(format!("{status}; it said last: {said}"))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.stderr.is_some() {
            let _ = self.end();
        }
    }
}

/// The work of a pool: units to give out, their outcomes, the units split after their worker
/// stopped.
struct Work {
    units: Vec<Unit>,
    outcomes: Vec<Option<Outcome>>,
    pending: VecDeque<usize>,
    /// (unit, the single-seed units it was split into).
    splits: Vec<(usize, Vec<usize>)>,
    running: usize,
    failed: Option<String>,
}

/// Runs `units` on `jobs` workers started from `program` (a program that calls [`dispatch`]
/// first) and returns their outcomes in the order of `units`. `Err` when no worker can start.
pub fn execute(
    options: &Options,
    units: Vec<Unit>,
    jobs: usize,
    program: &Path,
) -> Result<Vec<Outcome>, String> {
    let count = units.len();
    let work = Mutex::new(Work {
        pending: (0..count).collect(),
        outcomes: vec![None; count],
        units,
        splits: Vec::new(),
        running: 0,
        failed: None,
    });
    let changed = Condvar::new();
    let processors = allowed_processors();
    std::thread::scope(|scope| {
        for k in 0..jobs.clamp(1, count.max(1)) {
            let processor = (!processors.is_empty()).then(|| processors[k % processors.len()]);
            let (work, changed) = (&work, &changed);
            scope.spawn(move || serve_pool(options, program, processor, work, changed));
        }
    });
    let mut work = work.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(failed) = work.failed {
        return Err(failed);
    }
    for (unit, parts) in std::mem::take(&mut work.splits) {
        let mut joined = Figures::default();
        for part in parts {
            if let Some(Outcome::Figures(figures)) = work.outcomes[part].take() {
                joined.rows.extend(figures.rows);
                joined.distinct_sites.extend(figures.distinct_sites);
                joined.failures.extend(figures.failures);
            }
        }
        work.outcomes[unit] = Some(Outcome::Figures(joined));
    }
    Ok(work.outcomes.into_iter().take(count).map(|o| o.unwrap_or(Outcome::Minimised(None))).collect())
}

/// One thread of the pool: keeps a worker busy until no unit is left.
fn serve_pool(
    options: &Options,
    program: &Path,
    processor: Option<usize>,
    work: &Mutex<Work>,
    changed: &Condvar,
) {
    let lock = || work.lock().unwrap_or_else(|p| p.into_inner());
    let mut worker: Option<Worker> = None;
    loop {
        let (slot, unit) = {
            let mut w = lock();
            loop {
                if w.failed.is_some() {
                    return;
                }
                if let Some(slot) = w.pending.pop_front() {
                    w.running += 1;
                    break (slot, w.units[slot].clone());
                }
                if w.running == 0 {
                    return;
                }
                w = changed.wait(w).unwrap_or_else(|p| p.into_inner());
            }
        };
        let answer = match &mut worker {
            Some(running) => running.ask(&unit),
            None => match Worker::start(program, options, processor) {
                Ok(started) => worker.insert(started).ask(&unit),
                Err(e) => {
                    let mut w = lock();
                    w.failed = Some(e);
                    w.running -= 1;
                    changed.notify_all();
                    return;
                }
            },
        };
        let mut w = lock();
        match answer {
            Ok(outcome) => w.outcomes[slot] = Some(outcome),
            Err(Ended(said)) => {
                worker = None;
                match &unit {
                    // Find the seed that stopped it: each seed again on its own.
                    Unit::Seeds { campaign, seeds } if seeds.end - seeds.start > 1 => {
                        let first = w.units.len();
                        w.units.extend(
                            seeds.clone().map(|s| Unit::Seeds { campaign: *campaign, seeds: s..s + 1 }),
                        );
                        let parts: Vec<usize> = (first..w.units.len()).collect();
                        let total = w.units.len();
                        w.outcomes.resize(total, None);
                        for part in parts.iter().rev() {
                            w.pending.push_front(*part);
                        }
                        w.splits.push((slot, parts));
                    }
                    _ => w.outcomes[slot] = Some(plan::stopped(options, &unit, &said)),
                }
            }
        }
        w.running -= 1;
        changed.notify_all();
    }
}

/// The worker count when none is given: one per processor.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
