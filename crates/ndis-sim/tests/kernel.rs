//! The kernel foundation: per-processor IRQL through `KeGetCurrentIrql`, virtual time, extensions,
//! and how a run stops (bugcheck, not-implemented import), observed from a child process.

mod common;

use std::sync::Arc;

use common::*;
use ndis_sim::kernel::{
    self, signatures, Stop, BUGCHECK_EXIT_CODE, NOT_IMPLEMENTED_EXIT_CODE, SIMULATOR_FAULT_EXIT_CODE,
};
use ndis_sim::kernel::{DISPATCH_LEVEL, PASSIVE_LEVEL};
use ndis_sim::{ExportKind, ExportTable, Image, World};

fn bound<T: Copy>(table: &ExportTable, dll: &str, name: &str) -> T {
    let address = table.get(dll, name).expect(name).address;
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<usize>());
    // SAFETY: `T` is the fn-pointer type the export was registered with (checked by `export!`).
    unsafe { std::mem::transmute_copy::<usize, T>(&address) }
}

#[test]
fn irql_is_per_processor_and_read_through_the_export() {
    let table = ExportTable::with_kernel();
    let ke_get_current_irql: signatures::KeGetCurrentIrql = bound(&table, "ntoskrnl.exe", "KeGetCurrentIrql");
    let world = World::new(2);
    world.set_irql(1, DISPATCH_LEVEL);
    {
        let _on_0 = world.enter(0);
        // SAFETY: a host export, called with the world entered as it requires.
        assert_eq!(unsafe { ke_get_current_irql() }, PASSIVE_LEVEL.0);
        {
            let _on_1 = world.enter(1);
            // SAFETY: as above.
            assert_eq!(unsafe { ke_get_current_irql() }, DISPATCH_LEVEL.0);
        }
        assert_eq!(kernel::current().map(|(_, processor)| processor), Some(0), "entries nest");
    }
    assert!(kernel::current().is_none());
    assert_eq!(world.call_count("KeGetCurrentIrql"), 2);
}

#[test]
fn performance_counter_follows_virtual_time() {
    let table = ExportTable::with_kernel();
    let query: signatures::KeQueryPerformanceCounter =
        bound(&table, "ntoskrnl.exe", "KeQueryPerformanceCounter");
    let world = World::new(1);
    let _entered = world.enter(0);
    let mut frequency = 0i64;
    // SAFETY: `frequency` is a writable LARGE_INTEGER.
    assert_eq!(unsafe { query(&mut frequency) }, 0);
    assert_eq!(frequency, 10_000_000);
    world.advance_time(1234);
    // SAFETY: null frequency is allowed.
    assert_eq!(unsafe { query(std::ptr::null_mut()) }, 1234);
}

#[test]
fn crt_shims_behave_like_the_c_functions() {
    let table = ExportTable::with_kernel();
    let memset: signatures::memset = bound(&table, "ntoskrnl.exe", "memset");
    let memcpy: signatures::memcpy = bound(&table, "ntoskrnl.exe", "memcpy");
    let memmove: signatures::memmove = bound(&table, "ntoskrnl.exe", "memmove");
    let memcmp: signatures::memcmp = bound(&table, "ntoskrnl.exe", "memcmp");
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    // SAFETY: every range below lies within `a` or `b`.
    unsafe {
        memset(a.as_mut_ptr().cast(), 0x5A, 16);
        memcpy(b.as_mut_ptr().cast(), a.as_ptr().cast(), 8);
        memmove(a.as_mut_ptr().add(2).cast(), a.as_ptr().cast(), 8);
        assert_eq!(memcmp(a.as_ptr().cast(), b.as_ptr().cast(), 8), 0);
        assert!(memcmp(a.as_ptr().cast(), b.as_ptr().cast(), 16) > 0);
    }
    assert_eq!(a, [0x5A; 16]);
    assert_eq!(&b[..8], &[0x5A; 8]);
    assert_eq!(&b[8..], &[0; 8]);
}

#[test]
fn extensions_hold_state_of_further_ddi_families() {
    struct Ndis {
        bindings: usize,
    }
    let world = World::new(1);
    assert!(world.extension::<Ndis>().is_none());
    assert!(world.insert_extension(Arc::new(Ndis { bindings: 3 })).is_none());
    assert_eq!(world.extension::<Ndis>().unwrap().bindings, 3);
}

#[test]
#[should_panic(expected = "export ntoskrnl.exe!memset is registered twice")]
fn registering_an_export_twice_is_a_bug() {
    let mut table = ExportTable::with_kernel();
    table.insert_not_implemented("ntoskrnl.exe", "memset");
}

/// Every import of the real image that the kernel foundation lacks, as (dll, name).
fn ndis_imports() -> impl Iterator<Item = (&'static str, &'static str)> {
    ndis_sys::IMPORTS.iter().map(|i| (i.dll, i.name))
}

#[test]
fn missing_imports_can_be_bound_to_not_implemented_traps() {
    let mut table = ExportTable::with_kernel();
    table.insert_not_implemented_for_missing(ndis_imports());
    assert_eq!(table.get("ndis.sys", "NdisAllocateSpinLock").unwrap().kind, ExportKind::NotImplemented);
    assert_eq!(table.get("ntoskrnl.exe", "memset").unwrap().kind, ExportKind::Function);
    let image = Image::load("partyline.sys", partyline_image::image(), &table).expect("every import binds");
    let trap = image.imports().iter().find(|i| i.name == "NdisAllocateSpinLock").unwrap();
    assert_eq!(trap.kind, ExportKind::NotImplemented);
}

#[test]
fn calling_a_not_implemented_import_stops_the_run_naming_it() {
    let output = in_child_process("calling_a_not_implemented_import_stops_the_run_naming_it", || {
        // DriverEntry's first call into NDIS is NdisAllocateSpinLock: bound to a trap here.
        let mut table = ExportTable::with_kernel();
        table.insert_not_implemented_for_missing(ndis_imports());
        let image = Image::load("partyline.sys", partyline_image::image(), &table).unwrap();
        let world = World::new(1);
        let _entered = world.enter(0);
        // SAFETY: the entry point of `image`, which outlives the call.
        unsafe { DriverEntryArguments::new().call(image.entry_point()) };
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(NOT_IMPLEMENTED_EXIT_CODE), "{stderr}");
    assert!(
        stderr.contains(
            "*** STOP: ndis.sys!NdisAllocateSpinLock is not implemented by the simulator (called from partyline.sys+0x"
        ),
        "{stderr}"
    );
}

#[test]
fn bugcheck_reports_code_and_parameters_and_ends_the_process() {
    let output = in_child_process("bugcheck_reports_code_and_parameters_and_ends_the_process", || {
        let table = ExportTable::with_kernel();
        let bugcheck: signatures::KeBugCheckEx = bound(&table, "ntoskrnl.exe", "KeBugCheckEx");
        let world = World::new(2);
        let _entered = world.enter(1);
        // SAFETY: KeBugCheckEx takes plain integers and never returns.
        unsafe { bugcheck(0xE2, 1, 2, 3, 0xFFFF_8000_0000_0004) };
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(BUGCHECK_EXIT_CODE), "{stderr}");
    assert!(
        stderr.contains(
            "*** STOP: KeBugCheckEx(0x000000E2, 0x0000000000000001, 0x0000000000000002, \
             0x0000000000000003, 0xFFFF800000000004) on processor 1, called from 0x"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("(outside every loaded image)"), "{stderr}");
    assert!(stderr.contains("ntoskrnl.exe!KeBugCheckEx(0x000000E2)"), "the log tail is printed: {stderr}");
}

#[test]
fn bugcheck_from_the_image_names_the_image_offset_of_the_caller() {
    let output = in_child_process("bugcheck_from_the_image_names_the_image_offset_of_the_caller", || {
        // Bind the image's first NDIS import to KeBugCheckEx, so the driver's own code calls it.
        let mut table = ExportTable::with_kernel();
        let bugcheck: signatures::KeBugCheckEx = bound(&table, "ntoskrnl.exe", "KeBugCheckEx");
        table.insert("ndis.sys", "NdisAllocateSpinLock", bugcheck);
        table.insert_not_implemented_for_missing(ndis_imports());
        let image = Image::load("partyline.sys", partyline_image::image(), &table).unwrap();
        let world = World::new(1);
        let _entered = world.enter(0);
        // SAFETY: the entry point of `image`, which outlives the call.
        unsafe { DriverEntryArguments::new().call(image.entry_point()) };
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(BUGCHECK_EXIT_CODE), "{stderr}");
    assert!(stderr.contains("on processor 0, called from partyline.sys+0x"), "{stderr}");
}

#[test]
fn stop_exit_codes_are_distinct() {
    let bugcheck = Stop::BugCheck(kernel::BugCheck { code: 0, parameters: [0; 4], caller: 0, processor: 0 });
    let not_implemented = Stop::NotImplemented { dll: "a".into(), name: "b".into(), caller: 0 };
    assert_eq!(bugcheck.exit_code(), BUGCHECK_EXIT_CODE);
    assert_eq!(not_implemented.exit_code(), NOT_IMPLEMENTED_EXIT_CODE);
    assert_ne!(BUGCHECK_EXIT_CODE, NOT_IMPLEMENTED_EXIT_CODE);
}

#[test]
fn export_called_with_no_current_world_stops_the_run() {
    let output = in_child_process("export_called_with_no_current_world_stops_the_run", || {
        let table = ExportTable::with_kernel();
        let ke_get_current_irql: signatures::KeGetCurrentIrql =
            bound(&table, "ntoskrnl.exe", "KeGetCurrentIrql");
        // SAFETY: a host export; calling it with no world entered is the misuse under test.
        unsafe { ke_get_current_irql() };
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(SIMULATOR_FAULT_EXIT_CODE), "{stderr}");
    assert!(
        stderr.contains("ntoskrnl.exe!KeGetCurrentIrql was called on a thread with no current world"),
        "{stderr}"
    );
}

#[test]
fn the_log_renders_recorded_arguments_in_order_across_chunks() {
    use ndis_sim::kernel::{Args, Call};
    const WORDS: Call = Call::new("sim", "Words");
    fn render(a: &Args<'_>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (0..7).map(|i| a.word(i)).take_while(|w| *w != 0).try_for_each(|w| write!(f, "{w} "))
    }
    let world = World::new(2);
    world.set_irql(1, DISPATCH_LEVEL);
    // Enough entries and words to fill several chunks, up to the huge ones, with word counts
    // that leave a chunk's tail unused now and then.
    let entries = 300_000u64;
    for i in 0..entries {
        let words: Vec<u64> = (1..=i % 7).map(|k| i * 10 + k).collect();
        if i % 1_000 == 999 {
            world.advance_time(3);
        }
        world.log_words((i % 2) as usize, &WORDS, &words, render);
        if i % 50_000 == 0 {
            world.log_call(0, "sim", "Text", format!("text {i}"));
        }
    }
    let log = world.log();
    assert_eq!(log.len() as u64, entries + 6);
    assert_eq!(world.call_count("Words") as u64, entries);
    let mut i = 0;
    for (sequence, entry) in log.iter().enumerate() {
        assert_eq!(entry.sequence, sequence as u64);
        if entry.name == "Text" {
            assert_eq!(entry.detail, format!("text {}", i - 1));
            continue;
        }
        let expected: String = (1..=i % 7).map(|k| format!("{} ", i * 10 + k)).collect();
        assert_eq!(entry.detail, expected, "entry {sequence}");
        assert_eq!(entry.irql, if i % 2 == 1 { DISPATCH_LEVEL } else { PASSIVE_LEVEL });
        assert_eq!(entry.time, (i + 1) / 1_000 * 3, "entry {sequence}");
        i += 1;
    }
}
