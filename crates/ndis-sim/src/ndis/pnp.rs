//! PnP and power events NDIS sends a protocol: each binding's operational state (Paused,
//! Restarting, Running, Pausing), the NET_PNP_EVENT_NOTIFICATION of every event with its buffer,
//! the sequences NDIS sends (a pause before an unbind, a restart after a bind, set-power with the
//! pause and restart around it, query-remove and its cancel), their serialization, and the rules
//! of the Paused state.
//!
//! Read: network/binding-states-of-a-protocol-driver, network/pausing-a-binding,
//! network/restarting-a-binding, nc-ndis-protocol_net_pnp_event, ns-ndis-_net_pnp_event,
//! ns-ndis-_net_pnp_event_notification, ns-ndis-_ndis_protocol_pause_parameters,
//! ns-ndis-_ndis_protocol_restart_parameters, nf-ndis-ndiscompletenetpnpevent,
//! network/handling-pnp-events-and-power-management-events-in-a-protocol-driver.
//!
//! Flow: [`deliver_step`] (a scenario step, a campaign operation, the restart that follows a
//! bind) takes the PnP lock — NDIS sends one PnP event at a time, and never unbinds a binding it
//! is pausing — and sends the step's events with [`send`]: the notification is built in NDIS's
//! memory, ProtocolNetPnPEvent is called at PASSIVE, a PENDING answer is waited for until
//! NdisCompleteNetPnPEvent, and the final status is checked. The binding's state moves as the
//! binding-states page says: Pause → Pausing → (complete) Paused; Restart → Restarting → Running.
//!
//! What is not sent, loudly: NetEventPortActivation / NetEventPortDeactivation (the simulated
//! ATM adapters have only the default port, which is never activated or deactivated),
//! NetEventIMReEnableDevice (intermediate drivers only), NetEventNDKEnable/Disable (NDK
//! adapters), NetEventFilterPreDetach (filters), NetEventBindFailed and the NDIS 6.50 miniport
//! events (protocols "cannot receive" them).

#![allow(non_upper_case_globals)] // NDIS event codes keep their NDIS names in patterns.

use std::sync::Arc;

use ndis_sys::*;

use super::{call_driver, rules, status_name, violation, Logged, Ndis, State};
use crate::kernel::{World, PASSIVE_LEVEL};

/// Where a bound binding's data path is (network/binding-states-of-a-protocol-driver). A
/// binding enters Paused when it is bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operational {
    Paused,
    Restarting,
    Running,
    Pausing,
}

/// A PnP request of the harness (defined with the scenario format, which the Windows CLI shares).
pub use crate::scenario::portable::PnpStep;

/// NDIS's PnP bookkeeping (one event at a time).
#[derive(Default)]
pub(crate) struct PnpState {
    /// A step (or an unbind) is being delivered: the next one waits.
    busy: bool,
    /// The event being indicated and its binding, from the call until its final status.
    current: Option<(Option<u64>, NET_PNP_EVENT_CODE, usize)>,
    /// The status NdisCompleteNetPnPEvent brought.
    completed: Option<NDIS_STATUS>,
    /// ProtocolNetPnPEvent is running (not returned) for a set-power or query-power event.
    in_power_handler: bool,
}

/// What the deliveries wait on for the PnP lock (a handle-like value, not an address).
const SERIAL_KEY: usize = super::handle_wait_key(super::Kind::Protocol, 1);
/// What NDIS waits on for a pended ProtocolNetPnPEvent.
pub(super) const PENDING_KEY: usize = super::handle_wait_key(super::Kind::Protocol, 0);

/// Takes the PnP lock (waits while another delivery holds it).
pub(crate) fn acquire(world: &World, ndis: &Ndis) {
    loop {
        {
            let mut state = ndis.state();
            if !state.pnp.busy {
                state.pnp.busy = true;
                return;
            }
        }
        if world.machine().wait(world, SERIAL_KEY, None) == crate::machine::Wake::Stopped {
            return;
        }
    }
}

pub(crate) fn release(world: &World, ndis: &Ndis) {
    ndis.state().pnp.busy = false;
    world.machine().signal(SERIAL_KEY);
}

/// An event's Buffer.
enum Buffer {
    Null,
    /// A ULONG: an NDIS_DEVICE_POWER_STATE or the capabilities bitmask.
    Ulong(u32),
    Pause(NDIS_PROTOCOL_PAUSE_PARAMETERS),
    Restart(NDIS_PROTOCOL_RESTART_PARAMETERS),
    /// REG_MULTI_SZ.
    Wide(Vec<u16>),
}

/// The events a binding may fail (nc-ndis-protocol_net_pnp_event: "A protocol driver can fail
/// the NetEventQueryRemoveDevice and NetEventPortActivation events"); every other must succeed.
fn may_fail(event: NET_PNP_EVENT_CODE) -> bool {
    matches!(event, NetEventQueryRemoveDevice | NetEventPortActivation)
}

/// Delivers `step` to `binding` (PASSIVE, on the calling machine context). `Err` says why the
/// step does not apply in the binding's state (nothing is sent then).
pub fn deliver_step(world: &Arc<World>, ndis: &Ndis, binding: u64, step: PnpStep) -> Result<(), String> {
    acquire(world, ndis);
    let result = deliver_locked(world, ndis, binding, step);
    release(world, ndis);
    result
}

fn deliver_locked(world: &Arc<World>, ndis: &Ndis, id: u64, step: PnpStep) -> Result<(), String> {
    let (operational, power, remove_queried) = {
        let state = ndis.state();
        match state.bindings.get(&id) {
            Some(b) if b.state == super::binding::BindingState::Bound => {
                (b.operational, b.power, b.remove_queried)
            }
            Some(b) => return Err(format!("Bd#{id} is {:?}, not bound", b.state)),
            None => return Err(format!("no binding Bd#{id}")),
        }
    };
    let binding = Some(id);
    match step {
        PnpStep::Pause => {
            if operational != Operational::Running {
                return Err(format!("Bd#{id} is {operational:?}, not running"));
            }
            pause(world, ndis, id, NDIS_PAUSE_NDIS_INTERNAL);
        }
        PnpStep::Restart => {
            if operational != Operational::Paused {
                return Err(format!("Bd#{id} is {operational:?}, not paused"));
            }
            restart(world, ndis, id);
        }
        PnpStep::PowerDown => {
            if power != NdisDeviceStateD0 {
                return Err(format!("Bd#{id}'s adapter is already in D{}", power.saturating_sub(1)));
            }
            // handling-pnp-events-and-power-management-events-in-a-protocol-driver: "a
            // NetEventQueryPower is always followed by a NetEventSetPower"; "After issuing the set
            // power request, NDIS pauses the driver stack if the miniport adapter is
            // transitioning to a low-power state".
            send(world, ndis, binding, NetEventQueryPower, Buffer::Ulong(NdisDeviceStateD3));
            send(world, ndis, binding, NetEventSetPower, Buffer::Ulong(NdisDeviceStateD3));
            if ndis.state().bindings.get(&id).is_some_and(|b| b.operational == Operational::Running) {
                pause(world, ndis, id, NDIS_PAUSE_LOW_POWER);
            }
        }
        PnpStep::PowerUp => {
            if power == NdisDeviceStateD0 {
                return Err(format!("Bd#{id}'s adapter is already in D0"));
            }
            // Same page: "NDIS restarts the driver stack before the set-power request if the
            // miniport adapter is transitioning to the working state (D0)" — read literally:
            // the restart comes first, then NetEventSetPower(D0).
            if operational == Operational::Paused {
                restart(world, ndis, id);
            }
            send(world, ndis, binding, NetEventSetPower, Buffer::Ulong(NdisDeviceStateD0));
        }
        PnpStep::QueryRemove => {
            if remove_queried {
                return Err(format!("Bd#{id}: a query-remove is already outstanding"));
            }
            let status = send(world, ndis, binding, NetEventQueryRemoveDevice, Buffer::Null);
            if status == NDIS_STATUS_SUCCESS {
                if let Some(b) = ndis.state().bindings.get_mut(&id) {
                    b.remove_queried = true;
                }
            } else {
                // The PnP manager cancels a removal that a driver vetoed (ns-ndis-_net_pnp_event:
                // Cancel Remove Device "after the PnP Manager sends a Query Remove Device").
                send(world, ndis, binding, NetEventCancelRemoveDevice, Buffer::Null);
            }
        }
        PnpStep::CancelRemove => {
            if !remove_queried {
                return Err(format!("Bd#{id}: no query-remove to cancel"));
            }
            send(world, ndis, binding, NetEventCancelRemoveDevice, Buffer::Null);
            if let Some(b) = ndis.state().bindings.get_mut(&id) {
                b.remove_queried = false;
            }
        }
        PnpStep::Reconfigure => {
            send(world, ndis, binding, NetEventReconfigure, Buffer::Null);
        }
        PnpStep::BindList => {
            let names: Vec<String> = ndis.state().config.adapters.iter().map(|a| a.name.clone()).collect();
            let mut list: Vec<u16> = Vec::new();
            for name in names {
                list.extend(name.encode_utf16());
                list.push(0);
            }
            list.push(0);
            // nc-ndis-protocol_net_pnp_event: NetEventBindList always has a NULL context.
            send(world, ndis, None, NetEventBindList, Buffer::Wide(list));
        }
        PnpStep::Capabilities => {
            send(world, ndis, binding, NetEventPnPCapabilities, Buffer::Ulong(NDIS_DEVICE_WAKE_UP_ENABLE));
        }
    }
    Ok(())
}

/// NetEventPause: Pausing while the driver handles it, Paused once it has completed.
pub(crate) fn pause(world: &Arc<World>, ndis: &Ndis, id: u64, reason: u32) {
    let parameters = NDIS_PROTOCOL_PAUSE_PARAMETERS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_DEFAULT,
            Revision: NDIS_PROTOCOL_PAUSE_PARAMETERS_REVISION_1,
            Size: NDIS_SIZEOF_PROTOCOL_PAUSE_PARAMETERS_REVISION_1,
        },
        Flags: 0,
        PauseReason: reason,
    };
    send(world, ndis, Some(id), NetEventPause, Buffer::Pause(parameters));
}

/// NetEventRestart: Restarting while the driver handles it, then Running. The buffer is
/// NDIS_PROTOCOL_RESTART_PARAMETERS (no filter module, an empty attribute list), or NULL one
/// time in four ("the restart attributes have not changed since the previous restart").
pub(crate) fn restart(world: &Arc<World>, ndis: &Ndis, id: u64) {
    let null = ndis.state().rng.below(4) == 0;
    let buffer = if null {
        Buffer::Null
    } else {
        Buffer::Restart(NDIS_PROTOCOL_RESTART_PARAMETERS {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_PROTOCOL_RESTART_PARAMETERS,
                Revision: NDIS_PROTOCOL_RESTART_PARAMETERS_REVISION_1,
                Size: NDIS_SIZEOF_PROTOCOL_RESTART_PARAMETERS_REVISION_1,
            },
            FilterModuleNameBuffer: std::ptr::null_mut(),
            FilterModuleNameBufferLength: 0,
            RestartAttributes: std::ptr::null_mut(),
            BoundIfIndex: 10 + id as u32,
            BoundIfNetluid: 0x0025_0000_0000_0000 | id,
            Flags: 0,
        })
    };
    send(world, ndis, Some(id), NetEventRestart, buffer);
}

/// Sends one event (`binding` None: a NULL context) at PASSIVE and returns its final status (a
/// PENDING answer is waited for). Checks the status rules, moves the binding's state, and for
/// a pause checks what must be complete before it is.
fn send(
    world: &Arc<World>,
    ndis: &Ndis,
    binding: Option<u64>,
    event: NET_PNP_EVENT_CODE,
    buffer: Buffer,
) -> NDIS_STATUS {
    let (handler, context) = {
        let mut state = ndis.state();
        let handler = state.protocol.as_ref().and_then(|p| p.characteristics.0.NetPnPEventHandler);
        let context = binding.and_then(|id| state.bindings.get(&id)).map_or(0, |b| b.context);
        if let Some(b) = binding.and_then(|id| state.bindings.get_mut(&id)) {
            match (event, &buffer) {
                (NetEventPause, _) => b.operational = Operational::Pausing,
                (NetEventRestart, _) => b.operational = Operational::Restarting,
                // The adapter is in the new state from the indication on: on D0 NDIS has
                // powered it up already (the stack was restarted before the set-power), and
                // on D1-D3 the driver must stop at once ("must stop generating new I/O").
                (NetEventSetPower, Buffer::Ulong(power)) => {
                    b.power = *power;
                    b.powered_down_after = usize::MAX;
                }
                _ => {}
            }
        }
        (handler, context)
    };
    let Some(handler) = handler else { return NDIS_STATUS_FAILURE };
    // The buffer, in NDIS's memory (u64 storage keeps it aligned) for the whole indication.
    let mut storage: Vec<u64>;
    let (pointer, length): (usize, u32) = match &buffer {
        Buffer::Null => (0, 0),
        Buffer::Ulong(value) => {
            storage = vec![u64::from(*value)];
            (storage.as_mut_ptr() as usize, 4)
        }
        Buffer::Pause(p) => {
            storage = vec![0; 2];
            // SAFETY: 16 bytes, 8-aligned, hold the 12-byte structure.
            unsafe { storage.as_mut_ptr().cast::<NDIS_PROTOCOL_PAUSE_PARAMETERS>().write(*p) };
            (storage.as_mut_ptr() as usize, u32::from(NDIS_SIZEOF_PROTOCOL_PAUSE_PARAMETERS_REVISION_1))
        }
        Buffer::Restart(p) => {
            storage = vec![0; std::mem::size_of::<NDIS_PROTOCOL_RESTART_PARAMETERS>() / 8];
            // SAFETY: the storage is exactly the structure's size, 8-aligned.
            unsafe { storage.as_mut_ptr().cast::<NDIS_PROTOCOL_RESTART_PARAMETERS>().write(*p) };
            (storage.as_mut_ptr() as usize, u32::from(NDIS_SIZEOF_PROTOCOL_RESTART_PARAMETERS_REVISION_1))
        }
        Buffer::Wide(units) => {
            storage = vec![0; units.len().div_ceil(4)];
            // SAFETY: the storage holds at least `units.len()` u16s.
            unsafe {
                std::ptr::copy_nonoverlapping(units.as_ptr(), storage.as_mut_ptr().cast(), units.len())
            };
            (storage.as_mut_ptr() as usize, (units.len() * 2) as u32)
        }
    };
    // NET_PNP_EVENT_NOTIFICATION (0xB0 bytes), zeroed, then header, event, buffer.
    let mut block = vec![0_u64; std::mem::size_of::<NET_PNP_EVENT_NOTIFICATION>() / 8];
    let notification = block.as_mut_ptr().cast::<NET_PNP_EVENT_NOTIFICATION>();
    // SAFETY: `block` is the structure's size and 8-aligned; the fields are written in place.
    unsafe {
        (*notification).Header = NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_DEFAULT,
            Revision: NET_PNP_EVENT_NOTIFICATION_REVISION_1,
            Size: std::mem::size_of::<NET_PNP_EVENT_NOTIFICATION>() as u16,
        };
        (*notification).NetPnPEvent.NetEvent = event;
        (*notification).NetPnPEvent.Buffer = pointer as *mut core::ffi::c_void;
        (*notification).NetPnPEvent.BufferLength = length;
    }
    let notification = notification as usize;
    let power = matches!(event, NetEventSetPower | NetEventQueryPower);
    {
        let mut state = ndis.state();
        state.pnp.current = Some((binding, event, notification));
        state.pnp.completed = None;
        state.pnp.in_power_handler = power;
    }
    let status = call_driver(
        world,
        ndis,
        crate::kernel::current_processor_in(world).unwrap_or(0),
        PASSIVE_LEVEL,
        Logged::Text("ProtocolNetPnPEvent", format!("({context:#x}, {})", event_name(event))),
        || {
            // SAFETY: the driver's ProtocolNetPnPEvent at PASSIVE with an NDIS-owned notification.
            unsafe { handler(context as NDIS_HANDLE, notification as *mut NET_PNP_EVENT_NOTIFICATION) }
        },
    );
    {
        let mut state = ndis.state();
        state.pnp.in_power_handler = false;
        if event == NetEventSetPower {
            if let Some(b) = binding.and_then(|id| state.bindings.get_mut(&id)) {
                b.powered_down_after = crate::machine::entries_so_far();
            }
        }
    }
    world.log_call(0, super::DRIVER_DLL, "ProtocolNetPnPEvent", format!("returned {}", status_name(status)));
    if status == NDIS_STATUS_NOT_SUPPORTED {
        violation(
            world,
            rules::NET_PNP_NOT_SUPPORTED,
            "partyline.sys!ProtocolNetPnPEvent",
            format!("{}: NDIS 6 drivers must not return NDIS_STATUS_NOT_SUPPORTED", event_name(event)),
        );
    }
    let status = if status == NDIS_STATUS_PENDING {
        // NDIS waits for NdisCompleteNetPnPEvent (which signals this key) before it goes on.
        ndis.state().pnp_pending = Some(binding.unwrap_or(0));
        while ndis.state().pnp_pending.is_some() {
            if world.machine().wait(world, PENDING_KEY, None) == crate::machine::Wake::Stopped {
                break;
            }
        }
        ndis.state().pnp.completed.unwrap_or(NDIS_STATUS_FAILURE)
    } else {
        finish(world, &mut ndis.state(), status);
        status
    };
    ndis.state().pnp.current = None;
    drop(block);
    drop(buffer);
    status
}

/// The event's final status is known (ProtocolNetPnPEvent returned it, or NdisCompleteNetPnPEvent
/// brought it): the status rules, the pause's completeness, the binding's new state.
pub(super) fn finish(world: &World, state: &mut State, status: NDIS_STATUS) {
    let Some((binding, event, _)) = state.pnp.current else { return };
    state.pnp.completed = Some(status);
    let failed = status != NDIS_STATUS_SUCCESS && status != NDIS_STATUS_PENDING;
    if failed && status != NDIS_STATUS_NOT_SUPPORTED && !may_fail(event) {
        // nc-ndis-protocol_net_pnp_event: only NetEventQueryRemoveDevice and
        // NetEventPortActivation may be failed; "A protocol driver should always succeed" the
        // others (Pause: "cannot fail a pause operation", binding-states page; QueryPower and
        // SetPower: "should always succeed", handling-pnp-events-...-in-a-protocol-driver).
        violation(
            world,
            rules::NET_PNP_MUST_SUCCEED,
            "partyline.sys!ProtocolNetPnPEvent",
            format!("{} failed with {}", event_name(event), status_name(status)),
        );
    }
    let Some(id) = binding else { return };
    match event {
        NetEventPause => {
            // network/pausing-a-binding: "The pause operation is not complete until NDIS calls
            // the ProtocolSendNetBufferListsComplete function for all of the driver's outstanding
            // send requests". partyline's reading for a CoNDIS client: the call and party set-ups
            // it started (NdisClMakeCall, NdisClAddParty) must have completed.
            let outstanding = setups_in_flight(state, id);
            if outstanding > 0 {
                violation(
                    world,
                    rules::PAUSE_WITH_SETUPS_OUTSTANDING,
                    "partyline.sys!ProtocolNetPnPEvent",
                    format!("Bd#{id}: the pause completed with {outstanding} MakeCall/AddParty request(s) still pending"),
                );
            }
            if let Some(b) = state.bindings.get_mut(&id) {
                b.operational = Operational::Paused;
            }
        }
        NetEventRestart => {
            // "If the restart fails, the binding returns to the Paused state."
            if let Some(b) = state.bindings.get_mut(&id) {
                b.operational = if failed { Operational::Paused } else { Operational::Running };
            }
        }
        _ => {}
    }
}

/// MakeCall and AddParty requests of `binding` that NDIS has not completed.
fn setups_in_flight(state: &State, binding: u64) -> usize {
    state
        .vcs
        .iter()
        .filter(|(_, vc)| vc.binding == binding)
        .map(|(id, vc)| match vc.state {
            super::vc::VcState::MakeCallPending => 1,
            super::vc::VcState::Active => state.parties.add_pending_ids(*id).len(),
            _ => 0,
        })
        .sum()
}

/// NdisClMakeCall / NdisClAddParty on `vc`: network/pausing-a-binding, "For a binding in the
/// Paused state, the protocol driver must not make any send requests"; binding-states: in the
/// Paused state the driver "does not perform send or receive operations"; ns-ndis-_net_pnp_event
/// (NDIS 6.30): after NetEventSetPower the driver "must stop generating new I/O requests". A
/// call or party set-up starts signalling and then data on the adapter, so partyline's reading
/// forbids starting one while the binding is Paused or its adapter is not in D0. (Pausing is
/// allowed: only "should not"; the pause then waits for it, [`finish`].)
///
/// "New" I/O after a power-down is I/O a driver activity that began after the driver returned
/// from NetEventSetPower starts, or the handler itself: a set-up issued by a callback entered
/// before that return (a completion on another processor that decided it under the driver's
/// lock before the handler took the lock) races the event legitimately, and the pause NDIS sends
/// next waits for it. Once the binding is Paused nothing is excused.
pub(crate) fn check_new_setup(world: &World, state: &State, vc: u64, export: &str) {
    let Some(binding) = state.vcs.get(&vc).map(|v| v.binding) else { return };
    let Some(b) = state.bindings.get(&binding) else { return };
    let decided_before = || {
        !crate::machine::current_callbacks().contains(&"ProtocolNetPnPEvent")
            && crate::machine::outermost_entry().is_some_and(|entry| entry <= b.powered_down_after)
    };
    let why = if b.operational == Operational::Paused {
        "is Paused (after NetEventPause, before NetEventRestart)".to_string()
    } else if b.power != NdisDeviceStateD0 && decided_before() {
        return;
    } else if b.power != NdisDeviceStateD0 {
        format!("is powered down (NetEventSetPower D{})", b.power.saturating_sub(1))
    } else {
        return;
    };
    violation(world, rules::PAUSED_NEW_SETUP, export, format!("Vc#{vc}: binding Bd#{binding} {why}"));
}

/// NdisWaitEvent: ns-ndis-_net_pnp_event (NDIS 6.30): on NetEventSetPower or NetEventQueryPower
/// "the driver must not wait for the completion of any pending I/O requests" (handling-pnp-...:
/// "within the context of the call to ProtocolNetPnPEvent"). A blocking wait inside that handler
/// is such a wait.
pub(crate) fn check_wait(world: &World, ndis: &Ndis, export: &str) {
    let event = {
        let state = ndis.state();
        if !state.pnp.in_power_handler {
            return;
        }
        state.pnp.current.map(|(_, event, _)| event)
    };
    if crate::machine::current_callbacks().contains(&"ProtocolNetPnPEvent") {
        violation(
            world,
            rules::POWER_EVENT_WAIT,
            export,
            format!("a wait inside ProtocolNetPnPEvent({})", event.map_or("?", event_name)),
        );
    }
}

/// The event code's name.
pub fn event_name(event: NET_PNP_EVENT_CODE) -> &'static str {
    const NAMES: [&str; 23] = [
        "NetEventSetPower",
        "NetEventQueryPower",
        "NetEventQueryRemoveDevice",
        "NetEventCancelRemoveDevice",
        "NetEventReconfigure",
        "NetEventBindList",
        "NetEventBindsComplete",
        "NetEventPnPCapabilities",
        "NetEventPause",
        "NetEventRestart",
        "NetEventPortActivation",
        "NetEventPortDeactivation",
        "NetEventIMReEnableDevice",
        "NetEventNDKEnable",
        "NetEventNDKDisable",
        "NetEventFilterPreDetach",
        "NetEventBindFailed",
        "NetEventSwitchActivate",
        "NetEventAllowBindsAbove",
        "NetEventInhibitBindsAbove",
        "NetEventAllowStart",
        "NetEventRequirePause",
        "NetEventUploadGftFlowEntries",
    ];
    NAMES.get(event as usize).copied().unwrap_or("NetEvent?")
}

/// A global event with no buffer (NetEventBindsComplete after the binds), outside any step.
pub fn send_global(world: &Arc<World>, ndis: &Ndis, event: NET_PNP_EVENT_CODE) -> NDIS_STATUS {
    acquire(world, ndis);
    let status = send(world, ndis, None, event, Buffer::Null);
    release(world, ndis);
    status
}

/// Sends `event` with no buffer (tests that play NDIS).
pub fn send_plain(
    world: &Arc<World>,
    ndis: &Ndis,
    binding: Option<u64>,
    event: NET_PNP_EVENT_CODE,
) -> NDIS_STATUS {
    acquire(world, ndis);
    let status = send(world, ndis, binding, event, Buffer::Null);
    release(world, ndis);
    status
}
