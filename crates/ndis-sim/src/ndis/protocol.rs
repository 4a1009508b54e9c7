//! Protocol registration and PnP: NdisRegisterProtocolDriver (and the ProtocolSetOptions it
//! calls), NdisSetOptionalHandlers, NetPnPEvents and NdisCompleteNetPnPEvent,
//! NdisDeregisterProtocolDriver, NdisGetVersion. Bindings are [`super::binding`]'s.
//!
//! Read: nf-ndis-ndisregisterprotocoldriver, nf-ndis-ndissetoptionalhandlers,
//! nc-ndis-protocol_net_pnp_event, nf-ndis-ndiscompletenetpnpevent,
//! nf-ndis-ndisderegisterprotocoldriver; condis-reference.md §2.
//!
//! Flow: `NdisRegisterProtocolDriver` validates and copies the characteristics and calls
//! ProtocolSetOptions, in which the client registers its CoNDIS tables. [`net_pnp_event`] sends a
//! PnP event ([`super::pnp`]) and waits for a pended answer. `NdisDeregisterProtocolDriver` unbinds every binding
//! ([`super::binding::unbind_binding`]).

use std::ffi::c_void;
use std::sync::Arc;

use ndis_sys::*;

use super::binding::{unbind_binding, unbind_wait_key, BindingState, OpenState};
use super::{
    call_driver, decode, handle, log_export, render, rules, status_name, violation, Kind, Logged, Ndis,
};
use crate::ddi::{self, Context, Ddi, IrqlRequirement};
use crate::export;
use crate::exports::ExportTable;
use crate::kernel::{World, PASSIVE_LEVEL};

/// The protocol's copied characteristics and optional handler tables.
pub(crate) struct Protocol {
    pub context: usize,
    pub name: String,
    pub characteristics: Characteristics,
    pub co: Option<NDIS_PROTOCOL_CO_CHARACTERISTICS>,
    pub client: Option<NDIS_CO_CLIENT_OPTIONAL_HANDLERS>,
}

/// NDIS's copy of the characteristics, with `Name.Buffer` cleared (the name is kept as a String).
pub(crate) struct Characteristics(pub NDIS_PROTOCOL_DRIVER_CHARACTERISTICS);
// SAFETY: the only pointer in the copy, Name.Buffer, is set to NULL before it is stored; the rest
// are function pointers and integers.
unsafe impl Send for Characteristics {}

/// Registers the registration and PnP exports.
pub fn register(table: &mut ExportTable) {
    export!(table, "ndis.sys", NdisRegisterProtocolDriver = ndis_register_protocol_driver);
    export!(table, "ndis.sys", NdisDeregisterProtocolDriver = ndis_deregister_protocol_driver);
    export!(table, "ndis.sys", NdisSetOptionalHandlers = ndis_set_optional_handlers);
    export!(table, "ndis.sys", NdisCompleteNetPnPEvent = ndis_complete_net_pnp_event);
    export!(table, "ndis.sys", NdisGetVersion = ndis_get_version);
}

/// NDIS 6 minor versions a protocol may declare (condis-reference.md §10.1).
const MINOR_VERSIONS: &[u8] = &[0, 1, 20, 30, 40, 50, 51, 60, 70, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89];

fn characteristics_problem(c: &NDIS_PROTOCOL_DRIVER_CHARACTERISTICS) -> Option<(NDIS_STATUS, String)> {
    let bad = |what: String| Some((NDIS_STATUS_BAD_CHARACTERISTICS, what));
    if c.Header.Type != NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS {
        return bad(format!("Header.Type {:#x} (must be 0x95)", c.Header.Type));
    }
    let expected = match c.Header.Revision {
        NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_1 => {
            NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_1
        }
        NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2 => {
            NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2
        }
        revision => return bad(format!("Header.Revision {revision} (must be 1 or 2)")),
    };
    if c.Header.Size != expected {
        return bad(format!(
            "Header.Size {:#x} for revision {} (must be {expected:#x})",
            c.Header.Size, c.Header.Revision
        ));
    }
    if c.MajorNdisVersion != 6 || !MINOR_VERSIONS.contains(&c.MinorNdisVersion) {
        return Some((
            NDIS_STATUS_BAD_VERSION,
            format!("NDIS version {}.{} is not a valid 6.x", c.MajorNdisVersion, c.MinorNdisVersion),
        ));
    }
    if c.Header.Revision == 1 && c.MinorNdisVersion >= 30 {
        return bad(format!(
            "revision 1 characteristics with NDIS 6.{} (6.30+ uses revision 2)",
            c.MinorNdisVersion
        ));
    }
    if c.Flags & !0x6 != 0 {
        return bad(format!("Flags {:#x} (reserved bits set)", c.Flags));
    }
    let required = [
        ("BindAdapterHandlerEx", c.BindAdapterHandlerEx.is_some()),
        ("UnbindAdapterHandlerEx", c.UnbindAdapterHandlerEx.is_some()),
        ("OpenAdapterCompleteHandlerEx", c.OpenAdapterCompleteHandlerEx.is_some()),
        ("CloseAdapterCompleteHandlerEx", c.CloseAdapterCompleteHandlerEx.is_some()),
        ("NetPnPEventHandler", c.NetPnPEventHandler.is_some()),
        ("ReceiveNetBufferListsHandler", c.ReceiveNetBufferListsHandler.is_some()),
        ("SendNetBufferListsCompleteHandler", c.SendNetBufferListsCompleteHandler.is_some()),
    ];
    required
        .iter()
        .find(|(_, present)| !present)
        .and_then(|(name, _)| bad(format!("required handler {name} is NULL")))
}

/// `NdisRegisterProtocolDriver`: PASSIVE. Validates and copies the characteristics, then calls
/// ProtocolSetOptions synchronously.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisregisterprotocoldriver>
unsafe extern "win64" fn ndis_register_protocol_driver(
    driver_context: NDIS_HANDLE,
    characteristics: *mut NDIS_PROTOCOL_DRIVER_CHARACTERISTICS,
    protocol_handle: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const DDI: Ddi = Ddi::ndis(
        "NdisRegisterProtocolDriver",
        IrqlRequirement::Exactly(PASSIVE_LEVEL),
        rules::IRQL_PROTOCOL_DRIVER_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, _| {
            log_export(
                world,
                processor,
                EXPORT,
                format!(
                    "({:#x}, {:#x}, {:#x})",
                    driver_context as usize, characteristics as usize, protocol_handle as usize
                ),
            );
        })
    };
    if characteristics.is_null() || protocol_handle.is_null() {
        violation(world, rules::REGISTER_CHARACTERISTICS, EXPORT, "NULL characteristics or handle pointer");
        return NDIS_STATUS_BAD_CHARACTERISTICS;
    }
    // SAFETY: the driver passes a readable NDIS_PROTOCOL_DRIVER_CHARACTERISTICS (checked non-NULL).
    let mut copy = unsafe { characteristics.read_unaligned() };
    if let Some((status, problem)) = characteristics_problem(&copy) {
        violation(world, rules::REGISTER_CHARACTERISTICS, EXPORT, problem);
        return status;
    }
    if ndis.state().protocol.is_some() {
        violation(world, rules::REGISTER_CHARACTERISTICS, EXPORT, "the protocol is already registered");
        return NDIS_STATUS_FAILURE;
    }
    let name = if copy.Name.Buffer.is_null() {
        String::new()
    } else {
        // SAFETY: Name is a UNICODE_STRING of Length bytes the driver owns for this call.
        let units =
            unsafe { std::slice::from_raw_parts(copy.Name.Buffer, usize::from(copy.Name.Length) / 2) };
        String::from_utf16_lossy(units)
    };
    copy.Name.Buffer = std::ptr::null_mut();
    let set_options = copy.SetOptionsHandler;
    {
        let mut state = ndis.state();
        state.protocol = Some(Protocol {
            context: driver_context as usize,
            name: name.clone(),
            characteristics: Characteristics(copy),
            co: None,
            client: None,
        });
        state.set_options_active = true;
    }
    let protocol = handle(Kind::Protocol, 0);
    // SAFETY: checked non-NULL; the driver's out-parameter.
    unsafe { protocol_handle.write(protocol as NDIS_HANDLE) };
    let mut status = NDIS_STATUS_SUCCESS;
    if let Some(set_options) = set_options {
        status = call_driver(
            &world.arc(),
            ndis,
            processor,
            PASSIVE_LEVEL,
            Logged::Text("ProtocolSetOptions", format!("(Proto#0, {:#x})", driver_context as usize)),
            || {
                // SAFETY: the driver's ProtocolSetOptions, called as NDIS does at PASSIVE.
                unsafe { set_options(protocol as NDIS_HANDLE, driver_context) }
            },
        );
    }
    let mut state = ndis.state();
    state.set_options_active = false;
    if status != NDIS_STATUS_SUCCESS {
        state.protocol = None;
    }
    drop(state);
    log_export(world, processor, EXPORT, format!("-> {} (protocol '{name}')", status_name(status)));
    status
}

/// `NdisSetOptionalHandlers`: PASSIVE; from ProtocolSetOptions (protocol handle) or from Bind /
/// OpenAdapterComplete (binding handle). Accepts the CoNDIS protocol characteristics (0x90) and
/// the client handlers (0xA6, every slot non-NULL).
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndissetoptionalhandlers>
unsafe extern "win64" fn ndis_set_optional_handlers(
    ndis_handle: NDIS_HANDLE,
    optional: *mut NDIS_DRIVER_OPTIONAL_HANDLERS,
) -> NDIS_STATUS {
    const DDI: Ddi = Ddi::ndis(
        "NdisSetOptionalHandlers",
        IrqlRequirement::Exactly(PASSIVE_LEVEL),
        rules::IRQL_MISCELLANEOUS_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            let state = ndis.state();
            log_export(
                world,
                processor,
                EXPORT,
                format!("({}, {:#x})", render(&state, ndis_handle as usize), optional as usize),
            );
        })
    };
    let allowed = {
        let state = ndis.state();
        if decode(Kind::Protocol, ndis_handle as usize).is_some() {
            state.set_options_active && state.protocol.is_some()
        } else if let Some(id) = decode(Kind::Binding, ndis_handle as usize) {
            state.bindings.get(&id).is_some_and(|b| b.in_bind || b.open == OpenState::OpenPending)
        } else {
            false
        }
    };
    if !allowed {
        violation(
            world,
            rules::SET_OPTIONAL_HANDLERS,
            EXPORT,
            "not called from ProtocolSetOptions (or Bind/OpenAdapterComplete with a binding handle)",
        );
        return NDIS_STATUS_FAILURE;
    }
    if optional.is_null() {
        violation(world, rules::SET_OPTIONAL_HANDLERS, EXPORT, "NULL OptionalHandlers");
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: non-NULL; every optional-handler structure starts with an NDIS_OBJECT_HEADER.
    let header = unsafe { (*optional).Header };
    match header.Type {
        NDIS_OBJECT_TYPE_CO_PROTOCOL_CHARACTERISTICS => {
            if header.Revision != NDIS_PROTOCOL_CO_CHARACTERISTICS_REVISION_1
                || header.Size != NDIS_SIZEOF_PROTOCOL_CO_CHARACTERISTICS_REVISION_1
            {
                violation(
                    world,
                    rules::SET_OPTIONAL_HANDLERS,
                    EXPORT,
                    format!(
                        "NDIS_PROTOCOL_CO_CHARACTERISTICS header rev {} size {:#x}",
                        header.Revision, header.Size
                    ),
                );
                return NDIS_STATUS_FAILURE;
            }
            // SAFETY: the header says this is an NDIS_PROTOCOL_CO_CHARACTERISTICS of the full size.
            let co = unsafe { optional.cast::<NDIS_PROTOCOL_CO_CHARACTERISTICS>().read_unaligned() };
            if co.CoAfRegisterNotifyHandler.is_none() {
                violation(world, rules::SET_OPTIONAL_HANDLERS, EXPORT, "CoAfRegisterNotifyHandler is NULL");
                return NDIS_STATUS_FAILURE;
            }
            if let Some(protocol) = ndis.state().protocol.as_mut() {
                protocol.co = Some(co);
            }
        }
        NDIS_OBJECT_TYPE_CO_CLIENT_OPTIONAL_HANDLERS => {
            if header.Revision != NDIS_CO_CLIENT_OPTIONAL_HANDLERS_REVISION_1
                || header.Size != NDIS_SIZEOF_CO_CLIENT_OPTIONAL_HANDLERS_REVISION_1
            {
                violation(
                    world,
                    rules::SET_OPTIONAL_HANDLERS,
                    EXPORT,
                    format!(
                        "NDIS_CO_CLIENT_OPTIONAL_HANDLERS header rev {} size {:#x}",
                        header.Revision, header.Size
                    ),
                );
                return NDIS_STATUS_FAILURE;
            }
            // SAFETY: the header says this is an NDIS_CO_CLIENT_OPTIONAL_HANDLERS of the full size.
            let client = unsafe { optional.cast::<NDIS_CO_CLIENT_OPTIONAL_HANDLERS>().read_unaligned() };
            // SAFETY: 19 pointer-sized slots follow the 8-byte head; reading them as usize is
            // valid (each is an Option<fn>, NULL = 0).
            let slots: [usize; 19] =
                unsafe { optional.cast::<u8>().add(8).cast::<[usize; 19]>().read_unaligned() };
            if let Some(index) = slots.iter().position(|slot| *slot == 0) {
                violation(
                    world,
                    rules::SET_OPTIONAL_HANDLERS,
                    EXPORT,
                    format!(
                        "client handler slot {index} (offset {:#x}) is NULL; every slot must be set",
                        8 + index * 8
                    ),
                );
                return NDIS_STATUS_FAILURE;
            }
            if let Some(protocol) = ndis.state().protocol.as_mut() {
                protocol.client = Some(client);
            }
        }
        other => {
            violation(
                world,
                rules::SET_OPTIONAL_HANDLERS,
                EXPORT,
                format!("object type {other:#x} is not a CoNDIS client table"),
            );
            return NDIS_STATUS_NOT_SUPPORTED;
        }
    }
    NDIS_STATUS_SUCCESS
}

/// Sends a PnP event with no buffer to the protocol (`binding` None: a NULL context) at PASSIVE;
/// a PENDING answer is waited for. See [`super::pnp`] for the events with buffers and sequences.
pub fn net_pnp_event(
    world: &Arc<World>,
    ndis: &Ndis,
    binding: Option<u64>,
    event: NET_PNP_EVENT_CODE,
) -> NDIS_STATUS {
    super::pnp::send_plain(world, ndis, binding, event)
}

/// `NdisCompleteNetPnPEvent`: PASSIVE; exactly once after ProtocolNetPnPEvent returned PENDING.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscompletenetpnpevent>
extern "win64" fn ndis_complete_net_pnp_event(
    binding_handle: NDIS_HANDLE,
    notification: *mut NET_PNP_EVENT_NOTIFICATION,
    status: NDIS_STATUS,
) {
    const DDI: Ddi = Ddi::ndis(
        "NdisCompleteNetPnPEvent",
        IrqlRequirement::Exactly(PASSIVE_LEVEL),
        rules::IRQL_PROTOCOL_DRIVER_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            log_export(
                world,
                processor,
                EXPORT,
                format!(
                    "({}, {:#x}, {})",
                    render(&ndis.state(), binding_handle as usize),
                    notification as usize,
                    status_name(status)
                ),
            );
        })
    };
    let was_pending = {
        let mut state = ndis.state();
        let was_pending = state.pnp_pending.take().is_some();
        if was_pending {
            super::pnp::finish(world, &mut state, status);
        }
        was_pending
    };
    world.machine().signal(super::pnp::PENDING_KEY);
    if !was_pending {
        violation(world, rules::EXACTLY_ONCE_COMPLETION, EXPORT, "no ProtocolNetPnPEvent is pending");
    } else if status == NDIS_STATUS_PENDING {
        violation(world, rules::COMPLETION_WITH_PENDING, EXPORT, "completed with NDIS_STATUS_PENDING");
    }
}

/// `NdisDeregisterProtocolDriver`: PASSIVE, never from a Protocol* callback; unbinds every binding
/// (waiting for pended unbinds) before returning.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisderegisterprotocoldriver>
extern "win64" fn ndis_deregister_protocol_driver(protocol_handle: NDIS_HANDLE) {
    const DDI: Ddi = Ddi::ndis(
        "NdisDeregisterProtocolDriver",
        IrqlRequirement::Exactly(PASSIVE_LEVEL),
        rules::IRQL_PROTOCOL_DRIVER_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            log_export(
                world,
                processor,
                EXPORT,
                format!("({})", render(&ndis.state(), protocol_handle as usize)),
            );
        })
    };
    let inside = crate::machine::current_callbacks().last().copied();
    if let Some(callback) = inside {
        violation(
            world,
            rules::DEREGISTER_FROM_CALLBACK,
            EXPORT,
            format!("called from {callback} (deadlocks on Windows); not deregistered"),
        );
        return;
    }
    if decode(Kind::Protocol, protocol_handle as usize).is_none() || ndis.state().protocol.is_none() {
        violation(world, rules::REGISTER_CHARACTERISTICS, EXPORT, "not a registered protocol handle");
        return;
    }
    let bound: Vec<u64> = ndis
        .state()
        .bindings
        .iter()
        .filter(|(_, b)| b.state == BindingState::Bound)
        .map(|(id, _)| *id)
        .collect();
    for id in bound {
        let world = world.arc();
        unbind_binding(&world, ndis, id, processor);
        // NDIS waits for NdisCompleteUnbindAdapterEx (which signals this key).
        while ndis.state().bindings.get(&id).is_some_and(|b| b.unbind_pending) {
            if world.machine().wait(&world, unbind_wait_key(id), None) == crate::machine::Wake::Stopped {
                break;
            }
        }
    }
    ndis.state().protocol = None;
}

/// `NdisGetVersion`: <= DISPATCH; NDIS 6.30.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisgetversion>
extern "win64" fn ndis_get_version() -> u32 {
    const DDI: Ddi =
        Ddi::ndis("NdisGetVersion", IrqlRequirement::Unchecked, rules::IRQL_MISCELLANEOUS_FUNCTION);
    const EXPORT: &str = DDI.name;
    // SAFETY: an export, using what it gets only until it returns.
    unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, _| {
            log_export(world, processor, EXPORT, format!("-> {NDIS_RUNTIME_VERSION_630:#x}"));
        })
    };
    NDIS_RUNTIME_VERSION_630
}

#[allow(dead_code)]
fn _unused(_: *mut c_void) {}

/// ProtocolUninstall at PASSIVE on `processor`, as NDIS calls it when the protocol is uninstalled,
/// after ProtocolUnbindAdapterEx for every bound adapter (the caller unbinds them first:
/// [`crate::sim::Simulation::uninstall`]). The handler is optional; nothing happens without one.
/// The protocol stays registered: its DriverUnload deregisters it later, as on Windows once the
/// I/O manager unloads the driver. A ProtocolUninstall that deregisters breaks
/// [`rules::DEREGISTER_FROM_CALLBACK`] ("must not call NdisDeregisterProtocolDriver from any entry
/// point that NDIS calls").
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_uninstall>
pub fn call_uninstall(world: &Arc<World>, ndis: &Ndis, processor: usize) {
    let handler = ndis.state().protocol.as_ref().and_then(|p| p.characteristics.0.UninstallHandler);
    let Some(handler) = handler else { return };
    call_driver(
        world,
        ndis,
        processor,
        PASSIVE_LEVEL,
        Logged::Text("ProtocolUninstall", String::new()),
        || {
            // SAFETY: the driver's ProtocolUninstall (no arguments) at PASSIVE.
            unsafe { handler() }
        },
    );
    world.log_call(processor, super::DRIVER_DLL, "ProtocolUninstall", "returned".into());
}
