//! Receive indications and their return: ProtocolReceiveNetBufferLists and
//! ProtocolCoReceiveNetBufferLists called with simulator-made NET_BUFFER_LISTs, the
//! `NdisReturnNetBufferLists` export, and who owns every list indicated.
//!
//! Read: network/receiving-data-in-protocol-drivers, network/receiving-net-buffer-structures-in-condis-drivers,
//! nc-ndis-protocol_receive_net_buffer_lists, nc-ndis-protocol_co_receive_net_buffer_lists,
//! nf-ndis-ndisreturnnetbufferlists, network/dispatch-irql-tracking; verifier-rules.md §7.1 item 5
//! and §7.8 item 70.
//!
//! Flow: [`indicate`] (for tests and tools: [`crate::sim::Simulation::indicate_receive_on_vc`] and
//! [`crate::sim::Simulation::indicate_receive_on_binding`]) makes `count` blocks the size of an x64
//! NET_BUFFER_LIST, links them through `Next` (offset 0), records each in the [`Receives`] ledger
//! as indicated to the binding, and calls the driver's handler at PASSIVE or DISPATCH with
//! NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL set exactly at DISPATCH. Without NDIS_RECEIVE_FLAGS_RESOURCES
//! the driver owns the lists until it gives them back with `NdisReturnNetBufferLists`; with it
//! they are only lent for the call, and NDIS takes them back when the handler returns. The export
//! checks the IRQL, the ReturnFlags DISPATCH bit against the IRQL, the binding handle, and then
//! walks the chain it is given through the ledger's own blocks (a pointer the ledger does not know
//! is never followed): each list must have been indicated to that binding and be the driver's
//! now. Lists the driver still owns when its binding closes ([`check_close_adapter`]) or when it
//! unloads ([`check_unload`]) can never go back to the miniport, which on Windows waits for them
//! forever (a hang at halt).
//!
//! The ledger is a world extension of its own, not part of the NDIS state: receive indications
//! are independent of the CoNDIS tables, which this module only reads.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use ndis_sys::*;

use super::binding::{BindingState, OpenState};
use super::vc::VcState;
use super::{decode, log_export, render, rules, violation, Kind, Ndis};
use crate::ddi::{self, Context, Ddi, IrqlRequirement};
use crate::export;
use crate::exports::ExportTable;
use crate::kernel::{Irql, World, DISPATCH_LEVEL, PASSIVE_LEVEL};

/// Bytes of one simulated NET_BUFFER_LIST: the largest x64 layout in Microsoft's public symbols
/// (0x160 with 26 `NetBufferListInfo` slots, 0x180 with 29). The driver treats it as opaque; only
/// `Next` is used.
pub const NET_BUFFER_LIST_SIZE: usize = 0x180;
/// Offset of `NET_BUFFER_LIST::Next` on x64 (first member of the header union; public symbols).
pub const NET_BUFFER_LIST_NEXT: usize = 0;

/// Lists returned or taken back are kept (poisoned, not reused) this long before their memory is
/// freed, so that a second return of one is recognised as such.
const QUARANTINE: usize = 4096;

/// Registers `NdisReturnNetBufferLists`.
pub fn register(table: &mut ExportTable) {
    export!(table, "ndis.sys", NdisReturnNetBufferLists = ndis_return_net_buffer_lists);
}

/// Where a receive indication goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// ProtocolReceiveNetBufferLists on the binding `Bd#id`.
    Binding(u64),
    /// ProtocolCoReceiveNetBufferLists on the VC `Vc#id` (its call must be active).
    Vc(u64),
}

/// One receive indication: how many lists, whether NDIS_RECEIVE_FLAGS_RESOURCES is set, and the
/// IRQL the handler runs at (PASSIVE or DISPATCH).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Indication {
    pub count: u32,
    pub resources: bool,
    pub irql: Irql,
}

/// Why an indication was not made (the simulation's mistake, not the driver's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiveError {
    /// NDIS never indicates an empty list.
    NoLists,
    /// Receive handlers run at PASSIVE or DISPATCH only.
    Irql(Irql),
    /// No protocol is registered, or it registered no handler of that kind.
    NoHandler(&'static str),
    /// The binding does not exist or is not bound with its adapter open.
    BindingNotOpen(u64),
    /// The adapter has no binding that is bound with its adapter open.
    AdapterNotBound(usize),
    /// The VC does not exist, was deleted, or has no active call.
    VcNotActive(u64),
    /// The run stopped before the indication was delivered.
    Stopped,
}

impl std::fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiveError::NoLists => f.write_str("an indication carries at least one NET_BUFFER_LIST"),
            ReceiveError::Irql(irql) => write!(f, "receive handlers run at PASSIVE or DISPATCH, not {irql}"),
            ReceiveError::NoHandler(name) => write!(f, "the protocol registered no {name}"),
            ReceiveError::BindingNotOpen(id) => write!(f, "Bd#{id} is not bound with its adapter open"),
            ReceiveError::AdapterNotBound(adapter) => write!(f, "adapter {adapter} has no open binding"),
            ReceiveError::VcNotActive(id) => write!(f, "Vc#{id} has no active call"),
            ReceiveError::Stopped => f.write_str("the run stopped before the indication was delivered"),
        }
    }
}

impl std::error::Error for ReceiveError {}

/// Receive totals of one world.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiveCounters {
    /// Calls of ProtocolReceiveNetBufferLists / ProtocolCoReceiveNetBufferLists.
    pub indications: u64,
    /// Lists indicated, owned or lent.
    pub indicated: u64,
    /// Lists indicated with NDIS_RECEIVE_FLAGS_RESOURCES (NDIS takes them back itself).
    pub lent: u64,
    /// Lists the driver gave back with `NdisReturnNetBufferLists`.
    pub returned: u64,
    /// Lists the driver owns now (indicated without RESOURCES, not yet returned).
    pub outstanding: u64,
    /// Lists lost: the driver still owned them when their binding closed.
    pub stranded: u64,
}

/// Who has a list now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// Indicated without RESOURCES: the driver's until it returns it.
    Driver,
    /// Indicated with RESOURCES; the handler is running. Not the driver's to keep or return.
    Lent,
    /// Returned by the driver.
    Returned,
    /// Indicated with RESOURCES; NDIS took it back when the handler returned.
    TakenBack,
    /// The driver still owned it when the binding closed: it can never be returned.
    Stranded,
}

/// The memory of one list, allocated and freed here and only ever reached through raw pointers
/// (the driver holds the address while it owns the list).
struct Block {
    address: usize,
}

fn layout() -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(NET_BUFFER_LIST_SIZE, 16).expect("NET_BUFFER_LIST layout")
}

impl Block {
    fn new() -> Block {
        // SAFETY: the layout has a non-zero size.
        let pointer = unsafe { std::alloc::alloc_zeroed(layout()) };
        if pointer.is_null() {
            std::alloc::handle_alloc_error(layout());
        }
        Block { address: pointer as usize }
    }

    fn next(&self) -> usize {
        // SAFETY: `address` is a live block of NET_BUFFER_LIST_SIZE bytes, 16-aligned, owned by
        // this ledger entry; the driver may have written `Next` (it may relink lists it returns).
        unsafe { ((self.address + NET_BUFFER_LIST_NEXT) as *const usize).read_volatile() }
    }

    fn set_next(&self, next: usize) {
        // SAFETY: as in `next`; written before the driver sees the block.
        unsafe { ((self.address + NET_BUFFER_LIST_NEXT) as *mut usize).write_volatile(next) }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated in `Block::new` with `layout()`, freed once, here.
        unsafe { std::alloc::dealloc(self.address as *mut u8, layout()) };
    }
}

struct Nbl {
    number: u64,
    binding: u64,
    vc: Option<u64>,
    owner: Owner,
    block: Block,
}

impl Nbl {
    fn name(&self) -> String {
        format!("Nbl#{}", self.number)
    }

    fn origin(&self) -> String {
        match self.vc {
            Some(vc) => format!("on Vc#{} of Bd#{}", vc, self.binding),
            None => format!("on Bd#{}", self.binding),
        }
    }
}

#[derive(Default)]
struct Ledger {
    lists: BTreeMap<usize, Nbl>,
    released: VecDeque<usize>,
    numbers: u64,
    counters: ReceiveCounters,
}

impl Ledger {
    fn release(&mut self, address: usize) {
        self.released.push_back(address);
        if self.released.len() > QUARANTINE {
            if let Some(oldest) = self.released.pop_front() {
                self.lists.remove(&oldest);
            }
        }
    }

    fn render(&self, address: usize) -> String {
        match self.lists.get(&address) {
            Some(nbl) => nbl.name(),
            None if address == 0 => "NULL".into(),
            None => format!("{address:#x}"),
        }
    }
}

/// Every list indicated in one world and who has it (a [`World`] extension).
#[derive(Default)]
pub struct Receives {
    ledger: Mutex<Ledger>,
}

impl Receives {
    /// The ledger of `world`, created on first use.
    pub fn of(world: &World) -> Arc<Receives> {
        if let Some(receives) = world.extension::<Receives>() {
            return receives;
        }
        let receives = Arc::new(Receives::default());
        match world.insert_extension(receives.clone()) {
            // Another thread raced us: keep the first.
            Some(previous) => {
                world.insert_extension(previous.clone());
                previous
            }
            None => receives,
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The totals so far.
    pub fn counters(&self) -> ReceiveCounters {
        self.ledger().counters
    }
}

/// The totals of `world` (all zero if nothing was ever indicated).
pub fn counters(world: &World) -> ReceiveCounters {
    world.extension::<Receives>().map(|r| r.counters()).unwrap_or_default()
}

/// Indicates `indication.count` lists to `target` on `processor`: calls
/// ProtocolReceiveNetBufferLists or ProtocolCoReceiveNetBufferLists at `indication.irql`, as a
/// miniport's NdisMIndicateReceiveNetBufferLists / NdisMCoIndicateReceiveNetBufferLists would make
/// NDIS do. Lent lists (RESOURCES) are taken back when the handler returns.
pub fn indicate(
    world: &Arc<World>,
    ndis: &Ndis,
    target: Target,
    indication: Indication,
    processor: usize,
) -> Result<(), ReceiveError> {
    let Indication { count, resources, irql } = indication;
    if count == 0 {
        return Err(ReceiveError::NoLists);
    }
    if irql != PASSIVE_LEVEL && irql != DISPATCH_LEVEL {
        return Err(ReceiveError::Irql(irql));
    }
    // The handler and its contexts, looked up in the NDIS tables (released before the call).
    enum Handler {
        Binding(PROTOCOL_RECEIVE_NET_BUFFER_LISTS),
        Vc(PROTOCOL_CO_RECEIVE_NET_BUFFER_LISTS, usize),
    }
    let (binding, binding_context, handler) = {
        let state = ndis.state();
        let (binding, vc) = match target {
            Target::Binding(binding) => (binding, None),
            Target::Vc(id) => match state.vcs.get(&id) {
                Some(vc) if !vc.deleted && vc.state == VcState::Active => (vc.binding, Some(vc.context)),
                _ => return Err(ReceiveError::VcNotActive(id)),
            },
        };
        let context = match state.bindings.get(&binding) {
            Some(b) if b.state == BindingState::Bound && b.open == OpenState::Open => b.context,
            _ => return Err(ReceiveError::BindingNotOpen(binding)),
        };
        let protocol = state.protocol.as_ref();
        let handler = match vc {
            None => Handler::Binding(
                protocol
                    .and_then(|p| p.characteristics.0.ReceiveNetBufferListsHandler)
                    .ok_or(ReceiveError::NoHandler("ProtocolReceiveNetBufferLists"))?,
            ),
            Some(vc_context) => Handler::Vc(
                protocol
                    .and_then(|p| p.co)
                    .and_then(|co| co.CoReceiveNetBufferListsHandler)
                    .ok_or(ReceiveError::NoHandler("ProtocolCoReceiveNetBufferLists"))?,
                vc_context,
            ),
        };
        (binding, context, handler)
    };
    let vc = match target {
        Target::Vc(id) => Some(id),
        Target::Binding(_) => None,
    };
    // The chain, recorded before the driver sees it.
    let receives = Receives::of(world);
    let (chain, first, names) = {
        let mut ledger = receives.ledger();
        let mut chain = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let block = Block::new();
            ledger.numbers += 1;
            let number = ledger.numbers;
            let address = block.address;
            let owner = if resources { Owner::Lent } else { Owner::Driver };
            ledger.lists.insert(address, Nbl { number, binding, vc, owner, block });
            chain.push(address);
        }
        for pair in chain.windows(2) {
            ledger.lists[&pair[0]].block.set_next(pair[1]);
        }
        let first = chain.first().copied().unwrap_or(0);
        let names = match (chain.first(), chain.last()) {
            (Some(a), Some(b)) if a != b => format!("{}..{}", ledger.render(*a), ledger.render(*b)),
            (Some(a), _) => ledger.render(*a),
            _ => "NULL".into(),
        };
        ledger.counters.indications += 1;
        ledger.counters.indicated += chain.len() as u64;
        if resources {
            ledger.counters.lent += chain.len() as u64;
        } else {
            ledger.counters.outstanding += chain.len() as u64;
        }
        (chain, first, names)
    };
    let number = chain.len() as u32;
    let mut flags = 0;
    if irql == DISPATCH_LEVEL {
        flags |= NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL;
    }
    if resources {
        flags |= NDIS_RECEIVE_FLAGS_RESOURCES;
    }
    let lists = first as *mut NET_BUFFER_LIST;
    let context = binding_context as NDIS_HANDLE;
    let (name, detail, handler): (&'static str, String, Box<dyn FnOnce()>) = match handler {
        Handler::Binding(receive) => (
            "ProtocolReceiveNetBufferLists",
            format!("({binding_context:#x}, {names}, port 0, {number} NBL(s), flags {flags:#x})"),
            Box::new(move || {
                // SAFETY: the driver's ProtocolReceiveNetBufferLists at PASSIVE or DISPATCH with a
                // chain of `number` simulator-owned lists of its binding.
                unsafe { receive(context, lists, 0, number, flags) }
            }),
        ),
        Handler::Vc(receive, vc_context) => (
            "ProtocolCoReceiveNetBufferLists",
            format!("({binding_context:#x}, {vc_context:#x}, {names}, {number} NBL(s), flags {flags:#x})"),
            Box::new(move || {
                // SAFETY: the driver's ProtocolCoReceiveNetBufferLists at PASSIVE or DISPATCH with
                // the VC's context and a chain of `number` simulator-owned lists.
                unsafe { receive(context, vc_context as NDIS_HANDLE, lists, number, flags) }
            }),
        ),
    };
    // The one use of the NDIS internals beyond plain lookups: the callback, with its IRQL,
    // spin-lock and log bookkeeping.
    super::call_driver(world, ndis, processor, irql, super::Logged::Text(name, detail), handler);
    if resources {
        // The handler returned: NDIS (and the miniport) have the lent lists back.
        let mut ledger = receives.ledger();
        for address in chain {
            if let Some(nbl) = ledger.lists.get_mut(&address) {
                if nbl.owner == Owner::Lent {
                    nbl.owner = Owner::TakenBack;
                    ledger.release(address);
                }
            }
        }
    }
    Ok(())
}

/// `NdisReturnNetBufferLists`: <= DISPATCH. Gives back lists indicated without
/// NDIS_RECEIVE_FLAGS_RESOURCES; every one must come from the binding the handle names and be
/// the driver's. NDIS_RETURN_FLAGS_DISPATCH_LEVEL may be set only when the caller knows it runs
/// at DISPATCH_LEVEL (network/dispatch-irql-tracking).
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisreturnnetbufferlists>
extern "win64" fn ndis_return_net_buffer_lists(
    binding_handle: NDIS_HANDLE,
    lists: *mut NET_BUFFER_LIST,
    return_flags: u32,
) {
    const DDI: Ddi = Ddi::ndis(
        "NdisReturnNetBufferLists",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
        rules::IRQL_SEND_RCV_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            let receives = world.extension::<Receives>();
            let handle = render(&ndis.state(), binding_handle as usize);
            let list = receives
                .as_ref()
                .map_or_else(|| format!("{:#x}", lists as usize), |r| r.ledger().render(lists as usize));
            log_export(world, processor, EXPORT, format!("({handle}, {list}, {return_flags:#x})"));
        })
    };
    let receives = world.extension::<Receives>();
    let irql = world.irql(processor);
    if return_flags & NDIS_RETURN_FLAGS_DISPATCH_LEVEL != 0 && irql != DISPATCH_LEVEL {
        violation(
            world,
            rules::FLAGS_IRQL,
            EXPORT,
            format!(
                "NDIS_RETURN_FLAGS_DISPATCH_LEVEL set at {irql}: set it only when the IRQL is known to be \
                 DISPATCH_LEVEL"
            ),
        );
    }
    let binding = decode(Kind::Binding, binding_handle as usize);
    let open = {
        let state = ndis.state();
        binding.and_then(|id| state.bindings.get(&id)).is_some_and(|b| b.open == OpenState::Open)
    };
    let Some(binding) = binding.filter(|_| open) else {
        violation(
            world,
            rules::BINDING_HANDLE_INVALID,
            EXPORT,
            "binding handle is not open (closed, never opened, or not an NDIS binding handle); the lists \
             are not returned",
        );
        return;
    };
    if lists.is_null() {
        violation(world, rules::RETURN_NOT_OWNED, EXPORT, "NetBufferLists is NULL");
        return;
    }
    let Some(receives) = receives else {
        violation(
            world,
            rules::RETURN_NOT_OWNED,
            EXPORT,
            format!("{:#x}: no NET_BUFFER_LIST was ever indicated to this driver", lists as usize),
        );
        return;
    };
    let mut problems = Vec::new();
    {
        let mut ledger = receives.ledger();
        let mut seen = BTreeSet::new();
        let mut address = lists as usize;
        while address != 0 {
            if !seen.insert(address) {
                problems.push(format!("the chain loops back to {}", ledger.render(address)));
                break;
            }
            let Some(nbl) = ledger.lists.get_mut(&address) else {
                problems.push(format!(
                    "{address:#x} is not a NET_BUFFER_LIST NDIS indicated (or one returned long ago); the \
                     rest of the chain is not followed"
                ));
                break;
            };
            let next = nbl.block.next();
            let name = nbl.name();
            match nbl.owner {
                Owner::Driver => {
                    if nbl.binding != binding {
                        problems.push(format!(
                            "{name} was indicated {} but is returned with Bd#{binding}'s handle",
                            nbl.origin()
                        ));
                    }
                    nbl.owner = Owner::Returned;
                    ledger.counters.returned += 1;
                    ledger.counters.outstanding -= 1;
                    ledger.release(address);
                }
                Owner::Lent => problems.push(format!(
                    "{name} was indicated {} with NDIS_RECEIVE_FLAGS_RESOURCES: it is only lent for the \
                     handler and NDIS takes it back; the driver must not return it",
                    nbl.origin()
                )),
                Owner::TakenBack => problems.push(format!(
                    "{name} was indicated {} with NDIS_RECEIVE_FLAGS_RESOURCES and NDIS took it back when \
                     the handler returned: the driver kept a list it did not own",
                    nbl.origin()
                )),
                Owner::Returned => problems.push(format!("{name} ({}) is returned twice", nbl.origin())),
                Owner::Stranded => {
                    problems.push(format!("{name} ({}) is returned after its binding closed", nbl.origin()))
                }
            }
            address = next;
        }
    }
    for problem in problems {
        violation(world, rules::RETURN_NOT_OWNED, EXPORT, problem);
    }
}

/// The lists the driver owns on `binding`, made stranded (they can never be returned), and their
/// names.
fn strand(world: &World, binding: Option<u64>) -> Vec<String> {
    let Some(receives) = world.extension::<Receives>() else { return Vec::new() };
    let mut ledger = receives.ledger();
    let mut names = Vec::new();
    for nbl in ledger.lists.values_mut() {
        if nbl.owner == Owner::Driver && binding.is_none_or(|b| b == nbl.binding) {
            nbl.owner = Owner::Stranded;
            names.push(format!("{} ({})", nbl.name(), nbl.origin()));
        }
    }
    ledger.counters.outstanding -= names.len() as u64;
    ledger.counters.stranded += names.len() as u64;
    names
}

fn summary(names: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// `NdisCloseAdapterEx` on `binding`: every list the driver still owns there can never be
/// returned (the handle dies with this call); on Windows the miniport never gets them back and
/// hangs at halt. Called by the close before the handle dies.
pub(crate) fn check_close_adapter(world: &World, binding: u64) {
    if !crate::verifier::Verifier::of(world).is_enabled() {
        return;
    }
    let names = strand(world, Some(binding));
    if !names.is_empty() {
        violation(
            world,
            rules::RECEIVED_NOT_RETURNED,
            "NdisCloseAdapterEx",
            format!(
                "Bd#{binding} closes while the driver still owns {} NET_BUFFER_LIST(s) indicated without \
                 NDIS_RECEIVE_FLAGS_RESOURCES and never returned: {}",
                names.len(),
                summary(&names)
            ),
        );
    }
}

/// At unload: every list the driver still owns was never returned.
pub fn check_unload(world: &World) {
    if !crate::verifier::Verifier::of(world).is_enabled() {
        return;
    }
    let names = strand(world, None);
    if !names.is_empty() {
        violation(
            world,
            rules::RECEIVED_NOT_RETURNED,
            "partyline.sys!DriverUnload",
            format!(
                "the driver unloads still owning {} NET_BUFFER_LIST(s) indicated without \
                 NDIS_RECEIVE_FLAGS_RESOURCES and never returned: {}",
                names.len(),
                summary(&names)
            ),
        );
    }
}
