//! What the CoNDIS client modules share: how a request's answer is drawn, how the call manager
//! rejects parameters and checks them again at completion, the client's handlers, and the
//! renderers of their log entries.
//!
//! Read: condis-reference.md §4-§6; verifier-rules.md §7.6-§7.8, §7.30.
//!
//! The CoNDIS surface itself is one module per object, each export next to the delivery of the
//! completions it queues: [`super::af`] (address families), [`super::vc`] (VCs), [`super::call`]
//! (calls, remote releases), [`super::party`] (parties, remote drops). Each request is checked
//! (IRQL, handle in the tables, object state), its parameters copied and validated by the call
//! manager ([`super::params`]), the network asked ([`super::callmgr::answer`]), and the answer
//! given synchronously or pended by the scheduler. State changes happen when the answer is
//! decided (sync) or when the completion is delivered (pended), before the driver's completion
//! handler runs.

use ndis_sys::*;

use super::params::{self, Snapshot};
use super::{fmt_shown, rules, violation, Ndis, Outcome, State, StatusName};
use crate::kernel::{Args, Call, World};
use std::fmt;

/// The simulated call manager's own log entries.
pub(super) const CALL_MANAGER: Call = Call::new("sim", "CallManager");
/// The network's log entries (remote drops and releases).
pub(super) const NETWORK: Call = Call::new("sim", "Network");

/// `-> NDIS_STATUS_X`: a request's result (word 0).
pub(super) fn render_result(a: &Args<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "-> {}", StatusName(a.word(0) as i32))
}

/// `-> NDIS_STATUS_RESOURCES (injected)`: a failure the fault policy injected.
pub(super) fn render_injected(_: &Args<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("-> NDIS_STATUS_RESOURCES (injected)")
}

/// `(X)`: one argument captured with [`shown`].
pub(super) fn render_shown(a: &Args<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("(")?;
    fmt_shown(a, 0, f)?;
    f.write_str(")")
}

/// `(NDIS_STATUS_X, 0x…)`: a completion's status and the driver's context.
pub(super) fn render_status_context(a: &Args<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "({}, {:#x})", StatusName(a.word(0) as i32), a.word(1))
}

/// `(NDIS_STATUS_X, 0x…, NULL, 0)`: an incoming drop or close.
pub(super) fn render_incoming(a: &Args<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "({}, {:#x}, NULL, 0)", StatusName(a.word(0) as i32), a.word(1))
}

pub(super) fn client(ndis: &Ndis) -> Option<NDIS_CO_CLIENT_OPTIONAL_HANDLERS> {
    ndis.state().protocol.as_ref().and_then(|p| p.client)
}

/// The outcome of a request and whether it fails with RESOURCES. `injectable` names the export
/// when its failure is honoured (so [`super::faults`] may fail it systematically); `None` for
/// requests that cannot fail, whose draw is ignored.
pub(super) fn outcome_and_failure(
    world: &World,
    ndis: &Ndis,
    min_delay: u64,
    injectable: Option<&'static str>,
) -> (Outcome, bool) {
    outcome_and_failure_in(world, &mut ndis.state(), min_delay, injectable)
}

/// [`outcome_and_failure`] with the state already locked.
pub(super) fn outcome_and_failure_in(
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

pub(super) fn reject_parameters(
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
pub(super) fn reject_parameters_reported(
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

/// Compares the parameters of a pended request with its snapshot (verifier-rules.md §7.30).
pub(super) fn check_parameters(world: &World, ndis: &Ndis, snapshot: &Snapshot, export: &str) {
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

/// The call manager accepted party `party` with parameters other than those asked for (the
/// leaf's CONNECT or ADD PARTY ACKNOWLEDGE negotiated them): it sets CALL_PARAMETERS_CHANGED in the
/// client's CO_CALL_PARAMETERS at `parameters`, before the request returns or, if it pended, just
/// before its completion handler, which must look at the flag (nc-ndis-protocol_cl_make_call_complete,
/// nc-ndis-protocol_cl_add_party_complete; condis-reference.md, "Adding a party", 7). Only the flag
/// changes: the values stay as the client gave them. Nothing is written into a freed block (the
/// completion's parameter check has reported that already).
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_cl_add_party_complete>
pub(super) fn mark_parameters_changed(
    world: &World,
    processor: usize,
    state: &mut State,
    party: u64,
    parameters: usize,
) {
    if parameters == 0
        || state.pool.is_freed(parameters)
        || !state.parties.get(party).is_some_and(|p| p.changed)
    {
        return;
    }
    // SAFETY: the client's CO_CALL_PARAMETERS, which must stay valid until the request completes
    // (nf-ndis-ndisclmakecall, nf-ndis-ndiscladdparty), and was just read whole by the snapshot.
    unsafe {
        let flags = parameters as *mut u32;
        flags.write_unaligned(flags.read_unaligned() | CALL_PARAMETERS_CHANGED);
    }
    state.counters.parameters_changed += 1;
    world.log_call(
        processor,
        "sim",
        "CallManager",
        format!("Pt#{party} accepted with changed parameters: CALL_PARAMETERS_CHANGED set"),
    );
}

pub(super) fn params_pointer(snapshot: &Snapshot, at: usize) -> usize {
    snapshot.call().get(at..at + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8")) as usize)
}
