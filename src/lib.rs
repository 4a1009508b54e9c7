//! `partyline.sys`: an NDIS 6 connection-oriented (CoNDIS) client that makes ATM UNI 3.1
//! point-to-multipoint calls and manages their parties.
//!
//! This crate is the thin glue between NDIS and the state machines of `partyline-core`: every
//! `Protocol*` entry point turns its context back into an id, calls the engine under the one spin
//! lock, and lets [`global::drive`] make the requests the engine asks for with the lock released.
//! Built for the host it is empty; the kernel image is built for `x86_64-pc-windows-msvc`
//! (see `crates/partyline-image`).
#![cfg_attr(target_os = "windows", no_std)]

#[cfg(target_os = "windows")]
mod addresses;
#[cfg(target_os = "windows")]
mod binding;
#[cfg(target_os = "windows")]
mod client;
#[cfg(target_os = "windows")]
mod device;
#[cfg(target_os = "windows")]
mod entry;
#[cfg(target_os = "windows")]
mod global;
#[cfg(target_os = "windows")]
mod perform;
#[cfg(target_os = "windows")]
mod pool;

/// Bugcheck code of a panic in partyline.sys ("PL" + 1). Parameter 1 is the source line,
/// parameter 2 the column of the panic.
pub const PARTYLINE_PANIC_BUGCHECK: u32 = 0x504C_0001;

#[cfg(all(target_os = "windows", not(test)))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let (line, column) = info.location().map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
    // SAFETY: KeBugCheckEx may be called at any IRQL and never returns; stopping the machine is
    // the documented way for a driver to stop on an unrecoverable error.
    unsafe { ndis_sys::KeBugCheckEx(PARTYLINE_PANIC_BUGCHECK, line, column, 0, 0) }
}

/// The compiler emits a reference to `_fltused` for any floating-point use; the kernel has no C
/// runtime to provide it (windows-drivers-rs defines it the same way).
#[cfg(target_os = "windows")]
#[no_mangle]
#[used]
pub static _fltused: i32 = 0;

/// The language-specific exception handler named by the unwind tables of the precompiled
/// `core` (built with `panic=unwind` for this target). partyline is `panic=abort` and raises no
/// exceptions, so no frame of it or of `core` ever has anything to handle: answer
/// `ExceptionContinueSearch` (1), as a frame without handlers does.
#[cfg(target_os = "windows")]
#[no_mangle]
pub extern "C" fn __CxxFrameHandler3(
    _exception_record: *mut core::ffi::c_void,
    _establisher_frame: *mut core::ffi::c_void,
    _context_record: *mut core::ffi::c_void,
    _dispatcher_context: *mut core::ffi::c_void,
) -> i32 {
    1
}
