//! The call log: every DDI call and callback of a world, in order, stamped with virtual time,
//! processor and IRQL, as tests read it ([`World::log`]).
//!
//! Flow: a call site names what it logs once, as a constant [`Call`], and logs through
//! [`World::log_lazy`]: the entry keeps its arguments as words and its [`Render`] function turns
//! them into text only when the log is read, so logging every call costs a record, not a
//! `format!` ([`World::log_call`] takes text made already, for rare entries). Records and words
//! live in [`Chunk`]s that double in size, so the log never copies what it holds.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use super::{lock, Irql, World};
use crate::chunk::Chunk;

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
pub(super) struct Log {
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
    pub(super) len: usize,
}

fn render_nothing(_: &Args<'_>, _: &mut fmt::Formatter<'_>) -> fmt::Result {
    Ok(())
}

fn render_text(args: &Args<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(args.text(0))
}

impl Log {
    pub(super) const fn new() -> Log {
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
    pub(super) fn tail(&self, n: usize) -> Vec<LogEntry> {
        self.render(self.len.saturating_sub(n))
    }
}

impl World {
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

    /// Forgets every entry logged so far (the log starts again, numbered from 0), for runs too
    /// long to keep whole (the soak campaign clears it at each checkpoint, so a failure reports
    /// what happened since the last one). Returns how many entries were dropped.
    pub fn clear_log(&self) -> usize {
        let mut log = self.log.lock();
        let dropped = log.len;
        *log = Log::new();
        dropped
    }

    /// How many entries the log holds.
    pub fn log_len(&self) -> usize {
        self.log.lock().len
    }

    /// How many logged calls were to `name` (from any DLL).
    pub fn call_count(&self, name: &str) -> usize {
        self.log.lock().records().filter(|record| record.call.name == name).count()
    }
}
