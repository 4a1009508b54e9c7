//! Bindings to the simulated ATM miniports: ProtocolBindAdapterEx and NdisOpenAdapterEx,
//! ProtocolUnbindAdapterEx and NdisCloseAdapterEx, NdisCompleteBindAdapterEx /
//! NdisCompleteUnbindAdapterEx, NdisUnbindAdapter, with the delivery of each completion they
//! queue and the call manager's AF registration on a new binding.
//!
//! Read: nc-ndis-protocol_bind_adapter_ex, nf-ndis-ndisopenadapterex,
//! nc-ndis-protocol_unbind_adapter_ex, nf-ndis-ndiscloseadapterex,
//! nf-ndis-ndiscompletebindadapterex, nf-ndis-ndisunbindadapter; condis-reference.md §3.
//!
//! Flow: [`bind_adapter`] calls ProtocolBindAdapterEx for one adapter; inside it
//! `NdisOpenAdapterEx` opens the miniport (synchronously, or pended and completed by
//! [`deliver_open_complete`]); once the bind completes the call manager registers the Q.2931 AF
//! ([`deliver_af_register_notify`]). [`unbind_binding`] calls ProtocolUnbindAdapterEx, which
//! closes the AFs and then the adapter (a pended close completed by [`deliver_close_complete`]).

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
    /// The data path's state while bound (network/binding-states-of-a-protocol-driver).
    pub operational: super::pnp::Operational,
    /// The adapter's NDIS_DEVICE_POWER_STATE as last set by NetEventSetPower.
    pub power: u32,
    /// For a power-down: the last driver entry ([`crate::machine::entries_so_far`]) made before
    /// ProtocolNetPnPEvent(NetEventSetPower) returned (`usize::MAX` while it runs). A set-up by a
    /// driver activity entered up to then may have been decided before the driver saw the
    /// event ([`super::pnp::check_new_setup`]).
    pub powered_down_after: usize,
    /// NetEventQueryRemoveDevice succeeded and no cancel came yet.
    pub remove_queried: bool,
    pub next_vci: u32,
    /// NDIS_BIND_PARAMETERS and its strings, owned here (u64 storage keeps them aligned).
    pub bind_parameters: Vec<u64>,
    pub strings: Vec<Vec<u16>>,
}

/// Registers the binding exports.
pub fn register(table: &mut ExportTable) {
    export!(table, "ndis.sys", NdisOpenAdapterEx = ndis_open_adapter_ex);
    export!(table, "ndis.sys", NdisCloseAdapterEx = ndis_close_adapter_ex);
    export!(table, "ndis.sys", NdisCompleteBindAdapterEx = ndis_complete_bind_adapter_ex);
    export!(table, "ndis.sys", NdisCompleteUnbindAdapterEx = ndis_complete_unbind_adapter_ex);
    export!(table, "ndis.sys", NdisUnbindAdapter = ndis_unbind_adapter);
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
            operational: super::pnp::Operational::Paused,
            power: NdisDeviceStateD0,
            powered_down_after: 0,
            remove_queried: false,
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
        // The binding is Paused; NDIS restarts the stack it paused to bind the protocol
        // (network/binding-states-of-a-protocol-driver, NDIS_PAUSE_BIND_PROTOCOL). The call
        // manager registers its AF independently.
        state.schedule(now, 1, Work::Pnp { binding: id, step: super::pnp::PnpStep::Restart });
        state.schedule(now, 1, Work::AfRegisterNotify { binding: id, again: false });
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

/// The call manager registers its address families on a bound binding
/// ([`super::callmgr::offered_families`]), once, or `again` (a repeated registration).
pub(crate) fn deliver_af_register_notify(
    world: &Arc<World>,
    ndis: &Ndis,
    id: u64,
    again: bool,
    processor: usize,
) {
    let (notify, context, families) = {
        let mut state = ndis.state();
        let notify = state.protocol.as_ref().and_then(|p| p.co).and_then(|co| co.CoAfRegisterNotifyHandler);
        let families = state.config.call_manager.families.clone();
        let Some(binding) = state.bindings.get_mut(&id) else { return };
        if binding.state != BindingState::Bound || binding.af_registered != again {
            return;
        }
        binding.af_registered = true;
        (notify, binding.context, families)
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
    for (address_family, major, minor) in families {
        let mut family =
            CO_ADDRESS_FAMILY { AddressFamily: address_family, MajorVersion: major, MinorVersion: minor };
        let family_pointer: *mut CO_ADDRESS_FAMILY = &mut family;
        let shown = format!("({context:#x}, AF {address_family:#x} {major}.{minor})");
        call_driver(
            world,
            ndis,
            processor,
            PASSIVE_LEVEL,
            Logged::Text("ProtocolCoAfRegisterNotify", shown),
            || {
                // SAFETY: the driver's ProtocolCoAfRegisterNotify at PASSIVE; `family` outlives the call.
                unsafe { notify(context as NDIS_HANDLE, family_pointer) }
            },
        );
    }
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
    const DDI: Ddi = Ddi::ndis(
        "NdisOpenAdapterEx",
        IrqlRequirement::Exactly(PASSIVE_LEVEL),
        rules::IRQL_PROTOCOL_DRIVER_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
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
    const DDI: Ddi = Ddi::ndis(
        "NdisCloseAdapterEx",
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
    const DDI: Ddi = Ddi::ndis(
        "NdisCompleteBindAdapterEx",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
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

/// NDIS unbinds a bound binding (PASSIVE): it pauses it first if it runs (nc-ndis-
/// protocol_unbind_adapter_ex; network/binding-states-of-a-protocol-driver: Closing is entered
/// from Paused), then calls ProtocolUnbindAdapterEx. One PnP operation at a time
/// ([`super::pnp::acquire`]).
pub fn unbind_binding(world: &Arc<World>, ndis: &Ndis, id: u64, processor: usize) {
    super::pnp::acquire(world, ndis);
    let running = ndis.state().bindings.get(&id).is_some_and(|b| {
        b.state == BindingState::Bound
            && matches!(b.operational, super::pnp::Operational::Running | super::pnp::Operational::Restarting)
    });
    if running {
        super::pnp::pause(world, ndis, id, NDIS_PAUSE_UNBIND_PROTOCOL);
    }
    call_unbind(world, ndis, id, processor);
    super::pnp::release(world, ndis);
}

fn call_unbind(world: &Arc<World>, ndis: &Ndis, id: u64, processor: usize) {
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
    const DDI: Ddi = Ddi::ndis(
        "NdisCompleteUnbindAdapterEx",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
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
    const DDI: Ddi = Ddi::ndis(
        "NdisUnbindAdapter",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
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

/// What NDIS waits on for the pended unbind of binding `id`.
pub(super) fn unbind_wait_key(id: u64) -> usize {
    super::handle_wait_key(Kind::UnbindContext, id as usize)
}
