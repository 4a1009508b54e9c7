//! The kernel foundation: the simulated world, per-processor IRQL, virtual time, the call log, and
//! the host side of a few ntoskrnl.exe exports (`KeGetCurrentIrql`, `KeBugCheckEx`,
//! `KeQueryPerformanceCounter`) plus the compiler-support imports (`__chkstk`, `memcpy`, ...).
//!
//! Read: "KeGetCurrentIrql", "KeBugCheckEx", "KeQueryPerformanceCounter" and "Managing Hardware
//! Priorities" (IRQL) on Microsoft Learn.
//!
//! Flow: a [`World`] is one simulation, shared behind `Arc`. A host thread that calls into an
//! image first [`World::enter`]s it on a simulated processor; while the returned guard lives, the
//! thread's *current world* and *current processor* are set, and every export finds its world
//! through [`with_current`] (or, on hot paths, the crate's reference-count-free
//! `current_world`). Further DDI families (the simulated NDIS) keep their own state as a world
//! extension ([`World::insert_extension`], found by reference with [`World::extension_ref`]) and
//! log through [`World::log_lazy`]: an entry keeps its arguments and is turned into text only when
//! the log is read ([`World::log`]), so logging every call costs a record, not a `format!`
//! ([`World::log_call`] takes text made already, for rare entries).
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

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::chunk::Chunk;
use crate::export;
use crate::exports::{ExportTable, TrapRecord};
use crate::spin::SpinLock;

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

/// Signatures of the kernel imports this module implements, as the driver declares them. They
/// match `ndis_sys`'s declarations; when `ndis_sys::signatures` lands, registrations switch to it.
#[allow(non_camel_case_types)]
pub mod signatures {
    use core::ffi::c_void;
    /// `KIRQL KeGetCurrentIrql(void)`
    pub type KeGetCurrentIrql = unsafe extern "win64" fn() -> u8;
    /// `void KeBugCheckEx(ULONG, ULONG_PTR, ULONG_PTR, ULONG_PTR, ULONG_PTR)`, does not return.
    pub type KeBugCheckEx = unsafe extern "win64" fn(u32, usize, usize, usize, usize) -> !;
    /// `LARGE_INTEGER KeQueryPerformanceCounter(PLARGE_INTEGER PerformanceFrequency)`
    pub type KeQueryPerformanceCounter = unsafe extern "win64" fn(*mut i64) -> i64;
    /// `__chkstk`: not a C function (frame size in RAX, preserves all but R10/R11).
    pub type __chkstk = unsafe extern "win64" fn();
    /// `void *memcpy(void *, const void *, size_t)`
    pub type memcpy = unsafe extern "win64" fn(*mut c_void, *const c_void, usize) -> *mut c_void;
    /// `void *memmove(void *, const void *, size_t)`
    pub type memmove = unsafe extern "win64" fn(*mut c_void, *const c_void, usize) -> *mut c_void;
    /// `void *memset(void *, int, size_t)`
    pub type memset = unsafe extern "win64" fn(*mut c_void, i32, usize) -> *mut c_void;
    /// `int memcmp(const void *, const void *, size_t)`
    pub type memcmp = unsafe extern "win64" fn(*const c_void, *const c_void, usize) -> i32;
}

/// Registers this module's exports.
pub fn register(table: &mut ExportTable) {
    use signatures as sig;
    export!(table, "ntoskrnl.exe", KeGetCurrentIrql: sig::KeGetCurrentIrql = ke_get_current_irql);
    export!(table, "ntoskrnl.exe", KeBugCheckEx: sig::KeBugCheckEx = ndis_sim_KeBugCheckEx);
    export!(table, "ntoskrnl.exe", KeQueryPerformanceCounter: sig::KeQueryPerformanceCounter = ke_query_performance_counter);
    export!(table, "ntoskrnl.exe", __chkstk: sig::__chkstk = ndis_sim___chkstk);
    export!(table, "ntoskrnl.exe", memcpy: sig::memcpy = crt_memcpy);
    export!(table, "ntoskrnl.exe", memmove: sig::memmove = crt_memmove);
    export!(table, "ntoskrnl.exe", memset: sig::memset = crt_memset);
    export!(table, "ntoskrnl.exe", memcmp: sig::memcmp = crt_memcmp);
}

/// An interrupt request level of a simulated processor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Irql(pub u8);

/// `PASSIVE_LEVEL` (0): threads run here; paged memory and waits allowed.
pub const PASSIVE_LEVEL: Irql = Irql(0);
/// `APC_LEVEL` (1).
pub const APC_LEVEL: Irql = Irql(1);
/// `DISPATCH_LEVEL` (2): DPCs and spin-lock holders; no waits, no paged memory.
pub const DISPATCH_LEVEL: Irql = Irql(2);

impl fmt::Display for Irql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PASSIVE_LEVEL => f.write_str("PASSIVE_LEVEL"),
            APC_LEVEL => f.write_str("APC_LEVEL"),
            DISPATCH_LEVEL => f.write_str("DISPATCH_LEVEL"),
            Irql(level) => write!(f, "IRQL {level}"),
        }
    }
}

/// One entry of a world's call log, as [`World::log`] renders it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Position in the log, from 0.
    pub sequence: u64,
    /// Virtual time of the call, in 100 ns ticks.
    pub time: u64,
    /// The simulated processor the call was made on.
    pub processor: usize,
    /// That processor's IRQL when the call was logged.
    pub irql: Irql,
    /// The DLL of the export (`ntoskrnl.exe`, `ndis.sys`), or `"sim"` for simulator events.
    pub dll: &'static str,
    /// The export or callback name.
    pub name: &'static str,
    /// Arguments and result, as the logging module chose to render them.
    pub detail: String,
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} t={} cpu{} {} {}!{}({})",
            self.sequence, self.time, self.processor, self.irql, self.dll, self.name, self.detail
        )
    }
}

/// What a log entry is about: an export of a DLL, a driver callback, or a simulator event
/// (`dll` = `"sim"`). Entries refer to a `&'static Call`, so a call site names it once, as a
/// constant: `const ACQUIRE: Call = Call::new("ndis.sys", "NdisAcquireSpinLock");`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Call {
    /// The DLL (`ndis.sys`, `partyline.sys`) or `"sim"`.
    pub dll: &'static str,
    /// The export, callback or event.
    pub name: &'static str,
}

impl Call {
    pub const fn new(dll: &'static str, name: &'static str) -> Call {
        Call { dll, name }
    }

    /// The one `&'static Call` for `dll!name`, for callers whose names are not constants (the
    /// [`World::log_call`] compatibility path). Every distinct pair is leaked once.
    pub fn interned(dll: &'static str, name: &'static str) -> &'static Call {
        type Interned = HashMap<(&'static str, &'static str), &'static Call>;
        static INTERNED: Mutex<Option<Interned>> = Mutex::new(None);
        let mut interned = lock(&INTERNED);
        interned
            .get_or_insert_with(HashMap::new)
            .entry((dll, name))
            .or_insert_with(|| Box::leak(Box::new(Call { dll, name })))
    }
}

/// The arguments a log entry recorded, handed to its [`Render`] function when the log is read.
pub struct Args<'a> {
    words: &'a [u64],
    texts: &'a [String],
}

impl<'a> Args<'a> {
    /// Arguments of just `words` (for rendering outside a log).
    pub fn new(words: &'a [u64]) -> Args<'a> {
        Args { words, texts: &[] }
    }

    /// Recorded word `i` (0 if the entry recorded fewer).
    pub fn word(&self, i: usize) -> u64 {
        self.words.get(i).copied().unwrap_or(0)
    }

    /// The text whose index is recorded as word `i` (see [`World::log_text`]).
    pub fn text(&self, i: usize) -> &str {
        usize::try_from(self.word(i)).ok().and_then(|t| self.texts.get(t)).map_or("", String::as_str)
    }
}

/// Writes a log entry's detail from its recorded arguments. Call sites pass a non-capturing
/// closure, so the formatting stays next to the call it describes and runs only when the log is
/// read ([`World::log`], [`World::call_count`] does not render).
pub type Render = fn(&Args<'_>, &mut fmt::Formatter<'_>) -> fmt::Result;

/// One recorded entry: 32 bytes plus its words; nothing is formatted when a call is made.
#[derive(Clone, Copy)]
struct Record {
    call: &'static Call,
    render: Render,
    processor: u32,
    irql: u8,
    words: u8,
}

/// A world's log: entries in order, their words back to back, and the few eagerly made texts.
/// Both are kept in chunks that double in size from 4 KiB up to 2 MiB ([`Chunk`]), so the log
/// grows without ever copying what it holds.
struct Log {
    /// Full chunks of records, then the one being filled.
    records: Vec<Chunk<Record>>,
    record_chunk: Chunk<Record>,
    /// Full chunks of words, then the one being filled. A record's words never straddle two
    /// chunks: when they do not fit, the next chunk starts ([`Log::render`] follows that rule).
    words: Vec<Chunk<u64>>,
    word_chunk: Chunk<u64>,
    texts: Vec<String>,
    /// (index of the first record at that time, time): virtual time moves far less often than
    /// entries are made, so it is kept once per change rather than in every record.
    times: Vec<(usize, u64)>,
    /// The time of the last record (`u64::MAX` before the first).
    last_time: u64,
    len: usize,
}

fn render_nothing(_: &Args<'_>, _: &mut fmt::Formatter<'_>) -> fmt::Result {
    Ok(())
}

fn render_text(args: &Args<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(args.text(0))
}

impl Log {
    const fn new() -> Log {
        Log {
            records: Vec::new(),
            record_chunk: Chunk::empty(),
            words: Vec::new(),
            word_chunk: Chunk::empty(),
            texts: Vec::new(),
            times: Vec::new(),
            last_time: u64::MAX,
            len: 0,
        }
    }

    #[inline(always)]
    fn push(&mut self, time: u64, record: Record, words: &[u64]) {
        self.push_record(time, record);
        if !words.is_empty() {
            if self.word_chunk.room() < words.len() {
                Self::next_chunk(&mut self.words, &mut self.word_chunk, words.len());
            }
            self.word_chunk.extend(words);
        }
    }

    /// [`Log::push`] of a fixed number of words (copied with a few moves).
    #[inline(always)]
    fn push_array<const N: usize>(&mut self, time: u64, record: Record, words: &[u64; N]) {
        self.push_record(time, record);
        if N > 0 {
            if self.word_chunk.room() < N {
                Self::next_chunk(&mut self.words, &mut self.word_chunk, N);
            }
            self.word_chunk.extend_array(words);
        }
    }

    #[inline(always)]
    fn push_record(&mut self, time: u64, record: Record) {
        if time != self.last_time {
            self.new_time(time);
        }
        if self.record_chunk.room() == 0 {
            Self::next_chunk(&mut self.records, &mut self.record_chunk, 1);
        }
        self.record_chunk.push(record);
        self.len += 1;
    }

    #[cold]
    #[inline(never)]
    fn new_time(&mut self, time: u64) {
        self.times.push((self.len, time));
        self.last_time = time;
    }

    /// Files `current` (unless it is the empty placeholder) and starts a chunk with room for at
    /// least `needed`: twice the last one, from 4 KiB up to 2 MiB.
    #[cold]
    #[inline(never)]
    fn next_chunk<T: Copy>(full: &mut Vec<Chunk<T>>, current: &mut Chunk<T>, needed: usize) {
        let size = std::mem::size_of::<T>();
        let (first, last) = ((4 << 10) / size, crate::chunk::HUGE_PAGE / size);
        let grown = if current.len() == 0 { first } else { (2 * current.len()).clamp(first, last) };
        let previous = std::mem::replace(current, Chunk::for_writes(grown.max(needed)));
        if previous.len() > 0 {
            full.push(previous);
        }
    }

    /// The chunks of records, then of words, in order.
    fn record_chunks(&self) -> impl Iterator<Item = &Chunk<Record>> + '_ {
        self.records.iter().chain(std::iter::once(&self.record_chunk))
    }

    fn word_chunks(&self) -> Vec<&Chunk<u64>> {
        self.words.iter().chain(std::iter::once(&self.word_chunk)).collect()
    }

    /// Every record in order.
    fn records(&self) -> impl Iterator<Item = &Record> + '_ {
        self.record_chunks().flat_map(Chunk::as_slice)
    }

    /// Renders the records from `first` on.
    fn render(&self, first: usize) -> Vec<LogEntry> {
        struct Detail<'a>(&'a Record, Args<'a>);
        impl fmt::Display for Detail<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                (self.0.render)(&self.1, f)
            }
        }
        let mut out = Vec::with_capacity(self.len.saturating_sub(first));
        // Where the next record's words are: (chunk, offset), following `push`'s rule (words
        // that did not fit in a chunk's room start the next one).
        let word_chunks = self.word_chunks();
        let (mut chunk, mut offset) = (0, 0);
        let mut times = self.times.iter().peekable();
        let mut time = 0;
        for (sequence, record) in self.records().enumerate() {
            while let Some(&(_, at)) = times.next_if(|(first, _)| *first <= sequence) {
                time = at;
            }
            let n = usize::from(record.words);
            if n > 0 && offset + n > word_chunks[chunk].len() {
                (chunk, offset) = (chunk + 1, 0);
            }
            let words = if n == 0 { &[][..] } else { &word_chunks[chunk].as_slice()[offset..offset + n] };
            offset += n;
            if sequence < first {
                continue;
            }
            let args = Args { words, texts: &self.texts };
            out.push(LogEntry {
                sequence: sequence as u64,
                time,
                processor: record.processor as usize,
                irql: Irql(record.irql),
                dll: record.call.dll,
                name: record.call.name,
                detail: Detail(record, args).to_string(),
            });
        }
        out
    }

    /// The last `n` entries, rendered.
    fn tail(&self, n: usize) -> Vec<LogEntry> {
        self.render(self.len.saturating_sub(n))
    }
}

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

/// One simulation: simulated processors with their IRQL, virtual time, the call log, how the run
/// stopped if it did, and extensions that further DDI families hang their state on.
pub struct World {
    irqls: Box<[AtomicU8]>,
    /// The processors' host threads and who runs next (see [`crate::machine`]).
    machine: Arc<crate::machine::Machine>,
    /// How to replay this run, printed with a stop (set by the harness that knows).
    replay: Mutex<Option<String>>,
    /// Unique in the process, never reused (see [`World::id`]).
    id: u64,
    /// The run's bounds, and when it started (host time).
    caps: Mutex<(Caps, std::time::Instant)>,
    time: AtomicU64,
    log: SpinLock<Log>,
    stop: Mutex<Option<Stop>>,
    /// Newest first; nodes are freed only with the world, so a reference to an extension lives
    /// as long as the world (see [`World::extension_ref`]).
    extensions: AtomicPtr<ExtensionNode>,
}

/// One inserted extension.
struct ExtensionNode {
    type_id: TypeId,
    value: Arc<dyn Any + Send + Sync>,
    next: *mut ExtensionNode,
}

impl Drop for World {
    fn drop(&mut self) {
        self.machine.shutdown();
        let mut node = *self.extensions.get_mut();
        while !node.is_null() {
            // SAFETY: every node was made by `Box::into_raw` in `insert_extension` and is owned
            // by this list alone; the world is being dropped, so nothing refers to it any more.
            let boxed = unsafe { Box::from_raw(node) };
            node = boxed.next;
        }
    }
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("World")
            .field("processors", &self.irqls.len())
            .field("time", &self.now())
            .field("log_len", &self.log.lock().len)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl World {
    /// A world with `processor_count` simulated processors, all at `PASSIVE_LEVEL`, at time 0.
    ///
    /// # Panics
    /// If `processor_count` is 0.
    pub fn new(processor_count: usize) -> Arc<World> {
        assert!(processor_count > 0, "a world needs at least one processor");
        Arc::new(World {
            irqls: (0..processor_count).map(|_| AtomicU8::new(PASSIVE_LEVEL.0)).collect(),
            machine: Arc::new(crate::machine::Machine::new(
                processor_count,
                0,
                crate::machine::Schedule::default(),
            )),
            replay: Mutex::new(None),
            id: {
                static NEXT: AtomicU64 = AtomicU64::new(1);
                NEXT.fetch_add(1, Ordering::Relaxed)
            },
            caps: Mutex::new((Caps::default(), std::time::Instant::now())),
            time: AtomicU64::new(0),
            log: SpinLock::new(Log::new()),
            stop: Mutex::new(None),
            extensions: AtomicPtr::new(std::ptr::null_mut()),
        })
    }

    /// The number of simulated processors.
    pub fn processor_count(&self) -> usize {
        self.irqls.len()
    }

    /// This world's number, unique in the process (from 1).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The machine that runs this world's processors.
    #[inline]
    pub fn machine(&self) -> &Arc<crate::machine::Machine> {
        &self.machine
    }

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

    /// The IRQL of `processor`.
    ///
    /// # Panics
    /// If `processor` is not one of this world's.
    pub fn irql(&self, processor: usize) -> Irql {
        Irql(self.irqls[processor].load(Ordering::Acquire))
    }

    /// Sets the IRQL of `processor`, returning the previous one. Checking that raises and lowers
    /// pair up is the business of the DDI that changes IRQL (spin locks, `KeRaiseIrql`).
    ///
    /// # Panics
    /// If `processor` is not one of this world's.
    pub fn set_irql(&self, processor: usize, irql: Irql) -> Irql {
        // A processor's IRQL is changed only by the host thread running that processor (a
        // processor is never run by two threads at once), so a load and a store suffice; they
        // cost no locked instruction, unlike a swap.
        let slot = &self.irqls[processor];
        let previous = slot.load(Ordering::Acquire);
        slot.store(irql.0, Ordering::Release);
        Irql(previous)
    }

    /// Virtual time in 100 ns ticks.
    pub fn now(&self) -> u64 {
        self.time.load(Ordering::SeqCst)
    }

    /// Advances virtual time by `ticks` (100 ns each). Time moves only when the simulation says.
    pub fn advance_time(&self, ticks: u64) {
        self.time.fetch_add(ticks, Ordering::SeqCst);
    }

    /// Appends a call to the log, stamped with the time and `processor`'s IRQL. `words` (at
    /// most 255) are kept, and `render` turns them into the entry's detail only when the log is
    /// read.
    #[inline(always)]
    pub fn log_lazy<const N: usize>(
        &self,
        processor: usize,
        call: &'static Call,
        words: &[u64; N],
        render: Render,
    ) {
        const { assert!(N <= u8::MAX as usize, "at most 255 words per log entry") };
        // Only the thread running `processor` changes its IRQL, so it may be read before the
        // lock; the time is read under it, so entries are in time order across threads.
        let irql = self.irql(processor).0;
        let mut log = self.log.lock();
        let record = Record { call, render, processor: processor as u32, irql, words: N as u8 };
        log.push_array(self.now(), record, words);
    }

    /// [`World::log_lazy`] with any number of words (at most 255).
    pub fn log_words(&self, processor: usize, call: &'static Call, words: &[u64], render: Render) {
        assert!(words.len() <= usize::from(u8::MAX), "at most 255 words per log entry");
        let irql = self.irql(processor).0;
        let mut log = self.log.lock();
        let record = Record { call, render, processor: processor as u32, irql, words: words.len() as u8 };
        log.push(self.now(), record, words);
    }

    /// Appends a call whose detail is already text (for rare entries: warnings, rejections).
    pub fn log_text(&self, processor: usize, call: &'static Call, detail: String) {
        if detail.is_empty() {
            return self.log_lazy(processor, call, &[], render_nothing);
        }
        let mut log = self.log.lock();
        let index = log.texts.len() as u64;
        log.texts.push(detail);
        let record = Record {
            call,
            render: render_text,
            processor: processor as u32,
            irql: self.irql(processor).0,
            words: 1,
        };
        log.push(self.now(), record, &[index]);
    }

    /// Appends a call to the log, stamped with the time and `processor`'s IRQL, with its detail
    /// already rendered. Hot paths use [`World::log_lazy`] instead.
    pub fn log_call(&self, processor: usize, dll: &'static str, name: &'static str, detail: String) {
        self.log_text(processor, Call::interned(dll, name), detail);
    }

    /// The whole log, rendered.
    pub fn log(&self) -> Vec<LogEntry> {
        self.log.lock().render(0)
    }

    /// How many entries the log holds.
    pub fn log_len(&self) -> usize {
        self.log.lock().len
    }

    /// How many logged calls were to `name` (from any DLL).
    pub fn call_count(&self, name: &str) -> usize {
        self.log.lock().records().filter(|record| record.call.name == name).count()
    }

    /// How the run stopped, if it did.
    pub fn stop(&self) -> Option<Stop> {
        lock(&self.stop).clone()
    }

    /// Stores `extension` as this world's `T`, replacing any previous one, which is returned.
    /// (The replaced one is kept, unused, until the world is dropped.)
    pub fn insert_extension<T: Any + Send + Sync>(&self, extension: Arc<T>) -> Option<Arc<T>> {
        let type_id = TypeId::of::<T>();
        let node =
            Box::into_raw(Box::new(ExtensionNode { type_id, value: extension, next: std::ptr::null_mut() }));
        let mut head = self.extensions.load(Ordering::Acquire);
        loop {
            // SAFETY: `node` is ours until the exchange below publishes it.
            unsafe { (*node).next = head };
            match self.extensions.compare_exchange_weak(head, node, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(current) => head = current,
            }
        }
        Self::find(head, type_id)
            .map(|old| old.value.clone().downcast::<T>().expect("extensions are keyed by their TypeId"))
    }

    /// The newest node of `type_id` from `node` on.
    #[inline]
    fn find<'a>(mut node: *mut ExtensionNode, type_id: TypeId) -> Option<&'a ExtensionNode> {
        while !node.is_null() {
            // SAFETY: nodes are published complete (release/acquire on `extensions`), never
            // changed afterwards, and freed only when the world drops; the caller borrows the
            // world for `'a`.
            let current = unsafe { &*node };
            if current.type_id == type_id {
                return Some(current);
            }
            node = current.next;
        }
        None
    }

    /// This world's `T`, if one was inserted.
    pub fn extension<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        Self::find(self.extensions.load(Ordering::Acquire), TypeId::of::<T>())
            .map(|node| node.value.clone().downcast::<T>().expect("extensions are keyed by their TypeId"))
    }

    /// This world's `T` by reference: no reference count is touched (the DDI modules look their
    /// state up on every export). Valid as long as the world, which keeps every extension ever
    /// inserted.
    #[inline]
    pub fn extension_ref<T: Any + Send + Sync>(&self) -> Option<&T> {
        let node = Self::find(self.extensions.load(Ordering::Acquire), TypeId::of::<T>())?;
        let pointer = Arc::as_ptr(&node.value).cast::<T>();
        // SAFETY: the node's `type_id` is `TypeId::of::<T>()`, recorded when it was made from an
        // `Arc<T>`, so its value is a `T`; it lives as long as the world (see `find`).
        Some(unsafe { &*pointer })
    }

    /// Another reference to this world (which, like every world, lives in an `Arc`).
    pub fn arc(&self) -> Arc<World> {
        let pointer: *const World = self;
        // SAFETY: a `World` is only ever made by `World::new`, inside an `Arc` (its fields are
        // private), so `self` is the contents of a live `Arc<World>`; taking one more strong
        // count first makes `from_raw` an owned reference of its own.
        unsafe {
            Arc::increment_strong_count(pointer);
            Arc::from_raw(pointer)
        }
    }

    /// Makes this world and `processor` current on the calling thread until the guard drops
    /// (which restores what was current before, so entries nest).
    ///
    /// # Panics
    /// If `processor` is not one of this world's.
    pub fn enter(self: &Arc<Self>, processor: usize) -> Entered {
        assert!(
            processor < self.processor_count(),
            "processor {processor} out of range (world has {})",
            self.processor_count()
        );
        let (current, _, _, ctx) = FAST.with(Cell::get);
        let nested = std::ptr::eq(current, Arc::as_ptr(self)) && ctx != NO_CONTEXT;
        let mut guard = self.enter_as(processor, if nested { ctx } else { NO_CONTEXT });
        if !nested {
            // A harness thread entering to act as the driver becomes one of the machine's
            // contexts (and waits for the baton) until the guard drops.
            if let Some(id) = self.machine.adopt(self, processor) {
                FAST.with(|fast| {
                    let (w, p, t, _) = fast.get();
                    fast.set((w, p, t, id));
                });
                guard.adopted = Some((Arc::clone(self), id));
            }
        }
        guard
    }

    /// Enters on a machine worker: `processor`, context `ctx`.
    pub(crate) fn enter_worker(self: &Arc<Self>, processor: usize, ctx: usize) -> Entered {
        self.enter_as(processor, ctx)
    }

    fn enter_as(self: &Arc<Self>, processor: usize, ctx: usize) -> Entered {
        let token = NEXT_TOKEN.with(|next| {
            let token = next.get() + 1;
            next.set(token);
            token
        });
        let previous = CURRENT.with(|current| current.replace(Some((Arc::clone(self), processor))));
        let previous_fast = FAST.with(|fast| fast.replace((Arc::as_ptr(self), processor, token, ctx)));
        Entered { previous, previous_fast, token, adopted: None, _not_send: std::marker::PhantomData }
    }
}

/// No machine context in [`FAST`].
const NO_CONTEXT: usize = usize::MAX;

thread_local! {
    static CURRENT: RefCell<Option<(Arc<World>, usize)>> = const { RefCell::new(None) };
    /// `CURRENT` without its reference count, for [`current_world`]: the world `CURRENT` holds
    /// (null if none), the processor, and the token of the guard that installed it.
    static FAST: Cell<(*const World, usize, u64, usize)> =
        const { Cell::new((std::ptr::null(), 0, 0, NO_CONTEXT)) };
    /// The last token given to a guard.
    static NEXT_TOKEN: Cell<u64> = const { Cell::new(0) };
}

/// Guard returned by [`World::enter`]; restores the previous current world when dropped. Not
/// `Send`: it belongs to the thread that entered.
#[must_use = "the world is current only while the guard lives"]
pub struct Entered {
    previous: Option<(Arc<World>, usize)>,
    previous_fast: (*const World, usize, u64, usize),
    token: u64,
    /// The world and machine context this guard adopted the thread as, if it did.
    adopted: Option<(Arc<World>, usize)>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some((world, id)) = self.adopted.take() {
            world.machine.leave(&world, id);
        }
        let previous = self.previous.take();
        let replaced = CURRENT.with(|current| current.replace(previous));
        let (_, _, replaced_token, _) = FAST.with(|fast| fast.replace(self.previous_fast));
        // Guards drop in reverse order of entry, and then `replaced` is the very reference this
        // guard installed. If one was dropped out of order, `replaced` is another guard's, which
        // an export further down this thread's stack may still use (through `current_world`):
        // it is kept alive (leaked) instead.
        if let Some((world, _)) = replaced {
            if replaced_token != self.token {
                std::mem::forget(world);
            }
        }
    }
}

/// The calling thread's current world and processor, without touching a reference count: for
/// exports, on every call. An export called on a thread with no current world is a simulator
/// bug, and stops the run with a report naming `export`.
///
/// # Safety
/// The world must not be used after the export (or the code below a [`World::enter`] guard)
/// that called this returns: it is kept alive by the current-world reference of this thread,
/// which guards restore in order (see [`Entered`]'s drop), not by the returned reference.
#[inline]
pub(crate) unsafe fn current_world<'a>(export: &str) -> (&'a World, usize) {
    let (world, processor, _, _) = FAST.with(Cell::get);
    if world.is_null() {
        no_current_world(export);
    }
    // SAFETY: non-null, so it is the world `CURRENT` holds a reference to (they change
    // together); per this function's contract the caller uses it only while that holds.
    (unsafe { &*world }, processor)
}

impl World {
    /// [`World::enter`], unless this world is already current on `processor` on this thread:
    /// then nothing changes and there is no guard.
    pub fn enter_unless_current(self: &Arc<Self>, processor: usize) -> Option<Entered> {
        let (world, current, _, _) = FAST.with(Cell::get);
        (!std::ptr::eq(world, Arc::as_ptr(self)) || current != processor).then(|| self.enter(processor))
    }
}

/// The calling thread's current processor if `world` is its current world (no reference count
/// touched).
pub fn current_processor_in(world: &World) -> Option<usize> {
    let (current, processor, _, _) = FAST.with(Cell::get);
    std::ptr::eq(current, world).then_some(processor)
}

/// The calling thread's current processor, if it entered a world (no reference count touched).
pub fn current_processor() -> Option<usize> {
    let (world, processor, _, _) = FAST.with(Cell::get);
    (!world.is_null()).then_some(processor)
}

/// The calling thread's current world, by reference (no reference count), for scheduling
/// points: valid while the thread stays in it (see [`current_world`]).
#[inline]
pub fn current_world_ref<'a>() -> Option<&'a World> {
    let (world, _, _, _) = FAST.with(Cell::get);
    // SAFETY: non-null, so it is the world `CURRENT` holds a reference to; callers use it only
    // within the export or scheduling point that asked.
    (!world.is_null()).then(|| unsafe { &*world })
}

/// The calling thread's current world and processor, if it entered one.
pub fn current() -> Option<(Arc<World>, usize)> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Runs `f` with the current world and processor. For exports: an export called on a thread with
/// no current world is a simulator bug, and stops the run with a report naming `export`.
pub fn with_current<R>(export: &str, f: impl FnOnce(&Arc<World>, usize) -> R) -> R {
    match current() {
        Some((world, processor)) => f(&world, processor),
        None => fatal(
            None,
            Stop::SimulatorFault(format!("{export} was called on a thread with no current world")),
        ),
    }
}

#[cold]
#[inline(never)]
fn no_current_world(export: &str) -> ! {
    fatal(None, Stop::SimulatorFault(format!("{export} was called on a thread with no current world")))
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

/// `KeGetCurrentIrql`: the IRQL of the current simulated processor. Any IRQL.
extern "win64" fn ke_get_current_irql() -> u8 {
    with_current("ntoskrnl.exe!KeGetCurrentIrql", |world, processor| {
        let irql = world.irql(processor);
        const CALL: Call = Call::new("ntoskrnl.exe", "KeGetCurrentIrql");
        world.log_lazy(processor, &CALL, &[u64::from(irql.0)], |a, f| write!(f, "-> {}", a.word(0)));
        irql.0
    })
}

/// `KeQueryPerformanceCounter`: virtual time in 100 ns ticks, frequency 10 MHz. Any IRQL.
///
/// # Safety
/// `frequency` is null or points to a writable `LARGE_INTEGER` (the driver's obligation).
unsafe extern "win64" fn ke_query_performance_counter(frequency: *mut i64) -> i64 {
    with_current("ntoskrnl.exe!KeQueryPerformanceCounter", |world, processor| {
        if !frequency.is_null() {
            // SAFETY: the caller passes null or a writable LARGE_INTEGER, as the DDI requires.
            unsafe { frequency.write_unaligned(10_000_000) };
        }
        let now = world.now();
        const CALL: Call = Call::new("ntoskrnl.exe", "KeQueryPerformanceCounter");
        world.log_lazy(processor, &CALL, &[now], |a, f| write!(f, "-> {}", a.word(0)));
        now as i64
    })
}

/// The Rust half of `KeBugCheckEx`, reached from the assembly entry `ndis_sim_KeBugCheckEx`,
/// which adds the caller's return address as a sixth argument.
extern "win64" fn ke_bug_check_ex_report(
    code: u32,
    p1: usize,
    p2: usize,
    p3: usize,
    p4: usize,
    caller: usize,
) -> ! {
    let (world, processor) = match current() {
        Some((world, processor)) => (Some(world), processor),
        None => (None, 0),
    };
    let bugcheck = BugCheck { code, parameters: [p1, p2, p3, p4], caller, processor };
    if let Some(world) = &world {
        world.log_call(processor, "ntoskrnl.exe", "KeBugCheckEx", format!("0x{code:08X}"));
    }
    fatal(world.as_deref(), Stop::BugCheck(bugcheck))
}

/// Where a not-implemented trap lands (see `exports::not_implemented_traps`).
pub(crate) extern "win64" fn not_implemented_trap(record: &TrapRecord, caller: usize) -> ! {
    let world = current().map(|(world, _)| world);
    fatal(
        world.as_deref(),
        Stop::NotImplemented { dll: record.dll.clone(), name: record.name.clone(), caller },
    )
}

// `KeBugCheckEx` entry: passes the caller's return address on to the Rust half. At entry RSP is
// 8 mod 16 (return address on top), the fifth argument is at [rsp+0x28]. The new frame keeps the
// 32-byte shadow area, places the fifth and sixth arguments at [rsp+0x20] and [rsp+0x28], and
// leaves RSP 16-byte aligned at the call.
//
// `__chkstk`: RAX holds the frame size the caller is about to allocate; every register but R10
// and R11 (and flags) must be preserved. The host stack is committed on demand by Linux, so
// nothing needs committing, but the pages are touched from the top down, as Windows does, so that
// an overflowing frame faults on the guard page instead of jumping past it.
std::arch::global_asm!(
    ".pushsection .text.ndis_sim_kernel,\"ax\",@progbits",
    ".globl ndis_sim_KeBugCheckEx",
    ".type ndis_sim_KeBugCheckEx,@function",
    "ndis_sim_KeBugCheckEx:",
    "    mov r10, [rsp]",
    "    mov r11, [rsp + 0x28]",
    "    sub rsp, 0x38",
    "    mov [rsp + 0x20], r11",
    "    mov [rsp + 0x28], r10",
    "    call {report}",
    "    ud2",
    ".size ndis_sim_KeBugCheckEx, . - ndis_sim_KeBugCheckEx",
    "",
    ".globl ndis_sim___chkstk",
    ".type ndis_sim___chkstk,@function",
    "ndis_sim___chkstk:",
    "    lea r10, [rsp + 8]",
    "    mov r11, r10",
    "    sub r11, rax",
    "    jae 2f",
    "    xor r11, r11",
    "2:",
    "    sub r10, 0x1000",
    "    cmp r10, r11",
    "    jb 3f",
    "    test byte ptr [r10], 0",
    "    jmp 2b",
    "3:",
    "    test byte ptr [r11], 0",
    "    ret",
    ".size ndis_sim___chkstk, . - ndis_sim___chkstk",
    ".popsection",
    report = sym ke_bug_check_ex_report,
);

/// Whether `address` is one of the assembly entries that read their caller's frame (`KeBugCheckEx`,
/// `__chkstk`): they are bound without a thunk whatever name they are bound under.
pub(crate) fn reads_caller_frame(address: usize) -> bool {
    address == ndis_sim_KeBugCheckEx as *const () as usize
        || address == ndis_sim___chkstk as *const () as usize
}

extern "win64" {
    /// `KeBugCheckEx` as the image sees it (assembly entry above).
    fn ndis_sim_KeBugCheckEx(code: u32, p1: usize, p2: usize, p3: usize, p4: usize) -> !;
    /// `__chkstk` (assembly above). Not callable from Rust: it reads RAX.
    fn ndis_sim___chkstk();
}

/// `memcpy` for the image: the host's own, behind the image's calling convention.
///
/// # Safety
/// As C's `memcpy`: both ranges valid for `count` bytes and not overlapping.
unsafe extern "win64" fn crt_memcpy(
    destination: *mut libc::c_void,
    source: *const libc::c_void,
    count: usize,
) -> *mut libc::c_void {
    // SAFETY: forwarded unchanged; the caller upholds memcpy's contract.
    unsafe { libc::memcpy(destination, source, count) }
}

/// `memmove` for the image.
///
/// # Safety
/// As C's `memmove`: both ranges valid for `count` bytes.
unsafe extern "win64" fn crt_memmove(
    destination: *mut libc::c_void,
    source: *const libc::c_void,
    count: usize,
) -> *mut libc::c_void {
    // SAFETY: forwarded unchanged; the caller upholds memmove's contract.
    unsafe { libc::memmove(destination, source, count) }
}

/// `memset` for the image.
///
/// # Safety
/// As C's `memset`: `destination` valid for `count` bytes.
unsafe extern "win64" fn crt_memset(
    destination: *mut libc::c_void,
    value: i32,
    count: usize,
) -> *mut libc::c_void {
    // SAFETY: forwarded unchanged; the caller upholds memset's contract.
    unsafe { libc::memset(destination, value, count) }
}

/// `memcmp` for the image.
///
/// # Safety
/// As C's `memcmp`: both ranges valid for `count` bytes.
unsafe extern "win64" fn crt_memcmp(a: *const libc::c_void, b: *const libc::c_void, count: usize) -> i32 {
    // SAFETY: forwarded unchanged; the caller upholds memcmp's contract.
    unsafe { libc::memcmp(a, b, count) }
}
