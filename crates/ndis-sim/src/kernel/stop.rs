//! How a run stops: the [`Stop`] reasons and their exit codes, a run's [`Caps`], and [`fatal`] /
//! [`stop_run`], which record a stop in the world and report it.
//!
//! Read: "KeBugCheckEx" and "Bug Check Code Reference" on Microsoft Learn.
//!
//! # How a run stops: bugchecks and not-implemented imports
//! The driver's frames carry Windows unwind data only, so nothing can unwind through them: neither a
//! Rust panic nor `pthread_exit`. A bugcheck, a call to a not-implemented import, or an export
//! called with no current world therefore ends the **process**, as a bugcheck ends the machine:
//! the stop is recorded in the world ([`World::stop`]), a report is written straight to the
//! process's stderr (past any test-harness capture), and the process exits with a distinctive
//! code: [`BUGCHECK_EXIT_CODE`], [`NOT_IMPLEMENTED_EXIT_CODE`], [`SIMULATOR_FAULT_EXIT_CODE`],
//! [`HANG_EXIT_CODE`] or [`SPECIAL_POOL_EXIT_CODE`].
//! A test that expects a stop runs the scenario in a child process (see the crate's tests).

use std::fmt;
use std::io::Write;
use std::sync::Arc;

use super::{current, lock, Log, World};

/// Exit code of a process whose run ended in `KeBugCheckEx` (0xBC, "BugCheck").
pub const BUGCHECK_EXIT_CODE: i32 = 0xBC;
/// Exit code of a process whose run ended in a call to a not-implemented import.
pub const NOT_IMPLEMENTED_EXIT_CODE: i32 = 0xBD;
/// Exit code of a process whose run ended because an export was misused by the simulator itself
/// (e.g. called on a thread with no current world).
pub const SIMULATOR_FAULT_EXIT_CODE: i32 = 0xBE;
/// Exit code of a run stopped because the driver waits forever ([`Stop::Hang`]).
pub const HANG_EXIT_CODE: i32 = 0xBF;
/// Exit code of a run stopped at one of its caps ([`Stop::Capped`]).
pub const CAPPED_EXIT_CODE: i32 = 0xC0;

/// The bounds of one run: a broken driver never takes a run past them. A run that reaches one
/// stops with [`Stop::Capped`], reported as such.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Violations recorded at most (the run stops at the next one).
    pub violations: usize,
    /// Bytes of pool the driver holds plus the run's own log, at most.
    pub memory_bytes: u64,
    /// Virtual time, in 100 ns ticks, at most.
    pub virtual_ticks: u64,
    /// Host (wall-clock) time the run may take, at most.
    pub host_time: std::time::Duration,
    /// Pieces of work (completions, network events, harness requests) started, at most.
    pub work_items: u64,
}

impl Default for Caps {
    /// 1,000 violations, 1 GiB, a simulated day, 60 s of host time, 50 million pieces of work.
    fn default() -> Caps {
        Caps {
            violations: 1_000,
            memory_bytes: 1 << 30,
            virtual_ticks: 24 * 3600 * 10_000_000,
            host_time: std::time::Duration::from_secs(60),
            work_items: 50_000_000,
        }
    }
}
/// Exit code of a run stopped by a driver access to a special-pool guard page or to freed special
/// pool ([`Stop::SpecialPool`]).
pub const SPECIAL_POOL_EXIT_CODE: i32 = 0xC1;

/// A recorded `KeBugCheckEx`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BugCheck {
    /// The bugcheck code.
    pub code: u32,
    /// The four parameters.
    pub parameters: [usize; 4],
    /// The return address of the `KeBugCheckEx` call.
    pub caller: usize,
    /// The processor it was raised on.
    pub processor: usize,
}

/// Why a run stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The driver called `KeBugCheckEx`.
    BugCheck(BugCheck),
    /// The driver called an import the simulator registered as not implemented.
    NotImplemented {
        /// The DLL of the import.
        dll: String,
        /// The import.
        name: String,
        /// The return address of the call.
        caller: usize,
    },
    /// The simulator itself misused an export.
    SimulatorFault(String),
    /// The driver waits forever (a deadlock): a hung machine on Windows.
    Hang(String),
    /// The run reached one of its [`Caps`].
    Capped(String),
    /// The driver accessed a special-pool guard page or freed special pool
    /// ([`crate::fault_trap`]): bug check 0xD6 or 0xCC on Windows.
    SpecialPool {
        /// The rule's name.
        rule: &'static str,
        /// The faulting instruction, the access and the block.
        detail: String,
    },
}

impl Stop {
    /// The process exit code this stop ends the run with.
    pub fn exit_code(&self) -> i32 {
        match self {
            Stop::BugCheck(_) => BUGCHECK_EXIT_CODE,
            Stop::NotImplemented { .. } => NOT_IMPLEMENTED_EXIT_CODE,
            Stop::SimulatorFault(_) => SIMULATOR_FAULT_EXIT_CODE,
            Stop::Hang(_) => HANG_EXIT_CODE,
            Stop::Capped(_) => CAPPED_EXIT_CODE,
            Stop::SpecialPool { .. } => SPECIAL_POOL_EXIT_CODE,
        }
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::BugCheck(b) => write!(
                f,
                "*** STOP: KeBugCheckEx(0x{:08X}, 0x{:016X}, 0x{:016X}, 0x{:016X}, 0x{:016X}) on processor {}, called from {}",
                b.code,
                b.parameters[0],
                b.parameters[1],
                b.parameters[2],
                b.parameters[3],
                b.processor,
                crate::loader::describe_address(b.caller)
            ),
            Stop::NotImplemented { dll, name, caller } => write!(
                f,
                "*** STOP: {dll}!{name} is not implemented by the simulator (called from {})",
                crate::loader::describe_address(*caller)
            ),
            Stop::SimulatorFault(message) => write!(f, "*** STOP: simulator fault: {message}"),
            Stop::Hang(message) => write!(f, "*** STOP: hang: {message}"),
            Stop::Capped(message) => write!(f, "*** STOP: capped: {message}"),
            Stop::SpecialPool { rule, detail } => write!(f, "*** STOP: special pool ({rule}): {detail}"),
        }
    }
}

impl World {
    /// Sets the run's bounds (host time counts from now).
    pub fn set_caps(&self, caps: Caps) {
        *lock(&self.caps) = (caps, std::time::Instant::now());
    }

    /// The run's bounds.
    pub fn caps(&self) -> Caps {
        lock(&self.caps).0
    }

    /// Checks the bounds that grow on their own (memory of the log, virtual and host time);
    /// stops the run at the first one reached (see [`stop_run`]). `pool_bytes`: what the driver
    /// holds, if the caller knows.
    pub fn check_caps(&self, pool_bytes: u64) {
        if self.stop().is_some() {
            return;
        }
        let (caps, started) = *lock(&self.caps);
        let log_bytes = self.log_len() as u64 * 24;
        let reason = if pool_bytes + log_bytes > caps.memory_bytes {
            Some(format!(
                "{} bytes of driver pool and {log_bytes} bytes of log exceed the cap of {} bytes",
                pool_bytes, caps.memory_bytes
            ))
        } else if self.now() > caps.virtual_ticks {
            Some(format!("virtual time t={} is past the cap of {} ticks", self.now(), caps.virtual_ticks))
        } else if started.elapsed() > caps.host_time {
            Some(format!("the run took more than {:?} of host time", caps.host_time))
        } else {
            None
        };
        if let Some(reason) = reason {
            stop_run(self, Stop::Capped(reason));
        }
    }

    /// After a stop, gives the log's memory back (its report is printed; the world itself may be
    /// kept alive for good by the parked processor threads of the stopped run).
    pub fn release_after_stop(&self) {
        if self.stop().is_some() {
            *self.log.lock() = Log::new();
        }
    }

    /// Sets how to replay this run (printed with a stop).
    pub fn set_replay(&self, command: impl Into<String>) {
        *lock(&self.replay) = Some(command.into());
    }

    /// How the run stopped, if it did.
    pub fn stop(&self) -> Option<Stop> {
        lock(&self.stop).clone()
    }
}

/// Stops the run: records `stop` in `world` and writes the report (the stop, every violation so
/// far, the last logged calls and how to replay) to the process's stderr, past any test-harness
/// capture. On a machine worker only the run ends: the worker parks for good and the harness
/// gets control back (see [`crate::machine`]). Anywhere else (a harness thread acting as the
/// driver, or a thread with no world) the process exits with the stop's code.
pub fn fatal(world: Option<&World>, stop: Stop) -> ! {
    let current = current();
    let world = world.or(current.as_ref().map(|(world, _)| &**world));
    let Some(world) = world else {
        write_report(&format!("\n{stop}\n"));
        std::process::exit(stop.exit_code())
    };
    record_stop(world, stop);
    let machine = Arc::clone(&world.machine);
    machine.stop_here(world);
    // `stop_here` returns only on the harness controlling the run, which never runs driver
    // code: a stop there is the simulator's own fault.
    exit_after_stop(world)
}

/// Stops the run with `stop` from wherever this is called: on a processor's thread (driver work)
/// the thread parks for good, as after [`fatal`]; on the harness the stop is recorded and the call
/// returns (the harness sees [`World::stop`] and goes no further).
pub fn stop_run(world: &World, stop: Stop) {
    record_stop(world, stop);
    if crate::machine::on_worker(world) {
        let machine = Arc::clone(&world.machine);
        machine.stop_here(world);
    }
}

/// Records `stop` in `world` (the first stop wins) and writes its report. The run goes no
/// further: the caller stops its thread.
pub(crate) fn record_stop(world: &World, stop: Stop) {
    {
        let mut recorded = lock(&world.stop);
        if recorded.is_some() {
            return;
        }
        *recorded = Some(stop.clone());
    }
    let mut report = format!("\n{stop}\n");
    let violations = crate::verifier::Verifier::of(world).violations();
    if !violations.is_empty() {
        report.push_str(&format!("{} violation(s) before the stop:\n", violations.len()));
        for violation in violations.iter().take(50) {
            report.push_str(&format!("  {violation}\n"));
        }
    }
    {
        let log = world.log.lock();
        // NDIS_SIM_FULL_TAIL=1 prints the whole log instead (debugging a stop).
        let tail = log.tail(if std::env::var_os("NDIS_SIM_FULL_TAIL").is_some() { usize::MAX } else { 20 });
        if !tail.is_empty() {
            report.push_str(&format!("last {} of {} logged calls:\n", tail.len(), log.len));
        }
        for entry in &tail {
            report.push_str(&format!("  {entry}\n"));
        }
    }
    if let Some(replay) = lock(&world.replay).as_ref() {
        report.push_str(&format!("replay: {replay}\n"));
    }
    if std::env::var_os("NDIS_SIM_QUIET_STOPS").is_none() {
        write_report(&report);
    }
}

fn write_report(report: &str) {
    let mut stderr = std::io::stderr().lock();
    // Nothing useful can be done if stderr is gone; the exit code or the recorded stop tells.
    let _ = stderr.write_all(report.as_bytes());
    let _ = stderr.flush();
}

/// Ends the process with the code of `world`'s stop (a stop reached a thread that cannot be
/// parked: a harness thread with the driver's frames on its stack).
pub(crate) fn exit_after_stop(world: &World) -> ! {
    let code = lock(&world.stop).as_ref().map_or(SIMULATOR_FAULT_EXIT_CODE, Stop::exit_code);
    std::process::exit(code)
}
