//! Address families: NdisClOpenAddressFamilyEx, NdisClCloseAddressFamily, the call manager's
//! close of an AF (ProtocolClNotifyCloseAf) and NdisClNotifyCloseAddressFamilyComplete, with the
//! delivery of each completion they queue.
//!
//! Read: nf-ndis-ndisclopenaddressfamilyex, nf-ndis-ndisclcloseaddressfamily,
//! nc-ndis-protocol_cl_notify_close_af, nf-ndis-ndisclnotifycloseaddressfamilycomplete;
//! condis-reference.md §4.
//!
//! Flow: an open pends or not ([`super::pend`]); a pended one is completed by
//! [`deliver_open_complete`] (Work::OpenAfComplete), a pended close by [`deliver_close_complete`];
//! the call manager closes an AF with [`deliver_notify_close`] (Work::NotifyCloseAf).

use std::sync::Arc;

use ndis_sys::*;

use super::condis::{
    client, log_returned, outcome_and_failure, outcome_and_status_in, render_injected,
    render_injected_status, render_shown, render_status_context,
};
use super::out_param::{self, When};
use super::{
    call_driver, decode, driver_call, fmt_shown, handle, log_lazy, pend, rules, shown, status_name,
    violation, Kind, Logged, Ndis, Outcome, StatusName, Work,
};
use crate::ddi::{self, Context, Ddi, IrqlRequirement};
use crate::export;
use crate::exports::ExportTable;
use crate::kernel::{Call, Irql, World, DISPATCH_LEVEL, PASSIVE_LEVEL};

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
    /// The family opened: (AddressFamily, MajorVersion, MinorVersion).
    pub family: (u32, u32, u32),
    /// Call manager requests being delivered to the client on this AF (an
    /// OID_CO_ADDRESS_CHANGE): part of [`Af::delivering`].
    pub indications: u32,
    /// The client's close was made while NDIS delivered something else on the AF: it completes
    /// only once that delivery has returned.
    pub close_waits: bool,
}

impl Af {
    pub fn is_alive(&self) -> bool {
        matches!(self.state, AfState::OpenPending | AfState::Open)
    }

    /// NDIS is delivering something to the client on this AF (a call manager's request, or
    /// ProtocolClNotifyCloseAf): it holds a reference, so a close made elsewhere completes only
    /// after (found by the 10^6-seed run: schedule seed 44143, concurrency seed 132954, where the
    /// unbind closed the AF at the scheduling point that opens the indication's callback). The
    /// close a ProtocolClNotifyCloseAf handler makes itself is the one NDIS asked for, and may
    /// complete at once.
    pub fn delivering(&self) -> bool {
        self.indications > 0
            || (self.notify_in_handler
                && !crate::machine::current_callbacks().contains(&"ProtocolClNotifyCloseAf"))
    }
}

/// Registers the address-family exports.
pub fn register(table: &mut ExportTable) {
    export!(table, "ndis.sys", NdisClOpenAddressFamilyEx = ndis_cl_open_address_family_ex);
    export!(table, "ndis.sys", NdisClCloseAddressFamily = ndis_cl_close_address_family);
    export!(
        table,
        "ndis.sys",
        NdisClNotifyCloseAddressFamilyComplete = ndis_cl_notify_close_address_family_complete
    );
}

/// `NdisClOpenAddressFamilyEx`: PASSIVE; only for the AF the CM registered on this binding.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclopenaddressfamilyex>
unsafe extern "win64" fn ndis_cl_open_address_family_ex(
    binding_handle: NDIS_HANDLE,
    family: *mut CO_ADDRESS_FAMILY,
    af_context: NDIS_HANDLE,
    af_handle: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const DDI: Ddi = Ddi::ndis(
        "NdisClOpenAddressFamilyEx",
        IrqlRequirement::Exactly(PASSIVE_LEVEL),
        rules::IRQL_PROTOCOL_DRIVER_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    const CALL: Call = DDI.call();
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            let [b0, b1, b2] = shown(&ndis.state(), binding_handle as usize);
            let words = [b0, b1, b2, family as u64, af_context as u64, af_handle as u64];
            log_lazy(world, processor, &CALL, &words, |a, f| {
                f.write_str("(")?;
                fmt_shown(a, 0, f)?;
                write!(f, ", {:#x}, {:#x}, {:#x})", a.word(3), a.word(4), a.word(5))
            });
        })
    };
    let binding = decode(Kind::Binding, binding_handle as usize);
    let registered = {
        let state = ndis.state();
        binding
            .and_then(|id| state.bindings.get(&id))
            .map(|b| (b.open == super::binding::OpenState::Open, b.af_registered))
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
    let key = (requested.AddressFamily, requested.MajorVersion, requested.MinorVersion);
    let (offered, already_open) = {
        let state = ndis.state();
        let offered = registered && state.config.call_manager.families.contains(&key);
        let binding = binding.unwrap_or_default();
        let open = state.afs.values().any(|af| af.binding == binding && af.family == key && af.is_alive());
        (offered, open)
    };
    if !offered {
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
    if already_open {
        // nc-ndis-protocol_co_af_register_notify: NDIS may notify a family again; the client
        // opens a family once per binding (verifier-rules.md §7.6 item 45). Refused.
        violation(
            world,
            rules::OPEN_AF_ALREADY_OPEN,
            EXPORT,
            format!("AF {:#x} {}.{} is already open on this binding", key.0, key.1, key.2),
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
                indications: 0,
                close_waits: false,
                handle_out: af_handle as usize,
                family: key,
            },
        );
        if outcome == Outcome::Synchronous {
            state.counters.afs_opened += 1;
            super::co_oid::announce(&mut state, world.now(), id);
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
///
/// May fail (by policy, [`super::faults`]) with the failure nc-ndis-protocol_cl_close_af_complete
/// lists, FAILURE, at once or at completion: the AF then stays open (its VCs and SAPs are to be
/// released "before attempting to close the AF" again), and an AF never closed is a leak at
/// unload.
extern "win64" fn ndis_cl_close_address_family(af_handle: NDIS_HANDLE) -> NDIS_STATUS {
    const DDI: Ddi = Ddi::ndis(
        "NdisClCloseAddressFamily",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
        rules::IRQL_PROTOCOL_DRIVER_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    const CALL: Call = DDI.call();
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            log_lazy(world, processor, &CALL, &shown(&ndis.state(), af_handle as usize), render_shown);
        })
    };
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
    let (mut outcome, failure) = outcome_and_status_in(world, &mut ndis.state(), 0, EXPORT, true);
    let waits = ndis.state().afs.get(&id).is_some_and(Af::delivering);
    if waits {
        // NDIS is delivering something else on this AF: it completes the close once that has
        // returned (deliver_close_complete waits for it).
        if let Some(af) = ndis.state().afs.get_mut(&id) {
            af.close_waits = true;
        }
        if outcome == Outcome::Synchronous {
            outcome = Outcome::Pending { delay: 1 };
        }
    }
    if let (Some(status), Outcome::Synchronous) = (failure, outcome) {
        // Failed at once: the AF is still open.
        log_lazy(world, processor, &CALL, &[status as u64], render_injected_status);
        return status;
    }
    {
        let mut state = ndis.state();
        let af = state.afs.get_mut(&id).expect("checked");
        af.state = if outcome == Outcome::Synchronous { AfState::Closed } else { AfState::Closing };
        if outcome == Outcome::Synchronous {
            state.counters.afs_closed += 1;
        }
    }
    let status = if outcome == Outcome::Synchronous {
        NDIS_STATUS_SUCCESS
    } else {
        let status = failure.unwrap_or(NDIS_STATUS_SUCCESS);
        pend(world, ndis, processor, outcome, Work::CloseAfComplete { af: id, status })
    };
    log_returned(world, processor, &CALL, status, failure);
    status
}

/// `NdisClNotifyCloseAddressFamilyComplete`: <= DISPATCH; exactly once after
/// ProtocolClNotifyCloseAf returned PENDING (the AF handle may already be closed).
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclnotifycloseaddressfamilycomplete>
extern "win64" fn ndis_cl_notify_close_address_family_complete(af_handle: NDIS_HANDLE, status: NDIS_STATUS) {
    const DDI: Ddi = Ddi::ndis(
        "NdisClNotifyCloseAddressFamilyComplete",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
        rules::IRQL_PROTOCOL_DRIVER_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    const CALL: Call = DDI.call();
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            let [h0, h1, h2] = shown(&ndis.state(), af_handle as usize);
            log_lazy(world, processor, &CALL, &[h0, h1, h2, status as u64], |a, f| {
                f.write_str("(")?;
                fmt_shown(a, 0, f)?;
                write!(f, ", {})", StatusName(a.word(3) as i32))
            });
        })
    };
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

/// Work::OpenAfComplete: a pended NdisClOpenAddressFamilyEx completes (ProtocolClOpenAfCompleteEx,
/// at PASSIVE).
pub(super) fn deliver_open_complete(world: &Arc<World>, ndis: &Ndis, af: u64, status: i32, processor: usize) {
    let Some(client) = client(ndis) else { return };
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
            out_param::write(world, &state.pool, export, "NdisAfHandle", out, value, When::Completion);
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
                |a, f| write!(f, "({:#x}, Af#{}, {})", a.word(0), a.word(1), StatusName(a.word(2) as i32)),
            ),
            || {
                // SAFETY: the driver's ProtocolClOpenAfCompleteEx at PASSIVE.
                unsafe { complete(context as NDIS_HANDLE, af_handle as NDIS_HANDLE, status) }
            },
        );
    }
    if status == NDIS_STATUS_SUCCESS {
        // The call manager's side of the open completed with this callback's return.
        super::co_oid::announce(&mut ndis.state(), world.now(), af);
    }
}

/// Work::CloseAfComplete: a pended NdisClCloseAddressFamily completes (ProtocolClCloseAfComplete):
/// the AF is closed, or, failed, open again.
pub(super) fn deliver_close_complete(
    world: &Arc<World>,
    ndis: &Ndis,
    af: u64,
    status: i32,
    processor: usize,
    irql: Irql,
) {
    let Some(client) = client(ndis) else { return };
    let context = {
        let mut state = ndis.state();
        let Some(entry) = state.afs.get_mut(&af) else { return };
        if entry.close_waits && (entry.indications > 0 || entry.notify_in_handler) {
            // NDIS's reference (Af::delivering): complete when the indication has returned.
            state.schedule(world.now(), 1, Work::CloseAfComplete { af, status });
            return;
        }
        entry.close_waits = false;
        let Some(entry) = state.afs.get_mut(&af) else { return };
        let closed = status == NDIS_STATUS_SUCCESS;
        entry.state = if closed { AfState::Closed } else { AfState::Open };
        let context = entry.context;
        if closed {
            state.counters.afs_closed += 1;
        }
        context
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

/// Work::NotifyCloseAf: the call manager closes the AF (ProtocolClNotifyCloseAf); a PENDING answer
/// is owed NdisClNotifyCloseAddressFamilyComplete.
pub(super) fn deliver_notify_close(world: &Arc<World>, ndis: &Ndis, af: u64, processor: usize, irql: Irql) {
    let Some(client) = client(ndis) else { return };
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
            Logged::Lazy(const { &driver_call("ProtocolClNotifyCloseAf") }, &[context as u64], |a, f| {
                write!(f, "({:#x})", a.word(0))
            }),
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
