//! Binding to ATM CoNDIS miniports: ProtocolBindAdapterEx, ProtocolUnbindAdapterEx and their
//! completions, PnP events, and the connectionless handlers a protocol must supply.
//!
//! Pages: nc-ndis-protocol_bind_adapter_ex, nf-ndis-ndisopenadapterex (only inside Bind; the
//! binding handle and selected medium are written later when the open pends, so they live in
//! per-binding storage), nc-ndis-protocol_unbind_adapter_ex (an unbind cannot fail; everything
//! CoNDIS is released before NdisCloseAdapterEx; the binding context lives until the close
//! completes), nf-ndis-ndiscloseadapterex, nc-ndis-protocol_net_pnp_event (NDIS 6 drivers must
//! not return NOT_SUPPORTED), network/binding-states-of-a-protocol-driver,
//! network/pausing-a-binding, network/restarting-a-binding, ns-ndis-_net_pnp_event.
//!
//! Bind and unbind never pend: when NdisOpenAdapterEx or NdisCloseAdapterEx pends, the handler
//! waits at PASSIVE for its completion (as the NDISPROT sample does). Returning PENDING instead
//! would race: the completion can run on another processor before the handler has returned
//! PENDING, and NdisCompleteBind/UnbindAdapterEx must not be called before that.

use crate::global::{context, drive, id, with_engine, with_memory};
use crate::pool::{self, tag};
use core::mem::size_of;
use core::ptr::{self, NonNull};
use ndis_sys::*;
use partyline_core::{Handle, Id, PnpEvent, Status};

/// What NDIS writes to (and what an unbind waits on) for one binding, in nonpaged pool until the
/// adapter is closed. The engine keeps its address as the binding's cookie.
#[repr(C)]
struct BindingIo {
    /// NdisOpenAdapterEx's NdisBindingHandle out-parameter.
    binding_handle: NDIS_HANDLE,
    /// NdisOpenAdapterEx's SelectedMediumIndex out-parameter.
    selected_medium: u32,
    /// NdisClOpenAddressFamilyEx's NdisAfHandle out-parameter.
    af_handle: NDIS_HANDLE,
    /// Set when every address family of an unbinding binding is closed, or when the last set-up
    /// of a pausing binding completes.
    quiet: NDIS_EVENT,
    /// Set by ProtocolOpenAdapterCompleteEx; the status it brought.
    opened: NDIS_EVENT,
    open_status: NDIS_STATUS,
    /// Set by ProtocolCloseAdapterCompleteEx.
    closed: NDIS_EVENT,
    /// The OID_CO_GET_ADDRESSES block its address family queries with when pool is short
    /// ([`crate::addresses::Reserve`]).
    oid_reserve: crate::addresses::Reserve,
}

/// partyline binds only to ATM (the INF binds it below `ndisatm` adapters).
static MEDIA: [NDIS_MEDIUM; 1] = [NdisMediumAtm];

fn io(cookie: usize) -> *mut BindingIo {
    cookie as *mut BindingIo
}

fn free_io(io: *mut BindingIo) {
    if let Some(block) = NonNull::new(io.cast::<u8>()) {
        // SAFETY: allocated in `bind_adapter`; the engine no longer knows the binding and NDIS
        // has finished with the out-parameters inside it.
        unsafe { pool::free(block) }
    }
}

/// ProtocolBindAdapterEx (PASSIVE_LEVEL).
pub unsafe extern "win64" fn bind_adapter(
    _driver_context: NDIS_HANDLE,
    bind_context: NDIS_HANDLE,
    parameters: *mut NDIS_BIND_PARAMETERS,
) -> NDIS_STATUS {
    // SAFETY: NDIS passes valid bind parameters for the duration of the call.
    let Some(parameters) = (unsafe { parameters.as_ref() }) else { return NDIS_STATUS_INVALID_PARAMETER };
    if parameters.MediaType != NdisMediumAtm {
        return NDIS_STATUS_UNSUPPORTED_MEDIA;
    }
    let Some(block) = pool::allocate(size_of::<BindingIo>(), tag::BINDING) else {
        return NDIS_STATUS_RESOURCES;
    };
    let io = block.as_ptr().cast::<BindingIo>();
    // SAFETY: fresh, suitably aligned pool memory of the right size.
    unsafe {
        io.write(BindingIo {
            binding_handle: ptr::null_mut(),
            selected_medium: 0,
            af_handle: ptr::null_mut(),
            quiet: core::mem::zeroed(),
            opened: core::mem::zeroed(),
            open_status: NDIS_STATUS_PENDING,
            closed: core::mem::zeroed(),
            oid_reserve: crate::addresses::Reserve::EMPTY,
        });
        NdisInitializeEvent(&raw mut (*io).quiet);
        NdisInitializeEvent(&raw mut (*io).opened);
        NdisInitializeEvent(&raw mut (*io).closed);
    }
    let binding = match with_memory(|e| e.bind(io as usize)) {
        Ok(binding) => binding,
        Err(_) => {
            free_io(io);
            return NDIS_STATUS_RESOURCES;
        }
    };
    let mut open = NDIS_OPEN_PARAMETERS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_OPEN_PARAMETERS,
            Revision: NDIS_OPEN_PARAMETERS_REVISION_1,
            Size: NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1,
        },
        AdapterName: parameters.AdapterName,
        MediumArray: MEDIA.as_ptr().cast_mut(),
        MediumArraySize: MEDIA.len() as u32,
        // SAFETY: only a field address is taken; it lives in `io` until the adapter is closed.
        SelectedMediumIndex: unsafe { &raw mut (*io).selected_medium },
        FrameTypeArray: ptr::null_mut(),
        FrameTypeArraySize: 0,
    };
    // SAFETY: inside ProtocolBindAdapterEx at PASSIVE (the only place NdisOpenAdapterEx is
    // valid); the open parameters live for the call; the out-pointer lives in `io`.
    let status = unsafe {
        NdisOpenAdapterEx(
            crate::global::protocol_handle(),
            context(binding),
            &mut open,
            bind_context,
            &raw mut (*io).binding_handle,
        )
    };
    let status = if status == NDIS_STATUS_PENDING {
        // SAFETY: PASSIVE (ProtocolBindAdapterEx), no lock held; ProtocolOpenAdapterCompleteEx
        // sets the event after storing the status.
        unsafe {
            NdisWaitEvent(&raw mut (*io).opened, 0);
            (*io).open_status
        }
    } else {
        status
    };
    // SAFETY: the open is complete: NDIS has written the handle (or not).
    let handle = unsafe { (*io).binding_handle };
    let _ = with_engine(|e| e.on_open_adapter_complete(binding, Status(status), Handle(handle as usize)));
    if status != NDIS_STATUS_SUCCESS {
        free_io(io);
    }
    status
}

/// ProtocolOpenAdapterCompleteEx (PASSIVE_LEVEL): a pended open finished; wake the bind.
pub unsafe extern "win64" fn open_adapter_complete(binding_context: NDIS_HANDLE, status: NDIS_STATUS) {
    let Some(binding) = id(binding_context) else { return };
    let Some(cookie) = with_engine(|e| e.binding_cookie(binding)) else { return };
    let io = io(cookie);
    // SAFETY: `io` lives until the bind that waits on it has read the status.
    unsafe {
        (*io).open_status = status;
        NdisSetEvent(&raw mut (*io).opened);
    }
}

/// ProtocolUnbindAdapterEx (PASSIVE_LEVEL): close every address family (and so every call),
/// wait for that at PASSIVE, then close the adapter. Never fails.
pub unsafe extern "win64" fn unbind_adapter(
    _unbind_context: NDIS_HANDLE,
    binding_context: NDIS_HANDLE,
) -> NDIS_STATUS {
    let Some(binding) = id(binding_context) else { return NDIS_STATUS_SUCCESS };
    let Some(cookie) = with_engine(|e| e.binding_cookie(binding)) else { return NDIS_STATUS_SUCCESS };
    let io = io(cookie);
    if with_engine(|e| e.unbind(binding)).is_err() {
        return NDIS_STATUS_SUCCESS;
    }
    drive();
    loop {
        // Reset before checking, so a wake-up between the check and the wait is not lost.
        // SAFETY: the event was initialised at bind; PASSIVE_LEVEL here.
        unsafe { NdisResetEvent(&raw mut (*io).quiet) };
        if with_engine(|e| e.binding_quiet(binding)) {
            break;
        }
        // SAFETY: PASSIVE_LEVEL (ProtocolUnbindAdapterEx), no lock held; the completions that
        // make the binding quiet run on other threads or inside NDIS.
        unsafe { NdisWaitEvent(&raw mut (*io).quiet, 0) };
    }
    let Ok(handle) = with_engine(|e| e.begin_close_adapter(binding)) else { return NDIS_STATUS_SUCCESS };
    // SAFETY: inside ProtocolUnbindAdapterEx with every CoNDIS object released; the binding
    // handle is dead from this call on.
    let status = unsafe { NdisCloseAdapterEx(handle.0 as NDIS_HANDLE) };
    if status == NDIS_STATUS_PENDING {
        // SAFETY: PASSIVE, no lock held; ProtocolCloseAdapterCompleteEx sets the event.
        unsafe { NdisWaitEvent(&raw mut (*io).closed, 0) };
    }
    let _ = with_engine(|e| e.on_close_adapter_complete(binding));
    free_io(io);
    NDIS_STATUS_SUCCESS
}

/// ProtocolCloseAdapterCompleteEx (PASSIVE_LEVEL): a pended close finished; wake the unbind.
pub unsafe extern "win64" fn close_adapter_complete(binding_context: NDIS_HANDLE) {
    let Some(binding) = id(binding_context) else { return };
    let Some(cookie) = with_engine(|e| e.binding_cookie(binding)) else { return };
    // SAFETY: `io` lives until the unbind waiting on this event has woken and freed it.
    unsafe { NdisSetEvent(&raw mut (*io(cookie)).closed) };
}

/// The engine says an unbinding binding has no address family left.
pub fn wake_unbind(cookie: usize) {
    // SAFETY: the cookie is a live BindingIo (the binding is unbinding, so not yet freed);
    // NdisSetEvent is callable at <= DISPATCH.
    unsafe { NdisSetEvent(&raw mut (*io(cookie)).quiet) };
}

/// The reserve query block of the binding whose I/O block is `cookie`.
pub fn oid_reserve(cookie: usize) -> Option<NonNull<u8>> {
    // SAFETY: a live BindingIo (the engine knows its cookie); only a field address is taken.
    NonNull::new(unsafe { (&raw mut (*io(cookie)).oid_reserve).cast::<u8>() })
}

/// The per-binding NdisClOpenAddressFamilyEx out-parameter.
pub fn af_handle_slot(binding: Id) -> Option<*mut NDIS_HANDLE> {
    let cookie = with_engine(|e| e.binding_cookie(binding))?;
    // SAFETY: a live BindingIo; only a field address is taken.
    Some(unsafe { &raw mut (*io(cookie)).af_handle })
}

/// ProtocolNetPnPEvent (PASSIVE_LEVEL): what a protocol does in each binding state.
///
/// - NetEventPause: the binding is Pausing; new connection set-ups are held, and the pause
///   completes once the set-ups already made (NdisClMakeCall, NdisClAddParty) have completed,
///   waited for here at PASSIVE (network/pausing-a-binding: "must wait for outstanding send
///   requests to complete"; partyline reads a CoNDIS client's set-ups as its sends, see
///   `Engine::on_pause`). A pause cannot fail (network/binding-states-of-a-protocol-driver).
/// - NetEventRestart: Running again; the held set-ups start (network/restarting-a-binding).
/// - NetEventSetPower: to D1-D3 no new set-up starts and nothing is waited for; D0 releases
///   them (ns-ndis-_net_pnp_event, the NDIS 6.30 guidelines).
/// - NetEventQueryRemoveDevice: partyline can always release the adapter (its unbind closes
///   every call), so it succeeds (nc-ndis-protocol_net_pnp_event: fail it only when the device
///   cannot be released); every other event succeeds as the page asks, and NDIS 6 drivers never
///   answer NOT_SUPPORTED. Pause, restart and set-power name one binding; with a NULL context
///   (which no page documents for them) there is nothing to do.
#[allow(non_upper_case_globals)] // the NetEvent codes keep their NDIS names in the match
pub unsafe extern "win64" fn net_pnp_event(
    binding_context: NDIS_HANDLE,
    notification: *mut NET_PNP_EVENT_NOTIFICATION,
) -> NDIS_STATUS {
    // SAFETY: NDIS passes a valid notification for the duration of the call.
    let Some(notification) = (unsafe { notification.as_ref() }) else { return NDIS_STATUS_SUCCESS };
    let event = &notification.NetPnPEvent;
    let Some(binding) = id(binding_context) else { return NDIS_STATUS_SUCCESS };
    let change = match event.NetEvent {
        NetEventPause => PnpEvent::Pause,
        NetEventRestart => PnpEvent::Restart,
        NetEventSetPower => {
            if event.Buffer.is_null() || (event.BufferLength as usize) < size_of::<NDIS_DEVICE_POWER_STATE>()
            {
                return NDIS_STATUS_SUCCESS;
            }
            // SAFETY: NDIS's buffer of BufferLength bytes holds an NDIS_DEVICE_POWER_STATE.
            let state = unsafe { event.Buffer.cast::<NDIS_DEVICE_POWER_STATE>().read_unaligned() };
            PnpEvent::SetPower { working: state == NdisDeviceStateD0 }
        }
        _ => return NDIS_STATUS_SUCCESS,
    };
    // A restart or power-up starts the held set-ups: drive.
    if let Ok(Some(cookie)) = crate::global::drive_after(|e| e.on_pnp_event(binding, change)) {
        wait_until_paused(binding, cookie);
    }
    NDIS_STATUS_SUCCESS
}

/// A pause found set-ups in flight: wait at PASSIVE until the last one has completed.
fn wait_until_paused(binding: Id, cookie: usize) {
    let io = io(cookie);
    loop {
        // Reset before checking, so a wake-up between the check and the wait is not lost. The
        // unbind's event is free: NDIS never unbinds a binding while pausing it.
        // SAFETY: the event was initialised at bind; PASSIVE_LEVEL here.
        unsafe { NdisResetEvent(&raw mut (*io).quiet) };
        if with_engine(|e| e.pause_settled(binding)) {
            break;
        }
        // SAFETY: PASSIVE_LEVEL (ProtocolNetPnPEvent), no lock held; the completions of the
        // set-ups run on other threads and wake this one (Action::BindingQuiet).
        unsafe { NdisWaitEvent(&raw mut (*io).quiet, 0) };
    }
}

/// ProtocolUninstall (PASSIVE_LEVEL): nothing to clean up beyond DriverUnload.
pub unsafe extern "win64" fn uninstall() {}

/// ProtocolOidRequestComplete: partyline issues no OID requests.
pub unsafe extern "win64" fn oid_request_complete(_: NDIS_HANDLE, _: *mut NDIS_OID_REQUEST, _: NDIS_STATUS) {}

/// ProtocolStatusEx: status indications need no action.
pub unsafe extern "win64" fn status_ex(_: NDIS_HANDLE, _: *mut NDIS_STATUS_INDICATION) {}

/// ProtocolReceiveNetBufferLists (<= DISPATCH_LEVEL): a CoNDIS client receives on its VCs
/// (ProtocolCoReceiveNetBufferLists), but NDIS may still indicate here; whatever arrives is
/// given straight back ([`give_back`]). nc-ndis-protocol_receive_net_buffer_lists.
pub unsafe extern "win64" fn receive_net_buffer_lists(
    binding_context: NDIS_HANDLE,
    lists: *mut NET_BUFFER_LIST,
    _port: NDIS_PORT_NUMBER,
    count: u32,
    receive_flags: u32,
) {
    give_back(binding_context, lists, count, receive_flags);
}

/// The receive path of both handlers: partyline keeps nothing it is indicated. Without
/// NDIS_RECEIVE_FLAGS_RESOURCES the driver owns the lists until it calls NdisReturnNetBufferLists
/// with the binding's handle, so it does that at once, as a whole chain; with the flag they are
/// only lent for the call and NDIS takes them back when the handler returns, so nothing is done
/// (network/receiving-data-in-protocol-drivers, network/receiving-net-buffer-structures-in-condis-drivers,
/// nf-ndis-ndisreturnnetbufferlists). The handle is looked up under the lock and used after
/// releasing it. A binding context that names no open binding leaves nothing to return them
/// with: the engine counts and traces it (the lists are lost to the miniport; never a crash).
/// Out of line: both handlers tail-call one copy (144 bytes less image).
#[inline(never)]
pub fn give_back(binding_context: NDIS_HANDLE, lists: *mut NET_BUFFER_LIST, count: u32, receive_flags: u32) {
    if lists.is_null() {
        return;
    }
    let owned = receive_flags & NDIS_RECEIVE_FLAGS_RESOURCES == 0;
    let binding = id(binding_context);
    let Ok(Some(handle)) = with_engine(|e| e.on_receive(binding, count, owned)) else { return };
    // The handler's own flag says whether it runs at DISPATCH_LEVEL; pass that on instead of
    // asking for the IRQL (network/dispatch-irql-tracking).
    let return_flags = if receive_flags & NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL != 0 {
        NDIS_RETURN_FLAGS_DISPATCH_LEVEL
    } else {
        0
    };
    // SAFETY: <= DISPATCH_LEVEL (a receive handler), no lock held; the lists were indicated on
    // this binding without NDIS_RECEIVE_FLAGS_RESOURCES, so they are the driver's to return, and
    // the handle is the binding's open NdisBindingHandle.
    unsafe { NdisReturnNetBufferLists(handle.0 as NDIS_HANDLE, lists, return_flags) };
}

/// ProtocolSendNetBufferListsComplete: partyline sends nothing connectionless.
pub unsafe extern "win64" fn send_net_buffer_lists_complete(_: NDIS_HANDLE, _: *mut NET_BUFFER_LIST, _: u32) {
}

/// ProtocolDirectOidRequestComplete: partyline issues no direct OID requests.
pub unsafe extern "win64" fn direct_oid_request_complete(
    _: NDIS_HANDLE,
    _: *mut NDIS_OID_REQUEST,
    _: NDIS_STATUS,
) {
}
