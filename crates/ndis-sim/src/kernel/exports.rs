//! The ntoskrnl.exe foundation exports: `KeGetCurrentIrql`, `KeQueryPerformanceCounter`,
//! `KeBugCheckEx` (with its assembly entry), the compiler-support imports (`__chkstk`, `memcpy`,
//! `memmove`, `memset`, `memcmp`) and where a not-implemented import's trap lands.
//!
//! Read: "KeGetCurrentIrql", "KeBugCheckEx" and "KeQueryPerformanceCounter" on Microsoft Learn.
//!
//! Flow: [`register`] binds each export by name; an export finds its world through
//! [`with_current`]; `KeBugCheckEx` and a not-implemented trap end the run through [`fatal`].

use super::{current, fatal, with_current, BugCheck, Call, Stop};
use crate::export;
use crate::exports::{ExportTable, TrapRecord};

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
