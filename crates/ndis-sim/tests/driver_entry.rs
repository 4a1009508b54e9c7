//! DriverEntry and DriverUnload as the I/O manager runs them, with host routines playing the
//! driver: a DriverEntry that fails is never followed by DriverUnload, and whatever it set up and
//! left behind is reported against DriverEntry.
//!
//! "DriverEntry Return Values": a DriverEntry that fails must free every object and resource it
//! set up before it returns; the driver's Unload routine is not called after a failure status
//! (https://learn.microsoft.com/windows-hardware/drivers/kernel/driverentry-return-values).

use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Mutex;

use ndis_sim::io::rules as io_rules;
use ndis_sim::ndis::rules;
use ndis_sim::sim::{export_table, SimConfig, Simulation};
use ndis_sys::signatures as sig;
use ndis_sys::*;

// DriverEntry and DriverUnload run on a simulated processor's own thread (see
// ndis_sim::machine), so the host driver's state is process-wide, and the tests take turns.
static UNLOADED: AtomicBool = AtomicBool::new(false);
static CLEAN_UP: AtomicBool = AtomicBool::new(false);
static FAIL: AtomicBool = AtomicBool::new(true);
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn export<T: Copy>(dll: &str, name: &str) -> T {
    let table = export_table();
    let address = table.get(dll, name).unwrap_or_else(|| panic!("{name}")).address;
    assert_eq!(std::mem::size_of::<T>(), 8);
    // SAFETY: T is the `ndis_sys::signatures` type of `name`, registered by `export!` against it.
    unsafe { std::mem::transmute_copy::<usize, T>(&address) }
}

unsafe extern "win64" fn driver_unload(_driver: *mut DRIVER_OBJECT) {
    UNLOADED.store(true, SeqCst);
}

/// Sets DriverUnload, allocates pool and creates an unnamed device; then either returns success,
/// or fails after freeing both (CLEAN_UP) or without freeing anything.
unsafe extern "win64" fn driver_entry(
    driver: *mut DRIVER_OBJECT,
    _registry: *mut UNICODE_STRING,
) -> NTSTATUS {
    let allocate: sig::NdisAllocateMemoryWithTagPriority =
        export("ndis.sys", "NdisAllocateMemoryWithTagPriority");
    let free: sig::NdisFreeMemory = export("ndis.sys", "NdisFreeMemory");
    let create: sig::IoCreateDevice = export("ntoskrnl.exe", "IoCreateDevice");
    let delete: sig::IoDeleteDevice = export("ntoskrnl.exe", "IoDeleteDevice");
    let mut device = null_mut();
    // SAFETY: the simulator's exports, called at PASSIVE from DriverEntry with the driver object
    // the harness passed; the block and the device are used only here.
    unsafe {
        (*driver).DriverUnload = Some(driver_unload);
        let block: *mut c_void = allocate(null_mut(), 32, u32::from_le_bytes(*b"PlDe"), NormalPoolPriority);
        assert!(!block.is_null());
        assert_eq!(create(driver, 0, null_mut(), 0x8A7C, FILE_DEVICE_SECURE_OPEN, 0, &mut device), 0);
        if !FAIL.load(SeqCst) {
            free(block, 0, 0);
            delete(device);
            return STATUS_SUCCESS;
        }
        if CLEAN_UP.load(SeqCst) {
            free(block, 0, 0);
            delete(device);
        }
    }
    STATUS_INSUFFICIENT_RESOURCES
}

/// One DriverEntry (and unload) with the host driver set to `fail` and `clean_up`; the caller
/// holds its turn.
fn run_unlocked(fail: bool, clean_up: bool) -> Simulation {
    UNLOADED.store(false, SeqCst);
    FAIL.store(fail, SeqCst);
    CLEAN_UP.store(clean_up, SeqCst);
    let mut sim = Simulation::without_image(SimConfig::default());
    let status = sim.call_driver_entry(driver_entry);
    assert_eq!(status.expect("DriverEntry ran") < 0, fail);
    assert_eq!(sim.driver_entry_failed(), fail);
    sim.unload();
    sim
}

#[test]
fn failed_driver_entry_that_cleaned_up_is_not_unloaded_and_is_clean() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let sim = run_unlocked(true, true);
    assert!(!UNLOADED.load(SeqCst), "DriverUnload was called after a failed DriverEntry");
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
    let timeline = sim.timeline();
    assert!(timeline.contains("not called: DriverEntry failed with 0xc000009a"), "{timeline}");
}

#[test]
fn failed_driver_entry_that_left_objects_is_reported_against_driver_entry() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let sim = run_unlocked(true, false);
    assert!(!UNLOADED.load(SeqCst), "DriverUnload was called after a failed DriverEntry");
    let violations = sim.violations();
    for rule in [rules::POOL_LEAK, io_rules::UNLOAD_CLEANUP] {
        let found = violations.iter().find(|v| v.rule == rule);
        let found = found.unwrap_or_else(|| panic!("{} not reported: {violations:#?}", rule.name));
        assert_eq!(found.call, "partyline.sys!DriverEntry");
        assert!(found.detail.starts_with("failed leaving"), "{}", found.detail);
    }
}

#[test]
fn successful_driver_entry_is_followed_by_driver_unload() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let sim = run_unlocked(false, false);
    assert!(UNLOADED.load(SeqCst), "DriverUnload was not called");
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
}
