//! The robustness hooks of issue #5: systematic low-resources simulation fails each call site
//! once and then lets it succeed, a warm-up holds every injection back, and a spin lock really
//! excludes two host threads driving two simulated processors at once.

use std::sync::Arc;

use ndis_sim::ndis::faults::Systematic;
use ndis_sim::ndis::FaultPolicy;
use ndis_sim::sim::{export_table, SimConfig, Simulation};
use ndis_sys::signatures as sig;
use ndis_sys::*;

fn export<T: Copy>(name: &str) -> T {
    let table = export_table();
    let address = table.get("ndis.sys", name).unwrap_or_else(|| panic!("{name}")).address;
    assert_eq!(std::mem::size_of::<T>(), 8);
    // SAFETY: T is the `ndis_sys::signatures` type of `name`, registered by `export!` against it.
    unsafe { std::mem::transmute_copy::<usize, T>(&address) }
}

const TAG: u32 = u32::from_le_bytes(*b"Test");

/// systematic-low-resource-simulation: "fails the call the first time a given call stack is seen,
/// then lets it succeed"; the registry persists across simulations (driver reloads).
#[test]
fn systematic_mode_fails_each_site_once_across_reloads() {
    let registry = Systematic::new();
    for reload in 0..2 {
        let faults = FaultPolicy { systematic: Some(registry.clone()), ..FaultPolicy::synchronous() };
        let sim = Simulation::without_image(SimConfig { faults, ..SimConfig::default() });
        let _entered = sim.world().enter(0);
        let allocate: sig::NdisAllocateMemoryWithTagPriority = export("NdisAllocateMemoryWithTagPriority");
        let free: sig::NdisFreeMemory = export("NdisFreeMemory");
        for call in 0..3 {
            // SAFETY: the simulator's exports, called at PASSIVE with a non-zero tag.
            let block = unsafe { allocate(std::ptr::null_mut(), 64, TAG, 16) };
            assert_eq!(block.is_null(), reload == 0 && call == 0, "reload {reload} call {call}");
            if !block.is_null() {
                // SAFETY: a block this pool handed out, freed once.
                unsafe { free(block, 64, 0) };
            }
        }
        assert!(sim.violations().is_empty(), "{}", sim.summary());
    }
    assert_eq!(registry.injected().len(), 1);
    let saved = registry.save();
    let reloaded = Systematic::new();
    reloaded.load(&saved);
    assert_eq!(reloaded.seen(), registry.seen());
}

/// low-resources-simulation: no failure is injected before the start delay.
#[test]
fn warmup_holds_back_random_failures() {
    let faults = FaultPolicy {
        allocation_failure_per_10000: 10_000,
        warmup_ticks: 1_000,
        ..FaultPolicy::synchronous()
    };
    let sim = Simulation::without_image(SimConfig { faults, ..SimConfig::default() });
    let _entered = sim.world().enter(0);
    let allocate: sig::NdisAllocateMemoryWithTagPriority = export("NdisAllocateMemoryWithTagPriority");
    // SAFETY: the simulator's export at PASSIVE.
    let before = unsafe { allocate(std::ptr::null_mut(), 8, TAG, 16) };
    assert!(!before.is_null());
    let free: sig::NdisFreeMemory = export("NdisFreeMemory");
    // SAFETY: a block this pool handed out, freed once.
    unsafe { free(before, 8, 0) };
    sim.world().advance_time(1_000);
    // SAFETY: as above.
    let after = unsafe { allocate(std::ptr::null_mut(), 8, TAG, 16) };
    assert!(after.is_null());
}

struct Shared {
    lock: std::cell::UnsafeCell<NDIS_SPIN_LOCK>,
    counter: std::cell::UnsafeCell<u64>,
}

// SAFETY: `counter` is only touched while `lock` is held through the simulated NDIS spin lock,
// which is what this test proves excludes.
unsafe impl Sync for Shared {}

/// nf-ndis-ndisacquirespinlock: a spin lock gives exclusive access across processors. Two host
/// threads on two simulated processors increment a plain counter under it.
#[test]
fn spin_lock_excludes_across_host_threads() {
    let sim = Simulation::without_image(SimConfig { processors: 2, ..SimConfig::default() });
    let shared = Arc::new(Shared {
        lock: std::cell::UnsafeCell::new(NDIS_SPIN_LOCK::default()),
        counter: std::cell::UnsafeCell::new(0),
    });
    {
        let _entered = sim.world().enter(0);
        let allocate: sig::NdisAllocateSpinLock = export("NdisAllocateSpinLock");
        // SAFETY: the simulator's export on resident storage.
        unsafe { allocate(shared.lock.get()) };
    }
    const ROUNDS: u64 = 2_000;
    let threads: Vec<_> = (0..2)
        .map(|processor| {
            let world = sim.world().clone();
            let shared = shared.clone();
            std::thread::spawn(move || {
                let _entered = world.enter(processor);
                let acquire: sig::NdisAcquireSpinLock = export("NdisAcquireSpinLock");
                let release: sig::NdisReleaseSpinLock = export("NdisReleaseSpinLock");
                for _ in 0..ROUNDS {
                    // SAFETY: the simulator's exports; the counter is touched only under the lock.
                    unsafe {
                        acquire(shared.lock.get());
                        let value = shared.counter.get().read_volatile();
                        std::thread::yield_now();
                        shared.counter.get().write_volatile(value + 1);
                        release(shared.lock.get());
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    // SAFETY: both threads have finished.
    assert_eq!(unsafe { *shared.counter.get() }, 2 * ROUNDS);
    assert!(sim.violations().is_empty(), "{}", sim.summary());
}
