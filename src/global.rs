//! The driver's global state: the engine behind one NDIS spin lock, and the drive loop that makes
//! the requests the engine asks for with the lock released.
//!
//! Pages: nf-ndis-ndisacquirespinlock (raises to DISPATCH_LEVEL; release before returning from
//! the entry point), and the Microsoft ATM sample's practice, kept by verifier-rules.md §7.18:
//! never hold a spin lock across a call into NDIS, because the call can re-enter the driver
//! (a completion can run on another processor, or on this one, before the call returns).
//!
//! The state lives in static storage (the image's `.data` is nonpaged): no NDIS handle exists to
//! allocate with before `NdisRegisterProtocolDriver`, and NDIS may call handlers during it. Its
//! initial value is all zero bytes (see `Engine::new`), so the linker makes it zero-fill: it
//! takes no room in the file, and nothing builds it at run time (no large value on a kernel
//! stack).

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use ndis_sys::{NdisAcquireSpinLock, NdisReleaseSpinLock, NDIS_HANDLE, NDIS_SPIN_LOCK};
use partyline_core::{Action, Engine, Error, Id};

struct Locked {
    engine: Engine,
    /// Some thread is in [`drive`]'s loop; others leave their work to it (no recursion when a
    /// completion runs inside the request that caused it).
    driving: bool,
}

pub struct Global {
    lock: UnsafeCell<NDIS_SPIN_LOCK>,
    locked: UnsafeCell<Locked>,
    protocol: AtomicPtr<c_void>,
}

// SAFETY: `locked` is only reached through `with_engine`, under the NDIS spin lock; `lock` is
// only handed to the NDIS spin-lock routines; `protocol` is atomic.
unsafe impl Sync for Global {}

pub static GLOBAL: Global = Global {
    lock: UnsafeCell::new(NDIS_SPIN_LOCK { SpinLock: 0, OldIrql: 0 }),
    locked: UnsafeCell::new(Locked { engine: Engine::new(), driving: false }),
    protocol: AtomicPtr::new(ptr::null_mut()),
};

/// The spin lock, for NdisAllocateSpinLock / NdisFreeSpinLock in DriverEntry / DriverUnload.
pub fn lock_pointer() -> *mut NDIS_SPIN_LOCK {
    GLOBAL.lock.get()
}

/// The handle from NdisRegisterProtocolDriver (also passed to ProtocolSetOptions).
pub fn protocol_handle() -> NDIS_HANDLE {
    GLOBAL.protocol.load(Ordering::Acquire)
}

pub fn set_protocol_handle(handle: NDIS_HANDLE) {
    GLOBAL.protocol.store(handle, Ordering::Release);
}

fn with_locked<R>(f: impl FnOnce(&mut Locked) -> R) -> R {
    // SAFETY: the lock was initialised by NdisAllocateSpinLock in DriverEntry before any handler
    // can run; callers are at <= DISPATCH_LEVEL (every NDIS entry point and IRP dispatch).
    unsafe { NdisAcquireSpinLock(GLOBAL.lock.get()) };
    // SAFETY: the spin lock gives this processor exclusive access until it is released; `f`
    // makes no call into NDIS, so nothing can re-enter and alias it.
    let result = f(unsafe { &mut *GLOBAL.locked.get() });
    // SAFETY: acquired above on this processor with NdisAcquireSpinLock (kinds match).
    unsafe { NdisReleaseSpinLock(GLOBAL.lock.get()) };
    result
}

/// Runs `f` on the engine under the spin lock. `f` must not call into NDIS.
pub fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> R {
    with_locked(|locked| f(&mut locked.engine))
}

/// Runs an engine request, lending it pool memory (allocated with the lock released) as often
/// as it asks. Gives up with `Error::NeedMemory` when pool is exhausted.
pub fn with_memory<R>(f: impl FnMut(&mut Engine) -> Result<R, Error>) -> Result<R, Error> {
    lending(f, false)
}

/// [`with_memory`], then [`drive`], the last engine call and the claim of the drive loop in one
/// critical section.
pub fn with_memory_then_drive<R>(f: impl FnMut(&mut Engine) -> Result<R, Error>) -> Result<R, Error> {
    lending(f, true)
}

fn lending<R>(mut f: impl FnMut(&mut Engine) -> Result<R, Error>, then_drive: bool) -> Result<R, Error> {
    loop {
        let (result, first) = with_locked(|locked| {
            let result = f(&mut locked.engine);
            let first = match result {
                Err(Error::NeedMemory(..)) => None,
                _ if then_drive => claim_first(locked),
                _ => None,
            };
            (result, first)
        });
        run_from(first);
        match result {
            Err(Error::NeedMemory(table, need)) => {
                let Some(memory) = crate::pool::memory_for(table, need) else {
                    return Err(Error::NeedMemory(table, need));
                };
                if let Err(unused) = with_engine(|engine| engine.lend(table, memory)) {
                    crate::pool::give_back(unused);
                }
            }
            other => return other,
        }
    }
}

/// Makes every request the engine has queued, one at a time, with the lock released, feeding
/// synchronous results back. Only one thread drives at a time; a thread that finds another
/// driving leaves its work to it (the other only stops once `poll` finds nothing, under the lock,
/// after this thread's work was queued).
pub fn drive() {
    drive_after(|_| ());
}

/// Runs `f` on the engine and then [`drive`]s, taking the lock once for both: `f`, claiming the
/// drive loop and taking its first request happen in one critical section, and each synchronous
/// result is fed back in the same critical section that takes the next request. A party
/// operation thus costs two lock round trips where it took five (each one a call into NDIS).
/// `f` must not call into NDIS.
pub fn drive_after<R>(f: impl FnOnce(&mut Engine) -> R) -> R {
    let (result, first) = with_locked(|locked| {
        let result = f(&mut locked.engine);
        (result, claim_first(locked))
    });
    run_from(first);
    result
}

/// Under the lock: if no thread drives, the first queued request, and this thread then drives.
#[inline(never)]
fn claim_first(locked: &mut Locked) -> Option<Action> {
    if locked.driving {
        return None;
    }
    let action = locked.engine.poll();
    locked.driving = action.is_some();
    action
}

/// The drive loop, from its first request (this thread claimed it) until the engine has none.
///
/// Waking an unbind (`BindingQuiet`) is deferred to the end of the loop, after the last time
/// this thread takes the lock: the unbind it wakes may be the last one DriverUnload waits for,
/// and DriverUnload then frees the lock and the tables while this thread would still be looping
/// ("NdisDeregisterProtocolDriver" returns once every binding is unbound; nothing may touch the
/// driver's state after the wake that lets it). A second wake in one loop sends the first one at
/// once: the unload still waits for the deferred, later one.
#[inline(never)]
fn run_from(first: Option<Action>) {
    let mut action = first;
    let mut deferred_wake = None;
    while let Some(request) = action {
        let completion = match request {
            Action::BindingQuiet { cookie, .. } => {
                if let Some(earlier) = deferred_wake.replace(cookie) {
                    crate::binding::wake_unbind(earlier);
                }
                None
            }
            request => crate::perform::perform(request),
        };
        action = with_locked(|locked| {
            if let Some(completion) = completion {
                completion.apply(&mut locked.engine);
            }
            let next = locked.engine.poll();
            if next.is_none() {
                locked.driving = false;
            }
            next
        });
    }
    if let Some(cookie) = deferred_wake {
        crate::binding::wake_unbind(cookie);
    }
}

/// An id as the context NDIS holds for us.
pub fn context(id: Id) -> NDIS_HANDLE {
    id.to_u64() as usize as NDIS_HANDLE
}

/// The id behind a context NDIS handed back (NULL or garbage gives `None`).
pub fn id(context: NDIS_HANDLE) -> Option<Id> {
    Id::from_u64(context as usize as u64)
}
