//! Calls: NdisClMakeCall, NdisClCloseCall, NdisClIncomingCallComplete, the network's release of a
//! call (ProtocolClIncomingCloseCall), with the delivery of each completion they queue.
//!
//! Read: nf-ndis-ndisclmakecall, nf-ndis-ndisclclosecall, nf-ndis-ndisclincomingcallcomplete,
//! nc-ndis-protocol_cl_incoming_close_call; condis-reference.md §5; verifier-rules.md §7.7.
//!
//! Flow: a MakeCall is validated by the call manager and answered at once or pended; a pended one
//! is completed by [`deliver_make_call_complete`] (Work::MakeCallComplete), which settles the call
//! ([`make_call_settled`]: Active, its parties connected, remote leaves scheduled), writes the
//! party handle out-parameter and calls ProtocolClMakeCallComplete. A pended close is completed by
//! [`deliver_close_call_complete`]; the network releases a call with [`deliver_remote_release`].

use std::ffi::c_void;
use std::sync::Arc;

use ndis_sys::*;

use super::callmgr;
use super::condis::{
    check_parameters, client, mark_parameters_changed, outcome_and_failure, reject_parameters,
    render_incoming, render_result, CALL_MANAGER, NETWORK,
};
use super::out_param::{self, When};
use super::params;
use super::parties::{AddressKey, Party, PartyState};
use super::vc::{live_vc, VcState};
use super::{
    call_driver, decode, driver_call, fmt_shown, handle, log_lazy, pend, render, rules, shown, violation,
    Kind, Logged, Ndis, Outcome, StatusName, Work,
};
use crate::ddi::{self, Context, Ddi, IrqlRequirement};
use crate::export;
use crate::exports::ExportTable;
use crate::kernel::{Call, Irql, World, DISPATCH_LEVEL};

/// Registers the call exports.
pub fn register(table: &mut ExportTable) {
    export!(table, "ndis.sys", NdisClMakeCall = ndis_cl_make_call);
    export!(table, "ndis.sys", NdisClCloseCall = ndis_cl_close_call);
    export!(table, "ndis.sys", NdisClIncomingCallComplete = ndis_cl_incoming_call_complete);
}

/// `NdisClMakeCall`: <= DISPATCH; on an idle client VC; multipoint when ProtocolPartyContext is
/// non-NULL (the first party's handle goes to `*NdisPartyHandle`).
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclmakecall>
unsafe extern "win64" fn ndis_cl_make_call(
    vc_handle: NDIS_HANDLE,
    call_parameters: *mut CO_CALL_PARAMETERS,
    party_context: NDIS_HANDLE,
    party_handle: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const DDI: Ddi = Ddi::ndis(
        "NdisClMakeCall",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
        rules::IRQL_PROTOCOL_DRIVER_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    const CALL: Call = DDI.call();
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            let ([v0, v1, v2], [p0, p1, p2]) = {
                let state = ndis.state();
                (shown(&state, vc_handle as usize), shown(&state, call_parameters as usize))
            };
            let words = [v0, v1, v2, p0, p1, p2, party_context as u64, party_handle as u64];
            log_lazy(world, processor, &CALL, &words, |a, f| {
                f.write_str("(")?;
                fmt_shown(a, 0, f)?;
                f.write_str(", ")?;
                fmt_shown(a, 3, f)?;
                write!(f, ", {:#x}, {:#x})", a.word(6), a.word(7))
            });
        })
    };
    let Some(vc) = live_vc(ndis, vc_handle) else {
        violation(world, rules::VC_HANDLE_INVALID, EXPORT, "VC handle was deleted or never given");
        return NDIS_STATUS_FAILURE;
    };
    let (vc_state, closed_by_client) = {
        let state = ndis.state();
        super::pnp::check_new_setup(world, &state, vc, EXPORT);
        (state.vcs[&vc].state, state.vcs[&vc].closed_by_client)
    };
    let reusable = vc_state == VcState::Idle || (vc_state == VcState::Closed && !closed_by_client);
    if !reusable {
        violation(
            world,
            rules::MAKE_CALL_VC_BUSY,
            EXPORT,
            format!(
                "Vc#{vc} is {vc_state:?}{}",
                if closed_by_client { " (closed by the client: not reusable)" } else { "" }
            ),
        );
        return NDIS_STATUS_FAILURE;
    }
    let multipoint = !party_context.is_null();
    if call_parameters.is_null() || (multipoint && party_handle.is_null()) {
        violation(
            world,
            rules::NULL_ARGUMENT,
            EXPORT,
            "NULL CallParameters, or NULL NdisPartyHandle for a multipoint call",
        );
        return NDIS_STATUS_FAILURE;
    }
    let snapshot = {
        let state = ndis.state();
        // SAFETY: non-NULL; NDIS requires the parameters to be readable for the whole request.
        unsafe { params::snapshot(&state.pool, call_parameters as usize) }
    };
    let snapshot = match snapshot {
        Ok(snapshot) => snapshot,
        Err(what) => {
            violation(world, rules::CALL_PARAMETERS_INVALID, EXPORT, what);
            return NDIS_STATUS_INVALID_DATA;
        }
    };
    let rfc1755 = ndis.state().config.call_manager.rfc1755_strict;
    let adapter = {
        let s = ndis.state();
        s.bindings.get(&s.vcs[&vc].binding).map(|b| b.adapter).unwrap_or(0)
    };
    let (answer, setup) = match params::validate_setup(&snapshot, multipoint, rfc1755) {
        Ok(setup) => {
            for warning in &setup.warnings {
                world.log_call(processor, "sim", "CallManager", format!("warning: {warning}"));
            }
            let behaviour = ndis
                .state()
                .config
                .adapters
                .get(adapter)
                .map(|a| a.behaviour_of(&setup.called))
                .unwrap_or(callmgr::Behaviour::Accept);
            (callmgr::answer(&behaviour), Some(setup))
        }
        Err(reject) => {
            reject_parameters(world, ndis, processor, EXPORT, &reject);
            (callmgr::Answer::rejected(reject.cause), None)
        }
    };
    let (outcome, fail) = outcome_and_failure(world, ndis, answer.min_delay, Some(EXPORT));
    let (status, cause) = if fail && answer.status == NDIS_STATUS_SUCCESS {
        (NDIS_STATUS_RESOURCES, 47)
    } else {
        (answer.status, answer.cause)
    };
    let party = {
        let mut state = ndis.state();
        state.counters.calls_made += 1;
        let party = multipoint.then(|| state.new_id());
        if let Some(party) = party {
            let address = setup.as_ref().map(|s| s.called.clone()).unwrap_or_default();
            let mut new = Party::new(
                vc,
                party_context as usize,
                PartyState::AddPending,
                AddressKey::of(&address),
                None,
                answer.leave,
            );
            new.changed = answer.changed;
            state.parties.insert(party, new);
        }
        let entry = state.vcs.get_mut(&vc).expect("live");
        entry.state = VcState::MakeCallPending;
        entry.multipoint = multipoint;
        entry.closed_by_client = false;
        entry.setup = setup.map(Arc::new);
        entry.params = Some(snapshot);
        entry.leave = if multipoint { None } else { answer.leave };
        entry.party_out = party_handle as usize;
        state.set_incoming_close(vc, None);
        party
    };
    let result = if outcome == Outcome::Synchronous {
        if make_call_settled(world, ndis, vc, status, cause) == NDIS_STATUS_SUCCESS {
            if let Some(party) = party {
                mark_parameters_changed(world, processor, &mut ndis.state(), party, call_parameters as usize);
            }
        }
        write_make_call_party(world, ndis, vc, party, status, When::Return);
        status
    } else {
        pend(world, ndis, processor, outcome, Work::MakeCallComplete { vc, status, cause })
    };
    log_lazy(world, processor, &CALL, &[result as u64], render_result);
    result
}

/// Writes NdisClMakeCall's NdisPartyHandle when the call's setup completes: "NDIS returns a handle
/// representing the initial party ... if the request to set up an outgoing call succeeds"; for a
/// point-to-point call (ProtocolPartyContext NULL) the variable "is also set to NULL when the
/// outgoing call setup completes" (nf-ndis-ndisclmakecall). So: the party's handle on success,
/// nothing on a failed multipoint call, NULL for point-to-point — before the request returns, or,
/// if it pended, just before ProtocolClMakeCallComplete.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclmakecall>
fn write_make_call_party(world: &World, ndis: &Ndis, vc: u64, party: Option<u64>, status: i32, when: When) {
    let state = ndis.state();
    let Some(out) = state.vcs.get(&vc).map(|v| v.party_out).filter(|out| *out != 0) else { return };
    let value = match party {
        Some(_) if status != NDIS_STATUS_SUCCESS => return,
        Some(party) => handle(Kind::Party, party),
        None => 0,
    };
    out_param::write(
        world,
        &state.pool,
        "NdisClMakeCall",
        "NdisPartyHandle",
        out,
        value as NDIS_HANDLE,
        when,
    );
}

/// Applies the CM's answer to a MakeCall: Active (VPI/VCI assigned) or back to Idle; a SETUP the
/// network cleared while the MakeCall pended fails ([`super::crossing`]). Returns the status the
/// MakeCall completes with.
fn make_call_settled(world: &World, ndis: &Ndis, vc: u64, status: i32, cause: u8) -> i32 {
    let mut state = ndis.state();
    let now = world.now();
    let (status, cause) = match super::crossing::take_setup_cleared(&mut state, vc) {
        Some(cleared) if status == NDIS_STATUS_SUCCESS => cleared,
        _ => (status, cause),
    };
    let binding = state.vcs[&vc].binding;
    let vci = state.bindings.get_mut(&binding).map_or(32, |b| {
        b.next_vci += 1;
        b.next_vci - 1
    });
    let parties: Vec<u64> = state.parties.add_pending_ids(vc);
    let entry = state.vcs.get_mut(&vc).expect("live");
    let leave = entry.leave;
    if status == NDIS_STATUS_SUCCESS {
        entry.state = VcState::Active;
        entry.vci = vci;
        state.counters.calls_connected += 1;
        drop(state);
        world.log_lazy(0, &CALL_MANAGER, &[vc, u64::from(vci)], |a, f| {
            write!(f, "Vc#{} connected on VPI/VCI 0/{}", a.word(0), a.word(1))
        });
        let mut state = ndis.state();
        for party in parties {
            state.parties.set_state(party, PartyState::Connected).expect("party");
            let leave = state.parties.get(party).and_then(|p| p.leave);
            if let Some((ticks, status, cause)) = leave {
                state.schedule(now, ticks, Work::RemoteDrop { party, status, cause });
            }
        }
        if let Some((ticks, status, _)) = leave {
            state.schedule(now, ticks, Work::RemoteRelease { vc, status });
        }
    } else {
        entry.state = VcState::Idle;
        entry.params = None;
        state.counters.calls_rejected += 1;
        for party in parties {
            state.parties.set_state(party, PartyState::Gone).expect("party");
        }
        drop(state);
        world.log_lazy(0, &CALL_MANAGER, &[vc, status as u64, u64::from(cause)], |a, f| {
            write!(
                f,
                "Vc#{} call failed: {} (UNI cause {})",
                a.word(0),
                StatusName(a.word(1) as i32),
                a.word(2)
            )
        });
    }
    status
}

/// `NdisClCloseCall`: <= DISPATCH; on a multipoint call only with exactly one party left, nothing
/// pending, and that party's handle.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclclosecall>
extern "win64" fn ndis_cl_close_call(
    vc_handle: NDIS_HANDLE,
    party_handle: NDIS_HANDLE,
    buffer: *mut c_void,
    size: u32,
) -> NDIS_STATUS {
    const DDI: Ddi = Ddi::ndis(
        "NdisClCloseCall",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
        rules::IRQL_PROTOCOL_DRIVER_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    const CALL: Call = DDI.call();
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            let ([v0, v1, v2], [p0, p1, p2]) = {
                let state = ndis.state();
                (shown(&state, vc_handle as usize), shown(&state, party_handle as usize))
            };
            let words = [v0, v1, v2, p0, p1, p2, buffer as u64, u64::from(size)];
            log_lazy(world, processor, &CALL, &words, |a, f| {
                f.write_str("(")?;
                fmt_shown(a, 0, f)?;
                f.write_str(", ")?;
                fmt_shown(a, 3, f)?;
                write!(f, ", {:#x}, {})", a.word(6), a.word(7))
            });
        })
    };
    let Some(vc) = live_vc(ndis, vc_handle) else {
        violation(world, rules::VC_HANDLE_INVALID, EXPORT, "VC handle was deleted or never given");
        return NDIS_STATUS_FAILURE;
    };
    let (vc_state, multipoint) = {
        let s = ndis.state();
        (s.vcs[&vc].state, s.vcs[&vc].multipoint)
    };
    if vc_state != VcState::Active {
        violation(
            world,
            rules::VC_HANDLE_INVALID,
            EXPORT,
            format!("Vc#{vc} has no active call ({vc_state:?})"),
        );
        return NDIS_STATUS_FAILURE;
    }
    let party = decode(Kind::Party, party_handle as usize);
    if multipoint {
        let (belongs, alive) = {
            let state = ndis.state();
            let belongs = party.and_then(|id| state.parties.get(id)).is_some_and(|p| {
                p.vc == vc && matches!(p.state(), PartyState::Connected | PartyState::IncomingDropped { .. })
            });
            (belongs, state.parties.of_call(vc).alive())
        };
        // A multipoint call whose every party is gone (dropped, or an AddParty that failed) has
        // no handle left to pass: NULL is then the only possible argument.
        let no_party_left = party_handle.is_null() && alive == 0;
        if !belongs && !no_party_left {
            violation(
                world,
                rules::CLOSE_CALL_PARTY_HANDLE,
                EXPORT,
                format!(
                    "{} is not a live party handle of Vc#{vc}",
                    render(&ndis.state(), party_handle as usize)
                ),
            );
            return NDIS_STATUS_FAILURE;
        }
        if alive > 1 {
            violation(
                world,
                rules::CLOSE_CALL_WITH_PARTIES,
                EXPORT,
                format!("Vc#{vc} still has {alive} parties (or an add/drop pending); drop all but one first"),
            );
            return NDIS_STATUS_FAILURE;
        }
    }
    let (outcome, _) = outcome_and_failure(world, ndis, 0, None);
    {
        let mut state = ndis.state();
        let entry = state.vcs.get_mut(&vc).expect("live");
        entry.closed_by_client = entry.incoming_close != Some(NDIS_STATUS_SUCCESS);
        entry.state = if outcome == Outcome::Synchronous { VcState::Closed } else { VcState::Closing };
        let released = entry.incoming_close;
        state.crossings.closed_after_release(vc, released);
        state.set_incoming_close(vc, None);
        state.counters.calls_closed += 1;
        if let Some(party) = party.filter(|_| multipoint) {
            if outcome == Outcome::Synchronous {
                state.parties.set_state(party, PartyState::Gone).expect("party");
            }
        }
    }
    let status = if outcome == Outcome::Synchronous {
        NDIS_STATUS_SUCCESS
    } else {
        pend(world, ndis, processor, outcome, Work::CloseCallComplete { vc, status: NDIS_STATUS_SUCCESS })
    };
    log_lazy(world, processor, &CALL, &[status as u64], render_result);
    status
}

/// `NdisClIncomingCallComplete`: this simulated CM never offers incoming calls (the client
/// registers no SAP), so any call is a violation and is refused.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclincomingcallcomplete>
extern "win64" fn ndis_cl_incoming_call_complete(
    status: NDIS_STATUS,
    vc_handle: NDIS_HANDLE,
    _parameters: *mut CO_CALL_PARAMETERS,
) {
    const DDI: Ddi = Ddi::ndis(
        "NdisClIncomingCallComplete",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
        rules::IRQL_PROTOCOL_DRIVER_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    const CALL: Call = DDI.call();
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            let [h0, h1, h2] = shown(&ndis.state(), vc_handle as usize);
            log_lazy(world, processor, &CALL, &[status as u64, h0, h1, h2], |a, f| {
                write!(f, "({}, ", StatusName(a.word(0) as i32))?;
                fmt_shown(a, 1, f)?;
                f.write_str(")")
            });
        })
    };
    violation(
        world,
        rules::INCOMING_CALL_COMPLETE_UNEXPECTED,
        EXPORT,
        "no incoming call was offered to this client",
    );
}

/// Work::MakeCallComplete: a pended NdisClMakeCall completes (ProtocolClMakeCallComplete), the
/// parameters checked again and NdisPartyHandle written just before.
pub(super) fn deliver_make_call_complete(
    world: &Arc<World>,
    ndis: &Ndis,
    vc: u64,
    status: i32,
    cause: u8,
    processor: usize,
    irql: Irql,
) {
    let Some(client) = client(ndis) else { return };
    let (context, snapshot, party) = {
        let state = ndis.state();
        let Some(entry) = state.vcs.get(&vc) else { return };
        let party = state.parties.add_pending_ids(vc).first().copied();
        (entry.context, entry.params.clone(), party)
    };
    if let Some(snapshot) = &snapshot {
        check_parameters(world, ndis, snapshot, "ProtocolClMakeCallComplete");
    }
    let status = make_call_settled(world, ndis, vc, status, cause);
    let parameters = snapshot.map_or(0, |s| s.address);
    if let Some(party) = party.filter(|_| status == NDIS_STATUS_SUCCESS) {
        mark_parameters_changed(world, processor, &mut ndis.state(), party, parameters);
    }
    write_make_call_party(world, ndis, vc, party, status, When::Completion);
    let party_handle = party.filter(|_| status == NDIS_STATUS_SUCCESS).map_or(0, |p| handle(Kind::Party, p));
    if let Some(complete) = client.ClMakeCallCompleteHandler {
        call_driver(
            world,
            ndis,
            processor,
            irql,
            Logged::Lazy(
                const { &driver_call("ProtocolClMakeCallComplete") },
                &{
                    let [h0, h1, h2] = shown(&ndis.state(), party_handle);
                    [status as u64, context as u64, h0, h1, h2, parameters as u64]
                },
                |a, f| {
                    write!(f, "({}, {:#x}, ", StatusName(a.word(0) as i32), a.word(1))?;
                    fmt_shown(a, 2, f)?;
                    write!(f, ", {:#x})", a.word(5))
                },
            ),
            || {
                // SAFETY: the driver's ProtocolClMakeCallComplete at <= DISPATCH, with its own parameters.
                unsafe {
                    complete(
                        status,
                        context as NDIS_HANDLE,
                        party_handle as NDIS_HANDLE,
                        parameters as *mut CO_CALL_PARAMETERS,
                    )
                }
            },
        );
    }
}

/// Work::CloseCallComplete: a pended NdisClCloseCall completes (ProtocolClCloseCallComplete).
pub(super) fn deliver_close_call_complete(
    world: &Arc<World>,
    ndis: &Ndis,
    vc: u64,
    status: i32,
    processor: usize,
    irql: Irql,
) {
    let Some(client) = client(ndis) else { return };
    let (context, party_context) = {
        let mut state = ndis.state();
        let Some(entry) = state.vcs.get_mut(&vc) else { return };
        entry.state = VcState::Closed;
        let context = entry.context;
        let multipoint = entry.multipoint;
        let last = state.parties.first_alive(vc);
        let party_context = match (multipoint, last) {
            (true, Some(last)) => {
                state.parties.set_state(last, PartyState::Gone);
                state.parties.get(last).map_or(0, |p| p.context)
            }
            _ => 0,
        };
        (context, party_context)
    };
    if let Some(complete) = client.ClCloseCallCompleteHandler {
        call_driver(
            world,
            ndis,
            processor,
            irql,
            Logged::Lazy(
                const { &driver_call("ProtocolClCloseCallComplete") },
                &[status as u64, context as u64, party_context as u64],
                |a, f| write!(f, "({}, {:#x}, {:#x})", StatusName(a.word(0) as i32), a.word(1), a.word(2)),
            ),
            || {
                // SAFETY: the driver's ProtocolClCloseCallComplete at <= DISPATCH.
                unsafe { complete(status, context as NDIS_HANDLE, party_context as NDIS_HANDLE) }
            },
        );
    }
}

/// Work::RemoteRelease: the network releases the whole call. What the client sees depends on
/// where the call is ([`super::crossing::remote_release`]): ProtocolClIncomingCloseCall, a failed
/// completion of its pending MakeCall, or nothing (absorbed by the call manager, with the reason
/// logged).
pub(super) fn deliver_remote_release(
    world: &Arc<World>,
    ndis: &Ndis,
    vc: u64,
    status: i32,
    processor: usize,
    irql: Irql,
) {
    let Some(client) = client(ndis) else { return };
    let fate = super::crossing::remote_release(&mut ndis.state(), world.now(), vc, status);
    world.log_lazy(processor, &NETWORK, &[vc, status as u64], |a, f| {
        write!(f, "Vc#{} released by the network: {}", a.word(0), StatusName(a.word(1) as i32))
    });
    if let Some(reason) = fate.reason() {
        world.log_call(processor, "sim", "CallManager", format!("Vc#{vc}: {reason}"));
    }
    if let super::crossing::Fate::IncomingCloseCall { context } = fate {
        incoming_close(world, ndis, &client, processor, irql, status, context);
    }
}

/// Calls the driver's ProtocolClIncomingCloseCall: a call released by the network, or whose last
/// staying party the network dropped ([`super::party::deliver_remote_drop`]).
pub(super) fn incoming_close(
    world: &Arc<World>,
    ndis: &Ndis,
    client: &NDIS_CO_CLIENT_OPTIONAL_HANDLERS,
    processor: usize,
    irql: Irql,
    status: i32,
    context: usize,
) {
    if let Some(incoming) = client.ClIncomingCloseCallHandler {
        call_driver(
            world,
            ndis,
            processor,
            irql,
            Logged::Lazy(
                const { &driver_call("ProtocolClIncomingCloseCall") },
                &[status as u64, context as u64],
                render_incoming,
            ),
            || {
                // SAFETY: the driver's ProtocolClIncomingCloseCall at <= DISPATCH.
                unsafe { incoming(status, context as NDIS_HANDLE, std::ptr::null_mut(), 0) }
            },
        );
    }
}
