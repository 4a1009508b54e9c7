//! ndis-sim: loads `partyline.sys` into a Linux process and runs it against simulated kernel
//! services.
//!
//! - [`loader`]: maps a PE32+ kernel image, relocates it and binds its imports.
//! - [`exports`]: the `(dll, name) -> host function` table imports are bound from, and the
//!   [`export!`] macro that registers a host implementation checked against the import's signature.
//! - [`kernel`]: the simulated world (processors, IRQL, virtual time, call log, stops) and the
//!   ntoskrnl.exe foundation exports (`KeGetCurrentIrql`, `KeBugCheckEx`, `__chkstk`, `memcpy`...).
//! - [`ndis`], [`io`], [`verifier`], [`rules`], [`sim`], [`scenario`]: the simulated NDIS and call
//!   manager, the I/O manager, the record of violations, the catalogue of every rule, the harness,
//!   TOML scenarios.
//! - `chunk`, `spin`, `fast_hash` (internal): the append-only buffers, the table lock and the
//!   hasher the hot paths are built on (see docs/BENCHMARKS.md).
//!
//! Only x86-64 Linux hosts are supported: the image is x86-64 machine code run in place.

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!("ndis-sim runs x86-64 kernel images in place and needs an x86-64 Linux host");

pub(crate) mod chunk;
pub(crate) mod ddi;
pub mod driver_state;
pub mod exports;
pub(crate) mod fast_hash;
pub mod fault_trap;
pub mod io;
pub mod kernel;
pub mod loader;
pub mod machine;
pub mod ndis;
pub mod rng;
pub mod rules;
pub mod scenario;
pub mod sim;
pub(crate) mod spin;
pub(crate) mod thunk;
pub mod verifier;
pub mod world_local;

#[doc(hidden)]
pub use ndis_sys as __ndis_sys;

pub use exports::{Export, ExportKind, ExportTable, Win64Fn};
pub use io::{Caller, IoError, IoManager};
pub use kernel::{Irql, World};
pub use loader::{Image, LoadError};
