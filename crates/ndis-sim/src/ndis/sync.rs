//! Spin locks and events: `NdisAllocateSpinLock` … `NdisDprReleaseSpinLock`, `NdisInitializeEvent`
//! … `NdisWaitEvent`.
//!
//! Read: nf-ndis-ndisacquirespinlock, nf-ndis-ndisdpracquirespinlock, nf-ndis-ndiswaitevent;
//! verifier-rules.md §7.2 (SpinLock, SpinLockDpr, SpinLockRelease).
//!
//! Flow: a lock is known by the address of its `NDIS_SPIN_LOCK`; the simulator records which
//! processor holds it and how it was taken. Acquire raises the processor to DISPATCH and saves the
//! old IRQL (also into `OldIrql`, as Windows does); release restores it. A lock held by another
//! processor is spun on: the processor's thread blocks in the machine (keeping its processor)
//! until the release signals it, so the lock really excludes; a spin nothing can end is a
//! deadlock the machine reports (crate::machine). An event is known by its address;
//! `NdisWaitEvent` blocks its thread in the machine until the event is set or the wait times out.

use std::ffi::c_void;

use ndis_sys::{NDIS_EVENT, NDIS_SPIN_LOCK};

use super::Ndis;
use super::{export_call, log_export, log_lazy, rules, violation, State};
use crate::ddi::{self, Context, Ddi, IrqlRequirement};
use crate::export;
use crate::exports::ExportTable;
use crate::fast_hash::FastMap;
use crate::kernel::{Args, Call, Irql, World, DISPATCH_LEVEL, PASSIVE_LEVEL};
use std::fmt;

/// How a held lock was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// `NdisAcquireSpinLock` (raised IRQL, saved the old one).
    Raise,
    /// `NdisDprAcquireSpinLock` (already at DISPATCH).
    Dpr,
}

/// What the simulator knows about one spin lock.
#[derive(Clone, Copy, Debug)]
pub struct LockState {
    /// Holder processor and how it took the lock.
    pub holder: Option<(usize, LockKind)>,
    /// IRQL to restore on `NdisReleaseSpinLock`.
    pub old_irql: Irql,
}

impl Default for LockState {
    /// Allocated, not held.
    fn default() -> LockState {
        LockState { holder: None, old_irql: PASSIVE_LEVEL }
    }
}

/// Every allocated spin lock, by the address of its `NDIS_SPIN_LOCK`, remembering the last one
/// looked up (a driver takes the same lock over and over).
#[derive(Default)]
pub(crate) struct Locks {
    /// (address, state); a freed slot has address 0 and is on `free`.
    slots: Vec<(usize, LockState)>,
    index: FastMap<usize, usize>,
    free: Vec<usize>,
    /// (address, slot) of the last lookup; address 0: none (a lock is never at NULL).
    last: (usize, usize),
}

impl Locks {
    /// Records the lock at `address` (non-NULL) as `lock`; returns what it was, if allocated.
    pub fn insert(&mut self, address: usize, lock: LockState) -> Option<LockState> {
        if let Some(&slot) = self.index.get(&address) {
            return Some(std::mem::replace(&mut self.slots[slot].1, lock));
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = (address, lock);
                slot
            }
            None => {
                self.slots.push((address, lock));
                self.slots.len() - 1
            }
        };
        self.index.insert(address, slot);
        None
    }

    /// Forgets the lock at `address`; returns its state, if it was allocated.
    pub fn remove(&mut self, address: usize) -> Option<LockState> {
        let slot = self.index.remove(&address)?;
        if self.last.0 == address {
            self.last = (0, 0);
        }
        self.free.push(slot);
        Some(std::mem::take(&mut self.slots[slot]).1)
    }

    /// The lock at `address`, if allocated.
    #[inline]
    pub fn get_mut(&mut self, address: usize) -> Option<&mut LockState> {
        if address == 0 || self.last.0 != address {
            self.look_up(address)?;
        }
        Some(&mut self.slots[self.last.1].1)
    }

    /// Makes `address` the last lock looked up, if it is allocated.
    #[cold]
    #[inline(never)]
    fn look_up(&mut self, address: usize) -> Option<()> {
        let slot = *self.index.get(&address)?;
        self.last = (address, slot);
        Some(())
    }

    /// Every allocated lock: (address, state), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &LockState)> + '_ {
        self.slots.iter().filter(|(address, _)| *address != 0).map(|(address, lock)| (*address, lock))
    }
}

/// The locks `processor` holds.
pub(crate) fn held_by(state: &State, processor: usize) -> Vec<usize> {
    let mut held: Vec<usize> = state
        .locks
        .iter()
        .filter(|(_, lock)| lock.holder.is_some_and(|(p, _)| p == processor))
        .map(|(a, _)| a)
        .collect();
    held.sort_unstable();
    held
}

/// Registers the lock and event exports.
pub fn register(table: &mut ExportTable) {
    export!(table, "ndis.sys", NdisAllocateSpinLock = ndis_allocate_spin_lock);
    export!(table, "ndis.sys", NdisFreeSpinLock = ndis_free_spin_lock);
    export!(table, "ndis.sys", NdisAcquireSpinLock = ndis_acquire_spin_lock);
    export!(table, "ndis.sys", NdisReleaseSpinLock = ndis_release_spin_lock);
    export!(table, "ndis.sys", NdisDprAcquireSpinLock = ndis_dpr_acquire_spin_lock);
    export!(table, "ndis.sys", NdisDprReleaseSpinLock = ndis_dpr_release_spin_lock);
    export!(table, "ndis.sys", NdisInitializeEvent = ndis_initialize_event);
    export!(table, "ndis.sys", NdisSetEvent = ndis_set_event);
    export!(table, "ndis.sys", NdisResetEvent = ndis_reset_event);
    export!(table, "ndis.sys", NdisWaitEvent = ndis_wait_event);
}

/// `NdisAllocateSpinLock`: any IRQL. Re-initialising a held lock is a violation.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisallocatespinlock>
unsafe extern "win64" fn ndis_allocate_spin_lock(lock: *mut NDIS_SPIN_LOCK) {
    const DDI: Ddi =
        Ddi::ndis("NdisAllocateSpinLock", IrqlRequirement::Unchecked, rules::IRQL_SYNCH_FUNCTION);
    const EXPORT: &str = DDI.name;
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, _| {
            log_export(world, processor, EXPORT, format!("({:#x})", lock as usize));
        })
    };
    if lock.is_null() {
        violation(world, rules::SPIN_LOCK_LIFETIME, EXPORT, "NULL lock");
        return;
    }
    let previous = ndis.state().locks.insert(lock as usize, LockState::default());
    if previous.is_some_and(|p| p.holder.is_some()) {
        violation(world, rules::SPIN_LOCK_LIFETIME, EXPORT, "re-initialised a held spin lock");
    }
    // SAFETY: the driver passes resident storage for an NDIS_SPIN_LOCK (checked non-NULL above).
    unsafe { lock.write(NDIS_SPIN_LOCK { SpinLock: 0, OldIrql: 0 }) };
}

/// `NdisFreeSpinLock`: any IRQL; the lock must be allocated and not held.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisfreespinlock>
extern "win64" fn ndis_free_spin_lock(lock: *mut NDIS_SPIN_LOCK) {
    const DDI: Ddi = Ddi::ndis("NdisFreeSpinLock", IrqlRequirement::Unchecked, rules::IRQL_SYNCH_FUNCTION);
    const EXPORT: &str = DDI.name;
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, _| {
            log_export(world, processor, EXPORT, format!("({:#x})", lock as usize));
        })
    };
    let removed = ndis.state().locks.remove(lock as usize);
    match removed {
        None => violation(
            world,
            rules::SPIN_LOCK_LIFETIME,
            EXPORT,
            "freed a spin lock that was never allocated (or freed twice)",
        ),
        Some(state) if state.holder.is_some() => {
            violation(world, rules::SPIN_LOCK_LIFETIME, EXPORT, "freed a held spin lock")
        }
        Some(_) => {}
    }
}

/// `(0x7f…)`: the detail of a lock or event call.
fn render_address(a: &Args<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "({:#x})", a.word(0))
}

/// What was wrong with an acquire or release (reported after the state lock is dropped).
enum Problem {
    NotAllocated,
    Recursion,
    Deadlock { holder: usize },
    ReleasedNotAllocated,
    Kind { held: LockKind },
    NotHeld,
}

/// Reports `problem` with `call` of a lock taken or released as `kind` (rare: kept off the fast
/// path).
#[cold]
#[inline(never)]
fn report(world: &World, call: &'static Call, kind: LockKind, problem: Problem) {
    let export = call.name;
    match problem {
        Problem::NotAllocated => violation(
            world,
            rules::SPIN_LOCK_LIFETIME,
            export,
            "acquired a spin lock that was not allocated (or was freed)",
        ),
        Problem::Recursion => {
            let recursion = if kind == LockKind::Raise { rules::SPIN_LOCK } else { rules::SPIN_LOCK_DPR };
            violation(world, recursion, export, "acquired a spin lock this processor already holds (recursion)")
        }
        Problem::Deadlock { holder } => violation(
            world,
            rules::DEADLOCK,
            export,
            format!("spin lock held by processor {holder}, which can never release it (the run stopped while this processor spun, or this thread is outside the machine)"),
        ),
        Problem::ReleasedNotAllocated => {
            violation(world, rules::SPIN_LOCK_LIFETIME, export, "released a spin lock that was not allocated")
        }
        Problem::Kind { held } => violation(
            world,
            rules::SPIN_LOCK_KIND,
            export,
            format!("lock taken with {held:?} acquire released with {kind:?} release"),
        ),
        Problem::NotHeld => {
            violation(world, rules::SPIN_LOCK_RELEASE, export, "released a spin lock this processor does not hold")
        }
    }
}

fn acquire(call: &'static Call, lock: *mut NDIS_SPIN_LOCK, kind: LockKind) {
    let export = call.name;
    let irql = match kind {
        LockKind::Raise => IrqlRequirement::AtMost(DISPATCH_LEVEL),
        LockKind::Dpr => IrqlRequirement::Exactly(DISPATCH_LEVEL),
    };
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&Ddi::ndis(export, irql, rules::IRQL_SYNCH_FUNCTION), |world, processor, _| {
            log_lazy(world, processor, call, &[lock as u64], render_address);
        })
    };
    let old_irql = world.irql(processor);
    let problem = loop {
        let mut state = ndis.state();
        let Some(lock_state) = state.locks.get_mut(lock as usize) else {
            break Some(Problem::NotAllocated);
        };
        match lock_state.holder {
            Some((holder, _)) if holder == processor => break Some(Problem::Recursion),
            // Held by another processor: this one spins (keeping its processor) until the
            // holder releases it; the machine runs the others meanwhile, and reports a deadlock
            // if the holder can never run again.
            Some((holder, _)) => {
                drop(state);
                match world.machine().spin(world, lock as usize) {
                    crate::machine::Wake::Stopped => break Some(Problem::Deadlock { holder }),
                    _ => continue,
                }
            }
            None => {
                lock_state.holder = Some((processor, kind));
                lock_state.old_irql = old_irql;
                break None;
            }
        }
    };
    if let Some(problem) = problem {
        report(world, call, kind, problem);
    }
    if kind == LockKind::Raise {
        world.set_irql(processor, DISPATCH_LEVEL);
        if !lock.is_null() {
            // SAFETY: the driver's NDIS_SPIN_LOCK storage; OldIrql is where Windows saves the IRQL.
            unsafe { (*lock).OldIrql = old_irql.0 };
        }
    }
}

fn release(call: &'static Call, lock: *mut NDIS_SPIN_LOCK, kind: LockKind) {
    let export = call.name;
    let ddi = Ddi::ndis(export, IrqlRequirement::Exactly(DISPATCH_LEVEL), rules::IRQL_SYNCH_FUNCTION);
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&ddi, |world, processor, _| {
            log_lazy(world, processor, call, &[lock as u64], render_address);
        })
    };
    let (problem, restore) = {
        let mut state = ndis.state();
        match state.locks.get_mut(lock as usize) {
            None => (Some(Problem::ReleasedNotAllocated), None),
            Some(lock_state) => match lock_state.holder {
                Some((holder, held_kind)) if holder == processor => {
                    lock_state.holder = None;
                    let restore = (kind == LockKind::Raise).then_some(lock_state.old_irql);
                    ((held_kind != kind).then_some(Problem::Kind { held: held_kind }), restore)
                }
                _ => (Some(Problem::NotHeld), None),
            },
        }
    };
    if let Some(problem) = problem {
        report(world, call, kind, problem);
    }
    world.machine().signal(lock as usize);
    if let Some(irql) = restore {
        world.set_irql(processor, irql);
    }
}

/// `NdisAcquireSpinLock`: <= DISPATCH; raises to DISPATCH.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisacquirespinlock>
extern "win64" fn ndis_acquire_spin_lock(lock: *mut NDIS_SPIN_LOCK) {
    acquire(const { &export_call("NdisAcquireSpinLock") }, lock, LockKind::Raise);
}

/// `NdisReleaseSpinLock`: DISPATCH; restores the IRQL saved by the acquire.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisreleasespinlock>
extern "win64" fn ndis_release_spin_lock(lock: *mut NDIS_SPIN_LOCK) {
    release(const { &export_call("NdisReleaseSpinLock") }, lock, LockKind::Raise);
}

/// `NdisDprAcquireSpinLock`: DISPATCH only.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisdpracquirespinlock>
extern "win64" fn ndis_dpr_acquire_spin_lock(lock: *mut NDIS_SPIN_LOCK) {
    acquire(const { &export_call("NdisDprAcquireSpinLock") }, lock, LockKind::Dpr);
}

/// `NdisDprReleaseSpinLock`: DISPATCH only.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisdprreleasespinlock>
extern "win64" fn ndis_dpr_release_spin_lock(lock: *mut NDIS_SPIN_LOCK) {
    release(const { &export_call("NdisDprReleaseSpinLock") }, lock, LockKind::Dpr);
}

/// `NdisInitializeEvent`: <= DISPATCH; not signaled.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisinitializeevent>
extern "win64" fn ndis_initialize_event(event: *mut NDIS_EVENT) {
    const DDI: Ddi =
        Ddi::ndis("NdisInitializeEvent", IrqlRequirement::AtMost(DISPATCH_LEVEL), rules::IRQL_SYNCH_FUNCTION);
    const EXPORT: &str = DDI.name;
    // SAFETY: an export, using what it gets only until it returns.
    let Context { family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, _| {
            log_export(world, processor, EXPORT, format!("({:#x})", event as usize));
        })
    };
    ndis.state().events.insert(event as usize, false);
}

fn set_event(call: &'static Call, event: *mut NDIS_EVENT, signaled: bool) {
    let export = call.name;
    let ddi = Ddi::ndis(export, IrqlRequirement::AtMost(DISPATCH_LEVEL), rules::IRQL_SYNCH_FUNCTION);
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&ddi, |world, processor, _| {
            log_lazy(world, processor, call, &[event as u64], render_address);
        })
    };
    let known = match ndis.state().events.get_mut(&(event as usize)) {
        Some(state) => {
            *state = signaled;
            true
        }
        None => false,
    };
    if known && signaled {
        world.machine().signal(event as usize);
    }
    if !known {
        violation(
            world,
            rules::EVENT_UNINITIALIZED,
            export,
            "event was not initialised with NdisInitializeEvent",
        );
    }
}

/// `NdisSetEvent`: <= DISPATCH.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndissetevent>
extern "win64" fn ndis_set_event(event: *mut NDIS_EVENT) {
    set_event(const { &export_call("NdisSetEvent") }, event, true);
}

/// `NdisResetEvent`: <= DISPATCH.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisresetevent>
extern "win64" fn ndis_reset_event(event: *mut NDIS_EVENT) {
    set_event(const { &export_call("NdisResetEvent") }, event, false);
}

/// `NdisWaitEvent`: PASSIVE only. Blocks the calling processor's thread until the event is set
/// or the timeout passes on virtual time (the machine runs everything else meanwhile, and gives
/// the processor to other work, as Windows runs DPCs and other threads on a processor whose
/// thread waits). A wait nothing left to run can end is a deadlock: the machine reports what
/// every processor was doing and stops the run.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiswaitevent>
extern "win64" fn ndis_wait_event(event: *mut NDIS_EVENT, ms_to_wait: u32) -> u8 {
    const DDI: Ddi = Ddi::ndis(
        "NdisWaitEvent",
        IrqlRequirement::Exactly(PASSIVE_LEVEL),
        rules::IRQL_MISCELLANEOUS_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, family: ndis, irql_ok, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, _| {
            log_export(world, processor, EXPORT, format!("({:#x}, {ms_to_wait})", event as usize));
        })
    };
    if !irql_ok {
        return 0;
    }
    if !ndis.state().events.contains_key(&(event as usize)) {
        violation(
            world,
            rules::EVENT_UNINITIALIZED,
            EXPORT,
            "event was not initialised with NdisInitializeEvent",
        );
        return 0;
    }
    super::pnp::check_wait(world, ndis, EXPORT);
    let deadline = (ms_to_wait != 0).then(|| world.now() + u64::from(ms_to_wait) * 10_000);
    loop {
        if ndis.state().events.get(&(event as usize)).copied().unwrap_or(false) {
            return 1;
        }
        match world.machine().wait(world, event as usize, deadline) {
            crate::machine::Wake::Signaled => continue,
            crate::machine::Wake::TimedOut => {
                return u8::from(ndis.state().events.get(&(event as usize)).copied().unwrap_or(false))
            }
            crate::machine::Wake::Stopped => return 0,
        }
    }
}

#[allow(dead_code)]
fn _assert_types(_: *mut c_void) {}
