//! The machine (ndis_sim::machine): a stop ends its run, not the process, and the harness goes
//! on; every run is bounded by its caps; the processors' threads really exclude one another.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ndis_sim::kernel::{Caps, Stop};
use ndis_sim::ndis::rules;
use ndis_sim::sim::{export_table, SimConfig, Simulation};
use ndis_sys::signatures as sig;
use ndis_sys::NDIS_SPIN_LOCK;

fn export<T: Copy>(dll: &str, name: &str) -> T {
    let table = export_table();
    let address = table.get(dll, name).unwrap_or_else(|| panic!("{name}")).address;
    assert_eq!(std::mem::size_of::<T>(), 8);
    // SAFETY: T is the `ndis_sys::signatures` type of `name`, registered by `export!` against it.
    unsafe { std::mem::transmute_copy::<usize, T>(&address) }
}

/// A bug check on a processor's thread stops that run: the harness gets `None` back and the stop
/// (with its report written to stderr), and the process — here, the test — goes on, with a new
/// simulation that runs normally. (Before the machine, a bug check ended the process.)
#[test]
fn a_bug_check_on_a_processor_stops_only_its_run() {
    let sim = Simulation::without_image(SimConfig::default());
    sim.world().set_replay("cargo test -p ndis-sim --test machine");
    let answer = sim.on_processor(1, "test:bugcheck", || {
        let bugcheck: sig::KeBugCheckEx = export("ntoskrnl.exe", "KeBugCheckEx");
        // SAFETY: KeBugCheckEx takes plain integers and never returns.
        unsafe { bugcheck(0xE2, 1, 2, 3, 4) }
    });
    assert!(answer.is_none(), "a bug check never returns");
    match sim.stop() {
        Some(Stop::BugCheck(b)) => assert_eq!((b.code, b.processor), (0xE2, 1)),
        other => panic!("{other:?}"),
    }
    // The stopped run refuses more work at once instead of hanging.
    assert!(sim.on_processor(0, "test:after", || 1).is_none());
    sim.run_until_idle();
    // The next run is unaffected.
    let next = Simulation::without_image(SimConfig::default());
    assert_eq!(next.on_processor(0, "test:next", || 7), Some(7));
    assert!(next.stop().is_none());
}

/// Work that never lets the machine go idle (each piece queues the next) is stopped at the
/// run's cap on pieces of work, reported as capped, instead of running forever.
#[test]
fn a_run_that_never_settles_is_capped() {
    let sim = Simulation::without_image(SimConfig::default());
    sim.world().set_caps(Caps { work_items: 500, ..Caps::default() });
    let count = Arc::new(AtomicU64::new(0));
    fn again(world: Arc<ndis_sim::World>, count: Arc<AtomicU64>) {
        count.fetch_add(1, Ordering::Relaxed);
        let (w, c) = (Arc::clone(&world), count);
        ndis_sim::ndis::queue_host_work(&world, 1, "test:again", Box::new(move || again(w, c)));
    }
    again(Arc::clone(sim.world()), Arc::clone(&count));
    sim.run_until_idle();
    let stop = sim.stop().expect("capped");
    assert!(matches!(stop, Stop::Capped(_)), "{stop}");
    assert!(stop.to_string().contains("500 pieces of work"), "{stop}");
    assert!((499..=501).contains(&count.load(Ordering::Relaxed)));
}

/// A driver that keeps breaking rules stops at the run's violation cap: the run stays bounded
/// (a broken driver once grew a campaign process past 20 GB).
#[test]
fn violations_are_capped() {
    let sim = Simulation::without_image(SimConfig::default());
    sim.world().set_caps(Caps { violations: 5, ..Caps::default() });
    let answer = sim.on_processor(0, "test:misbehave", || {
        let free: sig::NdisFreeSpinLock = export("ndis.sys", "NdisFreeSpinLock");
        let mut lock = NDIS_SPIN_LOCK::default();
        for _ in 0..50 {
            // SAFETY: the simulator's export; the lock was never allocated (a violation each).
            unsafe { free(&mut lock) };
        }
    });
    assert!(answer.is_none(), "the worker parks at the cap");
    assert_eq!(sim.violations().len(), 5);
    assert!(sim.violations().iter().all(|v| v.rule == rules::SPIN_LOCK_LIFETIME));
    assert!(matches!(sim.stop(), Some(Stop::Capped(_))));
}

/// Virtual time is bounded too: a timer loop far in the future is capped, not run for ever.
#[test]
fn virtual_time_is_capped() {
    let sim = Simulation::without_image(SimConfig::default());
    sim.world().set_caps(Caps { virtual_ticks: 1_000_000, ..Caps::default() });
    fn later(world: Arc<ndis_sim::World>) {
        let w = Arc::clone(&world);
        ndis_sim::ndis::queue_host_work(&world, 400_000, "test:later", Box::new(move || later(w)));
    }
    later(Arc::clone(sim.world()));
    sim.run_until_idle();
    let stop = sim.stop().expect("capped").to_string();
    assert!(stop.contains("virtual time"), "{stop}");
}

/// Four pieces of work, one per processor, each incrementing a plain counter 1,000 times with a
/// scheduling point between the read and the write; the counter at the end.
fn lost_increments(seed: u64) -> u64 {
    let sim = Simulation::without_image(SimConfig { seed, processors: 4, ..SimConfig::default() });
    let counter = Arc::new(AtomicU64::new(0));
    for p in 0..4 {
        let counter = Arc::clone(&counter);
        sim.world().machine().spawn(
            sim.world(),
            "test:count",
            Some(p),
            Box::new(move || {
                let irql: sig::KeGetCurrentIrql = export("ntoskrnl.exe", "KeGetCurrentIrql");
                for _ in 0..1_000 {
                    let value = counter.load(Ordering::Relaxed);
                    // A scheduling point between the read and the write.
                    // SAFETY: the simulator's export, no arguments.
                    unsafe { irql() };
                    counter.store(value + 1, Ordering::Relaxed);
                }
            }),
        );
    }
    sim.run_until_idle();
    assert!(sim.stop().is_none());
    counter.load(Ordering::Relaxed)
}

/// Only one processor thread runs at a time, and the policy switches between them at scheduling
/// points: increments interleave and some are lost (read, switch, write) — deterministically, the
/// same ones for the same seed, whatever the host's own timing.
#[test]
fn processor_threads_interleave_at_scheduling_points_deterministically() {
    let first = lost_increments(1);
    assert!(first < 4_000, "the processors interleaved ({first})");
    assert_eq!(lost_increments(1), first, "same seed, same interleaving");
}

/// NdisWaitEvent blocks its thread: the work that sets the event runs on another processor's
/// thread while the waiter is blocked (the old simulator ran queued work on the waiting thread
/// itself, so a completion that Windows delivers elsewhere always got through).
#[test]
fn a_wait_blocks_and_the_work_that_ends_it_runs_on_another_thread() {
    let sim = Simulation::without_image(SimConfig::default());
    let event: &'static mut ndis_sys::NDIS_EVENT =
        Box::leak(Box::new(ndis_sys::NDIS_EVENT { Event: ndis_sys::KEVENT { Opaque: [0; 0x18] } }));
    let event = event as *mut ndis_sys::NDIS_EVENT as usize;
    let setter = Arc::new(std::sync::Mutex::new(None));
    let world = Arc::clone(sim.world());
    let seen = Arc::clone(&setter);
    let waited = sim.on_processor(0, "test:wait", move || {
        let init: sig::NdisInitializeEvent = export("ndis.sys", "NdisInitializeEvent");
        let wait: sig::NdisWaitEvent = export("ndis.sys", "NdisWaitEvent");
        // SAFETY: the simulator's exports on leaked storage.
        unsafe { init(event as *mut ndis_sys::NDIS_EVENT) };
        let set_later = Box::new(move || {
            *seen.lock().expect("lock") = Some(std::thread::current().id());
            let set: sig::NdisSetEvent = export("ndis.sys", "NdisSetEvent");
            // SAFETY: as above.
            unsafe { set(event as *mut ndis_sys::NDIS_EVENT) };
        });
        ndis_sim::ndis::queue_host_work(&world, 5_000, "test:set", set_later);
        // SAFETY: as above; PASSIVE on a processor's thread.
        let woke = unsafe { wait(event as *mut ndis_sys::NDIS_EVENT, 0) };
        (woke, std::thread::current().id())
    });
    let (woke, waiter) = waited.expect("the wait ends");
    assert_eq!(woke, 1);
    let setter = setter.lock().expect("lock").expect("the event was set");
    assert_ne!(setter, waiter, "the work that set the event ran on another thread");
    assert!(sim.world().now() >= 5_000, "virtual time passed while the waiter was blocked");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// A driver that spins for ever calling exports (a retry loop that never ends) is stopped at the
/// run's host-time cap: a broken driver never holds a campaign past it.
#[test]
fn host_time_is_capped() {
    let sim = Simulation::without_image(SimConfig::default());
    sim.world().set_caps(Caps { host_time: std::time::Duration::from_millis(200), ..Caps::default() });
    let answer = sim.on_processor(0, "test:spin-forever", || {
        let irql: sig::KeGetCurrentIrql = export("ntoskrnl.exe", "KeGetCurrentIrql");
        loop {
            // SAFETY: the simulator's export, no arguments; every call is a scheduling point.
            unsafe { irql() };
        }
    });
    assert!(answer.is_none());
    let stop = sim.stop().expect("capped").to_string();
    assert!(stop.contains("host time"), "{stop}");
}
