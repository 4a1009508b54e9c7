//! The DDI boundary: the image reaches every export through a thunk that makes the export's
//! entry and its return scheduling points of the machine ([`crate::machine::point`]) and records
//! the call in the context's call list (what a deadlock report shows), without the export's own
//! code knowing.
//!
//! Read: "x64 calling convention" and "x64 stack usage" on Microsoft Learn (what a thunk must
//! preserve: RCX, RDX, R8, R9 and XMM0–XMM3 carry arguments, arguments 5 on are on the stack
//! above the 32-byte home area, RAX/XMM0 carry the result, RBX is callee-saved).
//!
//! Flow: [`wrap`] makes, once per host function per process, a stub in an executable page:
//! `mov r11, record; jmp [rip]; common`. The common thunk (assembly below) saves the argument
//! registers, calls [`export_entered`] with the record, copies twelve stack arguments into a new
//! frame (the most any DDI takes is 16), calls the export, keeps its result, calls
//! [`export_returned`], and returns the result. The driver's return address stays where it was,
//! one frame up, so fault-site scans still find it. A few exports are not wrapped: the
//! compiler-support routines (`__chkstk` is not a function call, `memcpy` and its kin are not
//! DDIs) and `KeBugCheckEx` (which reads its caller from the stack and never returns).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Exports reached without a thunk (see the module documentation).
pub(crate) const UNWRAPPED: &[&str] = &["__chkstk", "memcpy", "memmove", "memset", "memcmp", "KeBugCheckEx"];

/// What a thunk knows: the export's host function and its name.
#[repr(C)]
pub(crate) struct ThunkRecord {
    /// The host function (first field: the common thunk calls `[rbx]`).
    real: usize,
    name: &'static str,
}

/// Size of one stub in bytes.
const STUB_SIZE: usize = 32;

/// The address the image should call for `name` implemented at `real`: a stub into the common
/// thunk, made once per `real` and never freed (an image bound to it may outlive the table).
pub(crate) fn wrap(name: &str, real: usize) -> usize {
    if UNWRAPPED.contains(&name) || crate::kernel::reads_caller_frame(real) {
        return real;
    }
    static STUBS: OnceLock<Mutex<HashMap<usize, usize>>> = OnceLock::new();
    let mut stubs = STUBS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(stub) = stubs.get(&real) {
        return *stub;
    }
    let record: &'static ThunkRecord =
        Box::leak(Box::new(ThunkRecord { real, name: Box::leak(name.to_owned().into_boxed_str()) }));
    let mut code = [0xCC_u8; STUB_SIZE];
    code[0..2].copy_from_slice(&[0x49, 0xBB]); // mov r11, imm64
    code[2..10].copy_from_slice(&(record as *const ThunkRecord as u64).to_le_bytes());
    code[10..16].copy_from_slice(&[0xFF, 0x25, 0, 0, 0, 0]); // jmp [rip+0]
    let common = ndis_sim_export_thunk as *const () as usize;
    code[16..24].copy_from_slice(&(common as u64).to_le_bytes());
    let stub = executable(&code);
    stubs.insert(real, stub);
    stub
}

/// Copies `code` into an executable page of its own: written while read-write, then made
/// read-execute, and never written again (another thread may be running a stub of any page
/// already handed out). A page per stub: there are a few dozen exports.
fn executable(code: &[u8; STUB_SIZE]) -> usize {
    let len = libc_page_size();
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing aliases no
    // Rust object; checked against MAP_FAILED before use.
    let area = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(area != libc::MAP_FAILED, "mmap for an export thunk failed");
    // SAFETY: `area` is the fresh read-write mapping above, at least STUB_SIZE bytes, that
    // nothing else references; making it read-execute ends its writable life before its address
    // is handed out.
    unsafe {
        std::ptr::copy_nonoverlapping(code.as_ptr(), area.cast::<u8>(), STUB_SIZE);
        let result = libc::mprotect(area, len, libc::PROT_READ | libc::PROT_EXEC);
        assert_eq!(result, 0, "mprotect of an export thunk failed");
    }
    area as usize
}

/// The driver's return address of the call into the export running on this thread, if `seen`
/// (the return address an export found on its stack) is the thunk's own; else `seen`.
pub(crate) fn driver_caller(seen: usize) -> usize {
    let thunk = ndis_sim_export_thunk as *const () as usize;
    if (thunk..thunk + THUNK_LEN).contains(&seen) {
        current_caller().unwrap_or(seen)
    } else {
        seen
    }
}

/// The driver's return address of the call into the export running on this thread (innermost),
/// as its thunk recorded it.
pub(crate) fn current_caller() -> Option<usize> {
    crate::machine::current_caller()
}

/// Bytes of the common thunk (an upper bound; it is 300 or so).
const THUNK_LEN: usize = 0x200;

/// Entry to an export called from `caller`: a scheduling point, then the call is on the
/// context's list.
extern "win64" fn export_entered(record: &ThunkRecord, caller: usize) {
    crate::machine::point();
    crate::machine::push_export(record.name, caller);
}

/// Return from an export: off the list, then a scheduling point.
extern "win64" fn export_returned(_record: &ThunkRecord) {
    crate::machine::pop_call();
    crate::machine::point();
}

// The common thunk. At entry: R11 = record, RSP = 8 mod 16 (return address on top), arguments
// in RCX, RDX, R8, R9 (or XMM0–3) and at [entry RSP + 0x28 + 8·i] for argument 5 + i.
// Frame (after push rbp; push rbx; sub rsp, 0xE8 — RSP 16-byte aligned at every call):
//   [rsp+0x00..0x20)  home area for callees
//   [rsp+0x20..0x80)  arguments 5..16 for the export
//   [rsp+0x80..0xA0)  RCX, RDX, R8, R9
//   [rsp+0xA0..0xE0)  XMM0..XMM3 (XMM0 again for the result)
//   [rsp+0xE0]        RAX of the result
// With RBP = entry RSP - 8, argument 5 + i is at [rbp + 0x30 + 8·i].
std::arch::global_asm!(
    ".pushsection .text.ndis_sim_thunk,\"ax\",@progbits",
    ".globl ndis_sim_export_thunk",
    ".type ndis_sim_export_thunk,@function",
    "ndis_sim_export_thunk:",
    "    push rbp",
    "    mov rbp, rsp",
    "    push rbx",
    "    sub rsp, 0xE8",
    "    mov rbx, r11",
    "    mov [rsp + 0x80], rcx",
    "    mov [rsp + 0x88], rdx",
    "    mov [rsp + 0x90], r8",
    "    mov [rsp + 0x98], r9",
    "    movdqu [rsp + 0xA0], xmm0",
    "    movdqu [rsp + 0xB0], xmm1",
    "    movdqu [rsp + 0xC0], xmm2",
    "    movdqu [rsp + 0xD0], xmm3",
    "    mov rcx, rbx",
    "    mov rdx, [rbp + 8]",
    "    call {entered}",
    "    mov rax, [rbp + 0x30]",
    "    mov [rsp + 0x20], rax",
    "    mov rax, [rbp + 0x38]",
    "    mov [rsp + 0x28], rax",
    "    mov rax, [rbp + 0x40]",
    "    mov [rsp + 0x30], rax",
    "    mov rax, [rbp + 0x48]",
    "    mov [rsp + 0x38], rax",
    "    mov rax, [rbp + 0x50]",
    "    mov [rsp + 0x40], rax",
    "    mov rax, [rbp + 0x58]",
    "    mov [rsp + 0x48], rax",
    "    mov rax, [rbp + 0x60]",
    "    mov [rsp + 0x50], rax",
    "    mov rax, [rbp + 0x68]",
    "    mov [rsp + 0x58], rax",
    "    mov rax, [rbp + 0x70]",
    "    mov [rsp + 0x60], rax",
    "    mov rax, [rbp + 0x78]",
    "    mov [rsp + 0x68], rax",
    "    mov rax, [rbp + 0x80]",
    "    mov [rsp + 0x70], rax",
    "    mov rax, [rbp + 0x88]",
    "    mov [rsp + 0x78], rax",
    "    mov rcx, [rsp + 0x80]",
    "    mov rdx, [rsp + 0x88]",
    "    mov r8, [rsp + 0x90]",
    "    mov r9, [rsp + 0x98]",
    "    movdqu xmm0, [rsp + 0xA0]",
    "    movdqu xmm1, [rsp + 0xB0]",
    "    movdqu xmm2, [rsp + 0xC0]",
    "    movdqu xmm3, [rsp + 0xD0]",
    "    call [rbx]",
    "    mov [rsp + 0xE0], rax",
    "    movdqu [rsp + 0xA0], xmm0",
    "    mov rcx, rbx",
    "    call {returned}",
    "    mov rax, [rsp + 0xE0]",
    "    movdqu xmm0, [rsp + 0xA0]",
    "    add rsp, 0xE8",
    "    pop rbx",
    "    pop rbp",
    "    ret",
    ".size ndis_sim_export_thunk, . - ndis_sim_export_thunk",
    ".popsection",
    entered = sym export_entered,
    returned = sym export_returned,
);

extern "win64" {
    /// The common thunk (assembly above). Not callable from Rust: it expects R11.
    fn ndis_sim_export_thunk();
}

/// The host's page size (4096 if `sysconf` cannot tell).
pub(crate) fn libc_page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}
