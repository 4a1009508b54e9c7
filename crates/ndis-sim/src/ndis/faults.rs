//! Fault injection beyond fixed rates: Driver Verifier's warm-up delay and its *systematic*
//! low-resources simulation (fail each distinct call site once, then let it succeed), each
//! request's documented failure statuses, and failures a scenario arms for the next requests of
//! one export.
//!
//! Read: verifier-rules.md §5 ("Low Resources Simulation", "Systematic low resources
//! simulation") and §7.9 items 73–74; low-resources-simulation.md,
//! systematic-low-resource-simulation.md; for the statuses, the pages cited in
//! [`documented_failures`].
//!
//! Flow: every export whose failure the driver must handle (`NdisAllocateMemoryWithTagPriority`,
//! `NdisOpenAdapterEx`, `NdisClOpenAddressFamilyEx`, `NdisCoCreateVc`, `NdisClMakeCall`,
//! `NdisClAddParty`, `NdisClDropParty`, `NdisClCloseCall`, `NdisCoDeleteVc`,
//! `NdisClCloseAddressFamily`) asks [`inject`] whether to fail (the requests through
//! [`super::condis`], which first takes a failure [`Armed`] by a scenario, and then picks the
//! status among [`documented_failures`]). [`inject`] applies the policy's random rate
//! (as before) once virtual time has passed [`FaultPolicy::warmup_ticks`]; if the policy carries a
//! [`Systematic`] registry it also identifies the call [`Site`] — the export, the offset in the
//! image of the driver's return address (as the export's thunk recorded it, checked to follow a
//! call through that export's IAT slot), and the driver callbacks the calling processor's thread
//! is inside (crate::machine) — and fails
//! it the first time that site is seen. The registry outlives a simulation, so a campaign runs the
//! same scenario again and again with one registry until a run meets no new site; with
//! [`Systematic::one_per_run`] each run fails at most one new site, so every fault is exercised
//! alone with everything before it succeeding. Off unless a policy asks for it; nothing here
//! weakens a check.
//!
//! [`FaultPolicy::warmup_ticks`]: super::FaultPolicy::warmup_ticks

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use ndis_sys::*;

use super::State;
use crate::kernel::World;

/// The failure statuses of a request, as its Learn page lists them; the first is the one a
/// scenario's `fail_next` gets. Every failable request of the CoNDIS client surface is here.
pub fn documented_failures(export: &str) -> &'static [i32] {
    match export {
        // nc-ndis-protocol_cl_open_af_complete_ex, nc-ndis-protocol_open_adapter_complete_ex,
        // nf-ndis-ndiscocreatevc, nc-ndis-protocol_cl_make_call_complete,
        // nc-ndis-protocol_cl_add_party_complete: RESOURCES, the one every page lists.
        "NdisOpenAdapterEx"
        | "NdisClOpenAddressFamilyEx"
        | "NdisCoCreateVc"
        | "NdisClMakeCall"
        | "NdisClAddParty" => &[NDIS_STATUS_RESOURCES],
        // nc-ndis-protocol_cl_drop_party_complete: FAILURE, "the given party was the last
        // remaining on the client's multipoint VC" — the only failure the page lists.
        "NdisClDropParty" => &[NDIS_STATUS_FAILURE],
        // nc-ndis-protocol_cl_close_call_complete: "NDIS_STATUS_XXX: the call manager failed the
        // request to close the call for some CM-determined reason" — FAILURE, and RESOURCES (a
        // call manager out of memory for its RELEASE).
        "NdisClCloseCall" => &[NDIS_STATUS_FAILURE, NDIS_STATUS_RESOURCES],
        // nf-ndis-ndiscodeletevc: NOT_ACCEPTED ("the VC is still active"), CLOSING ("deactivation
        // on the given VC is still pending").
        "NdisCoDeleteVc" => &[NDIS_STATUS_NOT_ACCEPTED, NDIS_STATUS_CLOSING],
        // nc-ndis-protocol_cl_close_af_complete: FAILURE.
        "NdisClCloseAddressFamily" => &[NDIS_STATUS_FAILURE],
        _ => &[],
    }
}

/// Failures a scenario armed (its `fail_next` step): the next `count` requests of `export` fail
/// with the export's first documented status, pended or not as `pended` says (`None`: as the
/// policy draws).
#[derive(Debug, Default)]
pub struct Armed(Vec<ArmedFailure>);

#[derive(Debug)]
struct ArmedFailure {
    export: String,
    count: u32,
    pended: Option<bool>,
}

impl Armed {
    /// Arms the next `count` requests of `export`.
    pub fn arm(&mut self, export: &str, count: u32, pended: Option<bool>) {
        self.0.push(ArmedFailure { export: export.to_owned(), count, pended });
    }

    /// Takes one armed failure of `export`, if any: whether it pends.
    pub fn take(&mut self, export: &str) -> Option<Option<bool>> {
        let index = self.0.iter().position(|a| a.export == export && a.count > 0)?;
        let armed = &mut self.0[index];
        armed.count -= 1;
        let pended = armed.pended;
        if armed.count == 0 {
            self.0.remove(index);
        }
        Some(pended)
    }

    /// Failures armed and not yet taken, by export.
    pub fn left(&self) -> Vec<(String, u32)> {
        self.0.iter().map(|a| (a.export.clone(), a.count)).collect()
    }
}

/// One injectable call site: which export, from where in the image, in which driver callback.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Site {
    /// The export called (`NdisAllocateMemoryWithTagPriority`).
    pub export: String,
    /// `partyline.sys+0x1a2b`: the driver's return address, or `?` if none was found.
    pub caller: String,
    /// The driver callbacks running, outermost first (`ProtocolClMakeCallComplete`), or `-`.
    pub context: String,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} from {} in {}", self.export, self.caller, self.context)
    }
}

#[derive(Debug, Default)]
struct Registry {
    seen: BTreeSet<Site>,
    injected: Vec<Site>,
    per_run: Option<usize>,
    this_run: Vec<Site>,
    excluded: Vec<String>,
}

/// The systematic-mode registry: sites seen so far and faults injected. Cloning shares it; two
/// policies are equal if they share the same registry.
#[derive(Clone, Default)]
pub struct Systematic(Arc<Mutex<Registry>>);

impl Systematic {
    /// Fails every new site the first time it is seen (Driver Verifier's behaviour).
    pub fn new() -> Systematic {
        Systematic::default()
    }

    /// Fails at most one new site per run (between [`begin_run`](Self::begin_run) calls): each
    /// fault is then exercised alone.
    pub fn one_per_run() -> Systematic {
        let systematic = Systematic::default();
        systematic.registry().per_run = Some(1);
        systematic
    }

    /// Never fails calls of `export` (Driver Verifier's stack exclusion, by export).
    pub fn exclude(&self, export: &str) {
        self.registry().excluded.push(export.to_owned());
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a run: the per-run budget is restored.
    pub fn begin_run(&self) {
        self.registry().this_run.clear();
    }

    /// Sites failed since [`begin_run`](Self::begin_run).
    pub fn injected_this_run(&self) -> Vec<Site> {
        self.registry().this_run.clone()
    }

    /// Every site failed so far, in order.
    pub fn injected(&self) -> Vec<Site> {
        self.registry().injected.clone()
    }

    /// Every distinct site seen so far.
    pub fn seen(&self) -> Vec<Site> {
        self.registry().seen.iter().cloned().collect()
    }

    /// The seen set, one site per line (`export\tcaller\tcontext`), to persist across processes.
    pub fn save(&self) -> String {
        self.registry().seen.iter().map(|s| format!("{}\t{}\t{}\n", s.export, s.caller, s.context)).collect()
    }

    /// Marks every site in `saved` (from [`save`](Self::save)) as seen.
    pub fn load(&self, saved: &str) {
        let mut registry = self.registry();
        for line in saved.lines() {
            let mut fields = line.splitn(3, '\t');
            if let (Some(export), Some(caller), Some(context)) = (fields.next(), fields.next(), fields.next())
            {
                registry.seen.insert(Site {
                    export: export.into(),
                    caller: caller.into(),
                    context: context.into(),
                });
            }
        }
    }

    /// Whether to fail this call at `site`: true the first time it is seen, within the budget.
    fn first_sight(&self, site: Site) -> bool {
        let mut registry = self.registry();
        if registry.excluded.contains(&site.export) || registry.seen.contains(&site) {
            return false;
        }
        if registry.per_run.is_some_and(|budget| registry.this_run.len() >= budget) {
            // Over budget: not marked seen, so a later run fails it alone.
            return false;
        }
        registry.seen.insert(site.clone());
        registry.injected.push(site.clone());
        registry.this_run.push(site);
        true
    }
}

impl PartialEq for Systematic {
    fn eq(&self, other: &Systematic) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Systematic {}

impl fmt::Debug for Systematic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = self.registry();
        write!(f, "Systematic {{ seen: {}, injected: {} }}", registry.seen.len(), registry.injected.len())
    }
}

impl super::Ndis {
    /// Arms a failure: the next `count` requests of `export` fail with the first status its page
    /// lists ([`documented_failures`]); `pended`: at completion (`true`), at once (`false`), or as
    /// the policy draws. A scenario's `fail_next` step.
    pub fn arm_failure(&self, export: &str, count: u32, pended: Option<bool>) {
        self.state().armed.arm(export, count, pended);
    }

    /// Armed failures not yet taken, by export.
    pub fn armed_failures(&self) -> Vec<(String, u32)> {
        self.state().armed.left()
    }
}

/// Whether the current call of `export` fails: the random rate `per_10000` once past warm-up (if
/// `eligible`, e.g. the tag passes the filter, and, for a request (no `tag`), if the export
/// passes the policy's `request_failure_exports`), else the systematic registry's first sight. With
/// no warm-up and no registry this consumes the generator exactly as a plain `chance` would, so
/// existing seeds replay unchanged.
pub(crate) fn inject(
    world: &World,
    state: &mut State,
    export: &'static str,
    tag: Option<u32>,
    eligible: bool,
    per_10000: u32,
) -> bool {
    let warm = world.now() >= state.config.faults.warmup_ticks;
    let filter = &state.config.faults.request_failure_exports;
    let listed = tag.is_some() || filter.is_empty() || filter.iter().any(|e| e == export);
    if !(eligible && warm && listed) {
        return false;
    }
    if state.rng.chance(per_10000) {
        return true;
    }
    let Some(systematic) = state.config.faults.systematic.clone() else { return false };
    let callbacks = crate::machine::current_callbacks();
    let context = if callbacks.is_empty() { "-".to_owned() } else { callbacks.join(">") };
    let caller = driver_return_address(export)
        .and_then(|address| {
            crate::loader::image_containing(address)
                .map(|(base, name)| format!("{name}+{:#x}", address - base))
        })
        .unwrap_or_else(|| "?".to_owned());
    // An allocation's purpose is its pool tag: the same call site can allocate for several.
    let called = match tag {
        Some(tag) => format!("{export}('{}')", String::from_utf8_lossy(&tag.to_le_bytes())),
        None => export.to_owned(),
    };
    systematic.first_sight(Site { export: called, caller, context })
}

/// Reads up to `out.len()` bytes at `address` without faulting: fewer if the range is not mapped.
fn read_memory(address: usize, out: &mut [u8]) -> usize {
    let local = libc::iovec { iov_base: out.as_mut_ptr().cast(), iov_len: out.len() };
    let remote = libc::iovec { iov_base: address as *mut libc::c_void, iov_len: out.len() };
    // SAFETY: process_vm_readv on our own process writes at most `out.len()` bytes into `out` and
    // reports an unreadable source range as an error or a short count instead of faulting.
    let read = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    usize::try_from(read).unwrap_or(0)
}

/// Whether the bytes before `address` end a call of the import `export` itself:
/// `call [rip+disp32]` (FF 15, how a `raw-dylib` import is called) whose operand is that
/// import's IAT slot. A stale return address of an earlier call, left on the host stack, fails
/// this test unless it called the very same import.
fn follows_call_of(address: usize, export: &str) -> bool {
    let mut before = [0u8; 6];
    if address < 6 || read_memory(address - 6, &mut before) != 6 || before[..2] != [0xFF, 0x15] {
        return false;
    }
    let displacement = i32::from_le_bytes([before[2], before[3], before[4], before[5]]);
    let slot = address.wrapping_add_signed(displacement as isize);
    crate::loader::import_slot(slot).is_some_and(|name| name == export)
}

/// The return address of the driver's call into `export`, running on this thread: the one the
/// export's thunk recorded (crate::thunk), if it lies in a loaded image just after a call through
/// `export`'s own IAT slot (anything else — a test calling the export directly — is no site).
fn driver_return_address(export: &str) -> Option<usize> {
    let caller = crate::thunk::current_caller()?;
    (crate::loader::image_containing(caller).is_some() && follows_call_of(caller, export)).then_some(caller)
}

#[cfg(test)]
mod tests {
    use super::documented_failures;
    use crate::scenario::portable::FAILABLE_REQUESTS;

    /// The scenario format's list of failable requests and the statuses here name the same
    /// requests: every one has its documented statuses, and no other has any.
    #[test]
    fn every_failable_request_has_its_documented_statuses() {
        for name in FAILABLE_REQUESTS {
            assert!(!documented_failures(name).is_empty(), "{name} has no documented failure status");
        }
        for name in ["NdisFreeMemory", "NdisClNotifyCloseAddressFamilyComplete", "IoCreateDevice"] {
            assert!(documented_failures(name).is_empty(), "{name}");
        }
    }
}
