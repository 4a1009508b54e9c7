//! Virtual connections: NdisCoCreateVc and NdisCoDeleteVc (neither pends, so nothing is delivered
//! here; either may fail by policy), and the lookup of a live VC handle every call request starts
//! with.
//!
//! Read: nf-ndis-ndiscocreatevc, nf-ndis-ndiscodeletevc; condis-reference.md §5.

use std::sync::Arc;

use ndis_sys::*;

use super::af::AfState;
use super::condis::{
    failure_in, outcome_and_failure, render_injected, render_injected_status, render_result, render_shown,
};
use super::params::{Parsed, Snapshot};
use super::{decode, fmt_shown, handle, log_lazy, rules, shown, violation, Kind, Ndis, State};
use crate::ddi::{self, Context, Ddi, IrqlRequirement};
use crate::export;
use crate::exports::ExportTable;
use crate::kernel::{Call, DISPATCH_LEVEL};

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
    /// The party whose NdisClDropParty the call manager refused (FAILURE: the call's last party,
    /// nc-ndis-protocol_cl_drop_party_complete), or is refusing (its completion pending). At most
    /// one per call: a call manager that has called one party the last calls no other so.
    pub refused_party: Option<u64>,
    /// `incoming_close` as it was when a pended NdisClCloseCall took it: put back if the close
    /// fails (the release is then still unanswered).
    pub incoming_close_before_close: Option<i32>,
}

/// Registers the VC exports.
pub fn register(table: &mut ExportTable) {
    export!(table, "ndis.sys", NdisCoCreateVc = ndis_co_create_vc);
    export!(table, "ndis.sys", NdisCoDeleteVc = ndis_co_delete_vc);
}

/// `NdisCoCreateVc`: <= DISPATCH; `*NdisVcHandle` must be NULL on entry; never pends.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscocreatevc>
unsafe extern "win64" fn ndis_co_create_vc(
    binding_handle: NDIS_HANDLE,
    af_handle: NDIS_HANDLE,
    vc_context: NDIS_HANDLE,
    vc_handle: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const DDI: Ddi =
        Ddi::ndis("NdisCoCreateVc", IrqlRequirement::AtMost(DISPATCH_LEVEL), rules::IRQL_CONNECTION_FUNCTION);
    const EXPORT: &str = DDI.name;
    const CALL: Call = DDI.call();
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
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
        })
    };
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
            .is_some_and(|b| b.open == super::binding::OpenState::Open);
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
                refused_party: None,
                incoming_close_before_close: None,
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

pub(super) fn live_vc(ndis: &Ndis, vc_handle: NDIS_HANDLE) -> Option<u64> {
    live_vc_in(&ndis.state(), vc_handle)
}

/// [`live_vc`] with the state already locked.
pub(super) fn live_vc_in(state: &State, vc_handle: NDIS_HANDLE) -> Option<u64> {
    let id = decode(Kind::Vc, vc_handle as usize)?;
    state.vcs.get(&id).filter(|vc| !vc.deleted).map(|_| id)
}

/// `NdisCoDeleteVc`: <= DISPATCH; no call active, pending or closing; the handle dies.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscodeletevc>
///
/// May fail (by policy, [`super::faults`]) with the statuses the page lists, NOT_ACCEPTED ("the VC
/// is still active") and CLOSING ("deactivation on the given VC is still pending"): the VC is
/// then not deleted and its handle still names it — a VC never deleted is a leak at unload.
extern "win64" fn ndis_co_delete_vc(vc_handle: NDIS_HANDLE) -> NDIS_STATUS {
    const DDI: Ddi =
        Ddi::ndis("NdisCoDeleteVc", IrqlRequirement::AtMost(DISPATCH_LEVEL), rules::IRQL_CONNECTION_FUNCTION);
    const EXPORT: &str = DDI.name;
    const CALL: Call = DDI.call();
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            log_lazy(world, processor, &CALL, &shown(&ndis.state(), vc_handle as usize), render_shown);
        })
    };
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
            let mut guard = ndis.state();
            let (failure, _) = failure_in(world, &mut guard, EXPORT, true);
            if let Some(status) = failure {
                drop(guard);
                log_lazy(world, processor, &CALL, &[status as u64], render_injected_status);
                return status;
            }
            guard.vcs.get_mut(&id).expect("live").deleted = true;
            guard.counters.vcs_deleted += 1;
            NDIS_STATUS_SUCCESS
        }
    };
    log_lazy(world, processor, &CALL, &[status as u64], render_result);
    status
}
