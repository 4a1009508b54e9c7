//! Protocol registration, binding to the simulated ATM miniports, unbinding and PnP events.
//!
//! Read: nf-ndis-ndisregisterprotocoldriver, nf-ndis-ndissetoptionalhandlers,
//! nc-ndis-protocol_bind_adapter_ex, nf-ndis-ndisopenadapterex, nc-ndis-protocol_unbind_adapter_ex,
//! nf-ndis-ndiscloseadapterex, nc-ndis-protocol_net_pnp_event; condis-reference.md §2-§3.
//!
//! Flow: `NdisRegisterProtocolDriver` validates and copies the characteristics and calls
//! ProtocolSetOptions, in which the client registers its CoNDIS tables. [`bind_adapter`] calls
//! ProtocolBindAdapterEx for one adapter; inside it `NdisOpenAdapterEx` opens the miniport
//! (synchronously or pended); once the bind completes the call manager registers the Q.2931 AF
//! (ProtocolCoAfRegisterNotify). [`unbind_binding`] calls ProtocolUnbindAdapterEx, which closes
//! the AFs and then the adapter. `NdisDeregisterProtocolDriver` unbinds every binding.

use std::ffi::c_void;
use std::sync::Arc;

use ndis_sys::*;

use super::out_param::{self, When};

use super::{
    call_driver, decode, handle, log_export, pend, render, rules, status_name, violation, Kind, Logged, Ndis,
    Outcome, Work,
};
use crate::ddi::{self, Context, Ddi, IrqlRequirement};
use crate::export;
use crate::exports::ExportTable;
use crate::kernel::{World, DISPATCH_LEVEL, PASSIVE_LEVEL};

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

/// Where a binding is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingState {
    /// ProtocolBindAdapterEx is running or pended.
    Binding,
    /// Bound: the adapter is open.
    Bound,
    /// ProtocolUnbindAdapterEx is running or pended.
    Unbinding,
    /// Gone.
    Unbound,
    /// The bind failed.
    Failed,
}

/// The adapter open of a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenState {
    NotOpened,
    OpenPending,
    Open,
    Closing,
    Closed,
}

/// One binding of the protocol to a simulated adapter.
pub(crate) struct Binding {
    pub adapter: usize,
    pub context: usize,
    pub state: BindingState,
    pub open: OpenState,
    pub in_bind: bool,
    pub in_unbind: bool,
    pub bind_pending: bool,
    pub unbind_pending: bool,
    /// Out-pointers of a pended open: (*NdisBindingHandle, *SelectedMediumIndex, index).
    pub open_out: (usize, usize, u32),
    pub af_registered: bool,
    pub next_vci: u32,
    /// NDIS_BIND_PARAMETERS and its strings, owned here (u64 storage keeps them aligned).
    pub bind_parameters: Vec<u64>,
    pub strings: Vec<Vec<u16>>,
}

/// Registers the registration, binding and PnP exports.
pub fn register(table: &mut ExportTable) {
    export!(table, "ndis.sys", NdisRegisterProtocolDriver = ndis_register_protocol_driver);
    export!(table, "ndis.sys", NdisDeregisterProtocolDriver = ndis_deregister_protocol_driver);
    export!(table, "ndis.sys", NdisSetOptionalHandlers = ndis_set_optional_handlers);
    export!(table, "ndis.sys", NdisOpenAdapterEx = ndis_open_adapter_ex);
    export!(table, "ndis.sys", NdisCloseAdapterEx = ndis_close_adapter_ex);
    export!(table, "ndis.sys", NdisCompleteBindAdapterEx = ndis_complete_bind_adapter_ex);
    export!(table, "ndis.sys", NdisCompleteUnbindAdapterEx = ndis_complete_unbind_adapter_ex);
    export!(table, "ndis.sys", NdisUnbindAdapter = ndis_unbind_adapter);
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
    const EXPORT: &str = "NdisRegisterProtocolDriver";
    const DDI: Ddi =
        Ddi::ndis(EXPORT, IrqlRequirement::Exactly(PASSIVE_LEVEL), rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
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
    const EXPORT: &str = "NdisSetOptionalHandlers";
    const DDI: Ddi =
        Ddi::ndis(EXPORT, IrqlRequirement::Exactly(PASSIVE_LEVEL), rules::IRQL_MISCELLANEOUS_FUNCTION);
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

fn unicode(units: &[u16]) -> UNICODE_STRING {
    let bytes = (units.len() * 2) as u16;
    UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: units.as_ptr().cast_mut() }
}

/// Calls ProtocolBindAdapterEx for adapter `adapter` (PASSIVE). Returns the binding id.
pub fn bind_adapter(world: &Arc<World>, ndis: &Ndis, adapter: usize) -> Option<u64> {
    let (id, bind, driver_context, parameters, processor) = {
        let mut state = ndis.state();
        let protocol = state.protocol.as_ref()?;
        let bind = protocol.characteristics.0.BindAdapterHandlerEx?;
        let driver_context = protocol.context;
        let protocol_name = protocol.name.clone();
        let adapter_name = state.config.adapters.get(adapter)?.name.clone();
        let id = state.new_id();
        let strings =
            vec![protocol_name.encode_utf16().collect::<Vec<u16>>(), adapter_name.encode_utf16().collect()];
        // NDIS_BIND_PARAMETERS: only the head is filled (condis-reference.md §3.1); the rest is 0.
        let mut block = vec![0_u64; 0x120 / 8];
        let base = block.as_mut_ptr().cast::<u8>();
        let mut binding = Binding {
            adapter,
            context: 0,
            state: BindingState::Binding,
            open: OpenState::NotOpened,
            in_bind: true,
            in_unbind: false,
            bind_pending: false,
            unbind_pending: false,
            open_out: (0, 0, 0),
            af_registered: false,
            next_vci: 32,
            bind_parameters: Vec::new(),
            strings,
        };
        // The UNICODE_STRINGs live at +0x100 and +0x110 of the block, their buffers in `strings`.
        let section = unicode(&binding.strings[0]);
        let name = unicode(&binding.strings[1]);
        // SAFETY: `block` is 0x120 bytes, 8-aligned; every write below is inside it.
        unsafe {
            base.cast::<NDIS_OBJECT_HEADER>().write(NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_BIND_PARAMETERS,
                Revision: NDIS_BIND_PARAMETERS_REVISION_1,
                Size: 0x100,
            });
            base.add(0x100).cast::<UNICODE_STRING>().write(section);
            base.add(0x110).cast::<UNICODE_STRING>().write(name);
            base.add(0x08).cast::<usize>().write(base as usize + 0x100);
            base.add(0x10).cast::<usize>().write(base as usize + 0x110);
            base.add(0x20).cast::<u32>().write(NdisMediumAtm);
            base.add(0x24).cast::<u32>().write(9180);
        }
        let parameters = base as usize;
        binding.bind_parameters = block;
        state.bindings.insert(id, binding);
        // On the processor whose thread asks (see crate::machine); a thread outside the world
        // (none in practice: the harness binds through machine work) gets one at random.
        let processor = crate::kernel::current_processor_in(world)
            .unwrap_or_else(|| state.rng.below(world.processor_count() as u64) as usize);
        (id, bind, driver_context, parameters, processor)
    };
    let bind_context = handle(Kind::BindContext, id);
    let status = call_driver(
        world,
        ndis,
        processor,
        PASSIVE_LEVEL,
        Logged::Text(
            "ProtocolBindAdapterEx",
            format!("({driver_context:#x}, BindCtx#{id}, adapter {adapter})"),
        ),
        || {
            // SAFETY: the driver's ProtocolBindAdapterEx at PASSIVE with NDIS-owned bind parameters.
            unsafe {
                bind(
                    driver_context as NDIS_HANDLE,
                    bind_context as NDIS_HANDLE,
                    parameters as *mut NDIS_BIND_PARAMETERS,
                )
            }
        },
    );
    world.log_call(
        processor,
        super::DRIVER_DLL,
        "ProtocolBindAdapterEx",
        format!("returned {}", status_name(status)),
    );
    let pending = {
        let mut state = ndis.state();
        let binding = state.bindings.get_mut(&id)?;
        binding.in_bind = false;
        if status == NDIS_STATUS_PENDING {
            binding.bind_pending = true;
        }
        status == NDIS_STATUS_PENDING
    };
    if !pending {
        finish_bind(world, ndis, id, status);
    }
    Some(id)
}

fn finish_bind(world: &World, ndis: &Ndis, id: u64, status: NDIS_STATUS) {
    let mut state = ndis.state();
    let now = world.now();
    let Some(binding) = state.bindings.get_mut(&id) else { return };
    if status == NDIS_STATUS_SUCCESS && binding.open == OpenState::Open {
        binding.state = BindingState::Bound;
        state.counters.bindings_opened += 1;
        state.schedule(now, 1, Work::AfRegisterNotify { binding: id });
    } else {
        binding.state = BindingState::Failed;
        let still_open = binding.open == OpenState::Open;
        drop(state);
        if still_open {
            violation(
                world,
                rules::CLOSE_ADAPTER_WITH_RESOURCES,
                "ProtocolBindAdapterEx",
                format!("Bd#{id}: the bind failed ({}) but left the adapter open", status_name(status)),
            );
        }
    }
}

/// The call manager registers CO_ADDRESS_FAMILY_Q2931 3.1 on a bound binding.
pub(crate) fn deliver_af_register_notify(world: &Arc<World>, ndis: &Ndis, id: u64, processor: usize) {
    let (notify, context) = {
        let mut state = ndis.state();
        let notify = state.protocol.as_ref().and_then(|p| p.co).and_then(|co| co.CoAfRegisterNotifyHandler);
        let Some(binding) = state.bindings.get_mut(&id) else { return };
        if binding.state != BindingState::Bound || binding.af_registered {
            return;
        }
        binding.af_registered = true;
        (notify, binding.context)
    };
    let Some(notify) = notify else {
        world.log_call(
            processor,
            "sim",
            "CmRegisterAddressFamily",
            format!("Bd#{id}: the client registered no NDIS_PROTOCOL_CO_CHARACTERISTICS; AF not offered"),
        );
        return;
    };
    let mut family =
        CO_ADDRESS_FAMILY { AddressFamily: CO_ADDRESS_FAMILY_Q2931, MajorVersion: 3, MinorVersion: 1 };
    let family_pointer: *mut CO_ADDRESS_FAMILY = &mut family;
    call_driver(
        world,
        ndis,
        processor,
        PASSIVE_LEVEL,
        Logged::Text("ProtocolCoAfRegisterNotify", format!("({context:#x}, Q2931 3.1)")),
        || {
            // SAFETY: the driver's ProtocolCoAfRegisterNotify at PASSIVE; `family` outlives the call.
            unsafe { notify(context as NDIS_HANDLE, family_pointer) }
        },
    );
}

/// `NdisOpenAdapterEx`: PASSIVE, only inside ProtocolBindAdapterEx. Selects NdisMediumAtm.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisopenadapterex>
unsafe extern "win64" fn ndis_open_adapter_ex(
    protocol_handle: NDIS_HANDLE,
    binding_context: NDIS_HANDLE,
    parameters: *mut NDIS_OPEN_PARAMETERS,
    bind_context: NDIS_HANDLE,
    binding_handle: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const EXPORT: &str = "NdisOpenAdapterEx";
    const DDI: Ddi =
        Ddi::ndis(EXPORT, IrqlRequirement::Exactly(PASSIVE_LEVEL), rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            let state = ndis.state();
            log_export(
                world,
                processor,
                EXPORT,
                format!(
                    "({}, {:#x}, {:#x}, {}, {:#x})",
                    render(&state, protocol_handle as usize),
                    binding_context as usize,
                    parameters as usize,
                    render(&state, bind_context as usize),
                    binding_handle as usize
                ),
            );
        })
    };
    let id = decode(Kind::BindContext, bind_context as usize);
    let valid = {
        let state = ndis.state();
        decode(Kind::Protocol, protocol_handle as usize).is_some()
            && state.protocol.is_some()
            && id
                .and_then(|id| state.bindings.get(&id))
                .is_some_and(|b| (b.in_bind || b.bind_pending) && b.open == OpenState::NotOpened)
    };
    if !valid {
        violation(
            world,
            rules::OPEN_ADAPTER_OUTSIDE_BIND,
            EXPORT,
            "not inside ProtocolBindAdapterEx for this BindContext (or already opened)",
        );
        return NDIS_STATUS_FAILURE;
    }
    let id = id.unwrap_or_default();
    if parameters.is_null() || binding_handle.is_null() {
        violation(world, rules::NULL_ARGUMENT, EXPORT, "NULL OpenParameters or NdisBindingHandle");
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    // SAFETY: non-NULL; the driver's NDIS_OPEN_PARAMETERS.
    let open = unsafe { parameters.read_unaligned() };
    if open.Header.Type != NDIS_OBJECT_TYPE_OPEN_PARAMETERS
        || open.Header.Revision != NDIS_OPEN_PARAMETERS_REVISION_1
        || open.Header.Size != NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1
    {
        violation(
            world,
            rules::NULL_ARGUMENT,
            EXPORT,
            format!("NDIS_OPEN_PARAMETERS header {:?} (must be 0x87/1/0x34)", open.Header),
        );
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    if open.MediumArray.is_null() || open.SelectedMediumIndex.is_null() {
        violation(world, rules::NULL_ARGUMENT, EXPORT, "NULL MediumArray or SelectedMediumIndex");
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    // SAFETY: MediumArray holds MediumArraySize NDIS_MEDIUMs (the driver's obligation).
    let media = unsafe { std::slice::from_raw_parts(open.MediumArray, open.MediumArraySize as usize) };
    let Some(index) = media.iter().position(|m| *m == NdisMediumAtm) else {
        log_export(world, processor, EXPORT, "-> NDIS_STATUS_UNSUPPORTED_MEDIA".into());
        return NDIS_STATUS_UNSUPPORTED_MEDIA;
    };
    let (outcome, fail) = {
        let mut state = ndis.state();
        let rate = state.config.faults.request_failure_per_10000;
        let fail = super::faults::inject(world, &mut state, EXPORT, None, true, rate);
        let faults = state.config.faults.clone();
        let outcome = state.rng.outcome(&faults, 0);
        let binding = state.bindings.get_mut(&id).expect("checked");
        binding.context = binding_context as usize;
        if !fail {
            binding.open =
                if outcome == Outcome::Synchronous { OpenState::Open } else { OpenState::OpenPending };
            binding.open_out = (binding_handle as usize, open.SelectedMediumIndex as usize, index as u32);
        }
        (outcome, fail)
    };
    if fail {
        log_export(world, processor, EXPORT, "-> NDIS_STATUS_RESOURCES (injected)".into());
        return NDIS_STATUS_RESOURCES;
    }
    let status = if outcome == Outcome::Synchronous {
        write_open_out(world, ndis, id, When::Return);
        NDIS_STATUS_SUCCESS
    } else {
        pend(
            world,
            ndis,
            processor,
            outcome,
            Work::OpenAdapterComplete { binding: id, status: NDIS_STATUS_SUCCESS },
        )
    };
    log_export(world, processor, EXPORT, format!("-> {} (Bd#{id})", status_name(status)));
    status
}

/// Writes NdisOpenAdapterEx's out-parameters on success: "NDIS writes a handle at
/// NdisBindingHandle" (nf-ndis-ndisopenadapterex) and the index of the selected medium at
/// SelectedMediumIndex (ns-ndis-_ndis_open_parameters). Neither page says when for a pended open:
/// at the latest legal moment, its completion, just before ProtocolOpenAdapterCompleteEx (which
/// the bind waits for before reading them); before returning for a synchronous one.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisopenadapterex>
fn write_open_out(world: &World, ndis: &Ndis, id: u64, when: When) {
    const EXPORT: &str = "NdisOpenAdapterEx";
    let state = ndis.state();
    let Some((handle_out, index_out, index)) = state.bindings.get(&id).map(|b| b.open_out) else { return };
    let value = handle(Kind::Binding, id) as NDIS_HANDLE;
    out_param::write(world, &state.pool, EXPORT, "NdisBindingHandle", handle_out, value, when);
    out_param::write(world, &state.pool, EXPORT, "SelectedMediumIndex", index_out, index, when);
}

/// Completes a pended open: writes the handle and medium index, then ProtocolOpenAdapterCompleteEx.
pub(crate) fn deliver_open_complete(
    world: &Arc<World>,
    ndis: &Ndis,
    id: u64,
    status: NDIS_STATUS,
    processor: usize,
) {
    let (complete, context) = {
        let mut state = ndis.state();
        let complete = state.protocol.as_ref().and_then(|p| p.characteristics.0.OpenAdapterCompleteHandlerEx);
        let Some(binding) = state.bindings.get_mut(&id) else { return };
        if binding.open != OpenState::OpenPending {
            return;
        }
        binding.open = if status == NDIS_STATUS_SUCCESS { OpenState::Open } else { OpenState::Closed };
        (complete, binding.context)
    };
    if status == NDIS_STATUS_SUCCESS {
        write_open_out(world, ndis, id, When::Completion);
    }
    if let Some(complete) = complete {
        call_driver(
            world,
            ndis,
            processor,
            PASSIVE_LEVEL,
            Logged::Text("ProtocolOpenAdapterCompleteEx", format!("({context:#x}, {})", status_name(status))),
            || {
                // SAFETY: the driver's ProtocolOpenAdapterCompleteEx at PASSIVE.
                unsafe { complete(context as NDIS_HANDLE, status) }
            },
        );
    }
}

/// `NdisCloseAdapterEx`: PASSIVE, only inside Bind/Unbind (or their pended continuation); the
/// binding handle is dead from this call on; every AF must be closed first.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscloseadapterex>
extern "win64" fn ndis_close_adapter_ex(binding_handle: NDIS_HANDLE) -> NDIS_STATUS {
    const EXPORT: &str = "NdisCloseAdapterEx";
    const DDI: Ddi =
        Ddi::ndis(EXPORT, IrqlRequirement::Exactly(PASSIVE_LEVEL), rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            log_export(
                world,
                processor,
                EXPORT,
                format!("({})", render(&ndis.state(), binding_handle as usize)),
            );
        })
    };
    let id = decode(Kind::Binding, binding_handle as usize);
    let (open, binding_state, afs_alive) = {
        let state = ndis.state();
        match id.and_then(|id| state.bindings.get(&id)) {
            Some(b) => (
                b.open,
                b.state,
                state.afs.values().filter(|af| Some(af.binding) == id && af.is_alive()).count(),
            ),
            None => (OpenState::Closed, BindingState::Unbound, 0),
        }
    };
    if open != OpenState::Open {
        violation(
            world,
            rules::BINDING_HANDLE_INVALID,
            EXPORT,
            "binding handle is not open (closed, never opened, or not an NDIS binding handle)",
        );
        return NDIS_STATUS_FAILURE;
    }
    let id = id.unwrap_or_default();
    if !matches!(binding_state, BindingState::Binding | BindingState::Unbinding) {
        violation(
            world,
            rules::CLOSE_ADAPTER_OUTSIDE_BIND_UNBIND,
            EXPORT,
            "outside ProtocolBindAdapterEx/ProtocolUnbindAdapterEx: use NdisUnbindAdapter",
        );
    }
    if afs_alive > 0 {
        violation(
            world,
            rules::CLOSE_ADAPTER_WITH_RESOURCES,
            EXPORT,
            format!("{afs_alive} address famil(ies) still open on Bd#{id}"),
        );
    }
    super::receive::check_close_adapter(world, id);
    let outcome = {
        let mut state = ndis.state();
        let faults = state.config.faults.clone();
        let outcome = state.rng.outcome(&faults, 0);
        let binding = state.bindings.get_mut(&id).expect("checked");
        binding.open = if outcome == Outcome::Synchronous { OpenState::Closed } else { OpenState::Closing };
        state.counters.bindings_closed += 1;
        outcome
    };
    let status = if outcome == Outcome::Synchronous {
        NDIS_STATUS_SUCCESS
    } else {
        pend(world, ndis, processor, outcome, Work::CloseAdapterComplete { binding: id })
    };
    log_export(world, processor, EXPORT, format!("-> {}", status_name(status)));
    status
}

/// ProtocolCloseAdapterCompleteEx for a pended close.
pub(crate) fn deliver_close_complete(world: &Arc<World>, ndis: &Ndis, id: u64, processor: usize) {
    let (complete, context) = {
        let mut state = ndis.state();
        let complete =
            state.protocol.as_ref().and_then(|p| p.characteristics.0.CloseAdapterCompleteHandlerEx);
        let Some(binding) = state.bindings.get_mut(&id) else { return };
        if binding.open != OpenState::Closing {
            return;
        }
        binding.open = OpenState::Closed;
        (complete, binding.context)
    };
    if let Some(complete) = complete {
        call_driver(
            world,
            ndis,
            processor,
            PASSIVE_LEVEL,
            Logged::Text("ProtocolCloseAdapterCompleteEx", format!("({context:#x})")),
            || {
                // SAFETY: the driver's ProtocolCloseAdapterCompleteEx at PASSIVE.
                unsafe { complete(context as NDIS_HANDLE) }
            },
        );
    }
}

/// `NdisCompleteBindAdapterEx`: <= DISPATCH; exactly once after Bind returned PENDING.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscompletebindadapterex>
extern "win64" fn ndis_complete_bind_adapter_ex(bind_context: NDIS_HANDLE, status: NDIS_STATUS) {
    const EXPORT: &str = "NdisCompleteBindAdapterEx";
    const DDI: Ddi =
        Ddi::ndis(EXPORT, IrqlRequirement::AtMost(DISPATCH_LEVEL), rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            log_export(
                world,
                processor,
                EXPORT,
                format!("({}, {})", render(&ndis.state(), bind_context as usize), status_name(status)),
            );
        })
    };
    let id = decode(Kind::BindContext, bind_context as usize);
    let was_pending = {
        let mut state = ndis.state();
        match id.and_then(|id| state.bindings.get_mut(&id)) {
            Some(b) if b.bind_pending => {
                b.bind_pending = false;
                true
            }
            _ => false,
        }
    };
    if !was_pending {
        violation(
            world,
            rules::EXACTLY_ONCE_COMPLETION,
            EXPORT,
            "no ProtocolBindAdapterEx returned PENDING for this BindContext (or it was already completed)",
        );
        return;
    }
    if status == NDIS_STATUS_PENDING {
        violation(world, rules::COMPLETION_WITH_PENDING, EXPORT, "completed with NDIS_STATUS_PENDING");
    }
    finish_bind(world, ndis, id.unwrap_or_default(), status);
}

/// Calls ProtocolUnbindAdapterEx for a bound binding (PASSIVE).
pub fn unbind_binding(world: &Arc<World>, ndis: &Ndis, id: u64, processor: usize) {
    let (unbind, context) = {
        let mut state = ndis.state();
        let unbind = state.protocol.as_ref().and_then(|p| p.characteristics.0.UnbindAdapterHandlerEx);
        let Some(binding) = state.bindings.get_mut(&id) else { return };
        if binding.state != BindingState::Bound {
            return;
        }
        binding.state = BindingState::Unbinding;
        binding.in_unbind = true;
        (unbind, binding.context)
    };
    let Some(unbind) = unbind else { return };
    let unbind_context = handle(Kind::UnbindContext, id);
    let status = call_driver(
        world,
        ndis,
        processor,
        PASSIVE_LEVEL,
        Logged::Text("ProtocolUnbindAdapterEx", format!("(UnbindCtx#{id}, {context:#x})")),
        || {
            // SAFETY: the driver's ProtocolUnbindAdapterEx at PASSIVE.
            unsafe { unbind(unbind_context as NDIS_HANDLE, context as NDIS_HANDLE) }
        },
    );
    world.log_call(
        processor,
        super::DRIVER_DLL,
        "ProtocolUnbindAdapterEx",
        format!("returned {}", status_name(status)),
    );
    {
        let mut state = ndis.state();
        if let Some(binding) = state.bindings.get_mut(&id) {
            binding.in_unbind = false;
            binding.unbind_pending = status == NDIS_STATUS_PENDING;
        }
    }
    match status {
        NDIS_STATUS_PENDING => {}
        NDIS_STATUS_SUCCESS => finish_unbind(world, ndis, id),
        other => {
            violation(
                world,
                rules::UNBIND_FAILED,
                "partyline.sys!ProtocolUnbindAdapterEx",
                format!("returned {} (an unbind cannot fail)", status_name(other)),
            );
            finish_unbind(world, ndis, id);
        }
    }
}

fn finish_unbind(world: &World, ndis: &Ndis, id: u64) {
    let open = {
        let mut state = ndis.state();
        let Some(binding) = state.bindings.get_mut(&id) else { return };
        binding.state = BindingState::Unbound;
        binding.open
    };
    if matches!(open, OpenState::Open | OpenState::OpenPending) {
        violation(
            world,
            rules::UNBIND_FAILED,
            "partyline.sys!ProtocolUnbindAdapterEx",
            format!("Bd#{id}: the unbind completed without NdisCloseAdapterEx"),
        );
    }
}

/// `NdisCompleteUnbindAdapterEx`: <= DISPATCH; exactly once after Unbind returned PENDING.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscompleteunbindadapterex>
extern "win64" fn ndis_complete_unbind_adapter_ex(unbind_context: NDIS_HANDLE) {
    const EXPORT: &str = "NdisCompleteUnbindAdapterEx";
    const DDI: Ddi =
        Ddi::ndis(EXPORT, IrqlRequirement::AtMost(DISPATCH_LEVEL), rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            log_export(
                world,
                processor,
                EXPORT,
                format!("({})", render(&ndis.state(), unbind_context as usize)),
            );
        })
    };
    let id = decode(Kind::UnbindContext, unbind_context as usize);
    let was_pending = {
        let mut state = ndis.state();
        match id.and_then(|id| state.bindings.get_mut(&id)) {
            Some(b) if b.unbind_pending => {
                b.unbind_pending = false;
                true
            }
            _ => false,
        }
    };
    if !was_pending {
        violation(world, rules::EXACTLY_ONCE_COMPLETION, EXPORT, "no ProtocolUnbindAdapterEx returned PENDING for this UnbindContext (or it was already completed)");
        return;
    }
    finish_unbind(world, ndis, id.unwrap_or_default());
    world.machine().signal(unbind_wait_key(id.unwrap_or_default()));
}

/// `NdisUnbindAdapter`: <= DISPATCH, never inside Bind/Unbind; NDIS unbinds later at PASSIVE.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisunbindadapter>
extern "win64" fn ndis_unbind_adapter(binding_handle: NDIS_HANDLE) -> NDIS_STATUS {
    const EXPORT: &str = "NdisUnbindAdapter";
    const DDI: Ddi =
        Ddi::ndis(EXPORT, IrqlRequirement::AtMost(DISPATCH_LEVEL), rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            log_export(
                world,
                processor,
                EXPORT,
                format!("({})", render(&ndis.state(), binding_handle as usize)),
            );
        })
    };
    let id = decode(Kind::Binding, binding_handle as usize);
    let found = {
        let state = ndis.state();
        id.and_then(|id| state.bindings.get(&id)).map(|b| (b.open, b.in_bind || b.in_unbind))
    };
    match found {
        Some((OpenState::Open, inside)) => {
            if inside {
                violation(
                    world,
                    rules::UNBIND_ADAPTER_INSIDE_BIND_UNBIND,
                    EXPORT,
                    "called from ProtocolBindAdapterEx/ProtocolUnbindAdapterEx",
                );
                return NDIS_STATUS_FAILURE;
            }
            let now = world.now();
            ndis.state().schedule(now, 1, Work::Unbind { binding: id.unwrap_or_default() });
            NDIS_STATUS_SUCCESS
        }
        _ => {
            violation(world, rules::BINDING_HANDLE_INVALID, EXPORT, "binding handle is not open");
            NDIS_STATUS_FAILURE
        }
    }
}

/// What NDIS waits on for a pended ProtocolNetPnPEvent (not an address: a handle-like value).
const PNP_WAIT_KEY: usize = super::handle_wait_key(Kind::Protocol, 0);

/// What NDIS waits on for the pended unbind of binding `id`.
fn unbind_wait_key(id: u64) -> usize {
    super::handle_wait_key(Kind::UnbindContext, id as usize)
}

/// Sends a PnP event to the protocol (`binding` None: a global event with a NULL context) at
/// PASSIVE; a PENDING answer is waited for by running the scheduler.
pub fn net_pnp_event(
    world: &Arc<World>,
    ndis: &Ndis,
    binding: Option<u64>,
    event: NET_PNP_EVENT_CODE,
) -> NDIS_STATUS {
    let (handler, context) = {
        let state = ndis.state();
        let handler = state.protocol.as_ref().and_then(|p| p.characteristics.0.NetPnPEventHandler);
        let context = binding.and_then(|id| state.bindings.get(&id)).map_or(0, |b| b.context);
        (handler, context)
    };
    let Some(handler) = handler else { return NDIS_STATUS_FAILURE };
    // NET_PNP_EVENT_NOTIFICATION (0xB0 bytes), zeroed, with the header and event code.
    let mut block = vec![0_u64; 0xB0 / 8];
    let base = block.as_mut_ptr().cast::<u8>();
    // SAFETY: `block` is 0xB0 bytes, 8-aligned; the writes are inside it.
    unsafe {
        base.cast::<NDIS_OBJECT_HEADER>().write(NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_DEFAULT,
            Revision: NET_PNP_EVENT_NOTIFICATION_REVISION_1,
            Size: 0xB0,
        });
        base.add(8).cast::<u32>().write(event);
    }
    let notification = base as usize;
    let status = call_driver(
        world,
        ndis,
        0,
        PASSIVE_LEVEL,
        Logged::Text("ProtocolNetPnPEvent", format!("({context:#x}, event {event})")),
        || {
            // SAFETY: the driver's ProtocolNetPnPEvent at PASSIVE with an NDIS-owned notification.
            unsafe { handler(context as NDIS_HANDLE, notification as *mut NET_PNP_EVENT_NOTIFICATION) }
        },
    );
    world.log_call(0, super::DRIVER_DLL, "ProtocolNetPnPEvent", format!("returned {}", status_name(status)));
    if status == NDIS_STATUS_NOT_SUPPORTED {
        violation(
            world,
            rules::NET_PNP_NOT_SUPPORTED,
            "partyline.sys!ProtocolNetPnPEvent",
            format!("event {event}: NDIS 6 drivers must not return NDIS_STATUS_NOT_SUPPORTED"),
        );
    }
    if status == NDIS_STATUS_PENDING {
        // NDIS waits for NdisCompleteNetPnPEvent (which signals this key) before it goes on.
        ndis.state().pnp_pending = Some(binding.unwrap_or(0));
        while ndis.state().pnp_pending.is_some() {
            if world.machine().wait(world, PNP_WAIT_KEY, None) == crate::machine::Wake::Stopped {
                break;
            }
        }
    }
    drop(block);
    status
}

/// `NdisCompleteNetPnPEvent`: PASSIVE; exactly once after ProtocolNetPnPEvent returned PENDING.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscompletenetpnpevent>
extern "win64" fn ndis_complete_net_pnp_event(
    binding_handle: NDIS_HANDLE,
    notification: *mut NET_PNP_EVENT_NOTIFICATION,
    status: NDIS_STATUS,
) {
    const EXPORT: &str = "NdisCompleteNetPnPEvent";
    const DDI: Ddi =
        Ddi::ndis(EXPORT, IrqlRequirement::Exactly(PASSIVE_LEVEL), rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
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
    let was_pending = ndis.state().pnp_pending.take().is_some();
    world.machine().signal(PNP_WAIT_KEY);
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
    const EXPORT: &str = "NdisDeregisterProtocolDriver";
    const DDI: Ddi =
        Ddi::ndis(EXPORT, IrqlRequirement::Exactly(PASSIVE_LEVEL), rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
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
    const EXPORT: &str = "NdisGetVersion";
    const DDI: Ddi = Ddi::ndis(EXPORT, IrqlRequirement::Unchecked, rules::IRQL_MISCELLANEOUS_FUNCTION);
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
