//! Makes the NDIS requests the engine asks for, with no lock held, and runs the completion path
//! itself whenever NDIS returns anything but `NDIS_STATUS_PENDING`.
//!
//! Pages: nf-ndis-ndisclmakecall, nf-ndis-ndiscladdparty, nf-ndis-ndiscldropparty,
//! nf-ndis-ndisclclosecall, nf-ndis-ndisclcloseaddressfamily: "if the call returns anything other
//! than NDIS_STATUS_PENDING, the client should make an internal call to its completion handler";
//! NDIS does not call it. After PENDING nothing here touches the request again: the completion
//! may already have run on another processor.

use crate::global::context;
use crate::pool::{self, tag};
use core::ptr::{self, NonNull};
use ndis_sys::*;
use partyline_core::params::{self, Message};
use partyline_core::{Action, AtmAddress, Engine, Handle, Id, Status, TrafficProfile};

fn handle(h: Handle) -> NDIS_HANDLE {
    h.0 as NDIS_HANDLE
}

fn status(s: NDIS_STATUS) -> Status {
    Status(s)
}

/// What a request that did not pend delivers: the driver's own call of its completion handler,
/// applied to the engine by the drive loop together with taking the next request.
pub enum Completion {
    VcCreated { call: Id, status: Status, vc: Handle },
    MakeCall { call: Id, status: Status, party: Handle, changed: bool },
    AddParty { party: Id, status: Status, handle: Handle, changed: bool },
    DropParty { party: Id, status: Status },
    CloseCall { call: Id, status: Status },
    VcDeleted { call: Id, status: Status },
    CloseAf { af: Id, status: Status },
    Addresses { af: Id, answer: crate::addresses::Answer },
}

impl Completion {
    /// Feeds the result to the engine (under the lock; no call into NDIS).
    pub fn apply(self, e: &mut Engine) {
        let _ = match self {
            Completion::VcCreated { call, status, vc } => e.on_vc_created(call, status, vc),
            Completion::MakeCall { call, status, party, changed } => {
                e.on_make_call_complete(call, status, party, changed)
            }
            Completion::AddParty { party, status, handle, changed } => {
                e.on_add_party_complete(party, status, handle, changed)
            }
            Completion::DropParty { party, status } => e.on_drop_party_complete(party, status),
            Completion::CloseCall { call, status } => e.on_close_call_complete(call, status),
            Completion::VcDeleted { call, status } => e.on_vc_deleted(call, status),
            Completion::CloseAf { af, status } => e.on_close_af_complete(af, status),
            Completion::Addresses { af, answer } => {
                e.on_addresses_queried(af, answer.status, answer.address, answer.needed)
            }
        };
    }
}

/// Makes one request; its completion when NDIS returned anything but PENDING.
pub fn perform(action: Action) -> Option<Completion> {
    match action {
        Action::CreateVc { call, binding, af } => {
            // NdisCoCreateVc: *NdisVcHandle must be NULL on entry; it never pends.
            let mut vc: NDIS_HANDLE = ptr::null_mut();
            // SAFETY: binding and AF handles are live (the engine only asks while both are
            // open); `vc` is a valid out-pointer; <= DISPATCH.
            let s = unsafe { NdisCoCreateVc(handle(binding), handle(af), context(call), &mut vc) };
            Some(Completion::VcCreated { call, status: status(s), vc: Handle(vc as usize) })
        }
        Action::MakeCall { call, party, vc, leaf, calling, profile } => {
            let result = issue(Message::Setup, &leaf, &calling, &profile, |parameters, slot| {
                // SAFETY: `vc` is the VC we created; `parameters` is a complete SETUP block
                // that stays allocated until the completion frees it; `slot` lies inside it.
                unsafe { NdisClMakeCall(handle(vc), parameters, context(party), slot) }
            });
            result.map(|(status, party, changed)| Completion::MakeCall { call, status, party, changed })
        }
        Action::AddParty { call: _, party, vc, leaf, calling, profile } => {
            let result = issue(Message::AddParty, &leaf, &calling, &profile, |parameters, slot| {
                // SAFETY: as for MakeCall; the VC has an active multipoint call (the engine
                // only adds once MakeCall succeeded).
                unsafe { NdisClAddParty(handle(vc), context(party), parameters, slot) }
            });
            result.map(|(status, handle, changed)| Completion::AddParty { party, status, handle, changed })
        }
        Action::DropParty { party, handle: party_handle } => {
            // NdisClDropParty: the handle is invalid from this call on; the engine has already
            // forgotten it.
            // SAFETY: a connected party's handle, used exactly once; no buffer; <= DISPATCH.
            let s = unsafe { NdisClDropParty(handle(party_handle), ptr::null_mut(), 0) };
            (s != NDIS_STATUS_PENDING).then(|| Completion::DropParty { party, status: status(s) })
        }
        Action::CloseCall { call, vc, party } => {
            let party_handle = party.map_or(ptr::null_mut(), |(_, h)| handle(h));
            // SAFETY: the VC has an active call with exactly this party left (the engine
            // dropped every other one first: NdisClCloseCall on multipoint VCs).
            let s = unsafe { NdisClCloseCall(handle(vc), party_handle, ptr::null_mut(), 0) };
            (s != NDIS_STATUS_PENDING).then(|| Completion::CloseCall { call, status: status(s) })
        }
        Action::DeleteVc { call, vc } => {
            // SAFETY: the call on this client-created VC is closed (or never connected).
            let s = unsafe { NdisCoDeleteVc(handle(vc)) };
            Some(Completion::VcDeleted { call, status: status(s) })
        }
        Action::CloseAf { af, handle: af_handle } => {
            // SAFETY: no VC is left on this AF; the handle is dead after this call.
            let s = unsafe { NdisClCloseAddressFamily(handle(af_handle)) };
            (s != NDIS_STATUS_PENDING).then(|| Completion::CloseAf { af, status: status(s) })
        }
        Action::NotifyCloseAfComplete { handle: af_handle } => {
            // SAFETY: ProtocolClNotifyCloseAf returned PENDING for this AF; the handle stays
            // usable for this one call (nf-ndis-ndisclnotifycloseaddressfamilycomplete).
            unsafe { NdisClNotifyCloseAddressFamilyComplete(handle(af_handle), NDIS_STATUS_SUCCESS) };
            None
        }
        Action::UnbindAdapter { handle: binding_handle, .. } => {
            // nf-ndis-ndisclopenaddressfamilyex: after a failed open the client should call
            // NdisUnbindAdapter. Never reached inside ProtocolBind/UnbindAdapterEx (the engine asks
            // only when an AF open completes); <= DISPATCH_LEVEL; NDIS_STATUS_RESOURCES just leaves
            // the binding open (and unused) until NDIS unbinds it.
            // SAFETY: the binding's handle, open when the engine asked; not used after the call.
            let _ = unsafe { NdisUnbindAdapter(handle(binding_handle)) };
            None
        }
        Action::QueryAddresses { af, binding, handle: af_handle, length } => {
            crate::addresses::query(af, binding, af_handle, length)
                .map(|answer| Completion::Addresses { af, answer })
        }
        Action::BindingQuiet { cookie, .. } => {
            crate::binding::wake_unbind(cookie);
            None
        }
    }
}

/// Builds a parameter block, makes the request, and for a non-PENDING result returns what the
/// completion would have delivered (status, party handle, CALL_PARAMETERS_CHANGED), having freed
/// the block. With PENDING the completion handler frees it.
fn issue(
    message: Message,
    leaf: &AtmAddress,
    calling: &AtmAddress,
    profile: &TrafficProfile,
    request: impl FnOnce(*mut CO_CALL_PARAMETERS, *mut NDIS_HANDLE) -> NDIS_STATUS,
) -> Option<(Status, Handle, bool)> {
    let len = params::block_len(message);
    let Some(block) = pool::allocate(len, tag::CALL_PARAMETERS) else {
        return Some((Status::RESOURCES, Handle::NULL, false));
    };
    // SAFETY: `block` is `len` fresh bytes we own until the request takes it.
    let bytes = unsafe { core::slice::from_raw_parts_mut(block.as_ptr(), len) };
    let Ok(slot) = params::write(bytes, block.as_ptr() as usize, message, leaf, calling, profile) else {
        // SAFETY: never handed out.
        unsafe { pool::free(block) };
        return Some((Status::RESOURCES, Handle::NULL, false));
    };
    let parameters = block.as_ptr().cast::<CO_CALL_PARAMETERS>();
    // SAFETY: the slot offset is 8-aligned and inside the block.
    let slot = unsafe { block.as_ptr().add(slot).cast::<NDIS_HANDLE>() };
    let s = request(parameters, slot);
    if s == NDIS_STATUS_PENDING {
        return None;
    }
    // SAFETY: NDIS returned without pending: the block is ours again; NDIS wrote the handle (or
    // left NULL) and may have set CALL_PARAMETERS_CHANGED.
    let (party_handle, flags) = unsafe { (slot.read(), (*parameters).Flags) };
    // SAFETY: as above; freed once.
    unsafe { pool::free(block) };
    let party_handle = if s == NDIS_STATUS_SUCCESS { Handle(party_handle as usize) } else { Handle::NULL };
    Some((status(s), party_handle, flags & CALL_PARAMETERS_CHANGED != 0))
}

/// Frees the parameter block of a completed MakeCall/AddParty and reports whether the call
/// manager changed the parameters.
///
/// # Safety
/// `parameters` is the block this driver passed to the request being completed.
pub unsafe fn release_parameters(parameters: *mut CO_CALL_PARAMETERS) -> bool {
    let Some(block) = NonNull::new(parameters) else { return false };
    // SAFETY: caller guarantees it is our block, complete and no longer used by NDIS.
    let changed = unsafe { (*parameters).Flags } & CALL_PARAMETERS_CHANGED != 0;
    // SAFETY: allocated by `issue`, freed exactly once, here.
    unsafe { pool::free(block.cast::<u8>()) };
    changed
}
