//! partyline's state machines: bindings, address families, point-to-multipoint calls and their
//! parties, as plain Rust with no `unsafe`, driven by the driver glue in `partyline.sys` and
//! tested on the host against a fake NDIS. See [`engine`] for the flow.
#![no_std]
#![forbid(unsafe_code)]

pub mod addresses;
pub mod census;
pub mod engine;
pub mod list;
pub mod model;
pub mod params;
pub mod slab;
pub mod trace;

pub use census::Census;
pub use engine::{Action, Engine, Error, LentMemory, Operational, PnpEvent, Table};
pub use model::{AtmAddress, Handle, Status, TrafficProfile};
pub use slab::Id;
