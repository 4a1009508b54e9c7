//! CoNDIS OID requests between the client and the simulated call manager: the call manager's
//! OID_CO_ADDRESS_CHANGE to the client, the client's NdisCoOidRequest (OID_CO_GET_ADDRESSES) and
//! its completion, each adapter's registered ATM address, and the check of every SETUP's and ADD
//! PARTY's calling party against it.
//!
//! Read: network/oid-co-address-change (the call manager sends it to each client right after the
//! client opens an AF, and whenever the switch address changes; "the client must then send an
//! OID_CO_GET_ADDRESSES query"), network/oid-co-get-addresses (the answer, a CO_ADDRESS_LIST),
//! nf-ndis-ndiscooidrequest (handles, statuses, BytesNeeded, nonpaged request and buffer),
//! ns-ndis-_ndis_oid_request (header), nc-ndis-protocol_co_oid_request,
//! nc-ndis-protocol_co_oid_request_complete; atm-call-params.md §3 (CallingParty: the client's
//! own registered ATM address).
//!
//! Flow: an AF's open completes ([`super::af`]) → [`announce`] queues Work::AddressChange →
//! [`deliver_address_change`] calls ProtocolCoOidRequest(OID_CO_ADDRESS_CHANGE) → the client
//! calls [`ndis_co_oid_request`] (OID_CO_GET_ADDRESSES) → answered synchronously, or pended and
//! completed by [`deliver_complete`] (ProtocolCoOidRequestComplete, the answer written into the
//! driver's buffer only if it still owns it). A scenario's `address_change` step changes an
//! adapter's address ([`change_address`]) and announces it again on every open AF.
//! [`check_calling_party`] is called by NdisClMakeCall and NdisClAddParty.
//!
//! Requests to the miniport (a NULL AF handle) and OIDs other than OID_CO_GET_ADDRESSES are
//! answered NDIS_STATUS_NOT_SUPPORTED: the simulated ATM miniport and call manager implement no
//! other OID (logged loudly as not implemented).

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::sync::Arc;

use ndis_sys::*;

use super::callmgr::AtmAddr;
use super::condis::{client, outcome_and_failure};
use super::out_param::{self, When};
use super::params::Leaf;
use super::{
    call_driver, decode, driver_call, fmt_shown, log_lazy, pend, rules, shown, violation, Kind, Logged, Ndis,
    Outcome, State, StatusName, Work,
};
use crate::ddi::{self, Context, Ddi, IrqlRequirement};
use crate::export;
use crate::exports::ExportTable;
use crate::kernel::{Call, Irql, World, DISPATCH_LEVEL};

/// Bytes of the answer: the list header and one ATM address entry.
const ANSWER_LEN: usize = offset_of!(CO_ADDRESS_LIST, AddressList) + CO_ADDRESS_ATM_ENTRY_SIZE;

/// What the call manager has told one AF about its address.
#[derive(Clone, Debug, Default)]
pub(crate) struct AfAddress {
    /// The address the last query asked after the latest change at its time was answered with:
    /// what the client knows.
    known: Option<AtmAddr>,
    /// A change was announced and no query asked after it has been answered: the client may
    /// still use the address it knows.
    unanswered: bool,
    /// The client has sent OID_CO_GET_ADDRESSES since the last change (whatever the answer).
    queried: bool,
    /// That it has not was reported (once per change).
    reported: bool,
    /// Changes announced so far: a query asked before the last one may be answered with either
    /// address, so only one asked after it answers it.
    changes: u64,
}

/// A pended OID_CO_GET_ADDRESSES: where the driver's request and buffer are, and which pool
/// allocations they were when the request was made.
#[derive(Clone, Copy, Debug)]
struct Pended {
    af: u64,
    request: usize,
    request_block: Option<u64>,
    buffer: usize,
    buffer_block: Option<u64>,
    length: u32,
    /// The AF's change count when the query was asked.
    epoch: u64,
}

/// The call manager's addresses (a part of [`State`]).
#[derive(Debug, Default)]
pub(crate) struct Addresses {
    /// Each adapter's registered address, by adapter index; from the configuration, then changed
    /// by [`change_address`].
    adapter: Vec<Option<AtmAddr>>,
    afs: BTreeMap<u64, AfAddress>,
    pended: BTreeMap<u64, Pended>,
    next: u64,
}

impl Addresses {
    /// The registered address of `adapter` (the configured `local_address` until changed).
    fn of_adapter<'a>(&'a self, state_config: &'a super::NdisConfig, adapter: usize) -> Option<&'a AtmAddr> {
        match self.adapter.get(adapter) {
            Some(changed @ Some(_)) => changed.as_ref(),
            _ => state_config.adapters.get(adapter).map(|a| &a.local_address),
        }
    }
}

/// The registered address of the adapter behind `af`.
fn registered_ref(state: &State, af: u64) -> Option<&AtmAddr> {
    let binding = state.afs.get(&af)?.binding;
    let adapter = state.bindings.get(&binding)?.adapter;
    state.addresses.of_adapter(&state.config, adapter)
}

/// [`registered_ref`], copied.
fn registered(state: &State, af: u64) -> Option<AtmAddr> {
    registered_ref(state, af).cloned()
}

/// Registers NdisCoOidRequest.
pub fn register(table: &mut ExportTable) {
    export!(table, "ndis.sys", NdisCoOidRequest = ndis_co_oid_request);
}

/// The call manager tells the client of `af` its address: queued right after the AF's open
/// completes (oid-co-address-change: "immediately after the client opens an address family").
pub(super) fn announce(state: &mut State, now: u64, af: u64) {
    state.schedule(now, 0, Work::AddressChange { af });
}

/// The switch address of `adapter` changes to `address`: every open AF on it is told
/// (oid-co-address-change).
pub fn change_address(world: &World, ndis: &Ndis, adapter: usize, address: AtmAddr) {
    let mut state = ndis.state();
    if state.addresses.adapter.len() <= adapter {
        state.addresses.adapter.resize(adapter + 1, None);
    }
    state.addresses.adapter[adapter] = Some(address);
    let afs: Vec<u64> = state
        .afs
        .iter()
        .filter(|(_, af)| af.state == super::af::AfState::Open)
        .filter(|(_, af)| state.bindings.get(&af.binding).is_some_and(|b| b.adapter == adapter))
        .map(|(id, _)| *id)
        .collect();
    for af in afs {
        announce(&mut state, world.now(), af);
    }
    drop(state);
    world.machine().notify();
}

/// atm-call-params.md §3 ("CallingParty: the client's own registered ATM address") and
/// oid-co-address-change (a client learns it by querying OID_CO_GET_ADDRESSES after each change):
/// the calling party of a SETUP or ADD PARTY on `af` must be the address the call manager
/// registered for the AF's adapter — or, while a change is announced and no query asked after it
/// has been answered, the address the AF last learned (the client cannot know the new one yet;
/// an answer to a query asked before the change may be stale, and a careful client asks again).
pub(super) fn check_calling_party(world: &World, state: &State, export: &str, af: u64, calling: Leaf<'_>) {
    let Some(current) = registered_ref(state, af) else { return };
    if calling.is(current) {
        return;
    }
    let told = state.addresses.afs.get(&af);
    if told.is_some_and(|t| t.unanswered && t.known.as_ref().is_some_and(|k| calling.is(k))) {
        return;
    }
    let calling = calling.to_addr();
    let known = match told {
        None => "the call manager has not yet told this AF its address (OID_CO_ADDRESS_CHANGE)".to_string(),
        Some(t) if t.unanswered => "the AF has not yet queried OID_CO_GET_ADDRESSES after the change".into(),
        Some(_) => "OID_CO_GET_ADDRESSES answered it".into(),
    };
    let calling = if calling.is_empty() {
        "(empty: no digits, the all-zero number)".into()
    } else {
        calling.to_string()
    };
    violation(
        world,
        rules::CALLING_PARTY_NOT_REGISTERED,
        export,
        format!(
            "CallingParty {calling} on Af#{af} is not the adapter's registered address {current}; {known}"
        ),
    );
}

/// oid-co-address-change: "Each notified client must send an OID_CO_GET_ADDRESSES query": the
/// open AFs told of a change that never queried (for [`super::check_obligations`]).
pub(super) fn unqueried(state: &State) -> impl Iterator<Item = u64> + '_ {
    state.addresses.afs.iter().filter_map(|(af, told)| {
        let open = state.afs.get(af).is_some_and(|a| a.state == super::af::AfState::Open);
        (open && told.unanswered && !told.queried && !told.reported).then_some(*af)
    })
}

/// Marks every change [`unqueried`] lists as reported.
pub(super) fn reported(state: &mut State) {
    let afs: Vec<u64> = unqueried(state).collect();
    for af in afs {
        if let Some(told) = state.addresses.afs.get_mut(&af) {
            told.reported = true;
        }
    }
}

/// Work::AddressChange: ProtocolCoOidRequest(OID_CO_ADDRESS_CHANGE) on an open AF, with a
/// request of the call manager's own (a set with no information buffer).
pub(super) fn deliver_address_change(world: &Arc<World>, ndis: &Ndis, af: u64, processor: usize, irql: Irql) {
    let Some(client) = client(ndis) else { return };
    let context = {
        let mut state = ndis.state();
        let Some(entry) = state.afs.get_mut(&af).filter(|a| a.state == super::af::AfState::Open) else {
            return;
        };
        entry.indications += 1;
        let context = entry.context;
        let told = state.addresses.afs.entry(af).or_default();
        told.unanswered = true;
        told.queried = false;
        told.reported = false;
        told.changes += 1;
        context
    };
    let delivered = deliver_change(world, ndis, af, context, processor, irql, client.ClOidRequestHandler);
    if let Some(entry) = ndis.state().afs.get_mut(&af) {
        entry.indications -= 1;
    }
    let Some(status) = delivered else { return };
    if status == NDIS_STATUS_PENDING {
        // nc-ndis-protocol_co_oid_request: PENDING is owed NdisCoOidRequestComplete, which the
        // simulator does not implement (no client needs to pend this notification).
        violation(
            world,
            rules::EXACTLY_ONCE_COMPLETION,
            "ProtocolCoOidRequest",
            "returned PENDING for OID_CO_ADDRESS_CHANGE: NdisCoOidRequestComplete is NOT IMPLEMENTED by the \
             simulator, so the request can never be completed",
        );
    }
}

/// Calls the driver's ProtocolCoOidRequest with the call manager's OID_CO_ADDRESS_CHANGE on
/// `af` (its context `context`); the status it returned, or `None` without a handler.
fn deliver_change(
    world: &Arc<World>,
    ndis: &Ndis,
    af: u64,
    context: usize,
    processor: usize,
    irql: Irql,
    handler: CO_OID_REQUEST_HANDLER,
) -> Option<NDIS_STATUS> {
    let handler = handler?;
    // SAFETY: an all-zero NDIS_OID_REQUEST is a valid value (integers and null pointers).
    let mut request: NDIS_OID_REQUEST = unsafe { std::mem::zeroed() };
    request.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_OID_REQUEST,
        Revision: NDIS_OID_REQUEST_REVISION_1,
        Size: NDIS_SIZEOF_OID_REQUEST_REVISION_1,
    };
    request.RequestType = NdisRequestSetInformation;
    request.DATA.SET_INFORMATION = NDIS_OID_REQUEST_SET {
        Oid: OID_CO_ADDRESS_CHANGE,
        InformationBuffer: std::ptr::null_mut(),
        InformationBufferLength: 0,
        BytesRead: 0,
        BytesNeeded: 0,
    };
    let status = call_driver(
        world,
        ndis,
        processor,
        irql,
        Logged::Lazy(const { &driver_call("ProtocolCoOidRequest") }, &[context as u64, af], |a, f| {
            write!(f, "({:#x}, NULL, NULL, OID_CO_ADDRESS_CHANGE on Af#{})", a.word(0), a.word(1))
        }),
        || {
            // SAFETY: the driver's ProtocolCoOidRequest at <= DISPATCH with a request that lives
            // until it returns.
            unsafe {
                handler(context as NDIS_HANDLE, std::ptr::null_mut(), std::ptr::null_mut(), &mut request)
            }
        },
    );
    world.log_lazy(processor, const { &driver_call("ProtocolCoOidRequest") }, &[status as u64], |a, f| {
        write!(f, "returned {}", StatusName(a.word(0) as i32))
    });
    Some(status)
}

/// Why the driver's NDIS_OID_REQUEST at `request` is not one NdisCoOidRequest accepts, if it is
/// not: nonpaged pool for the request and its information buffer (nf-ndis-ndiscooidrequest,
/// Remarks), and the header of ns-ndis-_ndis_oid_request.
fn invalid_request(state: &State, request: usize) -> Option<String> {
    let revision_1 = usize::from(NDIS_SIZEOF_OID_REQUEST_REVISION_1);
    match state.pool.live_block(request) {
        Some((start, length)) if start + length - request >= revision_1 => {}
        Some(_) => {
            return Some(format!(
                "the NDIS_OID_REQUEST runs past the end of its pool block ({revision_1} bytes)"
            ))
        }
        None if state.pool.is_freed(request) => {
            return Some("the NDIS_OID_REQUEST lies in freed pool".into())
        }
        None => {
            return Some("the NDIS_OID_REQUEST is not in a live nonpaged pool block of the driver".into())
        }
    }
    // SAFETY: inside a live pool block of the driver, checked above.
    let header = unsafe { (request as *const NDIS_OBJECT_HEADER).read_unaligned() };
    if header.Type != NDIS_OBJECT_TYPE_OID_REQUEST
        || header.Revision != NDIS_OID_REQUEST_REVISION_1
        || header.Size < NDIS_SIZEOF_OID_REQUEST_REVISION_1
    {
        return Some(format!(
            "Header {{ Type {:#x}, Revision {}, Size {} }} is not NDIS_OBJECT_TYPE_OID_REQUEST, revision 1, \
             NDIS_SIZEOF_OID_REQUEST_REVISION_1 ({revision_1})",
            header.Type, header.Revision, header.Size
        ));
    }
    None
}

/// Why the information buffer `[buffer, buffer + length)` is not the driver's nonpaged pool.
fn invalid_buffer(state: &State, buffer: usize, length: u32) -> Option<String> {
    if length == 0 {
        return None;
    }
    match state.pool.live_block(buffer) {
        Some((start, size)) if start + size - buffer >= length as usize => None,
        Some(_) => Some(format!("InformationBufferLength {length} runs past the end of its pool block")),
        None if buffer == 0 => {
            Some(format!("InformationBuffer is NULL with InformationBufferLength {length}"))
        }
        None => Some("InformationBuffer is not in a live nonpaged pool block of the driver".into()),
    }
}

/// `NdisCoOidRequest`: <= DISPATCH; from a client to its call manager with the AF handle, to the
/// miniport with a NULL one.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscooidrequest>
unsafe extern "win64" fn ndis_co_oid_request(
    binding_handle: NDIS_HANDLE,
    af_handle: NDIS_HANDLE,
    vc_handle: NDIS_HANDLE,
    party_handle: NDIS_HANDLE,
    request: *mut NDIS_OID_REQUEST,
) -> NDIS_STATUS {
    const DDI: Ddi = Ddi::ndis(
        "NdisCoOidRequest",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
        rules::IRQL_CONNECTION_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    const CALL: Call = DDI.call();
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            let state = ndis.state();
            let [b0, b1, b2] = shown(&state, binding_handle as usize);
            let [a0, a1, a2] = shown(&state, af_handle as usize);
            let [r0, r1, r2] = shown(&state, request as usize);
            let words = [b0, b1, b2, a0, a1, a2, vc_handle as u64, party_handle as u64, r0, r1, r2];
            log_lazy(world, processor, &CALL, &words, |a, f| {
                f.write_str("(")?;
                fmt_shown(a, 0, f)?;
                f.write_str(", ")?;
                fmt_shown(a, 3, f)?;
                write!(f, ", {:#x}, {:#x}, ", a.word(6), a.word(7))?;
                fmt_shown(a, 8, f)?;
                f.write_str(")")
            });
        })
    };
    let binding = decode(Kind::Binding, binding_handle as usize);
    let open = {
        let state = ndis.state();
        binding
            .and_then(|id| state.bindings.get(&id))
            .is_some_and(|b| b.open == super::binding::OpenState::Open)
    };
    if !open {
        violation(world, rules::BINDING_HANDLE_INVALID, EXPORT, "binding handle is not open");
        return NDIS_STATUS_FAILURE;
    }
    if af_handle.is_null() {
        world.log_call(
            processor,
            "sim",
            "Miniport",
            "NOT IMPLEMENTED: the simulated ATM miniport answers no OID (NdisCoOidRequest with a NULL AF \
             handle): NDIS_STATUS_NOT_SUPPORTED"
                .into(),
        );
        return NDIS_STATUS_NOT_SUPPORTED;
    }
    let af = decode(Kind::Af, af_handle as usize);
    let af_open = {
        let state = ndis.state();
        af.and_then(|id| state.afs.get(&id))
            .is_some_and(|a| a.state == super::af::AfState::Open && Some(a.binding) == binding)
    };
    let Some(af) = af.filter(|_| af_open) else {
        violation(world, rules::AF_HANDLE_INVALID, EXPORT, "AF handle is not an open AF of this binding");
        return NDIS_STATUS_FAILURE;
    };
    if !vc_handle.is_null() {
        let state = ndis.state();
        let vc = decode(Kind::Vc, vc_handle as usize).and_then(|id| state.vcs.get(&id));
        if !vc.is_some_and(|v| !v.deleted && v.af == af) {
            drop(state);
            violation(world, rules::VC_HANDLE_INVALID, EXPORT, "VC handle is no live VC of this AF");
            return NDIS_STATUS_FAILURE;
        }
    }
    if !party_handle.is_null() && vc_handle.is_null() {
        violation(world, rules::OID_REQUEST_INVALID, EXPORT, "a party handle without its VC handle");
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    if request.is_null() {
        violation(world, rules::NULL_ARGUMENT, EXPORT, "NULL OidRequest");
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    let address = request as usize;
    if let Some(why) = invalid_request(&ndis.state(), address) {
        violation(world, rules::OID_REQUEST_INVALID, EXPORT, why);
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    // SAFETY: a live pool block of the driver holding a whole revision-1 request (checked above).
    let (request_type, query) = unsafe { ((*request).RequestType, (*request).DATA.QUERY_INFORMATION) };
    if query.Oid != OID_CO_GET_ADDRESSES || request_type != NdisRequestQueryInformation {
        world.log_call(
            processor,
            "sim",
            "CallManager",
            format!(
                "NOT IMPLEMENTED: OID {:#x} (request type {request_type}): the simulated call manager answers \
                 only the OID_CO_GET_ADDRESSES query: NDIS_STATUS_NOT_SUPPORTED",
                query.Oid
            ),
        );
        return NDIS_STATUS_NOT_SUPPORTED;
    }
    let epoch = ndis.state().addresses.afs.get_mut(&af).map_or(0, |told| {
        told.queried = true;
        told.changes
    });
    let buffer = query.InformationBuffer as usize;
    let length = query.InformationBufferLength;
    if let Some(why) = invalid_buffer(&ndis.state(), buffer, length) {
        violation(world, rules::OID_REQUEST_INVALID, EXPORT, why);
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    let (outcome, fail) = outcome_and_failure(world, ndis, 0, Some(EXPORT));
    if fail {
        world.log_lazy(processor, &CALL, &[], super::condis::render_injected);
        return NDIS_STATUS_RESOURCES;
    }
    let result = if outcome == Outcome::Synchronous {
        let pended =
            Pended { af, request: address, request_block: None, buffer, buffer_block: None, length, epoch };
        answer(world, &mut ndis.state(), &pended, When::Return)
    } else {
        let id = {
            let mut state = ndis.state();
            let request_block = state.pool.block_of(address).map(|b| b.1);
            let buffer_block = state.pool.block_of(buffer).map(|b| b.1);
            let addresses = &mut state.addresses;
            addresses.next += 1;
            let id = addresses.next;
            addresses.pended.insert(
                id,
                Pended { af, request: address, request_block, buffer, buffer_block, length, epoch },
            );
            id
        };
        pend(world, ndis, processor, outcome, Work::CoOidRequestComplete { af, request: id })
    };
    log_lazy(world, processor, &CALL, &[result as u64], super::condis::render_result);
    result
}

/// Answers OID_CO_GET_ADDRESSES into the driver's request `p` (if it still owns the memory):
/// the CO_ADDRESS_LIST with the adapter's registered address, or NDIS_STATUS_INVALID_LENGTH /
/// NDIS_STATUS_BUFFER_TOO_SHORT with BytesNeeded when the buffer cannot hold it
/// (nf-ndis-ndiscooidrequest), chosen at random. Returns the status; a success answers the AF's
/// last change.
fn answer(world: &World, state: &mut State, p: &Pended, when: When) -> NDIS_STATUS {
    let export = "NdisCoOidRequest";
    let data = p.request + offset_of!(NDIS_OID_REQUEST, DATA);
    let written_at = data + offset_of!(NDIS_OID_REQUEST_QUERY, BytesWritten);
    let needed_at = data + offset_of!(NDIS_OID_REQUEST_QUERY, BytesNeeded);
    let Some(address) = registered(state, p.af) else { return NDIS_STATUS_FAILURE };
    if (p.length as usize) < ANSWER_LEN {
        // The page allows either status; a client must take both.
        let status =
            if state.rng.chance(5_000) { NDIS_STATUS_INVALID_LENGTH } else { NDIS_STATUS_BUFFER_TOO_SHORT };
        let ok = out_param::write(world, &state.pool, export, "BytesWritten", written_at, 0u32, when)
            && out_param::write(
                world,
                &state.pool,
                export,
                "BytesNeeded",
                needed_at,
                ANSWER_LEN as u32,
                when,
            );
        return if ok { status } else { NDIS_STATUS_FAILURE };
    }
    let mut list = [0u8; ANSWER_LEN];
    let put = |list: &mut [u8; ANSWER_LEN], at: usize, value: u32| {
        list[at..at + 4].copy_from_slice(&value.to_le_bytes())
    };
    put(&mut list, offset_of!(CO_ADDRESS_LIST, NumberOfAddressesAvailable), 1);
    put(&mut list, offset_of!(CO_ADDRESS_LIST, NumberOfAddresses), 1);
    let entry = offset_of!(CO_ADDRESS_LIST, AddressList);
    put(&mut list, entry + offset_of!(CO_ADDRESS, AddressSize), size_of::<ATM_ADDRESS>() as u32);
    let raw = address.to_raw();
    let at = entry + offset_of!(CO_ADDRESS, Address);
    put(&mut list, at + offset_of!(ATM_ADDRESS, AddressType), raw.AddressType);
    put(&mut list, at + offset_of!(ATM_ADDRESS, NumberOfDigits), raw.NumberOfDigits);
    let digits = at + offset_of!(ATM_ADDRESS, Address);
    list[digits..digits + 20].copy_from_slice(&raw.Address);
    let ok = out_param::write(world, &state.pool, export, "InformationBuffer", p.buffer, list, when)
        && out_param::write(world, &state.pool, export, "BytesWritten", written_at, ANSWER_LEN as u32, when)
        && out_param::write(world, &state.pool, export, "BytesNeeded", needed_at, 0u32, when);
    if !ok {
        return NDIS_STATUS_FAILURE;
    }
    if let Some(told) = state.addresses.afs.get_mut(&p.af).filter(|t| t.changes == p.epoch) {
        told.unanswered = false;
        told.known = Some(address);
    }
    NDIS_STATUS_SUCCESS
}

/// Work::CoOidRequestComplete: a pended OID_CO_GET_ADDRESSES completes
/// (ProtocolCoOidRequestComplete). The driver's request and buffer must still be the pool blocks
/// they were (not freed, not freed and reallocated): the answer is written into them first.
pub(super) fn deliver_complete(world: &Arc<World>, ndis: &Ndis, request: u64, processor: usize, irql: Irql) {
    let Some(client) = client(ndis) else { return };
    let (p, context, status, gone) = {
        let mut state = ndis.state();
        let Some(p) = state.addresses.pended.remove(&request) else { return };
        let context = state.afs.get(&p.af).map_or(0, |a| a.context);
        let same = |address: usize, block: Option<u64>| state.pool.block_of(address).map(|b| b.1) == block;
        let owned = same(p.request, p.request_block) && (p.length == 0 || same(p.buffer, p.buffer_block));
        if owned {
            let status = answer(world, &mut state, &p, When::Completion);
            (p, context, status, None)
        } else if state.pool.is_freed(p.request) || state.pool.is_freed(p.buffer) {
            (p, context, NDIS_STATUS_FAILURE, Some("was freed"))
        } else {
            (p, context, NDIS_STATUS_FAILURE, Some("was freed and its memory reused"))
        }
    };
    if let Some(why) = gone {
        violation(
            world,
            rules::OUT_PARAMETER_OWNERSHIP,
            "NdisCoOidRequest",
            format!(
                "the NDIS_OID_REQUEST at {:#x} or its InformationBuffer {why} before ProtocolCoOidRequestComplete \
                 (nc-ndis-protocol_co_oid_request_complete hands the request back)",
                p.request
            ),
        );
    }
    let Some(complete) = client.ClOidRequestCompleteHandler else { return };
    call_driver(
        world,
        ndis,
        processor,
        irql,
        Logged::Lazy(
            const { &driver_call("ProtocolCoOidRequestComplete") },
            &[context as u64, p.af, status as u64],
            |a, f| {
                write!(
                    f,
                    "({:#x}, NULL, NULL, OID_CO_GET_ADDRESSES on Af#{}, {})",
                    a.word(0),
                    a.word(1),
                    StatusName(a.word(2) as i32)
                )
            },
        ),
        || {
            // SAFETY: the driver's ProtocolCoOidRequestComplete at <= DISPATCH, with the request
            // it passed to NdisCoOidRequest.
            unsafe {
                complete(
                    context as NDIS_HANDLE,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    p.request as *mut NDIS_OID_REQUEST,
                    status,
                )
            }
        },
    );
}
