//! Scenarios, the part that is the same on every host: the TOML format, its validation, and the
//! runner that plays a scenario's steps against a [`Target`] (the simulator, or on Windows the
//! real driver's control device).
//!
//! This file depends only on `std`, `serde`, `toml`, `partyline-core` and `partyline-ioctl`, so
//! `partyline` on Windows compiles it too (ndis-sim itself needs an x86-64 Linux host).
//!
//! Flow: [`Scenario::parse`] deserializes the TOML (unknown keys refused, addresses checked where
//! they are written, so errors carry the line), then resolves names: every leaf is a remote
//! party's name or an address, every step has exactly one action. [`run_steps`] then plays the
//! steps in order. Requests go through the control device (buffers from `partyline-ioctl`'s host
//! encoders) and name calls and parties by the scenario's names; the runner maps the names to the
//! ids the driver returned (a make-call's leaves are found by address with QUERY_CALL). Network
//! events and time are the target's business; a target that cannot produce one reports it
//! skipped.

use std::collections::BTreeMap;
use std::fmt;

use partyline_core::model::{AddressError, AtmAddress, ServiceCategory, TrafficProfile};
use partyline_ioctl as ioctl;
use partyline_ioctl::{CallSummary, ListEntry};
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;

// The driver's own state, checked (compiled from this directory on every host, like this file).
#[path = "audit.rs"]
pub mod audit;

// ---------------------------------------------------------------------------------------------
// The format, as written.

/// An ATM address as written in a scenario: `+15551234` (E.164) or 40 hex digits with optional
/// dots (NSAP). Checked while parsing, so a bad one is reported with its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address(pub AtmAddress);

fn address_error(error: AddressError) -> &'static str {
    match error {
        AddressError::NsapLength => "an NSAP address is 20 octets (40 hex digits, dots allowed)",
        AddressError::NsapAfi => {
            "the first octet (AFI) of an NSAP address must be 39, 47, 45, 49 or a group AFI"
        }
        AddressError::E164Length => "an E.164 number has 1 to 15 digits",
        AddressError::E164Digit => "an E.164 number has only the digits 0-9 after the +",
        AddressError::Syntax => "write +digits (E.164) or 40 hex digits with optional dots (NSAP)",
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AtmAddress::parse(&text)
            .map(Address)
            .map_err(|e| D::Error::custom(format!("`{text}` is not an ATM address: {}", address_error(e))))
    }
}

/// What a remote party does when called (ndis-sim's `Behaviour`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Behaviour {
    /// Accepts at once (or pending, as the fault policy picks).
    #[default]
    Accept,
    /// Rejects with this UNI cause (17 user busy, 21 call rejected, ...).
    Reject(u8),
    /// Accepts after this many ticks (100 ns).
    AnswerAfter(u64),
    /// Accepts, then hangs up after this many ticks (remote DROP PARTY, cause 16).
    LeaveAfter(u64),
    /// Accepts, then its link vanishes after this many ticks (cause 27).
    VanishAfter(u64),
    /// Rejects with this UNI cause after this many ticks: `reject_after = [CAUSE, TICKS]` (a late
    /// ADD PARTY REJECT, which a drop of the party may cross).
    RejectAfter(u8, u64),
    /// Accepts with changed parameters (the call manager sets CALL_PARAMETERS_CHANGED).
    AcceptChanged,
}

/// A remote party on an adapter's network.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remote {
    /// The name steps use for it.
    pub name: String,
    pub address: Address,
    #[serde(default)]
    pub behaviour: Behaviour,
}

/// One simulated ATM adapter.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adapter {
    /// The adapter name NDIS passes at bind time; `\DEVICE\{ATM-<n>}` by default.
    pub name: Option<String>,
    pub local_address: Address,
    /// What an address not listed in `remote` does.
    #[serde(default)]
    pub default_behaviour: Behaviour,
    #[serde(default, rename = "remote")]
    pub remotes: Vec<Remote>,
}

/// Which fault-policy preset the `[faults]` fields start from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Sync, pending and early (cross-processor) completions equally likely.
    #[default]
    Mixed,
    /// Everything completes synchronously, nothing injected.
    Synchronous,
    /// Every request pends and completes later.
    AlwaysPending,
}

/// `[faults]`: ndis-sim's `FaultPolicy`; any field left out keeps the preset's value.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    #[serde(default)]
    pub preset: Preset,
    pub sync_weight: Option<u32>,
    pub pending_weight: Option<u32>,
    pub cross_processor_weight: Option<u32>,
    pub request_failure_per_10000: Option<u32>,
    pub allocation_failure_per_10000: Option<u32>,
    /// Pool tags to fail (`"PlPt"`), all when empty.
    #[serde(default)]
    pub allocation_failure_tags: Vec<String>,
    /// Requests to fail at `request_failure_per_10000` (and systematically), all when empty: names
    /// from [`FAILABLE_REQUESTS`].
    #[serde(default)]
    pub request_failure_exports: Vec<String>,
    pub dispatch_delivery_per_10000: Option<u32>,
    pub max_delay_ticks: Option<u64>,
    /// Driver Verifier's special pool (`FaultPolicy::special_pool`).
    pub special_pool: Option<bool>,
}

/// The requests a scenario may make fail (`request_failure_exports`, `fail_next`): every request of
/// the driver that can fail or complete with a failure status. ndis-sim fails each with the
/// statuses its Learn page lists (`ndis_sim::ndis::faults::documented_failures`, which a test
/// keeps in step with this list).
pub const FAILABLE_REQUESTS: &[&str] = &[
    "NdisOpenAdapterEx",
    "NdisClOpenAddressFamilyEx",
    "NdisCoCreateVc",
    "NdisClMakeCall",
    "NdisClAddParty",
    "NdisClDropParty",
    "NdisClCloseCall",
    "NdisCoDeleteVc",
    "NdisClCloseAddressFamily",
];

/// Checks a request name written in a scenario against [`FAILABLE_REQUESTS`]; the error names
/// the key and every request that can fail.
fn failable(name: &str, key: &str) -> Result<String, String> {
    if FAILABLE_REQUESTS.contains(&name) {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{key}: `{name}` is not a request that can fail; give one of {}",
            FAILABLE_REQUESTS.join(", ")
        ))
    }
}

/// `[call_manager]`: ndis-sim's `CallManagerConfig`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CallManager {
    pub max_leaves: Option<u32>,
    pub max_pending_adds: Option<u32>,
    pub rfc1755_strict: Option<bool>,
    pub report_invalid_parameters: Option<bool>,
}

/// A traffic profile as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default = "ubr")]
    service: Service,
    #[serde(default = "default_pcr")]
    peak_cell_rate: u32,
    #[serde(default = "default_sdu")]
    max_sdu: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Service {
    Ubr,
    Cbr,
}

fn ubr() -> Service {
    Service::Ubr
}
fn default_pcr() -> u32 {
    TrafficProfile::DEFAULT.peak_cell_rate
}
fn default_sdu() -> u32 {
    TrafficProfile::DEFAULT.max_sdu
}
fn one() -> u64 {
    1
}

/// An adapter by index (0-based) or by name.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum AdapterRef {
    Index(usize),
    Name(String),
}

/// How long to let the world run after a request.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum RawSettle {
    Ticks(u64),
    Word(String),
}

/// What QUERY_CALL / LIST_CALLS should show.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The call to query (by name). Without it only `calls` may be given.
    pub call: Option<String>,
    /// Connected parties.
    pub parties: Option<u32>,
    /// AddParty (or the make-call's first leaf) in flight.
    pub adding: Option<u32>,
    /// Leaves waiting to be added.
    pub queued: Option<u32>,
    /// Drops in flight.
    pub dropping: Option<u32>,
    /// The call's state (`active`, `make-call-pending`, `close-call-pending`, ...).
    pub state: Option<String>,
    /// `true`: the driver no longer knows the call (QUERY_CALL answers STATUS_NOT_FOUND).
    pub gone: Option<bool>,
    /// Calls the driver lists (LIST_CALLS), over every address family.
    pub calls: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    // Requests through the control device.
    make_call: Option<String>,
    add: Option<String>,
    drop: Option<String>,
    close: Option<String>,
    query: Option<String>,
    // Network and NDIS events (simulator only).
    remote_drop: Option<String>,
    remote_release: Option<String>,
    close_af: Option<AdapterRef>,
    /// The switch address of `adapter` (0 by default) changes to this ATM address.
    address_change: Option<String>,
    /// The call manager registers its address families on this adapter again.
    af_register: Option<AdapterRef>,
    unbind: Option<AdapterRef>,
    /// `uninstall = true`: NDIS uninstalls the protocol (unbinds every adapter, then
    /// ProtocolUninstall).
    uninstall: Option<bool>,
    /// NDIS sends a PnP step's events to `adapter`'s binding (`pause`, `restart`, `power-down`, ...).
    pnp: Option<String>,
    advance: Option<u64>,
    run_until_idle: Option<bool>,
    /// The miniport indicates this many NET_BUFFER_LISTs (on `call`'s VC, else on `adapter`'s binding).
    receive: Option<u32>,
    /// The next `count` (default 1) requests of this export fail (with the first status its page
    /// lists), pended or not as `pended` says (default: as the seed draws).
    fail_next: Option<String>,
    // Checks.
    expect: Option<Expectation>,
    // Qualifiers.
    leaves: Option<Vec<String>>,
    call: Option<String>,
    adapter: Option<AdapterRef>,
    profile: Option<RawProfile>,
    settle: Option<RawSettle>,
    status: Option<String>,
    /// `receive`: NDIS_RECEIVE_FLAGS_RESOURCES set (the lists are only lent).
    resources: Option<bool>,
    /// `receive`: indicated at DISPATCH_LEVEL (else PASSIVE_LEVEL).
    dispatch: Option<bool>,
    /// `fail_next`: how many requests fail.
    count: Option<u32>,
    /// `fail_next`: the failure is the request's completion (`true`) or its return (`false`).
    pended: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    #[serde(default = "one")]
    seed: u64,
    processors: Option<usize>,
    #[serde(default)]
    faults: Faults,
    #[serde(default)]
    call_manager: CallManager,
    #[serde(default, rename = "adapter")]
    adapters: Vec<Adapter>,
    #[serde(default, rename = "step")]
    steps: Vec<toml::Spanned<RawStep>>,
    /// Refusals the driver may count by the end, per kind: `{ invalid_state = 2, closing = [0, 1] }`.
    #[serde(default)]
    expect_refusals: BTreeMap<String, RawRefusals>,
}

/// How many refusals of a kind a scenario expects: exactly `n`, or `[least, most]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum RawRefusals {
    Exactly(u64),
    Between([u64; 2]),
}

// ---------------------------------------------------------------------------------------------
// The validated scenario.

/// A leaf: the name steps use and its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub name: String,
    pub address: AtmAddress,
}

/// After a request, let the world run: until idle (default), not at all, or for some ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    Idle,
    None,
    Ticks(u64),
}

/// The status a request is expected to end with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedStatus {
    /// Exactly this NTSTATUS.
    Is(i32),
    /// Whatever the driver says (fault scenarios where a request may fail by seed).
    Any,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    MakeCall {
        call: String,
        adapter: usize,
        profile: TrafficProfile,
        leaves: Vec<Leaf>,
    },
    AddParty {
        call: String,
        leaf: Leaf,
    },
    DropParty {
        call: Option<String>,
        party: String,
    },
    CloseCall {
        call: String,
    },
    QueryCall {
        call: String,
    },
    RemoteDrop {
        call: Option<String>,
        party: String,
    },
    RemoteRelease {
        call: String,
    },
    CloseAf {
        adapter: usize,
    },
    /// The call manager registers a new address for `adapter` and announces it
    /// (OID_CO_ADDRESS_CHANGE) on every open AF.
    AddressChange {
        adapter: usize,
        address: AtmAddress,
    },
    AfRegister {
        adapter: usize,
    },
    Unbind {
        adapter: usize,
    },
    /// NDIS uninstalls the protocol: every adapter is unbound, then ProtocolUninstall runs.
    Uninstall,
    /// NDIS sends `step`'s PnP events to `adapter`'s binding.
    Pnp {
        adapter: usize,
        step: PnpStep,
    },
    Advance {
        ticks: u64,
    },
    RunUntilIdle,
    Expect(Expectation),
    /// The miniport indicates `count` lists on `call`'s VC, or (no call) on `adapter`'s binding.
    Receive {
        call: Option<String>,
        adapter: usize,
        count: u32,
        resources: bool,
        dispatch: bool,
    },
    /// The next `count` requests of `export` fail (`pended`: at completion, at once, or as drawn).
    FailNext {
        export: String,
        count: u32,
        pended: Option<bool>,
    },
}

impl Action {
    /// Whether this is a request through the control device.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            Action::MakeCall { .. }
                | Action::AddParty { .. }
                | Action::DropParty { .. }
                | Action::CloseCall { .. }
                | Action::QueryCall { .. }
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::MakeCall { call, adapter, leaves, .. } => {
                let names: Vec<&str> = leaves.iter().map(|l| l.name.as_str()).collect();
                write!(f, "make call '{call}' on adapter {adapter} to [{}]", names.join(", "))
            }
            Action::AddParty { call, leaf } => write!(f, "add party '{}' to call '{call}'", leaf.name),
            Action::DropParty { party, .. } => write!(f, "drop party '{party}'"),
            Action::CloseCall { call } => write!(f, "close call '{call}'"),
            Action::QueryCall { call } => write!(f, "query call '{call}'"),
            Action::RemoteDrop { party, .. } => write!(f, "network: party '{party}' hangs up"),
            Action::RemoteRelease { call } => write!(f, "network: call '{call}' released"),
            Action::CloseAf { adapter } => write!(f, "call manager closes the AF on adapter {adapter}"),
            Action::AddressChange { adapter, address } => {
                write!(f, "call manager: the address of adapter {adapter} changes to {address}")
            }
            Action::AfRegister { adapter } => {
                write!(f, "call manager registers its address families on adapter {adapter} again")
            }
            Action::Unbind { adapter } => write!(f, "NDIS unbinds adapter {adapter}"),
            Action::Uninstall => {
                write!(f, "NDIS uninstalls the protocol (unbinds every adapter, ProtocolUninstall)")
            }
            Action::Pnp { adapter, step } => write!(f, "NDIS: {} on adapter {adapter}", step.name()),
            Action::Advance { ticks } => write!(f, "advance {ticks} ticks"),
            Action::FailNext { export, count, pended } => {
                write!(f, "the next {count} {export} request(s) fail")?;
                match pended {
                    Some(true) => f.write_str(" at completion"),
                    Some(false) => f.write_str(" at once"),
                    None => Ok(()),
                }
            }
            Action::RunUntilIdle => f.write_str("run until idle"),
            Action::Receive { call, adapter, count, resources, dispatch } => {
                write!(f, "network: {count} NET_BUFFER_LIST(s) received ")?;
                match call {
                    Some(call) => write!(f, "on call '{call}'")?,
                    None => write!(f, "on adapter {adapter}'s binding")?,
                }
                if *resources {
                    f.write_str(", low on resources")?;
                }
                f.write_str(if *dispatch { " at DISPATCH_LEVEL" } else { " at PASSIVE_LEVEL" })
            }
            Action::Expect(e) => {
                f.write_str("expect")?;
                if let Some(call) = &e.call {
                    write!(f, " call '{call}'")?;
                }
                for (key, value) in [
                    ("parties", e.parties),
                    ("adding", e.adding),
                    ("queued", e.queued),
                    ("dropping", e.dropping),
                    ("calls", e.calls),
                ] {
                    if let Some(v) = value {
                        write!(f, " {key}={v}")?;
                    }
                }
                if let Some(state) = &e.state {
                    write!(f, " state={state}")?;
                }
                if let Some(gone) = e.gone {
                    write!(f, " gone={gone}")?;
                }
                Ok(())
            }
        }
    }
}

/// One step: what it does, where it is written, and how the run goes on after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// 1-based position among the steps.
    pub number: usize,
    /// 1-based line of its `[[step]]` table.
    pub line: usize,
    pub action: Action,
    pub settle: Settle,
    pub status: ExpectedStatus,
}

/// A parsed and checked scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub processors: usize,
    pub faults: Faults,
    pub call_manager: CallManager,
    pub adapters: Vec<Adapter>,
    pub steps: Vec<Step>,
    /// The refusals the driver may count by the end of the run (`expect_refusals`; none when
    /// the key is left out). Any other refusal is a violation.
    pub expect_refusals: audit::RefusalExpectation,
}

/// Why a scenario file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file (or `<embedded>`).
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// The NTSTATUS names a step's `status` may use.
pub const STATUS_NAMES: &[(&str, i32)] = &[
    ("STATUS_SUCCESS", ioctl::error::STATUS_SUCCESS),
    ("STATUS_UNSUCCESSFUL", ioctl::error::STATUS_UNSUCCESSFUL),
    ("STATUS_INFO_LENGTH_MISMATCH", ioctl::error::STATUS_INFO_LENGTH_MISMATCH),
    ("STATUS_INVALID_PARAMETER", ioctl::error::STATUS_INVALID_PARAMETER),
    ("STATUS_INVALID_DEVICE_REQUEST", ioctl::error::STATUS_INVALID_DEVICE_REQUEST),
    ("STATUS_BUFFER_TOO_SMALL", ioctl::error::STATUS_BUFFER_TOO_SMALL),
    ("STATUS_ACCESS_DENIED", ioctl::error::STATUS_ACCESS_DENIED),
    ("STATUS_DELETE_PENDING", ioctl::error::STATUS_DELETE_PENDING),
    ("STATUS_REVISION_MISMATCH", ioctl::error::STATUS_REVISION_MISMATCH),
    ("STATUS_INSUFFICIENT_RESOURCES", ioctl::error::STATUS_INSUFFICIENT_RESOURCES),
    ("STATUS_NOT_SUPPORTED", ioctl::error::STATUS_NOT_SUPPORTED),
    ("STATUS_INVALID_DEVICE_STATE", ioctl::error::STATUS_INVALID_DEVICE_STATE),
    ("STATUS_NOT_FOUND", ioctl::error::STATUS_NOT_FOUND),
];

/// `STATUS_NOT_FOUND (0xC0000225)` for a known status, the hex value otherwise.
pub fn status_name(status: i32) -> String {
    match STATUS_NAMES.iter().find(|(_, s)| *s == status) {
        Some((name, _)) => format!("{name} (0x{:08X}: {})", status as u32, ioctl::status_message(status)),
        None => format!("0x{:08X}", status as u32),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

impl Scenario {
    /// Parses and checks `text`; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| ScenarioError {
            origin: origin.into(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim_end().to_string(),
        })?;
        let err =
            |line: Option<usize>, message: String| ScenarioError { origin: origin.into(), line, message };
        if raw.adapters.is_empty() {
            return Err(err(None, "a scenario needs at least one [[adapter]] with a local_address".into()));
        }
        let processors = raw.processors.unwrap_or(2);
        if processors == 0 || processors > 64 {
            return Err(err(None, format!("processors = {processors}: give 1 to 64")));
        }
        for name in &raw.faults.request_failure_exports {
            failable(name, "request_failure_exports").map_err(|m| err(None, m))?;
        }
        for tag in &raw.faults.allocation_failure_tags {
            if tag.len() != 4 || !tag.is_ascii() {
                return Err(err(
                    None,
                    format!("allocation_failure_tags: `{tag}` is not a 4-character pool tag"),
                ));
            }
        }
        // Remote names are unique over the whole scenario.
        let mut remotes: BTreeMap<String, AtmAddress> = BTreeMap::new();
        for adapter in &raw.adapters {
            for remote in &adapter.remotes {
                if remotes.insert(remote.name.clone(), remote.address.0).is_some() {
                    return Err(err(None, format!("remote party name '{}' is used twice", remote.name)));
                }
            }
        }
        let adapter_index = |r: &AdapterRef, line: usize| -> Result<usize, ScenarioError> {
            match r {
                AdapterRef::Index(i) if *i < raw.adapters.len() => Ok(*i),
                AdapterRef::Index(i) => Err(err(
                    Some(line),
                    format!("adapter {i} does not exist: there are {} (0-based)", raw.adapters.len()),
                )),
                AdapterRef::Name(name) => raw
                    .adapters
                    .iter()
                    .enumerate()
                    .position(|(n, a)| adapter_name(a, n) == *name)
                    .ok_or_else(|| err(Some(line), format!("no adapter named `{name}`"))),
            }
        };
        let leaf = |name: &str, line: usize| -> Result<Leaf, ScenarioError> {
            if let Some(address) = remotes.get(name) {
                return Ok(Leaf { name: name.into(), address: *address });
            }
            AtmAddress::parse(name).map(|address| Leaf { name: name.into(), address }).map_err(|e| {
                let known: Vec<&str> = remotes.keys().map(String::as_str).collect();
                err(
                    Some(line),
                    format!(
                        "`{name}` is neither a remote party ({}) nor an ATM address: {}",
                        if known.is_empty() { "none declared".into() } else { known.join(", ") },
                        address_error(e)
                    ),
                )
            })
        };

        let mut steps = Vec::new();
        let mut calls_made: Vec<String> = Vec::new();
        for (index, spanned) in raw.steps.iter().enumerate() {
            let line = line_of(text, spanned.span().start);
            let s = spanned.get_ref();
            let present: Vec<&str> = [
                ("make_call", s.make_call.is_some()),
                ("add", s.add.is_some()),
                ("drop", s.drop.is_some()),
                ("close", s.close.is_some()),
                ("query", s.query.is_some()),
                ("remote_drop", s.remote_drop.is_some()),
                ("remote_release", s.remote_release.is_some()),
                ("close_af", s.close_af.is_some()),
                ("address_change", s.address_change.is_some()),
                ("af_register", s.af_register.is_some()),
                ("unbind", s.unbind.is_some()),
                ("uninstall", s.uninstall.is_some()),
                ("pnp", s.pnp.is_some()),
                ("advance", s.advance.is_some()),
                ("run_until_idle", s.run_until_idle.is_some()),
                ("expect", s.expect.is_some()),
                ("receive", s.receive.is_some()),
                ("fail_next", s.fail_next.is_some()),
            ]
            .into_iter()
            .filter(|(_, p)| *p)
            .map(|(k, _)| k)
            .collect();
            let what = match present.as_slice() {
                [one] => *one,
                [] => return Err(err(
                    Some(line),
                    "this step does nothing: give one of make_call, add, drop, close, query, remote_drop, \
                         remote_release, close_af, af_register, address_change, unbind, uninstall, pnp, \
                         advance, run_until_idle, expect, receive, fail_next"
                        .into(),
                )),
                many => {
                    return Err(err(
                        Some(line),
                        format!("one action per step, this one has {}", many.join(" and ")),
                    ))
                }
            };
            // Which qualifiers each action takes.
            let allowed: &[&str] = match what {
                "make_call" => &["leaves", "adapter", "profile", "settle", "status"],
                "add" | "drop" | "remote_drop" => &["call", "settle", "status"],
                "close" | "query" => &["settle", "status"],
                "remote_release" | "close_af" | "af_register" | "unbind" => &["settle"],
                "pnp" => &["adapter", "settle"],
                "receive" => &["call", "adapter", "resources", "dispatch", "settle"],
                "address_change" => &["adapter"],
                "fail_next" => &["count", "pended"],
                _ => &[],
            };
            for (key, given) in [
                ("leaves", s.leaves.is_some()),
                ("call", s.call.is_some()),
                ("adapter", s.adapter.is_some()),
                ("profile", s.profile.is_some()),
                ("settle", s.settle.is_some()),
                ("status", s.status.is_some()),
                ("resources", s.resources.is_some()),
                ("dispatch", s.dispatch.is_some()),
                ("count", s.count.is_some()),
                ("pended", s.pended.is_some()),
            ] {
                if given && !allowed.contains(&key) {
                    return Err(err(Some(line), format!("`{key}` does not apply to a `{what}` step")));
                }
            }
            let known_call = |name: &str| -> Result<String, ScenarioError> {
                if calls_made.iter().any(|c| c == name) {
                    Ok(name.to_string())
                } else {
                    Err(err(Some(line), format!("no earlier make_call names a call '{name}'")))
                }
            };
            let action = match what {
                "make_call" => {
                    let name = s.make_call.clone().unwrap_or_default();
                    if calls_made.contains(&name) {
                        return Err(err(
                            Some(line),
                            format!("call '{name}' is made twice; give each call its own name"),
                        ));
                    }
                    let leaves = s.leaves.as_deref().unwrap_or_default();
                    if leaves.is_empty() {
                        return Err(err(Some(line), "a make_call needs `leaves = [\"name\", ...]`".into()));
                    }
                    let leaves = leaves.iter().map(|l| leaf(l, line)).collect::<Result<Vec<_>, _>>()?;
                    let adapter = s.adapter.as_ref().map_or(Ok(0), |a| adapter_index(a, line))?;
                    let profile = match s.profile {
                        None => TrafficProfile::DEFAULT,
                        Some(p) => {
                            let profile = TrafficProfile {
                                service: match p.service {
                                    Service::Ubr => ServiceCategory::Ubr,
                                    Service::Cbr => ServiceCategory::Cbr,
                                },
                                peak_cell_rate: p.peak_cell_rate,
                                max_sdu: p.max_sdu,
                            };
                            profile.validate().map_err(|e| {
                                err(
                                    Some(line),
                                    format!(
                                        "profile: {e:?} (peak_cell_rate 1..=1412830 cells/s, max_sdu 1..=65535 bytes)"
                                    ),
                                )
                            })?;
                            profile
                        }
                    };
                    calls_made.push(name.clone());
                    Action::MakeCall { call: name, adapter, profile, leaves }
                }
                "add" => {
                    let call = s
                        .call
                        .as_deref()
                        .ok_or_else(|| err(Some(line), "an add needs `call = \"...\"`".into()))?;
                    Action::AddParty {
                        call: known_call(call)?,
                        leaf: leaf(s.add.as_deref().unwrap_or_default(), line)?,
                    }
                }
                "drop" => Action::DropParty {
                    call: s.call.as_deref().map(known_call).transpose()?,
                    party: s.drop.clone().unwrap_or_default(),
                },
                "remote_drop" => Action::RemoteDrop {
                    call: s.call.as_deref().map(known_call).transpose()?,
                    party: s.remote_drop.clone().unwrap_or_default(),
                },
                "close" => Action::CloseCall { call: known_call(s.close.as_deref().unwrap_or_default())? },
                "query" => Action::QueryCall { call: known_call(s.query.as_deref().unwrap_or_default())? },
                "remote_release" => Action::RemoteRelease {
                    call: known_call(s.remote_release.as_deref().unwrap_or_default())?,
                },
                "close_af" => Action::CloseAf {
                    adapter: adapter_index(s.close_af.as_ref().unwrap_or(&AdapterRef::Index(0)), line)?,
                },
                "address_change" => {
                    let text = s.address_change.as_deref().unwrap_or_default();
                    let address = AtmAddress::parse(text).map_err(|e| {
                        err(
                            Some(line),
                            format!("address_change: `{text}` is not an ATM address: {}", address_error(e)),
                        )
                    })?;
                    let adapter = s.adapter.as_ref().map_or(Ok(0), |a| adapter_index(a, line))?;
                    Action::AddressChange { adapter, address }
                }
                "af_register" => Action::AfRegister {
                    adapter: adapter_index(s.af_register.as_ref().unwrap_or(&AdapterRef::Index(0)), line)?,
                },
                "unbind" => Action::Unbind {
                    adapter: adapter_index(s.unbind.as_ref().unwrap_or(&AdapterRef::Index(0)), line)?,
                },
                "uninstall" => {
                    if s.uninstall != Some(true) {
                        return Err(err(Some(line), "uninstall = true is the only form of this step".into()));
                    }
                    Action::Uninstall
                }
                "pnp" => {
                    let name = s.pnp.as_deref().unwrap_or_default();
                    let step = PnpStep::parse(name).ok_or_else(|| {
                        err(
                            Some(line),
                            format!("pnp = \"{name}\": not a PnP step (one of {})", PnpStep::names()),
                        )
                    })?;
                    Action::Pnp {
                        adapter: s.adapter.as_ref().map_or(Ok(0), |a| adapter_index(a, line))?,
                        step,
                    }
                }
                "advance" => Action::Advance { ticks: s.advance.unwrap_or(0) },
                "fail_next" => {
                    let count = s.count.unwrap_or(1);
                    if count == 0 {
                        return Err(err(Some(line), "fail_next: count = N with N at least 1".into()));
                    }
                    let export = failable(s.fail_next.as_deref().unwrap_or_default(), "fail_next")
                        .map_err(|m| err(Some(line), m))?;
                    Action::FailNext { export, count, pended: s.pended }
                }
                "receive" => {
                    let count = s.receive.unwrap_or(0);
                    if count == 0 {
                        return Err(err(Some(line), "receive = N: at least one NET_BUFFER_LIST".into()));
                    }
                    if s.call.is_some() && s.adapter.is_some() {
                        return Err(err(
                            Some(line),
                            "a receive goes to `call`'s VC or to `adapter`'s binding, not both".into(),
                        ));
                    }
                    Action::Receive {
                        call: s.call.as_deref().map(known_call).transpose()?,
                        adapter: s.adapter.as_ref().map_or(Ok(0), |a| adapter_index(a, line))?,
                        count,
                        resources: s.resources.unwrap_or(false),
                        dispatch: s.dispatch.unwrap_or(false),
                    }
                }
                "run_until_idle" => {
                    if s.run_until_idle != Some(true) {
                        return Err(err(
                            Some(line),
                            "write `run_until_idle = true` (or leave the step out)".into(),
                        ));
                    }
                    Action::RunUntilIdle
                }
                _ => {
                    let e = s.expect.clone().unwrap_or_default();
                    if let Some(call) = &e.call {
                        known_call(call)?;
                    } else if e.parties.or(e.adding).or(e.queued).or(e.dropping).is_some()
                        || e.state.is_some()
                        || e.gone.is_some()
                    {
                        return Err(err(
                            Some(line),
                            "this expectation is about a call: add `call = \"...\"`".into(),
                        ));
                    }
                    if e == (Expectation { call: e.call.clone(), ..Expectation::default() }) {
                        return Err(err(
                            Some(line),
                            "expect what? give parties, adding, queued, dropping, state, gone or calls"
                                .into(),
                        ));
                    }
                    Action::Expect(e)
                }
            };
            let settle = match &s.settle {
                None => {
                    if action.is_request() || matches!(action, Action::RemoteRelease { .. }) {
                        Settle::Idle
                    } else {
                        Settle::None
                    }
                }
                Some(RawSettle::Ticks(t)) => Settle::Ticks(*t),
                Some(RawSettle::Word(w)) if w == "idle" => Settle::Idle,
                Some(RawSettle::Word(w)) if w == "none" => Settle::None,
                Some(RawSettle::Word(w)) => {
                    return Err(err(
                        Some(line),
                        format!("settle = \"{w}\": write \"idle\", \"none\" or a number of ticks"),
                    ))
                }
            };
            let status = match s.status.as_deref() {
                None => ExpectedStatus::Is(ioctl::error::STATUS_SUCCESS),
                Some("any") => ExpectedStatus::Any,
                Some(name) => {
                    let upper = name.to_ascii_uppercase();
                    let wanted = if upper.starts_with("STATUS_") { upper } else { format!("STATUS_{upper}") };
                    match STATUS_NAMES.iter().find(|(n, _)| *n == wanted) {
                        Some((_, value)) => ExpectedStatus::Is(*value),
                        None => {
                            let names: Vec<&str> = STATUS_NAMES.iter().map(|(n, _)| *n).collect();
                            return Err(err(
                                Some(line),
                                format!("status = \"{name}\": write \"any\" or one of {}", names.join(", ")),
                            ));
                        }
                    }
                }
            };
            steps.push(Step { number: index + 1, line, action, settle, status });
        }
        let mut expect_refusals = audit::RefusalExpectation::default();
        for (key, value) in &raw.expect_refusals {
            let kinds = partyline_core::census::RefusalKind::ALL;
            let Some(kind) = kinds.iter().find(|k| k.name() == key) else {
                let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                return Err(err(
                    None,
                    format!(
                        "expect_refusals: `{key}` is not a kind of refusal (one of: {})",
                        names.join(", ")
                    ),
                ));
            };
            expect_refusals.bounds[*kind as usize] = match *value {
                RawRefusals::Exactly(n) => (n, n),
                RawRefusals::Between([least, most]) if least <= most => (least, most),
                RawRefusals::Between([least, most]) => {
                    return Err(err(
                        None,
                        format!("expect_refusals: {key} = [{least}, {most}] is an empty range"),
                    ))
                }
            };
        }
        Ok(Scenario {
            expect_refusals,
            name: raw.name.unwrap_or_else(|| {
                origin.rsplit('/').next().unwrap_or(origin).trim_end_matches(".toml").into()
            }),
            description: raw.description.unwrap_or_default(),
            seed: raw.seed,
            processors,
            faults: raw.faults,
            call_manager: raw.call_manager,
            adapters: raw.adapters,
            steps,
        })
    }
}

/// The name of adapter `index`: as written, or `\DEVICE\{ATM-<index>}`.
pub fn adapter_name(adapter: &Adapter, index: usize) -> String {
    adapter.name.clone().unwrap_or_else(|| format!(r"\DEVICE\{{ATM-{index}}}"))
}

// ---------------------------------------------------------------------------------------------
// The runner.

/// An event only the network, the call manager or NDIS can cause, or the passage of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkEvent<'a> {
    /// The party at `address` in the driver's call `call` hangs up.
    RemoteDrop { call: u64, address: &'a AtmAddress },
    /// The network releases the driver's call `call`.
    RemoteRelease { call: u64 },
    /// The call manager closes the AF on `adapter` (NdisCmNotifyCloseAddressFamily).
    CloseAf { adapter: usize },
    /// The call manager's registered address of `adapter` changes to `address`
    /// (OID_CO_ADDRESS_CHANGE on every open AF).
    AddressChange { adapter: usize, address: &'a AtmAddress },
    /// The call manager registers its address families on `adapter` again.
    AfRegister { adapter: usize },
    /// NDIS unbinds `adapter`.
    Unbind { adapter: usize },
    /// NDIS uninstalls the protocol: unbinds every adapter, then calls ProtocolUninstall.
    Uninstall,
    /// NDIS sends `step`'s PnP events to `adapter`'s binding.
    Pnp { adapter: usize, step: PnpStep },
    /// Time moves on.
    Advance { ticks: u64 },
    /// Queued work runs until none is left.
    RunUntilIdle,
    /// The miniport indicates `count` lists on the driver's call `call`, or (`None`) on
    /// `adapter`'s binding; with NDIS_RECEIVE_FLAGS_RESOURCES if `resources`; at DISPATCH_LEVEL if
    /// `dispatch`.
    Receive { call: Option<u64>, adapter: usize, count: u32, resources: bool, dispatch: bool },
    /// The next `count` requests of `export` (one of [`FAILABLE_REQUESTS`]) fail; `pended`: at
    /// completion (`true`), at once (`false`), or as the seed draws.
    FailNext { export: &'a str, count: u32, pended: Option<bool> },
}

/// What a target did with a network event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    Done,
    /// This target cannot produce it (the real driver on a real network).
    Skipped(String),
    Failed(String),
}

/// Where a scenario's requests and events go: the simulator, or the real control device.
pub trait Target {
    /// One `DeviceIoControl` on `\\.\Partyline` as an administrator: the final NTSTATUS and the
    /// output bytes (`Information` of them). `Err` when the request did not reach the driver.
    fn device_control(
        &mut self,
        code: u32,
        input: &[u8],
        output_len: usize,
    ) -> Result<(i32, Vec<u8>), String>;
    /// Produces a network event, or says why not.
    fn network(&mut self, event: NetworkEvent<'_>) -> EventOutcome;
    /// Called after a MAKE_CALL the driver accepted, with the call's id.
    fn call_made(&mut self, _call: u64) {}
}

/// How a step went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepResult {
    /// Done; what came of it.
    Ok(String),
    /// Not done, and that is not a failure (a simulator-only event on the real driver, a request
    /// about a call that a fault kept from being made).
    Skipped(String),
    /// An expectation failed, or a request ended with an unexpected status.
    Failed(String),
}

/// One step's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRecord {
    pub number: usize,
    pub line: usize,
    /// The step, in words.
    pub text: String,
    pub result: StepResult,
}

impl StepRecord {
    pub fn is_failure(&self) -> bool {
        matches!(self.result, StepResult::Failed(_))
    }
}

impl fmt::Display for StepRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mark, detail) = match &self.result {
            StepResult::Ok(d) => ("ok  ", d),
            StepResult::Skipped(d) => ("skip", d),
            StepResult::Failed(d) => ("FAIL", d),
        };
        write!(f, "step {:>2} (line {:>3}) {mark} {}", self.number, self.line, self.text)?;
        if !detail.is_empty() {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

struct PartyName {
    call: String,
    name: String,
    address: AtmAddress,
    id: Option<u64>,
}

/// The runner's map from the scenario's names to the driver's ids.
struct Names {
    calls: BTreeMap<String, Option<u64>>,
    parties: Vec<PartyName>,
}

const OUTPUT_LEN: usize = ioctl::RECOMMENDED_OUTPUT_LEN;

fn request(target: &mut dyn Target, code: u32, input: &[u8]) -> Result<(i32, Vec<u8>), String> {
    target
        .device_control(code, input, OUTPUT_LEN)
        .map_err(|e| format!("the request did not reach the driver: {e}"))
}

/// The open AF of the `adapter`-th binding the driver lists.
fn af_of(target: &mut dyn Target, adapter: usize) -> Result<u64, String> {
    let mut bindings: Vec<u64> = Vec::new();
    let mut afs: Vec<(u64, u64, ioctl::AfStatus)> = Vec::new();
    let mut cursor = 0;
    loop {
        let (status, out) = request(
            target,
            ioctl::IOCTL_PARTYLINE_LIST_BINDINGS,
            &ioctl::request::encode_list_bindings(cursor),
        )?;
        if status != ioctl::error::STATUS_SUCCESS {
            return Err(format!("LIST_BINDINGS ended with {}", status_name(status)));
        }
        let page =
            ioctl::decode_list_bindings_response(&out).map_err(|e| format!("LIST_BINDINGS answer: {e:?}"))?;
        for entry in page.iter() {
            match entry {
                ListEntry::Binding { id, .. } => bindings.push(id),
                ListEntry::AddressFamily { id, binding, state, .. } => afs.push((id, binding, state)),
            }
        }
        if !page.more || page.next == cursor {
            break;
        }
        cursor = page.next;
    }
    let binding = *bindings
        .get(adapter)
        .ok_or_else(|| format!("the driver lists {} binding(s), not an adapter {adapter}", bindings.len()))?;
    afs.iter()
        .find(|(_, b, s)| *b == binding && *s == ioctl::AfStatus::Open)
        .map(|(id, _, _)| *id)
        .ok_or_else(|| format!("binding {binding} (adapter {adapter}) has no open address family"))
}

/// QUERY_CALL, every page: the call and its parties. `Ok(None)`: the driver does not know it.
fn query(
    target: &mut dyn Target,
    call: u64,
) -> Result<Option<(CallSummary, Vec<ioctl::PartyEntry>)>, String> {
    let mut parties = Vec::new();
    let mut cursor = 0;
    loop {
        let (status, out) = request(
            target,
            ioctl::IOCTL_PARTYLINE_QUERY_CALL,
            &ioctl::request::encode_query_call(call, cursor),
        )?;
        if status == ioctl::error::STATUS_NOT_FOUND {
            return Ok(None);
        }
        if status != ioctl::error::STATUS_SUCCESS {
            return Err(format!("QUERY_CALL ended with {}", status_name(status)));
        }
        let (summary, page) =
            ioctl::decode_query_call_response(&out).map_err(|e| format!("QUERY_CALL answer: {e:?}"))?;
        parties.extend(page.iter());
        if !page.more || page.next == cursor {
            return Ok(Some((summary, parties)));
        }
        cursor = page.next;
    }
}

/// LIST_CALLS, every page.
fn list_calls(target: &mut dyn Target) -> Result<Vec<ioctl::CallEntry>, String> {
    let mut calls = Vec::new();
    let mut cursor = 0;
    loop {
        let (status, out) =
            request(target, ioctl::IOCTL_PARTYLINE_LIST_CALLS, &ioctl::request::encode_list_calls(cursor))?;
        if status != ioctl::error::STATUS_SUCCESS {
            return Err(format!("LIST_CALLS ended with {}", status_name(status)));
        }
        let page =
            ioctl::decode_list_calls_response(&out).map_err(|e| format!("LIST_CALLS answer: {e:?}"))?;
        calls.extend(page.iter());
        if !page.more || page.next == cursor {
            return Ok(calls);
        }
        cursor = page.next;
    }
}

fn state_matches(state: partyline_core::engine::CallState, wanted: &str) -> bool {
    let norm =
        |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    norm(&format!("{state:?}")) == norm(wanted)
}

impl Names {
    /// The driver's id of call `name`: `Err(skip reason)` when it was never made.
    fn call(&self, name: &str) -> Result<u64, StepResult> {
        match self.calls.get(name) {
            Some(Some(id)) => Ok(*id),
            _ => Err(StepResult::Skipped(format!("call '{name}' was not made (its make_call failed)"))),
        }
    }

    /// Index into `parties` of party `name` (in `call`, if given).
    fn party(&self, call: Option<&str>, name: &str) -> Result<usize, StepResult> {
        let found: Vec<usize> = self
            .parties
            .iter()
            .enumerate()
            .filter(|(_, p)| p.name == name && call.is_none_or(|c| c == p.call))
            .map(|(i, _)| i)
            .collect();
        match found.as_slice() {
            [] => Err(StepResult::Failed(format!(
                "no call has a party '{name}' (parties are the leaves of make_call and add steps)"
            ))),
            [one] => Ok(*one),
            _ => Err(StepResult::Failed(format!("party '{name}' is in several calls: add `call = \"...\"`"))),
        }
    }
}

/// Finds, with QUERY_CALL, the driver's id for party `index` of `names` (a leaf of a make-call).
fn resolve_party(target: &mut dyn Target, names: &mut Names, index: usize) -> Result<u64, StepResult> {
    if let Some(id) = names.parties[index].id {
        return Ok(id);
    }
    let call = names.call(&names.parties[index].call.clone())?;
    let (_, parties) = query(target, call)
        .map_err(StepResult::Failed)?
        .ok_or_else(|| StepResult::Failed(format!("call '{}' is gone", names.parties[index].call)))?;
    let taken: Vec<u64> = names.parties.iter().filter_map(|p| p.id).collect();
    let address = names.parties[index].address;
    let id = parties
        .iter()
        .find(|p| p.address == address && !taken.contains(&p.id))
        .map(|p| p.id)
        .ok_or_else(|| {
            StepResult::Failed(format!(
                "the driver lists no party at {address} in call '{}' (it was rejected, dropped or never added)",
                names.parties[index].call
            ))
        })?;
    names.parties[index].id = Some(id);
    Ok(id)
}

fn check_status(status: i32, expected: ExpectedStatus, what: &str) -> Result<(), StepResult> {
    match expected {
        ExpectedStatus::Any => Ok(()),
        ExpectedStatus::Is(wanted) if wanted == status => Ok(()),
        ExpectedStatus::Is(wanted) => Err(StepResult::Failed(format!(
            "{what} ended with {}, the scenario expects {}",
            status_name(status),
            status_name(wanted)
        ))),
    }
}

fn run_step(target: &mut dyn Target, names: &mut Names, step: &Step) -> StepResult {
    let outcome = match &step.action {
        Action::MakeCall { call, adapter, profile, leaves } => (|| {
            let af = af_of(target, *adapter).map_err(StepResult::Failed)?;
            let addresses: Vec<AtmAddress> = leaves.iter().map(|l| l.address).collect();
            let mut input = vec![0u8; ioctl::request::make_call_len(addresses.len())];
            ioctl::request::encode_make_call(&mut input, af, profile, &addresses)
                .map_err(|e| StepResult::Failed(format!("cannot encode the request: {e:?}")))?;
            let (status, out) =
                request(target, ioctl::IOCTL_PARTYLINE_MAKE_CALL, &input).map_err(StepResult::Failed)?;
            names.calls.insert(call.clone(), None);
            check_status(status, step.status, "MAKE_CALL")?;
            if status != ioctl::error::STATUS_SUCCESS {
                return Ok(format!("refused as expected: {}", status_name(status)));
            }
            let id = ioctl::decode_make_call_response(&out)
                .map_err(|e| StepResult::Failed(format!("MAKE_CALL answer: {e:?}")))?;
            names.calls.insert(call.clone(), Some(id));
            for leaf in leaves {
                names.parties.push(PartyName {
                    call: call.clone(),
                    name: leaf.name.clone(),
                    address: leaf.address,
                    id: None,
                });
            }
            target.call_made(id);
            Ok(format!("call id {id:#x} on AF {af:#x}"))
        })(),
        Action::AddParty { call, leaf } => (|| {
            let id = names.call(call)?;
            let (status, out) = request(
                target,
                ioctl::IOCTL_PARTYLINE_ADD_PARTY,
                &ioctl::request::encode_add_party(id, &leaf.address),
            )
            .map_err(StepResult::Failed)?;
            check_status(status, step.status, "ADD_PARTY")?;
            if status != ioctl::error::STATUS_SUCCESS {
                return Ok(format!("refused as expected: {}", status_name(status)));
            }
            let party = ioctl::decode_add_party_response(&out)
                .map_err(|e| StepResult::Failed(format!("ADD_PARTY answer: {e:?}")))?;
            names.parties.push(PartyName {
                call: call.clone(),
                name: leaf.name.clone(),
                address: leaf.address,
                id: Some(party),
            });
            Ok(format!("party id {party:#x}"))
        })(),
        Action::DropParty { call, party } => (|| {
            let index = names.party(call.as_deref(), party)?;
            names.call(&names.parties[index].call.clone())?;
            let id = resolve_party(target, names, index)?;
            let (status, _) =
                request(target, ioctl::IOCTL_PARTYLINE_DROP_PARTY, &ioctl::request::encode_drop_party(id))
                    .map_err(StepResult::Failed)?;
            check_status(status, step.status, "DROP_PARTY")?;
            Ok(format!("party id {id:#x}: {}", status_name(status)))
        })(),
        Action::CloseCall { call } => (|| {
            let id = names.call(call)?;
            let (status, _) =
                request(target, ioctl::IOCTL_PARTYLINE_CLOSE_CALL, &ioctl::request::encode_close_call(id))
                    .map_err(StepResult::Failed)?;
            check_status(status, step.status, "CLOSE_CALL")?;
            Ok(format!("call id {id:#x}: {}", status_name(status)))
        })(),
        Action::QueryCall { call } => (|| {
            let id = names.call(call)?;
            match query(target, id).map_err(StepResult::Failed)? {
                None => {
                    check_status(ioctl::error::STATUS_NOT_FOUND, step.status, "QUERY_CALL")?;
                    Ok("the driver no longer knows the call".into())
                }
                Some((summary, parties)) => {
                    check_status(ioctl::error::STATUS_SUCCESS, step.status, "QUERY_CALL")?;
                    Ok(describe_call(&summary, &parties))
                }
            }
        })(),
        Action::RemoteDrop { call, party } => (|| {
            let index = names.party(call.as_deref(), party)?;
            let call_id = names.call(&names.parties[index].call.clone())?;
            let address = names.parties[index].address;
            match target.network(NetworkEvent::RemoteDrop { call: call_id, address: &address }) {
                EventOutcome::Done => Ok(String::new()),
                EventOutcome::Skipped(why) => Err(StepResult::Skipped(why)),
                EventOutcome::Failed(why) => Err(StepResult::Failed(why)),
            }
        })(),
        Action::RemoteRelease { call } => (|| {
            let id = names.call(call)?;
            event(target, NetworkEvent::RemoteRelease { call: id })
        })(),
        Action::CloseAf { adapter } => event(target, NetworkEvent::CloseAf { adapter: *adapter }),
        Action::AddressChange { adapter, address } => {
            event(target, NetworkEvent::AddressChange { adapter: *adapter, address })
        }
        Action::AfRegister { adapter } => event(target, NetworkEvent::AfRegister { adapter: *adapter }),
        Action::Unbind { adapter } => event(target, NetworkEvent::Unbind { adapter: *adapter }),
        Action::Uninstall => event(target, NetworkEvent::Uninstall),
        Action::Pnp { adapter, step } => event(target, NetworkEvent::Pnp { adapter: *adapter, step: *step }),
        Action::Advance { ticks } => event(target, NetworkEvent::Advance { ticks: *ticks }),
        Action::RunUntilIdle => event(target, NetworkEvent::RunUntilIdle),
        Action::FailNext { export, count, pended } => {
            event(target, NetworkEvent::FailNext { export, count: *count, pended: *pended })
        }
        Action::Expect(expectation) => expect(target, names, expectation),
        Action::Receive { call, adapter, count, resources, dispatch } => (|| {
            let call = call.as_deref().map(|c| names.call(c)).transpose()?;
            let (adapter, count, resources, dispatch) = (*adapter, *count, *resources, *dispatch);
            event(target, NetworkEvent::Receive { call, adapter, count, resources, dispatch })
        })(),
    };
    let result = match outcome {
        Ok(detail) => StepResult::Ok(detail),
        // A step allowed to end any way (faults picked by the seed) may find its party or call
        // already gone: that is not a failure.
        Err(StepResult::Failed(why)) if step.status == ExpectedStatus::Any && step.action.is_request() => {
            StepResult::Skipped(why)
        }
        Err(result) => result,
    };
    // Let the world run after the step even when it failed, so what follows sees the same world.
    let settle = match step.settle {
        Settle::Idle => Some(NetworkEvent::RunUntilIdle),
        Settle::Ticks(ticks) => Some(NetworkEvent::Advance { ticks }),
        Settle::None => None,
    };
    if let Some(settle) = settle {
        if let EventOutcome::Failed(why) = target.network(settle) {
            return StepResult::Failed(why);
        }
    }
    result
}

fn event(target: &mut dyn Target, event: NetworkEvent<'_>) -> Result<String, StepResult> {
    match target.network(event) {
        EventOutcome::Done => Ok(String::new()),
        EventOutcome::Skipped(why) => Err(StepResult::Skipped(why)),
        EventOutcome::Failed(why) => Err(StepResult::Failed(why)),
    }
}

/// One line about a call as QUERY_CALL shows it.
pub fn describe_call(summary: &CallSummary, parties: &[ioctl::PartyEntry]) -> String {
    let mut out = format!(
        "{:?}, {} connected, {} adding, {} queued, {} dropping",
        summary.state, summary.connected, summary.adding, summary.queued, summary.dropping
    );
    if let Some(closing) = summary.closing {
        out.push_str(&format!(", closing ({closing:?})"));
    }
    if !parties.is_empty() {
        let list: Vec<String> = parties.iter().map(|p| format!("{} {:?}", p.address, p.state)).collect();
        out.push_str(&format!("; parties: {}", list.join(", ")));
    }
    out
}

fn expect(target: &mut dyn Target, names: &Names, e: &Expectation) -> Result<String, StepResult> {
    let mut failures: Vec<String> = Vec::new();
    let mut seen = String::new();
    if let Some(wanted) = e.calls {
        let calls = list_calls(target).map_err(StepResult::Failed)?;
        if calls.len() as u32 != wanted {
            failures.push(format!("expected {wanted} call(s), the driver lists {}", calls.len()));
        }
        seen = format!("{} call(s)", calls.len());
    }
    if let Some(name) = &e.call {
        let id = names.call(name)?;
        match query(target, id).map_err(StepResult::Failed)? {
            None => {
                if e.gone != Some(true) {
                    failures.push(format!("call '{name}' is gone (QUERY_CALL: STATUS_NOT_FOUND)"));
                }
                seen = "gone".into();
            }
            Some((summary, parties)) => {
                if e.gone == Some(true) {
                    failures.push(format!("call '{name}' should be gone but is {:?}", summary.state));
                }
                for (key, wanted, actual) in [
                    ("connected parties", e.parties, summary.connected),
                    ("adding", e.adding, summary.adding),
                    ("queued", e.queued, summary.queued),
                    ("dropping", e.dropping, summary.dropping),
                ] {
                    if let Some(wanted) = wanted {
                        if wanted != actual {
                            failures.push(format!("expected {wanted} {key}, the driver reports {actual}"));
                        }
                    }
                }
                if let Some(state) = &e.state {
                    if !state_matches(summary.state, state) {
                        failures
                            .push(format!("expected state {state}, the driver reports {:?}", summary.state));
                    }
                }
                seen = describe_call(&summary, &parties);
            }
        }
    }
    if failures.is_empty() {
        Ok(seen)
    } else {
        Err(StepResult::Failed(format!("{} (call as seen: {seen})", failures.join("; "))))
    }
}

/// Plays every step of `scenario` against `target`, in order; a failed step does not stop the run.
pub fn run_steps(scenario: &Scenario, target: &mut dyn Target) -> Vec<StepRecord> {
    let mut names = Names { calls: BTreeMap::new(), parties: Vec::new() };
    scenario
        .steps
        .iter()
        .map(|step| StepRecord {
            number: step.number,
            line: step.line,
            text: step.action.to_string(),
            result: run_step(target, &mut names, step),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// PnP steps (simulated NDIS sends them: crate::ndis::pnp; on Windows, a scenario naming one is refused).

/// A PnP request of the harness: the events NDIS sends for it depend on the binding's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PnpStep {
    /// NetEventPause (a running binding).
    Pause,
    /// NetEventRestart (a paused binding).
    Restart,
    /// NetEventQueryPower(D3), NetEventSetPower(D3), then NetEventPause if running.
    PowerDown,
    /// NetEventRestart if paused, then NetEventSetPower(D0).
    PowerUp,
    /// NetEventQueryRemoveDevice; NetEventCancelRemoveDevice if it is failed.
    QueryRemove,
    /// NetEventCancelRemoveDevice after a query-remove that succeeded.
    CancelRemove,
    /// NetEventReconfigure on the binding (no protocol-specific data).
    Reconfigure,
    /// NetEventBindList (NULL context) with the adapters' names.
    BindList,
    /// NetEventPnPCapabilities: wake-up enabled.
    Capabilities,
}

impl PnpStep {
    /// Every step, with the name scenarios and campaign operations use.
    pub const ALL: [(PnpStep, &'static str); 9] = [
        (PnpStep::Pause, "pause"),
        (PnpStep::Restart, "restart"),
        (PnpStep::PowerDown, "power-down"),
        (PnpStep::PowerUp, "power-up"),
        (PnpStep::QueryRemove, "query-remove"),
        (PnpStep::CancelRemove, "cancel-remove"),
        (PnpStep::Reconfigure, "reconfigure"),
        (PnpStep::BindList, "bind-list"),
        (PnpStep::Capabilities, "capabilities"),
    ];

    pub fn name(self) -> &'static str {
        PnpStep::ALL.iter().find(|(s, _)| *s == self).map_or("?", |(_, n)| n)
    }

    pub fn parse(name: &str) -> Option<PnpStep> {
        PnpStep::ALL.iter().find(|(_, n)| *n == name).map(|(s, _)| *s)
    }

    /// The names, for error messages.
    pub fn names() -> String {
        PnpStep::ALL.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
    }
}
