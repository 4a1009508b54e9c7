//! Trapping the driver's accesses to special-pool guard pages and freed special pool: a
//! `SIGSEGV`/`SIGBUS` handler that turns such a fault into a violation and a stop.
//!
//! Read: "Special Pool" (devtest/special-pool), bug checks 0xD6 and 0xCC on Microsoft Learn;
//! `sigaction(2)`, `signal-safety(7)`.
//!
//! Flow: [`install`] (once per process, on the first special-pool allocation) installs
//! [`on_fault`] for `SIGSEGV` and `SIGBUS` with `SA_SIGINFO | SA_ONSTACK`, keeping the handlers
//! installed before (Rust's stack-overflow handler). On a fault, the handler reads only the
//! arena's bounds (two atomics, see [`special_pool::ARENA`]): a fault outside the arena is not
//! ours and goes to the previous handler (or to the default action). A fault inside it cannot be
//! resumed — the faulting frames are the driver's, which carry Windows unwind data only — so the
//! handler rewrites the interrupted context instead: RIP to [`trampoline`], RSP below the
//! interrupted frame's red zone, realigned as at a call (16-byte aligned minus 8, the faulting
//! RIP stored as the return address), and the fault address, RIP and page-fault error code in the
//! first three argument registers. When the handler returns, the thread runs [`trampoline`] in
//! ordinary context: it looks up the block (tag, allocation number, where it was allocated and
//! freed), names the faulting instruction (`partyline.sys+0x1a2b`, or a code range registered
//! with [`register_code`]), reports the violation in the thread's current world and stops the run
//! with [`Stop::SpecialPool`] through [`kernel::fatal`].
//!
//! What the handler expects: the faulting thread is the one running the driver, with its current
//! world entered ([`kernel::current`]); it may have an alternate signal stack (Rust's threads
//! do) or not (then the handler runs on the thread's stack, which is fine: our faults are never
//! stack overflows). Every access to the arena is treated as ours, whoever makes it: besides the
//! image, a CRT shim (`memcpy`) called by the driver, or the simulator itself reading driver
//! memory it failed to check (then the report names host code, not an image offset).
//!
//! [`Stop::SpecialPool`]: crate::kernel::Stop::SpecialPool
//! [`kernel::fatal`]: crate::kernel::fatal
//! [`kernel::current`]: crate::kernel::current

use std::sync::{Mutex, Once, OnceLock};

use crate::kernel::{self, Stop};
use crate::ndis::memory::tag_name;
use crate::ndis::{rules, special_pool};

/// The handlers installed before ours: `SIGSEGV`, `SIGBUS`.
static PREVIOUS: OnceLock<[libc::sigaction; 2]> = OnceLock::new();
static INSTALL: Once = Once::new();

/// Code ranges that are not loaded images but stand for driver code (tests map a few
/// instructions and register them): (base, size, name).
static CODE: Mutex<Vec<(usize, usize, String)>> = Mutex::new(Vec::new());

/// Names `[base, base + size)` as driver code `name` in special-pool reports (for code that is
/// not a loaded image, e.g. a test's misbehaving instructions).
pub fn register_code(name: &str, base: usize, size: usize) {
    CODE.lock().unwrap_or_else(|p| p.into_inner()).push((base, size, name.to_owned()));
}

/// `partyline.sys+0x1a2b`, `name+0x10` for registered code, or `host code at 0x...`.
fn describe_code(address: usize) -> String {
    if let Some((base, name)) = crate::loader::image_containing(address) {
        return format!("{name}+{:#x}", address - base);
    }
    let code = CODE.lock().unwrap_or_else(|p| p.into_inner());
    match code.iter().find(|(base, size, _)| (*base..base + size).contains(&address)) {
        Some((base, _, name)) => format!("{name}+{:#x}", address - base),
        None => {
            format!("host code at {address:#x} (a CRT shim or export called by the driver, or the simulator)")
        }
    }
}

/// Installs the fault handler (once per process).
pub fn install() {
    INSTALL.call_once(|| {
        let mut previous: [libc::sigaction; 2] =
            // SAFETY: sigaction is plain data; all-zero is a valid (default) value.
            unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_fault as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `sa_mask` is a valid sigset_t to clear.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: reads the current handlers into `previous` (valid out-pointers).
        unsafe {
            libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut previous[0]);
            libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous[1]);
        }
        // Published before ours is installed: the handler finds them whenever it runs.
        let _ = PREVIOUS.set(previous);
        // SAFETY: installs `on_fault`, which only does async-signal-safe work.
        unsafe {
            libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut());
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        }
    });
}

/// The signal handler: async-signal-safe (atomics and register writes only).
extern "C" fn on_fault(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for a SA_SIGINFO handler.
    let address = unsafe { (*info).si_addr() } as usize;
    if !special_pool::ARENA.contains(address) || context.is_null() {
        chain(signal, info, context);
        return;
    }
    // SAFETY: for a SA_SIGINFO handler `context` is the interrupted thread's ucontext_t.
    let gregs = unsafe { &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs };
    let rip = gregs[libc::REG_RIP as usize] as usize;
    let rsp = gregs[libc::REG_RSP as usize] as usize;
    let error = gregs[libc::REG_ERR as usize] as usize;
    // Below the 128-byte red zone of the interrupted frame, aligned as right after a call.
    let new_rsp = ((rsp - 256) & !15) - 8;
    // SAFETY: the slot lies on the interrupted thread's stack below everything in use there.
    unsafe { (new_rsp as *mut usize).write(rip) };
    gregs[libc::REG_RSP as usize] = new_rsp as i64;
    gregs[libc::REG_RIP as usize] = trampoline as *const () as usize as i64;
    gregs[libc::REG_RDI as usize] = address as i64;
    gregs[libc::REG_RSI as usize] = rip as i64;
    gregs[libc::REG_RDX as usize] = error as i64;
}

/// Passes a fault that is not ours to the handler installed before, or to the default action.
fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let index = usize::from(signal == libc::SIGBUS);
    let previous = PREVIOUS.get().map(|p| p[index]);
    match previous {
        Some(p) if p.sa_sigaction != libc::SIG_DFL && p.sa_sigaction != libc::SIG_IGN => {
            if p.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous SA_SIGINFO handler, called as the kernel would.
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(p.sa_sigaction) };
                handler(signal, info, context);
            } else {
                // SAFETY: the previous plain handler, called as the kernel would.
                let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(p.sa_sigaction) };
                handler(signal);
            }
        }
        _ => {
            // Default action: restore it and return; the access faults again and takes it.
            // SAFETY: sigaction is plain data; all-zero with SIG_DFL (0) is the default action.
            let default: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: sigaction is async-signal-safe.
            unsafe { libc::sigaction(signal, &default, std::ptr::null_mut()) };
        }
    }
}

/// Where a trapped fault resumes, in ordinary context on the faulting thread: reports and stops.
extern "C" fn trampoline(address: usize, rip: usize, error: usize) -> ! {
    let access = if error & 2 != 0 { "write" } else { "read" };
    let at = describe_code(rip);
    let (rule, what) = match special_pool::slot_of(address) {
        Some(slot) => {
            let block = format!("'{}' block #{} ({} bytes)", tag_name(slot.tag), slot.number, slot.length);
            let allocated = crate::loader::describe_address(slot.allocated_by);
            match slot.freed_by {
                Some(freed_by) => (
                    rules::SPECIAL_POOL_FREED,
                    format!(
                        "{access} at {address:#x} = freed {block} + {:#x}, allocated from {allocated}, freed from {}",
                        address.wrapping_sub(slot.address),
                        crate::loader::describe_address(freed_by)
                    ),
                ),
                None => (
                    rules::SPECIAL_POOL_BEYOND_END,
                    format!(
                        "{access} at {address:#x} = {} bytes past the end of {block}, allocated from {allocated}",
                        address.wrapping_sub(slot.address + slot.length)
                    ),
                ),
            }
        }
        None => (
            rules::SPECIAL_POOL_FREED,
            format!("{access} at {address:#x}: special pool released after free (or its registry was busy)"),
        ),
    };
    let detail = format!("instruction at {at}: {what}");
    let current = kernel::current();
    if let Some((world, _)) = &current {
        crate::verifier::report(world, rule, at.clone(), detail.clone());
    }
    kernel::fatal(current.as_ref().map(|(world, _)| &**world), Stop::SpecialPool { rule: rule.name, detail })
}
