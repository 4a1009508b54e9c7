//! Special pool (`FaultPolicy::special_pool`): a driver access past a block's end or to a freed
//! block is trapped and stops the run naming the rule, the instruction, the access and the block;
//! faults that are not special pool's still reach the handlers installed before; the real
//! `partyline.sys` runs clean under it.
//!
//! The misbehaving accesses are made by a few instructions of machine code mapped executable and
//! registered as driver code (`fault_trap::register_code`, as "misbehaving.sys"): the faulting
//! instruction is then really outside the test's Rust code, at a known offset, as it would be in
//! an image. The blocks come from the simulator's own `NdisAllocateMemoryWithTagPriority`.

mod common;

use std::ffi::c_void;

use common::in_child_process;
use ndis_sim::kernel::SPECIAL_POOL_EXIT_CODE;
use ndis_sim::ndis::{rules, FaultPolicy};
use ndis_sim::sim::{export_table, SimConfig, Simulation};
use ndis_sys::signatures as sig;

const TAG: u32 = u32::from_le_bytes(*b"PlTs");

fn export<T: Copy>(name: &str) -> T {
    let address = export_table().get("ndis.sys", name).unwrap_or_else(|| panic!("{name}")).address;
    // SAFETY: T is the `ndis_sys::signatures` type of `name`, registered by `export!` against it.
    unsafe { std::mem::transmute_copy::<usize, T>(&address) }
}

/// The misbehaving driver code: `write(p, v)` at +0x0 (`mov [rcx], dl; ret`) and `read(p)` at
/// +0x10 (`movzx eax, byte [rcx]; ret`).
struct Misbehaving {
    write: extern "win64" fn(*mut u8, u8),
    read: extern "win64" fn(*const u8) -> u8,
}

fn misbehaving() -> Misbehaving {
    let mut code = [0xCC_u8; 0x20];
    code[..3].copy_from_slice(&[0x88, 0x11, 0xC3]);
    code[0x10..0x14].copy_from_slice(&[0x0F, 0xB6, 0x01, 0xC3]);
    // SAFETY: a fresh private anonymous page, written then made executable; never unmapped.
    let base = unsafe {
        let page = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(page, libc::MAP_FAILED);
        std::ptr::copy_nonoverlapping(code.as_ptr(), page.cast::<u8>(), code.len());
        assert_eq!(libc::mprotect(page, 4096, libc::PROT_READ | libc::PROT_EXEC), 0);
        page as usize
    };
    ndis_sim::fault_trap::register_code("misbehaving.sys", base, 4096);
    // SAFETY: the instructions above follow the win64 convention of these signatures.
    unsafe {
        Misbehaving {
            write: std::mem::transmute::<usize, extern "win64" fn(*mut u8, u8)>(base),
            read: std::mem::transmute::<usize, extern "win64" fn(*const u8) -> u8>(base + 0x10),
        }
    }
}

fn special() -> SimConfig {
    SimConfig {
        faults: FaultPolicy { special_pool: true, ..FaultPolicy::synchronous() },
        ..SimConfig::default()
    }
}

fn allocate(length: u32) -> *mut u8 {
    let allocate: sig::NdisAllocateMemoryWithTagPriority = export("NdisAllocateMemoryWithTagPriority");
    // SAFETY: the simulator's export, at PASSIVE with a non-zero tag.
    let block = unsafe { allocate(std::ptr::null_mut(), length, TAG, 16) };
    assert!(!block.is_null());
    block.cast()
}

fn free(block: *mut u8, length: u32) {
    let free: sig::NdisFreeMemory = export("NdisFreeMemory");
    // SAFETY: the simulator's export, with a block it handed out.
    unsafe { free(block.cast::<c_void>(), length, 0) };
}

/// Runs `misbehave` in a child process on a special-pool simulation and returns its stderr,
/// asserting the special-pool stop.
fn stopped(test: &str, misbehave: impl FnOnce(&Misbehaving)) -> String {
    let output = in_child_process(test, || {
        let sim = Simulation::without_image(special());
        let _entered = sim.world().enter(0);
        misbehave(&misbehaving());
    });
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(SPECIAL_POOL_EXIT_CODE), "{stderr}");
    stderr
}

#[test]
fn proves_specialpool_beyondendofallocation() {
    let stderr = stopped("proves_specialpool_beyondendofallocation", |driver| {
        let block = allocate(64);
        // Inside the block: fine.
        (driver.write)(block.wrapping_add(63), 1);
        (driver.write)(block.wrapping_add(64), 1);
    });
    assert!(stderr.contains("*** STOP: special pool (SpecialPool_BeyondEndOfAllocation)"), "{stderr}");
    assert!(
        stderr.contains("instruction at misbehaving.sys+0x0: write at 0x")
            && stderr.contains("= 0 bytes past the end of 'PlTs' block #1 (64 bytes), allocated from 0x"),
        "{stderr}"
    );
}

#[test]
fn proves_specialpool_accesstofreedpool() {
    let stderr = stopped("proves_specialpool_accesstofreedpool", |driver| {
        let first = allocate(24);
        let second = allocate(100);
        free(first, 24);
        (driver.write)(second, 7);
        (driver.write)(first.wrapping_add(5), 1);
    });
    assert!(stderr.contains("*** STOP: special pool (SpecialPool_AccessToFreedPool)"), "{stderr}");
    assert!(
        stderr.contains("instruction at misbehaving.sys+0x0: write at 0x")
            && stderr.contains("= freed 'PlTs' block #1 (24 bytes) + 0x5, allocated from 0x")
            && stderr.contains(", freed from 0x"),
        "{stderr}"
    );
}

#[test]
fn reading_a_freed_block_is_trapped_as_a_read() {
    let stderr = stopped("reading_a_freed_block_is_trapped_as_a_read", |driver| {
        let block = allocate(4000);
        free(block, 4000);
        (driver.read)(block);
    });
    assert!(
        stderr.contains("instruction at misbehaving.sys+0x10: read at 0x")
            && stderr.contains("= freed 'PlTs' block #1 (4000 bytes) + 0x0"),
        "{stderr}"
    );
}

#[test]
fn a_write_into_the_slack_before_the_guard_page_is_found_at_free() {
    let sim = Simulation::without_image(special());
    let _entered = sim.world().enter(0);
    let driver = misbehaving();
    let block = allocate(61);
    assert_eq!(block as usize % 16, 0, "16-byte aligned");
    assert_eq!((block as usize + 64) % 4096, 0, "ends 3 slack bytes before the guard page");
    (driver.write)(block.wrapping_add(62), 0);
    assert!(sim.violations().is_empty());
    free(block, 61);
    let violations = sim.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_eq!(violations[0].rule, rules::SPECIAL_POOL_BEYOND_END);
    assert!(violations[0].detail.contains("slack byte 1 past its end"), "{violations:#?}");
}

#[test]
fn a_double_free_in_special_pool_is_reported() {
    let sim = Simulation::without_image(special());
    let _entered = sim.world().enter(0);
    let block = allocate(32);
    free(block, 32);
    free(block, 32);
    let violations = sim.violations();
    assert!(
        violations.iter().any(|v| v.rule == rules::NDIS_FREE_MEMORY && v.detail.contains("double free")),
        "{violations:#?}"
    );
}

#[test]
fn faults_outside_special_pool_reach_the_previous_handlers() {
    // A plain bad access still ends the process with SIGSEGV...
    let output = in_child_process("faults_outside_special_pool_reach_the_previous_handlers", || {
        ndis_sim::fault_trap::install();
        (misbehaving().read)(8 as *const u8);
    });
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "{output:?}");
}

#[test]
fn rusts_stack_overflow_report_still_works() {
    fn deep(n: u64) -> u64 {
        let pad = [n; 512];
        std::hint::black_box(&pad);
        if n == 0 {
            0
        } else {
            deep(n - 1) + std::hint::black_box(pad[3])
        }
    }
    let output = in_child_process("rusts_stack_overflow_report_still_works", || {
        ndis_sim::fault_trap::install();
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| deep(u64::MAX))
            .expect("spawn")
            .join()
            .ok();
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has overflowed its stack"), "{stderr}");
}

#[test]
fn the_real_driver_runs_clean_under_special_pool() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for path in files {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(&path).expect("read");
        let mut scenario = ndis_sim::scenario::Scenario::parse(&text, &origin).expect("parses");
        scenario.faults.special_pool = Some(true);
        for seed in [None, Some(1), Some(2), Some(3), Some(42)] {
            let before = ndis_sim::ndis::special_pool::allocations();
            let report = ndis_sim::scenario::run(&scenario, partyline_image::image(), seed).expect("loads");
            assert!(
                report.is_clean() && report.leaks.is_empty(),
                "{origin} seed {:?}: {:#?}\n{}",
                seed,
                report.violations,
                report.timeline()
            );
            assert!(ndis_sim::ndis::special_pool::allocations() > before, "{origin}: special pool used");
        }
    }
}
