//! The catalogue of every rule the simulated NDIS checks: one [`Rule`] per documented rule, with
//! the Microsoft Learn page that states it. [`ALL`] lists them and joins the catalogue of every
//! family ([`crate::rules`]), whose `rule_catalogue` test asserts that each has a test named
//! `proves_<rule name in lower case>` that makes it fire.
//!
//! Names: Driver Verifier / Static Driver Verifier rule names where one exists (verifier-rules.md
//! §2), otherwise `Ddi_<what>` after the DDI page whose prose states the rule (§4, §7).

use crate::verifier::Rule;

const fn devtest(name: &'static str, page: &'static str) -> Rule {
    Rule::new(name, page)
}

// ---- IRQL (verifier-rules.md §7.1) ----------------------------------------------------------------
pub const IRQL_PROTOCOL_DRIVER_FUNCTION: Rule = devtest(
    "Irql_Protocol_Driver_Function",
    "https://learn.microsoft.com/windows-hardware/drivers/devtest/ndis-irql-protocol-driver-function",
);
pub const IRQL_CONNECTION_FUNCTION: Rule = devtest(
    "Irql_Connection_Function",
    "https://learn.microsoft.com/windows-hardware/drivers/devtest/ndis-irql-connection-function",
);
pub const IRQL_MISCELLANEOUS_FUNCTION: Rule = devtest(
    "Irql_Miscellaneous_Function",
    "https://learn.microsoft.com/windows-hardware/drivers/devtest/ndis-irql-miscellaneous-function",
);
pub const IRQL_SYNCH_FUNCTION: Rule = devtest(
    "Irql_Synch_Function",
    "https://learn.microsoft.com/windows-hardware/drivers/devtest/ndis-irql-synch-function",
);
/// A callback returned at another IRQL than NDIS called it at (§7.1 item 4).
pub const IRQL_RETURN: Rule =
    devtest("IrqlReturn", "https://learn.microsoft.com/windows-hardware/drivers/devtest/wdm-irqlreturn");

// ---- Locking (§7.2) ---------------------------------------------------------------------------------
pub const SPIN_LOCK: Rule =
    devtest("SpinLock", "https://learn.microsoft.com/windows-hardware/drivers/devtest/ndis-spinlock");
pub const SPIN_LOCK_DPR: Rule =
    devtest("SpinLockDpr", "https://learn.microsoft.com/windows-hardware/drivers/devtest/ndis-spinlockdpr");
pub const SPIN_LOCK_RELEASE: Rule = devtest(
    "SpinLockRelease",
    "https://learn.microsoft.com/windows-hardware/drivers/devtest/ndis-spinlockrelease",
);
/// Acquire and release must be paired by kind (NdisAcquire/NdisRelease, NdisDprAcquire/NdisDprRelease).
pub const SPIN_LOCK_KIND: Rule = devtest(
    "Ddi_SpinLockKindMismatch",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisacquirespinlock",
);
/// A lock used before NdisAllocateSpinLock, after NdisFreeSpinLock, or freed while held.
pub const SPIN_LOCK_LIFETIME: Rule = devtest(
    "Ddi_SpinLockLifetime",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisallocatespinlock",
);
/// A spin lock no processor can ever release is spun on (the machine finds nothing left that
/// could release it): a deadlock on real hardware. Defined with the machine that detects it.
pub use crate::machine::rules::DEADLOCK;

// ---- Memory (§7.3) ----------------------------------------------------------------------------------
pub const NDIS_ALLOCATE_MEMORY_WITH_TAG_PRIORITY: Rule = devtest(
    "NdisAllocateMemoryWithTagPriority",
    "https://learn.microsoft.com/windows-hardware/drivers/devtest/ndis-ndisallocatememorywithtagpriority",
);
/// Double free, foreign or interior pointer, or non-zero MemoryFlags for pool memory.
pub const NDIS_FREE_MEMORY: Rule = devtest(
    "Ddi_NdisFreeMemory",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisfreememory",
);
/// Pool still allocated when the driver unloads (Pool Tracking, 0xC4/0x62), grouped by tag.
pub const POOL_LEAK: Rule = devtest(
    "PoolTracking_Leak",
    "https://learn.microsoft.com/windows-hardware/drivers/devtest/pool-tracking",
);

/// Special pool (Driver Verifier option 0x1, [`super::special_pool`]): the driver read or wrote
/// past the end of a pool block, into the guard page after it (bug check 0xD6
/// DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION), or overwrote the slack bytes between the block's
/// end and its page end, found at free (bug check 0xC1 SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION).
pub const SPECIAL_POOL_BEYOND_END: Rule = devtest(
    "SpecialPool_BeyondEndOfAllocation",
    "https://learn.microsoft.com/windows-hardware/drivers/devtest/special-pool",
);
/// Special pool: the driver read or wrote a block after freeing it (bug check 0xCC
/// PAGE_FAULT_IN_FREED_SPECIAL_POOL).
pub const SPECIAL_POOL_FREED: Rule = devtest(
    "SpecialPool_AccessToFreedPool",
    "https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xcc--page-fault-in-freed-special-pool",
);
/// An out-parameter NDIS writes late (at the completion of a pended request) no longer lies in
/// memory the driver owns: not in a live pool block of the driver nor in its image's writable
/// data. The caller-supplied variable must stay valid until NDIS writes it (the out-parameter's
/// description on each request's page, e.g. NdisClMakeCall's NdisPartyHandle).
pub const OUT_PARAMETER_OWNERSHIP: Rule = devtest(
    "Ddi_OutParameter_Ownership",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclmakecall",
);

// ---- Events (§7.2 item 21) -----------------------------------------------------------------------------
/// NdisWaitEvent waiting forever with nothing left that could set the event. Defined with the
/// machine that detects it.
pub use crate::machine::rules::WAIT_DEADLOCK;
/// An event used before NdisInitializeEvent.
pub const EVENT_UNINITIALIZED: Rule = devtest(
    "Ddi_NdisEvent_Uninitialized",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisinitializeevent",
);

// ---- Registration (§7.1 item 10, §4 item 16) ------------------------------------------------------------
pub const REGISTER_CHARACTERISTICS: Rule = devtest(
    "Ddi_NdisRegisterProtocolDriver_Characteristics",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_protocol_driver_characteristics",
);
pub const SET_OPTIONAL_HANDLERS: Rule = devtest(
    "Ddi_NdisSetOptionalHandlers",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndissetoptionalhandlers",
);
pub const DEREGISTER_FROM_CALLBACK: Rule = devtest(
    "Ddi_NdisDeregisterProtocolDriver_FromCallback",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisderegisterprotocoldriver",
);
/// DriverUnload returned with the protocol still registered or objects still alive (§7.47).
pub const UNLOAD_WITH_OBJECTS: Rule = devtest(
    "Ddi_DriverUnload_ObjectsAlive",
    "https://learn.microsoft.com/windows-hardware/drivers/network/initializing-a-protocol-driver",
);

// ---- Binding (§7.1 items 6-8, §7.5, §7.6) ------------------------------------------------------------------
pub const OPEN_ADAPTER_OUTSIDE_BIND: Rule = devtest(
    "Ddi_NdisOpenAdapterEx_OutsideBind",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisopenadapterex",
);
pub const CLOSE_ADAPTER_OUTSIDE_BIND_UNBIND: Rule = devtest(
    "Ddi_NdisCloseAdapterEx_OutsideBindUnbind",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscloseadapterex",
);
pub const UNBIND_ADAPTER_INSIDE_BIND_UNBIND: Rule = devtest(
    "Ddi_NdisUnbindAdapter_InsideBindUnbind",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisunbindadapter",
);
/// Any use of a binding handle after NdisCloseAdapterEx, or a handle NDIS never gave out.
pub const BINDING_HANDLE_INVALID: Rule = devtest(
    "Ddi_BindingHandleAfterClose",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscloseadapterex",
);
/// NdisCloseAdapterEx while an address family is still open on the binding (§7.40, §7.41).
pub const CLOSE_ADAPTER_WITH_RESOURCES: Rule = devtest(
    "Ddi_NdisCloseAdapterEx_ResourcesAlive",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_unbind_adapter_ex",
);
/// ProtocolUnbindAdapterEx failed, or the unbind completed without closing the adapter (§7.38).
pub const UNBIND_FAILED: Rule = devtest(
    "Ddi_ProtocolUnbindAdapterEx",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_unbind_adapter_ex",
);
/// NDIS 6 drivers must not return NDIS_STATUS_NOT_SUPPORTED from ProtocolNetPnPEvent.
pub const NET_PNP_NOT_SUPPORTED: Rule = devtest(
    "Ddi_ProtocolNetPnPEvent_NotSupported",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_net_pnp_event",
);
/// Only NetEventQueryRemoveDevice and NetEventPortActivation may be failed; a protocol "should
/// always succeed" every other event (and "cannot fail a pause operation").
pub const NET_PNP_MUST_SUCCEED: Rule = devtest(
    "Ddi_ProtocolNetPnPEvent_MustSucceed",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_net_pnp_event",
);
/// No new connection set-up (NdisClMakeCall, NdisClAddParty) on a Paused binding or a powered-down
/// adapter ("must not make any send requests" while Paused; NDIS 6.30: "stop generating new I/O
/// requests" on set-power). partyline's reading of sends for a CoNDIS client.
pub const PAUSED_NEW_SETUP: Rule = devtest(
    "Ddi_PausedBinding_NewSetup",
    "https://learn.microsoft.com/windows-hardware/drivers/network/pausing-a-binding",
);
/// A pause completes only once the binding's outstanding requests have ("The pause operation is not
/// complete until NDIS calls the ProtocolSendNetBufferListsComplete function for all of the
/// driver's outstanding send requests"): for a CoNDIS client, its pending MakeCall/AddParty.
pub const PAUSE_WITH_SETUPS_OUTSTANDING: Rule = devtest(
    "Ddi_PauseCompletedWithSetupsOutstanding",
    "https://learn.microsoft.com/windows-hardware/drivers/network/pausing-a-binding",
);
/// NDIS 6.30: on NetEventSetPower / NetEventQueryPower "the driver must not wait for the
/// completion of any pending I/O requests" within ProtocolNetPnPEvent.
pub const POWER_EVENT_WAIT: Rule = devtest(
    "Ddi_ProtocolNetPnPEvent_WaitInPowerEvent",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_net_pnp_event",
);
/// Every PENDING gets exactly one completion: a completion without a pending request, a second
/// completion, or one that never comes (§7.5 items 34-35, §7.8 item 66).
pub const EXACTLY_ONCE_COMPLETION: Rule = devtest(
    "Ddi_ExactlyOnceCompletion",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscompletebindadapterex",
);
/// A completion routine called with NDIS_STATUS_PENDING as the final status (§7.36).
pub const COMPLETION_WITH_PENDING: Rule = devtest(
    "Ddi_CompletionWithPending",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscompletebindadapterex",
);

// ---- Address families (§7.6) -------------------------------------------------------------------------------
/// NdisClCloseAddressFamily while VCs remain on the AF (§7.42).
pub const CLOSE_AF_WITH_VCS: Rule = devtest(
    "Ddi_CloseAfWithVcs",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclcloseaddressfamily",
);
/// An AF handle used after NdisClCloseAddressFamily, before its open completed, or never given (§7.43-44).
pub const AF_HANDLE_INVALID: Rule = devtest(
    "Ddi_AfHandleAfterClose",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclcloseaddressfamily",
);
/// NdisClOpenAddressFamilyEx for an AF the call manager did not register on this binding.
pub const OPEN_AF_UNREGISTERED: Rule = devtest(
    "Ddi_NdisClOpenAddressFamilyEx_Unregistered",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_co_af_register_notify",
);
/// A second NdisClOpenAddressFamilyEx for an address family (family and version) that is already
/// open or opening on the same binding (§7.6 item 45). An AF is one association of client, call
/// manager and adapter ("Address Families"); NDIS may notify the client of a family again, from
/// this or another call manager, and the client must look before it opens
/// (nc-ndis-protocol_co_af_register_notify). Stricter than the verifier's warning.
pub const OPEN_AF_ALREADY_OPEN: Rule = devtest(
    "Ddi_NdisClOpenAddressFamilyEx_AlreadyOpen",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_co_af_register_notify",
);

// ---- VCs (§7.7) -------------------------------------------------------------------------------------------
pub const CREATE_VC_HANDLE_NOT_NULL: Rule = devtest(
    "Ddi_NdisCoCreateVc_HandleNotNull",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscocreatevc",
);
/// NdisClMakeCall on a VC that has (or had, closed by the client) a call (§7.50, §7.56).
pub const MAKE_CALL_VC_BUSY: Rule = devtest(
    "Ddi_NdisClMakeCall_VcBusy",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclmakecall",
);
/// NdisCoDeleteVc while a call is active, pending or closing (§7.51).
pub const DELETE_VC_WITH_CALL: Rule = devtest(
    "Ddi_NdisCoDeleteVc_CallActive",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscodeletevc",
);
/// A VC handle used after NdisCoDeleteVc, or never given out (§7.53).
pub const VC_HANDLE_INVALID: Rule = devtest(
    "Ddi_VcHandleAfterDelete",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscodeletevc",
);

// ---- Calls and parties (§7.8, the NdisClDropParty page) ----------------------------------------------------------
/// NdisClCloseCall on a multipoint VC with more than one party or an add/drop pending (§7.57).
pub const CLOSE_CALL_WITH_PARTIES: Rule = devtest(
    "Ddi_CloseCallWithParties",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclclosecall",
);
/// NdisClCloseCall on a multipoint VC without the (last) party handle of that VC (§7.58).
pub const CLOSE_CALL_PARTY_HANDLE: Rule = devtest(
    "Ddi_CloseCallPartyHandle",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclclosecall",
);
/// NdisClDropParty on the last party: the client must use NdisClCloseCall (§7.59).
pub const DROP_LAST_PARTY: Rule = devtest(
    "Ddi_NdisClDropParty_LastParty",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscldropparty",
);
/// NdisClDropParty's Size is "the size in bytes at Buffer, zero if Buffer is NULL".
pub const DROP_PARTY_BUFFER_SIZE: Rule = devtest(
    "Ddi_NdisClDropParty_BufferSize",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscldropparty",
);
/// A party handle used after NdisClDropParty / close / failed add, or never given out (§7.60).
pub const PARTY_HANDLE_AFTER_DROP: Rule = devtest(
    "Ddi_PartyHandleAfterDrop",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscldropparty",
);
/// NdisClDropParty on a party whose NdisClAddParty has not completed (§7.61).
pub const DROP_BEFORE_ADD_COMPLETE: Rule = devtest(
    "Ddi_NdisClDropParty_BeforeAddComplete",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscldropparty",
);
/// NdisClAddParty on a point-to-point call, or before/after the multipoint call is active (§7.62-63).
pub const ADD_PARTY_NOT_MULTIPOINT_ACTIVE: Rule = devtest(
    "Ddi_NdisClAddParty_CallNotActiveMultipoint",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscladdparty",
);
/// NdisClAddParty / NdisClMakeCall with a required argument NULL (§7.64).
pub const NULL_ARGUMENT: Rule = devtest(
    "Ddi_RequiredArgumentNull",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscladdparty",
);
/// CO_CALL_PARAMETERS freed or modified before the completion of a pended request (§7.30).
pub const CALL_PARAMETERS_MODIFIED: Rule = devtest(
    "Ddi_CallParametersModified",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclmakecall",
);
/// ProtocolClIncomingDropParty / ProtocolClIncomingCloseCall never answered with
/// NdisClDropParty / NdisClCloseCall (§7.66).
pub const INCOMING_UNANSWERED: Rule = devtest(
    "Ddi_IncomingDropOrCloseUnanswered",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_cl_incoming_drop_party",
);
/// A VC the client created and closed after ProtocolClIncomingCloseCall with a CloseStatus other
/// than SUCCESS is never deleted: the network became inoperative and the client must tear the VC
/// down with NdisCoDeleteVc (§7.7 item 55).
pub const INCOMING_CLOSE_VC_NOT_DELETED: Rule = devtest(
    "Ddi_IncomingCloseCall_VcNotDeleted",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_cl_incoming_close_call",
);
/// Call parameters the Q.2931 call manager rejects (atm-call-params.md §12, verifier §7.72).
pub const CALL_PARAMETERS_INVALID: Rule = devtest(
    "Ddi_CallParametersInvalid",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_co_call_parameters",
);
/// NdisClIncomingCallComplete with no incoming call offered (this client registers no SAP).
pub const INCOMING_CALL_COMPLETE_UNEXPECTED: Rule = devtest(
    "Ddi_NdisClIncomingCallComplete_Unexpected",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclincomingcallcomplete",
);

// ---- Receive path (§7.1 item 5, §7.8 item 70; the `receive` module) ----------------------------------------
pub const IRQL_SEND_RCV_FUNCTION: Rule = devtest(
    "Irql_SendRcv_Function",
    "https://learn.microsoft.com/windows-hardware/drivers/devtest/ndis-irql-sendrcv-function",
);
/// NDIS_RETURN_FLAGS_DISPATCH_LEVEL (or another dispatch-level flag) set while the IRQL is not
/// DISPATCH_LEVEL: the flag may be set only when the IRQL is known to be DISPATCH (clearing it at
/// DISPATCH is allowed).
pub const FLAGS_IRQL: Rule = devtest(
    "Flags_Irql",
    "https://learn.microsoft.com/windows-hardware/drivers/network/dispatch-irql-tracking",
);
/// NdisReturnNetBufferLists with a list the driver does not own: never indicated, indicated to
/// another binding, indicated with NDIS_RECEIVE_FLAGS_RESOURCES (only lent for the handler), or
/// already returned; or a NULL list.
pub const RETURN_NOT_OWNED: Rule = devtest(
    "Ddi_NdisReturnNetBufferLists_NotOwned",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisreturnnetbufferlists",
);
/// Lists indicated without NDIS_RECEIVE_FLAGS_RESOURCES still owned by the driver when their
/// binding closes or the driver unloads: never returned with NdisReturnNetBufferLists (the
/// miniport waits for them forever).
pub const RECEIVED_NOT_RETURNED: Rule = devtest(
    "Ddi_ReceivedNetBufferListsNotReturned",
    "https://learn.microsoft.com/windows-hardware/drivers/network/receiving-data-in-protocol-drivers",
);

/// Every rule, for reports and for the test that checks each has a proving test.
pub const ALL: &[Rule] = &[
    IRQL_PROTOCOL_DRIVER_FUNCTION,
    IRQL_CONNECTION_FUNCTION,
    IRQL_MISCELLANEOUS_FUNCTION,
    IRQL_SYNCH_FUNCTION,
    IRQL_RETURN,
    SPIN_LOCK,
    SPIN_LOCK_DPR,
    SPIN_LOCK_RELEASE,
    SPIN_LOCK_KIND,
    SPIN_LOCK_LIFETIME,
    DEADLOCK,
    NDIS_ALLOCATE_MEMORY_WITH_TAG_PRIORITY,
    NDIS_FREE_MEMORY,
    POOL_LEAK,
    SPECIAL_POOL_BEYOND_END,
    SPECIAL_POOL_FREED,
    OUT_PARAMETER_OWNERSHIP,
    WAIT_DEADLOCK,
    EVENT_UNINITIALIZED,
    REGISTER_CHARACTERISTICS,
    SET_OPTIONAL_HANDLERS,
    DEREGISTER_FROM_CALLBACK,
    UNLOAD_WITH_OBJECTS,
    OPEN_ADAPTER_OUTSIDE_BIND,
    CLOSE_ADAPTER_OUTSIDE_BIND_UNBIND,
    UNBIND_ADAPTER_INSIDE_BIND_UNBIND,
    BINDING_HANDLE_INVALID,
    CLOSE_ADAPTER_WITH_RESOURCES,
    UNBIND_FAILED,
    NET_PNP_NOT_SUPPORTED,
    NET_PNP_MUST_SUCCEED,
    PAUSED_NEW_SETUP,
    PAUSE_WITH_SETUPS_OUTSTANDING,
    POWER_EVENT_WAIT,
    EXACTLY_ONCE_COMPLETION,
    COMPLETION_WITH_PENDING,
    CLOSE_AF_WITH_VCS,
    AF_HANDLE_INVALID,
    OPEN_AF_UNREGISTERED,
    OPEN_AF_ALREADY_OPEN,
    CREATE_VC_HANDLE_NOT_NULL,
    MAKE_CALL_VC_BUSY,
    DELETE_VC_WITH_CALL,
    VC_HANDLE_INVALID,
    CLOSE_CALL_WITH_PARTIES,
    CLOSE_CALL_PARTY_HANDLE,
    DROP_LAST_PARTY,
    PARTY_HANDLE_AFTER_DROP,
    DROP_PARTY_BUFFER_SIZE,
    DROP_BEFORE_ADD_COMPLETE,
    ADD_PARTY_NOT_MULTIPOINT_ACTIVE,
    NULL_ARGUMENT,
    CALL_PARAMETERS_MODIFIED,
    INCOMING_UNANSWERED,
    INCOMING_CLOSE_VC_NOT_DELETED,
    CALL_PARAMETERS_INVALID,
    INCOMING_CALL_COMPLETE_UNEXPECTED,
    IRQL_SEND_RCV_FUNCTION,
    FLAGS_IRQL,
    RETURN_NOT_OWNED,
    RECEIVED_NOT_RETURNED,
];
