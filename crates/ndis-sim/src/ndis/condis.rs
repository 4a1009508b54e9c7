//! The CoNDIS client surface: address families, VCs, point-to-multipoint calls and parties, and
//! the call manager's side of them (completions, remote drops and releases, AF close).
//!
//! Read: nf-ndis-ndisclopenaddressfamilyex, nf-ndis-ndiscocreatevc, nf-ndis-ndisclmakecall,
//! nf-ndis-ndiscladdparty, nf-ndis-ndiscldropparty, nf-ndis-ndisclclosecall,
//! nf-ndis-ndiscodeletevc, nf-ndis-ndisclcloseaddressfamily, nc-ndis-protocol_cl_notify_close_af;
//! condis-reference.md §4-§6; verifier-rules.md §7.6-§7.8.
//!
//! Flow: each request is checked (IRQL, handle in the tables, object state), its parameters
//! copied and validated by the call manager ([`super::params`]), the network asked
//! ([`super::callmgr::answer`]), and the answer given synchronously or pended by the scheduler.
//! State changes happen when the answer is decided (sync) or when the completion is delivered
//! (pended), before the driver's completion handler runs.

use std::ffi::c_void;
use std::sync::Arc;

use ndis_sys::*;

use super::callmgr::{self, AtmAddr};
use super::out_param::{self, When};
use super::params::{self, Parsed, Snapshot};
use super::{
    call_driver, check_irql_at_most, check_irql_exactly, context, decode, driver_call, export_call,
    fmt_shown, handle, log_lazy, pend, render, rules, shown, status_name, violation, Kind, Logged, Ndis,
    Outcome, State, StatusName, Work,
};
use crate::export;
use crate::exports::ExportTable;
use crate::kernel::{Args, Call, Irql, World, DISPATCH_LEVEL, PASSIVE_LEVEL};
use std::fmt;

/// Where an address family is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfState {
    OpenPending,
    Open,
    Closing,
    Closed,
    Failed,
}

/// An address family opened by the client.
pub(crate) struct Af {
    pub binding: u64,
    pub context: usize,
    pub state: AfState,
    pub notify_close_pending: bool,
    /// ProtocolClNotifyCloseAf is running (on some processor) and has not returned yet.
    pub notify_in_handler: bool,
    /// NdisClNotifyCloseAddressFamilyComplete arrived while the handler was still running: the
    /// handler's PENDING, when it returns, is already completed.
    pub notify_completed_early: bool,
    /// The driver's NdisAfHandle variable, written when a pended open completes.
    pub handle_out: usize,
}

impl Af {
    pub fn is_alive(&self) -> bool {
        matches!(self.state, AfState::OpenPending | AfState::Open)
    }
}

/// Where a VC's call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcState {
    Idle,
    MakeCallPending,
    Active,
    Closing,
    Closed,
}

/// A VC created by the client.
pub(crate) struct Vc {
    pub binding: u64,
    pub af: u64,
    pub context: usize,
    pub state: VcState,
    pub multipoint: bool,
    pub deleted: bool,
    pub closed_by_client: bool,
    /// ProtocolClIncomingCloseCall was indicated with this status and not yet answered.
    pub incoming_close: Option<i32>,
    /// The SETUP the call was made with (shared: every AddParty compares with it).
    pub setup: Option<Arc<Parsed>>,
    pub params: Option<Snapshot>,
    pub vci: u32,
    pub leave: Option<(u64, i32, u8)>,
    /// The driver's NdisPartyHandle variable of the last NdisClMakeCall (0: NULL), written when
    /// the call's setup completes.
    pub party_out: usize,
}

/// Where a party is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartyState {
    AddPending,
    Connected,
    /// ProtocolClIncomingDropParty was indicated; the client owes NdisClDropParty.
    IncomingDropped {
        status: i32,
    },
    DropPending,
    /// Dropped, closed or failed: the handle is dead.
    Gone,
}

use super::parties::AddressKey;
pub(crate) use super::parties::Party;

/// Registers the CoNDIS client exports.
pub fn register(table: &mut ExportTable) {
    export!(table, "ndis.sys", NdisClOpenAddressFamilyEx = ndis_cl_open_address_family_ex);
    export!(table, "ndis.sys", NdisClCloseAddressFamily = ndis_cl_close_address_family);
    export!(
        table,
        "ndis.sys",
        NdisClNotifyCloseAddressFamilyComplete = ndis_cl_notify_close_address_family_complete
    );
    export!(table, "ndis.sys", NdisCoCreateVc = ndis_co_create_vc);
    export!(table, "ndis.sys", NdisCoDeleteVc = ndis_co_delete_vc);
    export!(table, "ndis.sys", NdisClMakeCall = ndis_cl_make_call);
    export!(table, "ndis.sys", NdisClCloseCall = ndis_cl_close_call);
    export!(table, "ndis.sys", NdisClAddParty = ndis_cl_add_party);
    export!(table, "ndis.sys", NdisClDropParty = ndis_cl_drop_party);
    export!(table, "ndis.sys", NdisClIncomingCallComplete = ndis_cl_incoming_call_complete);
}

/// The simulated call manager's own log entries.
const CALL_MANAGER: Call = Call::new("sim", "CallManager");
/// The network's log entries (remote drops and releases).
const NETWORK: Call = Call::new("sim", "Network");

/// `-> NDIS_STATUS_X`: a request's result (word 0).
fn render_result(a: &Args<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "-> {}", StatusName(a.word(0) as i32))
}

/// `-> NDIS_STATUS_RESOURCES (injected)`: a failure the fault policy injected.
fn render_injected(_: &Args<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("-> NDIS_STATUS_RESOURCES (injected)")
}

/// `(X)`: one argument captured with [`shown`].
fn render_shown(a: &Args<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("(")?;
    fmt_shown(a, 0, f)?;
    f.write_str(")")
}

/// `(NDIS_STATUS_X, 0x…)`: a completion's status and the driver's context.
fn render_status_context(a: &Args<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "({}, {:#x})", StatusName(a.word(0) as i32), a.word(1))
}

/// `(NDIS_STATUS_X, 0x…, NULL, 0)`: an incoming drop or close.
fn render_incoming(a: &Args<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "({}, {:#x}, NULL, 0)", StatusName(a.word(0) as i32), a.word(1))
}

fn client(ndis: &Ndis) -> Option<NDIS_CO_CLIENT_OPTIONAL_HANDLERS> {
    ndis.state().protocol.as_ref().and_then(|p| p.client)
}

/// The outcome of a request and whether it fails with RESOURCES. `injectable` names the export
/// when its failure is honoured (so [`super::faults`] may fail it systematically); `None` for
/// requests that cannot fail, whose draw is ignored.
fn outcome_and_failure(
    world: &World,
    ndis: &Ndis,
    min_delay: u64,
    injectable: Option<&'static str>,
) -> (Outcome, bool) {
    outcome_and_failure_in(world, &mut ndis.state(), min_delay, injectable)
}

/// [`outcome_and_failure`] with the state already locked.
fn outcome_and_failure_in(
    world: &World,
    state: &mut State,
    min_delay: u64,
    injectable: Option<&'static str>,
) -> (Outcome, bool) {
    let rate = state.config.faults.request_failure_per_10000;
    let fail = match injectable {
        Some(export) => super::faults::inject(world, state, export, None, true, rate),
        None => state.rng.chance(rate),
    };
    let State { rng, config, .. } = state;
    (rng.outcome(&config.faults, min_delay), fail)
}

/// `NdisClOpenAddressFamilyEx`: PASSIVE; only for the AF the CM registered on this binding.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclopenaddressfamilyex>
unsafe extern "win64" fn ndis_cl_open_address_family_ex(
    binding_handle: NDIS_HANDLE,
    family: *mut CO_ADDRESS_FAMILY,
    af_context: NDIS_HANDLE,
    af_handle: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const EXPORT: &str = "NdisClOpenAddressFamilyEx";
    const CALL: Call = export_call(EXPORT);
    // SAFETY: an export, using what it gets only until it returns.
    let (world, processor, ndis) = unsafe { context(EXPORT) };
    let [b0, b1, b2] = shown(&ndis.state(), binding_handle as usize);
    let words = [b0, b1, b2, family as u64, af_context as u64, af_handle as u64];
    log_lazy(world, processor, &CALL, &words, |a, f| {
        f.write_str("(")?;
        fmt_shown(a, 0, f)?;
        write!(f, ", {:#x}, {:#x}, {:#x})", a.word(3), a.word(4), a.word(5))
    });
    check_irql_exactly(world, processor, EXPORT, PASSIVE_LEVEL, rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
    let binding = decode(Kind::Binding, binding_handle as usize);
    let registered = {
        let state = ndis.state();
        binding
            .and_then(|id| state.bindings.get(&id))
            .map(|b| (b.open == super::protocol::OpenState::Open, b.af_registered))
    };
    let Some((true, registered)) = registered else {
        violation(world, rules::BINDING_HANDLE_INVALID, EXPORT, "binding handle is not open");
        return NDIS_STATUS_FAILURE;
    };
    if family.is_null() || af_handle.is_null() {
        violation(world, rules::NULL_ARGUMENT, EXPORT, "NULL AddressFamily or NdisAfHandle");
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: non-NULL; the driver's CO_ADDRESS_FAMILY.
    let requested = unsafe { family.read_unaligned() };
    if !registered
        || requested.AddressFamily != CO_ADDRESS_FAMILY_Q2931
        || requested.MajorVersion != 3
        || requested.MinorVersion != 1
    {
        violation(
            world,
            rules::OPEN_AF_UNREGISTERED,
            EXPORT,
            format!(
                "AF {:#x} {}.{} was not registered on this binding",
                requested.AddressFamily, requested.MajorVersion, requested.MinorVersion
            ),
        );
        return NDIS_STATUS_FAILURE;
    }
    let (outcome, fail) = outcome_and_failure(world, ndis, 0, Some(EXPORT));
    if fail {
        log_lazy(world, processor, &CALL, &[], render_injected);
        return NDIS_STATUS_RESOURCES;
    }
    let id = {
        let mut state = ndis.state();
        let id = state.new_id();
        let af_state = if outcome == Outcome::Synchronous { AfState::Open } else { AfState::OpenPending };
        state.afs.insert(
            id,
            Af {
                binding: binding.unwrap_or_default(),
                context: af_context as usize,
                state: af_state,
                notify_close_pending: false,
                notify_in_handler: false,
                notify_completed_early: false,
                handle_out: af_handle as usize,
            },
        );
        if outcome == Outcome::Synchronous {
            state.counters.afs_opened += 1;
            // NdisAfHandle: "a pointer to a caller-supplied variable in which
            // NdisClOpenAddressFamilyEx returns a handle" (nf-ndis-ndisclopenaddressfamilyex);
            // a synchronous open writes it before returning.
            let af = handle(Kind::Af, id) as NDIS_HANDLE;
            out_param::write(
                world,
                &state.pool,
                EXPORT,
                "NdisAfHandle",
                af_handle as usize,
                af,
                When::Return,
            );
        }
        id
    };
    let status = if outcome == Outcome::Synchronous {
        NDIS_STATUS_SUCCESS
    } else {
        pend(world, ndis, processor, outcome, Work::OpenAfComplete { af: id, status: NDIS_STATUS_SUCCESS })
    };
    log_lazy(world, processor, &CALL, &[status as u64, id], |a, f| {
        write!(f, "-> {} (Af#{})", StatusName(a.word(0) as i32), a.word(1))
    });
    status
}

/// `NdisClCloseAddressFamily`: <= DISPATCH; no VCs may remain; the handle dies with the call.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclcloseaddressfamily>
extern "win64" fn ndis_cl_close_address_family(af_handle: NDIS_HANDLE) -> NDIS_STATUS {
    const EXPORT: &str = "NdisClCloseAddressFamily";
    const CALL: Call = export_call(EXPORT);
    // SAFETY: an export, using what it gets only until it returns.
    let (world, processor, ndis) = unsafe { context(EXPORT) };
    log_lazy(world, processor, &CALL, &shown(&ndis.state(), af_handle as usize), render_shown);
    check_irql_at_most(world, processor, EXPORT, DISPATCH_LEVEL, rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
    let id = decode(Kind::Af, af_handle as usize);
    let (open, vcs) = {
        let state = ndis.state();
        let open = id.and_then(|id| state.afs.get(&id)).is_some_and(|af| af.state == AfState::Open);
        (open, state.vcs.values().filter(|vc| Some(vc.af) == id && !vc.deleted).count())
    };
    if !open {
        violation(
            world,
            rules::AF_HANDLE_INVALID,
            EXPORT,
            "AF handle is not open (closed, pending, or never given)",
        );
        return NDIS_STATUS_FAILURE;
    }
    let id = id.unwrap_or_default();
    if vcs > 0 {
        violation(world, rules::CLOSE_AF_WITH_VCS, EXPORT, format!("{vcs} VC(s) not deleted on Af#{id}"));
        return NDIS_STATUS_FAILURE;
    }
    let (outcome, _) = outcome_and_failure(world, ndis, 0, None);
    {
        let mut state = ndis.state();
        let af = state.afs.get_mut(&id).expect("checked");
        af.state = if outcome == Outcome::Synchronous { AfState::Closed } else { AfState::Closing };
        state.counters.afs_closed += 1;
    }
    let status = if outcome == Outcome::Synchronous {
        NDIS_STATUS_SUCCESS
    } else {
        pend(world, ndis, processor, outcome, Work::CloseAfComplete { af: id, status: NDIS_STATUS_SUCCESS })
    };
    log_lazy(world, processor, &CALL, &[status as u64], render_result);
    status
}

/// `NdisClNotifyCloseAddressFamilyComplete`: <= DISPATCH; exactly once after
/// ProtocolClNotifyCloseAf returned PENDING (the AF handle may already be closed).
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclnotifycloseaddressfamilycomplete>
extern "win64" fn ndis_cl_notify_close_address_family_complete(af_handle: NDIS_HANDLE, status: NDIS_STATUS) {
    const EXPORT: &str = "NdisClNotifyCloseAddressFamilyComplete";
    const CALL: Call = export_call(EXPORT);
    // SAFETY: an export, using what it gets only until it returns.
    let (world, processor, ndis) = unsafe { context(EXPORT) };
    let [h0, h1, h2] = shown(&ndis.state(), af_handle as usize);
    log_lazy(world, processor, &CALL, &[h0, h1, h2, status as u64], |a, f| {
        f.write_str("(")?;
        fmt_shown(a, 0, f)?;
        write!(f, ", {})", StatusName(a.word(3) as i32))
    });
    check_irql_at_most(world, processor, EXPORT, DISPATCH_LEVEL, rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
    let id = decode(Kind::Af, af_handle as usize);
    let was_pending = {
        let mut state = ndis.state();
        match id.and_then(|id| state.afs.get_mut(&id)) {
            Some(af) if af.notify_close_pending => {
                af.notify_close_pending = false;
                true
            }
            // The completion raced the handler's own return on another processor: a driver that
            // decided PENDING cannot prevent that (it may not wait at DISPATCH_LEVEL), so it is
            // accepted once, and checked when the handler returns.
            Some(af) if af.notify_in_handler && !af.notify_completed_early => {
                af.notify_completed_early = true;
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
            "no ProtocolClNotifyCloseAf returned PENDING for this AF (or it was already completed)",
        );
    } else if status == NDIS_STATUS_PENDING {
        violation(world, rules::COMPLETION_WITH_PENDING, EXPORT, "completed with NDIS_STATUS_PENDING");
    }
}

/// `NdisCoCreateVc`: <= DISPATCH; `*NdisVcHandle` must be NULL on entry; never pends.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscocreatevc>
unsafe extern "win64" fn ndis_co_create_vc(
    binding_handle: NDIS_HANDLE,
    af_handle: NDIS_HANDLE,
    vc_context: NDIS_HANDLE,
    vc_handle: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const EXPORT: &str = "NdisCoCreateVc";
    const CALL: Call = export_call(EXPORT);
    // SAFETY: an export, using what it gets only until it returns.
    let (world, processor, ndis) = unsafe { context(EXPORT) };
    let ([b0, b1, b2], [a0, a1, a2]) = {
        let state = ndis.state();
        (shown(&state, binding_handle as usize), shown(&state, af_handle as usize))
    };
    let words = [b0, b1, b2, a0, a1, a2, vc_context as u64, vc_handle as u64];
    log_lazy(world, processor, &CALL, &words, |a, f| {
        f.write_str("(")?;
        fmt_shown(a, 0, f)?;
        f.write_str(", ")?;
        fmt_shown(a, 3, f)?;
        write!(f, ", {:#x}, {:#x})", a.word(6), a.word(7))
    });
    check_irql_at_most(world, processor, EXPORT, DISPATCH_LEVEL, rules::IRQL_CONNECTION_FUNCTION);
    if vc_handle.is_null() {
        violation(world, rules::NULL_ARGUMENT, EXPORT, "NULL NdisVcHandle");
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: non-NULL; the driver's in/out handle variable.
    let previous = unsafe { vc_handle.read_unaligned() };
    if !previous.is_null() {
        violation(
            world,
            rules::CREATE_VC_HANDLE_NOT_NULL,
            EXPORT,
            format!("*NdisVcHandle is {:#x} on entry (must be NULL)", previous as usize),
        );
        return NDIS_STATUS_FAILURE;
    }
    let binding = decode(Kind::Binding, binding_handle as usize);
    let af = decode(Kind::Af, af_handle as usize);
    let valid = {
        let state = ndis.state();
        let binding_open = binding
            .and_then(|id| state.bindings.get(&id))
            .is_some_and(|b| b.open == super::protocol::OpenState::Open);
        if !binding_open {
            Err(rules::BINDING_HANDLE_INVALID)
        } else if af
            .and_then(|id| state.afs.get(&id))
            .is_some_and(|a| a.state == AfState::Open && Some(a.binding) == binding)
        {
            Ok(())
        } else {
            Err(rules::AF_HANDLE_INVALID)
        }
    };
    if let Err(rule) = valid {
        violation(world, rule, EXPORT, "binding or AF handle is not open (or the AF is not on this binding)");
        return NDIS_STATUS_FAILURE;
    }
    let (_, fail) = outcome_and_failure(world, ndis, 0, Some(EXPORT));
    if fail {
        log_lazy(world, processor, &CALL, &[], render_injected);
        return NDIS_STATUS_RESOURCES;
    }
    let id = {
        let mut state = ndis.state();
        let id = state.new_id();
        state.vcs.insert(
            id,
            Vc {
                binding: binding.unwrap_or_default(),
                af: af.unwrap_or_default(),
                context: vc_context as usize,
                state: VcState::Idle,
                multipoint: false,
                deleted: false,
                closed_by_client: false,
                incoming_close: None,
                setup: None,
                params: None,
                vci: 0,
                leave: None,
                party_out: 0,
            },
        );
        state.counters.vcs_created += 1;
        id
    };
    // SAFETY: checked non-NULL out-parameter.
    unsafe { vc_handle.write(handle(Kind::Vc, id) as NDIS_HANDLE) };
    log_lazy(world, processor, &CALL, &[id], |a, f| write!(f, "-> NDIS_STATUS_SUCCESS (Vc#{})", a.word(0)));
    NDIS_STATUS_SUCCESS
}

fn live_vc(ndis: &Ndis, vc_handle: NDIS_HANDLE) -> Option<u64> {
    live_vc_in(&ndis.state(), vc_handle)
}

/// [`live_vc`] with the state already locked.
fn live_vc_in(state: &State, vc_handle: NDIS_HANDLE) -> Option<u64> {
    let id = decode(Kind::Vc, vc_handle as usize)?;
    state.vcs.get(&id).filter(|vc| !vc.deleted).map(|_| id)
}

/// `NdisCoDeleteVc`: <= DISPATCH; no call active, pending or closing; the handle dies.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscodeletevc>
extern "win64" fn ndis_co_delete_vc(vc_handle: NDIS_HANDLE) -> NDIS_STATUS {
    const EXPORT: &str = "NdisCoDeleteVc";
    const CALL: Call = export_call(EXPORT);
    // SAFETY: an export, using what it gets only until it returns.
    let (world, processor, ndis) = unsafe { context(EXPORT) };
    log_lazy(world, processor, &CALL, &shown(&ndis.state(), vc_handle as usize), render_shown);
    check_irql_at_most(world, processor, EXPORT, DISPATCH_LEVEL, rules::IRQL_CONNECTION_FUNCTION);
    let Some(id) = live_vc(ndis, vc_handle) else {
        violation(world, rules::VC_HANDLE_INVALID, EXPORT, "VC handle was deleted or never given");
        return NDIS_STATUS_FAILURE;
    };
    let vc_state = ndis.state().vcs[&id].state;
    let status = match vc_state {
        VcState::Active | VcState::MakeCallPending => {
            violation(
                world,
                rules::DELETE_VC_WITH_CALL,
                EXPORT,
                format!("Vc#{id} has a call ({vc_state:?})"),
            );
            NDIS_STATUS_NOT_ACCEPTED
        }
        VcState::Closing => {
            violation(
                world,
                rules::DELETE_VC_WITH_CALL,
                EXPORT,
                format!("Vc#{id}: NdisClCloseCall has not completed"),
            );
            NDIS_STATUS_CLOSING
        }
        VcState::Idle | VcState::Closed => {
            let mut state = ndis.state();
            state.vcs.get_mut(&id).expect("live").deleted = true;
            state.counters.vcs_deleted += 1;
            NDIS_STATUS_SUCCESS
        }
    };
    log_lazy(world, processor, &CALL, &[status as u64], render_result);
    status
}

fn reject_parameters(
    world: &World,
    ndis: &Ndis,
    processor: usize,
    export: &'static str,
    reject: &params::Reject,
) {
    let report = ndis.state().config.call_manager.report_invalid_parameters;
    reject_parameters_reported(world, report, processor, export, reject);
}

/// [`reject_parameters`], told whether the configuration reports invalid parameters.
fn reject_parameters_reported(
    world: &World,
    report: bool,
    processor: usize,
    export: &'static str,
    reject: &params::Reject,
) {
    world.log_call(
        processor,
        "sim",
        "CallManager",
        format!("{export} rejected: UNI cause {} ({})", reject.cause, reject.reason),
    );
    if report {
        violation(
            world,
            rules::CALL_PARAMETERS_INVALID,
            export,
            format!("UNI cause {}: {}", reject.cause, reject.reason),
        );
    }
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
    const EXPORT: &str = "NdisClMakeCall";
    const CALL: Call = export_call(EXPORT);
    // SAFETY: an export, using what it gets only until it returns.
    let (world, processor, ndis) = unsafe { context(EXPORT) };
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
    check_irql_at_most(world, processor, EXPORT, DISPATCH_LEVEL, rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
    let Some(vc) = live_vc(ndis, vc_handle) else {
        violation(world, rules::VC_HANDLE_INVALID, EXPORT, "VC handle was deleted or never given");
        return NDIS_STATUS_FAILURE;
    };
    let (vc_state, closed_by_client) = {
        let state = ndis.state();
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
            (
                callmgr::Answer {
                    status: callmgr::reject_status(reject.cause),
                    cause: reject.cause,
                    min_delay: 0,
                    leave: None,
                },
                None,
            )
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
            let new = Party::new(
                vc,
                party_context as usize,
                PartyState::AddPending,
                AddressKey::of(&address),
                None,
                answer.leave,
            );
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
        make_call_settled(world, ndis, vc, status, cause);
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

/// Writes NdisClAddParty's NdisPartyHandle, "a variable to be set by NDIS if the add-party
/// operation succeeds" (nf-ndis-ndiscladdparty): on success only, before the request returns, or,
/// if it pended, just before ProtocolClAddPartyComplete (the latest legal moment: the page does
/// not say when).
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscladdparty>
fn write_add_party_handle(world: &World, state: &State, party: u64, out: usize, status: i32, when: When) {
    if status == NDIS_STATUS_SUCCESS && out != 0 {
        let value = handle(Kind::Party, party) as NDIS_HANDLE;
        out_param::write(world, &state.pool, "NdisClAddParty", "NdisPartyHandle", out, value, when);
    }
}

/// Applies the CM's answer to a MakeCall: Active (VPI/VCI assigned) or back to Idle.
fn make_call_settled(world: &World, ndis: &Ndis, vc: u64, status: i32, cause: u8) {
    let mut state = ndis.state();
    let now = world.now();
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
}

/// Compares the parameters of a pended request with its snapshot (verifier-rules.md §7.30).
fn check_parameters(world: &World, ndis: &Ndis, snapshot: &Snapshot, export: &str) {
    let problem = {
        let state = ndis.state();
        let pointers = [snapshot.address, params_pointer(snapshot, 8), params_pointer(snapshot, 16)];
        if pointers.iter().any(|p| *p != 0 && state.pool.live_block(*p).is_none() && state.pool.is_freed(*p))
        {
            Some("CO_CALL_PARAMETERS (or what it points to) was freed before the completion".to_owned())
        } else {
            // SAFETY: the driver must keep the parameters alive until the completion; pool
            // memory was checked not to be freed above.
            match unsafe { params::snapshot(&state.pool, snapshot.address) } {
                Ok(now) if &now == snapshot => None,
                Ok(_) => Some("CO_CALL_PARAMETERS changed before the completion".to_owned()),
                Err(what) => Some(what),
            }
        }
    };
    if let Some(problem) = problem {
        violation(world, rules::CALL_PARAMETERS_MODIFIED, export, problem);
    }
}

fn params_pointer(snapshot: &Snapshot, at: usize) -> usize {
    snapshot.call().get(at..at + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8")) as usize)
}

/// `NdisClAddParty`: <= DISPATCH; only on an active multipoint call of this client.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscladdparty>
unsafe extern "win64" fn ndis_cl_add_party(
    vc_handle: NDIS_HANDLE,
    party_context: NDIS_HANDLE,
    call_parameters: *mut CO_CALL_PARAMETERS,
    party_handle: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const EXPORT: &str = "NdisClAddParty";
    const CALL: Call = export_call(EXPORT);
    // SAFETY: an export, using what it gets only until it returns.
    let (world, processor, ndis) = unsafe { context(EXPORT) };
    // The whole request under one lock of the tables (nothing below calls into the driver, and
    // log entries and reports take locks of their own), released before a pended completion is
    // handed on.
    let mut guard = ndis.state();
    let state = &mut *guard;
    let [v0, v1, v2] = shown(state, vc_handle as usize);
    let [p0, p1, p2] = shown(state, call_parameters as usize);
    let words = [v0, v1, v2, party_context as u64, p0, p1, p2, party_handle as u64];
    log_lazy(world, processor, &CALL, &words, |a, f| {
        f.write_str("(")?;
        fmt_shown(a, 0, f)?;
        write!(f, ", {:#x}, ", a.word(3))?;
        fmt_shown(a, 4, f)?;
        write!(f, ", {:#x})", a.word(7))
    });
    check_irql_at_most(world, processor, EXPORT, DISPATCH_LEVEL, rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
    let Some(vc) = live_vc_in(state, vc_handle) else {
        violation(world, rules::VC_HANDLE_INVALID, EXPORT, "VC handle was deleted or never given");
        return NDIS_STATUS_FAILURE;
    };
    if party_context.is_null() || party_handle.is_null() || call_parameters.is_null() {
        violation(
            world,
            rules::NULL_ARGUMENT,
            EXPORT,
            "NULL ProtocolPartyContext, CallParameters or NdisPartyHandle",
        );
        return NDIS_STATUS_FAILURE;
    }
    let (vc_state, multipoint, closing, adapter) = {
        let entry = &state.vcs[&vc];
        let adapter = state.bindings.get(&entry.binding).map_or(0, |b| b.adapter);
        (entry.state, entry.multipoint, entry.incoming_close.is_some(), adapter)
    };
    if vc_state == VcState::Active && multipoint && closing {
        // The network released the call and its IncomingCloseCall may not have reached the client
        // yet (it can be running on another processor right now): the client could not know.
        // A call manager refuses the request; that is no rule broken.
        world.log_call(
            processor,
            "sim",
            "CallManager",
            format!("Vc#{vc} is being released: ADD PARTY refused"),
        );
        return NDIS_STATUS_FAILURE;
    }
    if vc_state != VcState::Active || !multipoint {
        violation(
            world,
            rules::ADD_PARTY_NOT_MULTIPOINT_ACTIVE,
            EXPORT,
            format!("Vc#{vc} is {vc_state:?}, multipoint {multipoint}"),
        );
        return NDIS_STATUS_FAILURE;
    }
    // Into the buffer of the last synchronous AddParty's snapshot (given back below).
    let buffer = std::mem::take(&mut state.snapshot_buffer);
    // SAFETY: non-NULL; NDIS requires the parameters to be readable for the whole request.
    let snapshot = match unsafe { params::snapshot_into(&state.pool, call_parameters as usize, buffer) } {
        Ok(snapshot) => snapshot,
        Err(what) => {
            violation(world, rules::CALL_PARAMETERS_INVALID, EXPORT, what);
            return NDIS_STATUS_INVALID_DATA;
        }
    };
    let no_setup;
    let setup = match &state.vcs[&vc].setup {
        Some(setup) => &**setup,
        None => {
            no_setup = Parsed::default();
            &no_setup
        }
    };
    let answer = match params::validate_add_party(&snapshot, setup) {
        Ok(parsed) => {
            let address = AddressKey::of_leaf(parsed);
            let on_call = state.parties.of_call(vc);
            let duplicate = on_call.has_address(&address);
            let pending_adds = on_call.add_pending() as u32;
            let leaves = on_call.alive() as u32;
            let behaviour = state
                .config
                .adapters
                .get(adapter)
                .map(|a| a.behaviour_of_leaf(parsed))
                .unwrap_or(callmgr::Behaviour::Accept);
            let config = &state.config.call_manager;
            let cm_reject = |cause: u8, why: &str| {
                callmgr::Answer { status: callmgr::reject_status(cause), cause, min_delay: 0, leave: None }
                    .with_log(world, processor, why)
            };
            if duplicate {
                cm_reject(21, "the leaf is already on this call")
            } else if config.max_leaves > 0 && leaves >= config.max_leaves {
                cm_reject(47, "too many leaves")
            } else if config.max_pending_adds > 0 && pending_adds >= config.max_pending_adds {
                cm_reject(92, "too many pending ADD PARTY requests")
            } else {
                callmgr::answer(&behaviour)
            }
            .with_address(address)
        }
        Err(reject) => {
            let report = state.config.call_manager.report_invalid_parameters;
            reject_parameters_reported(world, report, processor, EXPORT, &reject);
            (
                callmgr::Answer {
                    status: callmgr::reject_status(reject.cause),
                    cause: reject.cause,
                    min_delay: 0,
                    leave: None,
                },
                AddressKey::of(&AtmAddr::default()),
            )
        }
    };
    let (answer, address) = answer;
    let (outcome, fail) = outcome_and_failure_in(world, state, answer.min_delay, Some(EXPORT));
    let (status, cause) = if fail && answer.status == NDIS_STATUS_SUCCESS {
        (NDIS_STATUS_RESOURCES, 47)
    } else {
        (answer.status, answer.cause)
    };
    let party = state.new_id();
    // Only a pended completion checks the parameters again; a synchronous answer settles the
    // party below, and never needs them.
    let params = if outcome == Outcome::Synchronous {
        state.snapshot_buffer = snapshot.into_bytes();
        None
    } else {
        Some(snapshot)
    };
    let mut new =
        Party::new(vc, party_context as usize, PartyState::AddPending, address, params, answer.leave);
    new.handle_out = party_handle as usize;
    state.parties.insert(party, new);
    let result = if outcome == Outcome::Synchronous {
        add_party_settled_in(world, state, party, status, cause);
        write_add_party_handle(world, state, party, party_handle as usize, status, When::Return);
        drop(guard);
        status
    } else {
        drop(guard);
        pend(world, ndis, processor, outcome, Work::AddPartyComplete { party, status, cause })
    };
    log_lazy(world, processor, &CALL, &[result as u64, party], |a, f| {
        write!(f, "-> {} (Pt#{})", StatusName(a.word(0) as i32), a.word(1))
    });
    result
}

trait AnswerExt: Sized {
    fn with_log(self, world: &World, processor: usize, why: &str) -> Self;
    fn with_address(self, address: AddressKey) -> (Self, AddressKey) {
        (self, address)
    }
}

impl AnswerExt for callmgr::Answer {
    fn with_log(self, world: &World, processor: usize, why: &str) -> Self {
        world.log_call(
            processor,
            "sim",
            "CallManager",
            format!("ADD PARTY rejected: UNI cause {} ({why})", self.cause),
        );
        self
    }
}

fn add_party_settled(world: &World, ndis: &Ndis, party: u64, status: i32, cause: u8) {
    add_party_settled_in(world, &mut ndis.state(), party, status, cause);
}

/// [`add_party_settled`] with the state already locked.
fn add_party_settled_in(world: &World, state: &mut State, party: u64, status: i32, cause: u8) {
    let now = world.now();
    let Some(leave) = state.parties.get(party).map(|p| p.leave) else { return };
    // Checked by now (a completion checks them before settling): the party need not keep them.
    state.parties.take_params(party);
    if status == NDIS_STATUS_SUCCESS {
        state.parties.set_state(party, PartyState::Connected);
        state.counters.parties_added += 1;
        if let Some((ticks, status, cause)) = leave {
            state.schedule(now, ticks, Work::RemoteDrop { party, status, cause });
        }
    } else {
        state.parties.set_state(party, PartyState::Gone);
        state.counters.parties_rejected += 1;
        world.log_lazy(0, &CALL_MANAGER, &[party, status as u64, u64::from(cause)], |a, f| {
            let status = StatusName(a.word(1) as i32);
            write!(f, "Pt#{} ADD PARTY failed: {status} (UNI cause {})", a.word(0), a.word(2))
        });
    }
}

/// `NdisClDropParty`: <= DISPATCH; the handle is dead from this call on; never the last party
/// (use NdisClCloseCall); not before the party's AddParty completed.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscldropparty>
extern "win64" fn ndis_cl_drop_party(
    party_handle: NDIS_HANDLE,
    buffer: *mut c_void,
    size: u32,
) -> NDIS_STATUS {
    const EXPORT: &str = "NdisClDropParty";
    const CALL: Call = export_call(EXPORT);
    // SAFETY: an export, using what it gets only until it returns.
    let (world, processor, ndis) = unsafe { context(EXPORT) };
    // The whole request under one lock of the tables (see NdisClAddParty).
    let mut guard = ndis.state();
    let state = &mut *guard;
    let [h0, h1, h2] = shown(state, party_handle as usize);
    log_lazy(world, processor, &CALL, &[h0, h1, h2, buffer as u64, u64::from(size)], |a, f| {
        f.write_str("(")?;
        fmt_shown(a, 0, f)?;
        write!(f, ", {:#x}, {})", a.word(3), a.word(4))
    });
    check_irql_at_most(world, processor, EXPORT, DISPATCH_LEVEL, rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
    let id = decode(Kind::Party, party_handle as usize);
    let found = {
        id.and_then(|id| state.parties.get(id)).map(|p| {
            // The call's other parties that are neither gone nor being dropped by the client.
            let counted = !matches!(p.state(), PartyState::Gone | PartyState::DropPending);
            let others = state.parties.of_call(p.vc).not_drop_pending() - usize::from(counted);
            (p.state(), others)
        })
    };
    let (party_state, others) = match found {
        None | Some((PartyState::Gone | PartyState::DropPending, _)) => {
            violation(
                world,
                rules::PARTY_HANDLE_AFTER_DROP,
                EXPORT,
                "party handle was dropped, closed, failed, or never given",
            );
            return NDIS_STATUS_FAILURE;
        }
        Some(found) => found,
    };
    let id = id.unwrap_or_default();
    if party_state == PartyState::AddPending {
        violation(
            world,
            rules::DROP_BEFORE_ADD_COMPLETE,
            EXPORT,
            format!("Pt#{id}: its NdisClAddParty has not completed"),
        );
        return NDIS_STATUS_FAILURE;
    }
    // Answering the call manager's own IncomingDropParty with NdisClDropParty is what
    // nc-ndis-protocol_cl_incoming_drop_party requires, even if the parties that kept the call up
    // when it was dispatched (pending adds) have failed since: the last-party rule applies to
    // drops the client starts.
    let answering_incoming_drop = matches!(party_state, PartyState::IncomingDropped { .. });
    if others == 0 && !answering_incoming_drop {
        violation(
            world,
            rules::DROP_LAST_PARTY,
            EXPORT,
            format!("Pt#{id} is the last party of its call: use NdisClCloseCall"),
        );
        return NDIS_STATUS_FAILURE;
    }
    let (outcome, _) = outcome_and_failure_in(world, state, 0, None);
    let next = if outcome == Outcome::Synchronous { PartyState::Gone } else { PartyState::DropPending };
    state.parties.set_state(id, next).expect("party");
    if party_state == PartyState::Connected {
        state.counters.parties_dropped_locally += 1;
    }
    drop(guard);
    let status = if outcome == Outcome::Synchronous {
        NDIS_STATUS_SUCCESS
    } else {
        pend(
            world,
            ndis,
            processor,
            outcome,
            Work::DropPartyComplete { party: id, status: NDIS_STATUS_SUCCESS },
        )
    };
    log_lazy(world, processor, &CALL, &[status as u64], render_result);
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
    const EXPORT: &str = "NdisClCloseCall";
    const CALL: Call = export_call(EXPORT);
    // SAFETY: an export, using what it gets only until it returns.
    let (world, processor, ndis) = unsafe { context(EXPORT) };
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
    check_irql_at_most(world, processor, EXPORT, DISPATCH_LEVEL, rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
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
    const EXPORT: &str = "NdisClIncomingCallComplete";
    const CALL: Call = export_call(EXPORT);
    // SAFETY: an export, using what it gets only until it returns.
    let (world, processor, ndis) = unsafe { context(EXPORT) };
    let [h0, h1, h2] = shown(&ndis.state(), vc_handle as usize);
    log_lazy(world, processor, &CALL, &[status as u64, h0, h1, h2], |a, f| {
        write!(f, "({}, ", StatusName(a.word(0) as i32))?;
        fmt_shown(a, 1, f)?;
        f.write_str(")")
    });
    check_irql_at_most(world, processor, EXPORT, DISPATCH_LEVEL, rules::IRQL_PROTOCOL_DRIVER_FUNCTION);
    violation(
        world,
        rules::INCOMING_CALL_COMPLETE_UNEXPECTED,
        EXPORT,
        "no incoming call was offered to this client",
    );
}

/// Delivers a CoNDIS completion or network event at (`processor`, `irql`).
pub(crate) fn deliver(world: &Arc<World>, ndis: &Ndis, work: Work, processor: usize, irql: Irql) {
    let Some(client) = client(ndis) else { return };
    match work {
        Work::OpenAfComplete { af, status } => {
            let context = {
                let mut state = ndis.state();
                let Some(entry) = state.afs.get_mut(&af) else { return };
                entry.state = if status == NDIS_STATUS_SUCCESS { AfState::Open } else { AfState::Failed };
                let (context, out) = (entry.context, entry.handle_out);
                if status == NDIS_STATUS_SUCCESS {
                    state.counters.afs_opened += 1;
                    // The page is silent on when a pended open writes NdisAfHandle
                    // (nf-ndis-ndisclopenaddressfamilyex): at the latest legal moment, its
                    // completion, just before ProtocolClOpenAfCompleteEx — which gets the handle,
                    // or NULL on failure (nc-ndis-protocol_cl_open_af_complete_ex): nothing is
                    // written on failure.
                    let value = handle(Kind::Af, af) as NDIS_HANDLE;
                    let export = "NdisClOpenAddressFamilyEx";
                    out_param::write(
                        world,
                        &state.pool,
                        export,
                        "NdisAfHandle",
                        out,
                        value,
                        When::Completion,
                    );
                }
                context
            };
            let af_handle = if status == NDIS_STATUS_SUCCESS { handle(Kind::Af, af) } else { 0 };
            if let Some(complete) = client.ClOpenAfCompleteHandlerEx {
                call_driver(
                    world,
                    ndis,
                    processor,
                    PASSIVE_LEVEL,
                    Logged::Lazy(
                        const { &driver_call("ProtocolClOpenAfCompleteEx") },
                        &[context as u64, af, status as u64],
                        |a, f| {
                            write!(
                                f,
                                "({:#x}, Af#{}, {})",
                                a.word(0),
                                a.word(1),
                                StatusName(a.word(2) as i32)
                            )
                        },
                    ),
                    || {
                        // SAFETY: the driver's ProtocolClOpenAfCompleteEx at PASSIVE.
                        unsafe { complete(context as NDIS_HANDLE, af_handle as NDIS_HANDLE, status) }
                    },
                );
            }
        }
        Work::CloseAfComplete { af, status } => {
            let context = {
                let mut state = ndis.state();
                let Some(entry) = state.afs.get_mut(&af) else { return };
                entry.state = AfState::Closed;
                entry.context
            };
            if let Some(complete) = client.ClCloseAfCompleteHandler {
                call_driver(
                    world,
                    ndis,
                    processor,
                    irql,
                    Logged::Lazy(
                        const { &driver_call("ProtocolClCloseAfComplete") },
                        &[status as u64, context as u64],
                        render_status_context,
                    ),
                    || {
                        // SAFETY: the driver's ProtocolClCloseAfComplete at <= DISPATCH.
                        unsafe { complete(status, context as NDIS_HANDLE) }
                    },
                );
            }
        }
        Work::MakeCallComplete { vc, status, cause } => {
            let (context, snapshot, party) = {
                let state = ndis.state();
                let Some(entry) = state.vcs.get(&vc) else { return };
                let party = state.parties.add_pending_ids(vc).first().copied();
                (entry.context, entry.params.clone(), party)
            };
            if let Some(snapshot) = &snapshot {
                check_parameters(world, ndis, snapshot, "ProtocolClMakeCallComplete");
            }
            make_call_settled(world, ndis, vc, status, cause);
            write_make_call_party(world, ndis, vc, party, status, When::Completion);
            let party_handle =
                party.filter(|_| status == NDIS_STATUS_SUCCESS).map_or(0, |p| handle(Kind::Party, p));
            let parameters = snapshot.map_or(0, |s| s.address);
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
        Work::AddPartyComplete { party, status, cause } => {
            let (context, snapshot, out) = {
                let mut state = ndis.state();
                let Some((context, out)) = state.parties.get(party).map(|p| (p.context, p.handle_out)) else {
                    return;
                };
                (context, state.parties.take_params(party), out)
            };
            if let Some(snapshot) = &snapshot {
                check_parameters(world, ndis, snapshot, "ProtocolClAddPartyComplete");
            }
            add_party_settled(world, ndis, party, status, cause);
            write_add_party_handle(world, &ndis.state(), party, out, status, When::Completion);
            let party_handle = if status == NDIS_STATUS_SUCCESS { handle(Kind::Party, party) } else { 0 };
            let parameters = snapshot.map_or(0, |s| s.address);
            if let Some(complete) = client.ClAddPartyCompleteHandler {
                call_driver(
                    world,
                    ndis,
                    processor,
                    irql,
                    Logged::Lazy(
                        const { &driver_call("ProtocolClAddPartyComplete") },
                        &[status as u64, context as u64, party, parameters as u64],
                        |a, f| {
                            let status = StatusName(a.word(0) as i32);
                            write!(f, "({status}, {:#x}, Pt#{}, {:#x})", a.word(1), a.word(2), a.word(3))
                        },
                    ),
                    || {
                        // SAFETY: the driver's ProtocolClAddPartyComplete at <= DISPATCH.
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
        Work::DropPartyComplete { party, status } => {
            let context = {
                let mut state = ndis.state();
                let Some(context) = state.parties.get(party).map(|p| p.context) else { return };
                state.parties.set_state(party, PartyState::Gone);
                context
            };
            if let Some(complete) = client.ClDropPartyCompleteHandler {
                call_driver(
                    world,
                    ndis,
                    processor,
                    irql,
                    Logged::Lazy(
                        const { &driver_call("ProtocolClDropPartyComplete") },
                        &[status as u64, context as u64],
                        render_status_context,
                    ),
                    || {
                        // SAFETY: the driver's ProtocolClDropPartyComplete at <= DISPATCH.
                        unsafe { complete(status, context as NDIS_HANDLE) }
                    },
                );
            }
        }
        Work::CloseCallComplete { vc, status } => {
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
                        |a, f| {
                            write!(
                                f,
                                "({}, {:#x}, {:#x})",
                                StatusName(a.word(0) as i32),
                                a.word(1),
                                a.word(2)
                            )
                        },
                    ),
                    || {
                        // SAFETY: the driver's ProtocolClCloseCallComplete at <= DISPATCH.
                        unsafe { complete(status, context as NDIS_HANDLE, party_context as NDIS_HANDLE) }
                    },
                );
            }
        }
        Work::RemoteDrop { party, status, cause } => {
            let decision = {
                let mut state = ndis.state();
                let Some(p) = state.parties.get(party) else { return };
                if p.state() != PartyState::Connected {
                    return;
                }
                let vc = p.vc;
                let context = p.context;
                // The parties that stay: those already leaving (dropped by the network and not
                // yet answered, or being dropped) do not keep the call up, so when only they are
                // left the network releases the call (IncomingCloseCall), as UNI clears a call
                // that loses its last party.
                // (This party is Connected, so it is one of the call's staying parties.)
                let others = state.parties.of_call(vc).staying() - 1;
                if others > 0 {
                    state.parties.set_state(party, PartyState::IncomingDropped { status }).expect("party");
                    state.counters.parties_dropped_remotely += 1;
                    Some((true, context))
                } else {
                    let Some(entry) = state.vcs.get_mut(&vc) else { return };
                    if entry.state != VcState::Active || entry.incoming_close.is_some() {
                        return;
                    }
                    state.set_incoming_close(vc, Some(status));
                    state.counters.parties_dropped_remotely += 1;
                    Some((false, state.vcs[&vc].context))
                }
            };
            world.log_lazy(processor, &NETWORK, &[party, u64::from(cause), status as u64], |a, f| {
                write!(
                    f,
                    "Pt#{} leaves: UNI cause {}, {}",
                    a.word(0),
                    a.word(1),
                    StatusName(a.word(2) as i32)
                )
            });
            match decision {
                Some((true, context)) => {
                    if let Some(incoming) = client.ClIncomingDropPartyHandler {
                        call_driver(
                            world,
                            ndis,
                            processor,
                            irql,
                            Logged::Lazy(
                                const { &driver_call("ProtocolClIncomingDropParty") },
                                &[status as u64, context as u64],
                                render_incoming,
                            ),
                            || {
                                // SAFETY: the driver's ProtocolClIncomingDropParty at <= DISPATCH.
                                unsafe { incoming(status, context as NDIS_HANDLE, std::ptr::null_mut(), 0) }
                            },
                        );
                    }
                }
                Some((false, context)) => {
                    incoming_close(world, ndis, &client, processor, irql, status, context)
                }
                None => {}
            }
        }
        Work::RemoteRelease { vc, status } => {
            let context = {
                let mut state = ndis.state();
                let Some(entry) = state.vcs.get_mut(&vc) else { return };
                if entry.state != VcState::Active || entry.incoming_close.is_some() || entry.deleted {
                    return;
                }
                state.set_incoming_close(vc, Some(status));
                state.counters.remote_releases += 1;
                state.vcs[&vc].context
            };
            world.log_lazy(processor, &NETWORK, &[vc, status as u64], |a, f| {
                write!(f, "Vc#{} released by the network: {}", a.word(0), StatusName(a.word(1) as i32))
            });
            incoming_close(world, ndis, &client, processor, irql, status, context);
        }
        Work::NotifyCloseAf { af } => {
            let context = {
                let state = ndis.state();
                match state.afs.get(&af) {
                    // A call manager notifies once: not again while a notification is running or
                    // pending on this AF.
                    Some(entry)
                        if entry.state == AfState::Open
                            && !entry.notify_close_pending
                            && !entry.notify_in_handler =>
                    {
                        entry.context
                    }
                    _ => return,
                }
            };
            if let Some(notify) = client.ClNotifyCloseAfHandler {
                if let Some(entry) = ndis.state().afs.get_mut(&af) {
                    entry.notify_in_handler = true;
                    entry.notify_completed_early = false;
                }
                let status = call_driver(
                    world,
                    ndis,
                    processor,
                    irql,
                    Logged::Lazy(
                        const { &driver_call("ProtocolClNotifyCloseAf") },
                        &[context as u64],
                        |a, f| write!(f, "({:#x})", a.word(0)),
                    ),
                    || {
                        // SAFETY: the driver's ProtocolClNotifyCloseAf at <= DISPATCH.
                        unsafe { notify(context as NDIS_HANDLE) }
                    },
                );
                world.log_lazy(
                    processor,
                    const { &driver_call("ProtocolClNotifyCloseAf") },
                    &[status as u64],
                    |a, f| write!(f, "returned {}", StatusName(a.word(0) as i32)),
                );
                let completed_early = {
                    let mut state = ndis.state();
                    match state.afs.get_mut(&af) {
                        Some(entry) => {
                            entry.notify_in_handler = false;
                            let early = std::mem::take(&mut entry.notify_completed_early);
                            if status == NDIS_STATUS_PENDING && !early {
                                entry.notify_close_pending = true;
                            }
                            early
                        }
                        None => false,
                    }
                };
                if completed_early && status != NDIS_STATUS_PENDING {
                    violation(
                        world,
                        rules::EXACTLY_ONCE_COMPLETION,
                        "ProtocolClNotifyCloseAf",
                        format!(
                            "returned {} after calling NdisClNotifyCloseAddressFamilyComplete: only a PENDING \
                             notification is completed",
                            status_name(status)
                        ),
                    );
                }
            }
        }
        other => world.log_call(processor, "sim", "Scheduler", format!("unexpected work {other:?}")),
    }
}

fn incoming_close(
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

#[allow(dead_code)]
fn _irql(_: Irql) -> Irql {
    DISPATCH_LEVEL
}
