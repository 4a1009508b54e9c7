//! Raw NDIS 6 CoNDIS client, ATM (UNI 3.1) and kernel bindings for x86-64: types, constants, imports.
//!
//! No logic lives here. Everything the driver (`partyline.sys`) and the simulator (`ndis-sim`)
//! share about the binary interface is declared once, in this crate:
//!
//! - [`base`]: NDIS base types (`NDIS_STATUS`, `NDIS_HANDLE`, `NDIS_OBJECT_HEADER`, strings,
//!   spin lock, event), object types and revisions, `NDIS_MEDIUM`, `EX_POOL_PRIORITY`.
//! - [`status`]: every `NDIS_STATUS_*` code of the reference, and the `STATUS_*` NTSTATUS codes.
//! - [`protocol`]: NDIS 6 protocol registration and binding (`NDIS_PROTOCOL_DRIVER_CHARACTERISTICS`,
//!   `NDIS_BIND_PARAMETERS`, `NDIS_OPEN_PARAMETERS`, PnP events) and their handler types.
//! - [`co`]: CoNDIS client structures (`NDIS_CO_CLIENT_OPTIONAL_HANDLERS`, `CO_CALL_PARAMETERS`, …)
//!   and the `ProtocolCo*` / `ProtocolCl*` handler types.
//! - [`atm`]: the UNI 3.1 surface of `atm.h` (`Q2931_CALLMGR_PARAMETERS`, information elements,
//!   `ATM_MEDIA_PARAMETERS`, cause codes).
//! - [`kernel`]: the kernel pieces a protocol driver needs for `DriverEntry`, unload and a control
//!   device (`DRIVER_OBJECT`, `IRP`, `IO_STACK_LOCATION`, security descriptors, IOCTL codes).
//! - [`imports`]: the `imports!` list of every routine the image imports, which generates the
//!   `raw-dylib` extern blocks (Windows targets only), [`signatures`] and [`IMPORTS`].
//!
//! ## Conventions
//! - NDIS/WDK names are kept exactly; `P*` pointer typedefs are not reproduced (use `*mut T`).
//! - Every function *type* is `unsafe extern "win64" fn`. On x86-64 Windows that is the system
//!   convention; on Linux it is the convention the image really uses, so the simulator can call the
//!   driver's handlers and host implementations of imports can be handed to the image.
//! - Handler slots in NDIS tables are `Option<fn>` (`None` is NULL). NDIS requires some slots to be
//!   non-NULL (every `NDIS_CO_CLIENT_OPTIONAL_HANDLERS` slot, the bind/unbind/open/close handlers);
//!   `Option` keeps the tables constructible with `None` where NDIS allows NULL and lets the
//!   simulator detect a NULL slot instead of jumping to address 0. The documented requirement is
//!   stated on each table.
//! - Every struct is `#[repr(C)]` with `const` size and offset assertions for x64, whose expected
//!   numbers come from `shared/ndis/condis-reference.md`, `shared/ndis/atm-call-params.md` and
//!   Microsoft public symbols (cited at each assertion).
//! - Every `NDIS_SIZEOF_*_REVISION_n` is `RTL_SIZEOF_THROUGH_FIELD` (offset of the last field plus
//!   its size), computed with [`sizeof_through_field!`], never `size_of`.
#![no_std]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals, clippy::upper_case_acronyms)]

/// `const` x64 layout assertions: `layout!(T, size 0x28; Field == 0x00, Other.Nested == 0x08)`.
///
/// Expands to `const _: () = assert!(core::mem::offset_of!(T, F) == N);` items (and one for
/// `size_of`), compiled only when `target_pointer_width = "64"`.
#[macro_export]
macro_rules! layout {
    ($t:ty, size $size:expr; $($($f:ident).+ == $off:expr),* $(,)?) => {
        #[cfg(target_pointer_width = "64")]
        const _: () = assert!(::core::mem::size_of::<$t>() == $size);
        $(
            #[cfg(target_pointer_width = "64")]
            const _: () = assert!(::core::mem::offset_of!($t, $($f).+) == $off);
        )*
    };
}

/// `RTL_SIZEOF_THROUGH_FIELD(T, F)`: `FIELD_OFFSET(T, F) + sizeof(((T*)0)->F)`, as the WDK defines
/// it (SDK `ntdef.h`). Tail padding after `F` is excluded, which is the whole point: for example
/// `NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1` is 0x34 on x64 although `sizeof` is 0x38.
#[macro_export]
macro_rules! sizeof_through_field {
    ($t:ty, $f:ident) => {
        ::core::mem::offset_of!($t, $f) + $crate::size_of_field(|s: &$t| &s.$f)
    };
}

/// The size of a field, named by a projection closure (`|s: &T| &s.Field`); used by
/// [`sizeof_through_field!`] so that no value of `T` is needed.
pub const fn size_of_field<T, F>(_projection: fn(&T) -> &F) -> usize {
    core::mem::size_of::<F>()
}

pub mod atm;
pub mod base;
pub mod co;
pub mod imports;
pub mod kernel;
pub mod protocol;
pub mod status;

pub use atm::*;
pub use base::*;
pub use co::*;
pub use imports::*;
pub use kernel::*;
pub use protocol::*;
pub use status::*;
