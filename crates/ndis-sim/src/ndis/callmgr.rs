//! The simulated Q.2931 call manager and the network behind it: adapters with their local ATM
//! address, remote parties with behaviours, VPI/VCI assignment, and the mapping of UNI causes to
//! NDIS statuses.
//!
//! Read: atm-call-params.md §8 (leaves), §9 (causes), §10 (how the CM reports drops and releases).
//!
//! Flow: when the client makes a call or adds a party, [`answer`] looks the called address up in
//! the adapter's network and says whether the leaf accepts, rejects (with a cause), answers late,
//! and whether it later leaves (remote DROP PARTY, DropStatus SUCCESS) or vanishes with its link
//! (non-SUCCESS). A leaving party that is not the last is reported with
//! ProtocolClIncomingDropParty; the last one, or a release of the call, with
//! ProtocolClIncomingCloseCall (see [`super::condis`]).

use ndis_sys::*;

/// An ATM address: NSAP (20 octets) or E.164 (digits).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AtmAddr {
    /// `ATM_NSAP` (0) or `ATM_E164` (1).
    pub address_type: u32,
    /// The `NumberOfDigits` octets of `Address`.
    pub digits: Vec<u8>,
}

impl AtmAddr {
    /// An NSAP address from 40 hex digits (dots allowed).
    ///
    /// # Panics
    /// If `hex` is not 20 octets of hex.
    pub fn nsap(hex: &str) -> AtmAddr {
        let clean: String = hex.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        assert_eq!(clean.len(), 40, "an NSAP address is 20 octets: {hex}");
        let digits =
            (0..20).map(|i| u8::from_str_radix(&clean[2 * i..2 * i + 2], 16).expect("hex")).collect();
        AtmAddr { address_type: ATM_NSAP, digits }
    }

    /// An E.164 address from its digits.
    pub fn e164(number: &str) -> AtmAddr {
        AtmAddr { address_type: ATM_E164, digits: number.bytes().collect() }
    }

    /// From an `ATM_ADDRESS`.
    pub fn from_raw(raw: &ATM_ADDRESS) -> AtmAddr {
        let count = (raw.NumberOfDigits as usize).min(ATM_ADDRESS_LENGTH);
        AtmAddr { address_type: raw.AddressType, digits: raw.Address[..count].to_vec() }
    }

    /// To an `ATM_ADDRESS`.
    pub fn to_raw(&self) -> ATM_ADDRESS {
        let mut raw = ATM_ADDRESS {
            AddressType: self.address_type,
            NumberOfDigits: self.digits.len() as u32,
            Address: [0; 20],
        };
        raw.Address[..self.digits.len().min(20)].copy_from_slice(&self.digits[..self.digits.len().min(20)]);
        raw
    }

    /// Whether there are no digits.
    pub fn is_empty(&self) -> bool {
        self.digits.is_empty()
    }
}

impl std::fmt::Display for AtmAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.address_type == ATM_E164 {
            write!(f, "+{}", String::from_utf8_lossy(&self.digits))
        } else {
            for (i, d) in self.digits.iter().enumerate() {
                if i == 13 || i == 19 {
                    f.write_str(".")?;
                }
                write!(f, "{d:02X}")?;
            }
            Ok(())
        }
    }
}

/// What a remote party does when called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Accepts at once (subject to the scheduler's choice of sync/pending).
    Accept,
    /// Rejects with this UNI cause (e.g. 17 user busy, 21 call rejected).
    Reject { cause: u8 },
    /// Accepts after `ticks` of virtual time.
    AnswerAfter { ticks: u64 },
    /// Accepts, then hangs up after `ticks` (remote DROP PARTY, cause 16, DropStatus SUCCESS).
    LeaveAfter { ticks: u64 },
    /// Accepts, then its link vanishes after `ticks` (network drop, cause 27, non-SUCCESS status).
    VanishAfter { ticks: u64 },
    /// Rejects with this UNI cause after `ticks` (a late ADD PARTY REJECT or release of the SETUP:
    /// the request pends, and may meet the client's own drop of the party meanwhile).
    RejectAfter { cause: u8, ticks: u64 },
    /// Accepts with parameters other than those asked for (a CONNECT or ADD PARTY ACKNOWLEDGE whose
    /// AAL parameters were negotiated down): the call manager sets CALL_PARAMETERS_CHANGED.
    AcceptChanged,
}

/// A leaf on the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteParty {
    pub address: AtmAddr,
    pub behaviour: Behaviour,
}

/// One simulated ATM adapter (CoNDIS miniport, NdisMediumAtm) and its network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterConfig {
    /// The adapter name NDIS passes in NDIS_BIND_PARAMETERS (e.g. `\DEVICE\{...}`).
    pub name: String,
    /// The adapter's own ATM address.
    pub local_address: AtmAddr,
    /// Leaves with configured behaviours.
    pub remotes: Vec<RemoteParty>,
    /// What a called address not in `remotes` does.
    pub default_behaviour: Behaviour,
}

impl AdapterConfig {
    /// An adapter named `name` whose network accepts every call.
    pub fn new(name: &str, local_address: AtmAddr) -> AdapterConfig {
        AdapterConfig {
            name: name.into(),
            local_address,
            remotes: Vec::new(),
            default_behaviour: Behaviour::Accept,
        }
    }

    /// Adds a leaf with `behaviour`.
    pub fn with_remote(mut self, address: AtmAddr, behaviour: Behaviour) -> AdapterConfig {
        self.remotes.push(RemoteParty { address, behaviour });
        self
    }

    /// The behaviour of the called `leaf` on this network (as [`AdapterConfig::behaviour_of`]).
    pub(crate) fn behaviour_of_leaf(&self, leaf: super::params::Leaf<'_>) -> Behaviour {
        self.remotes
            .iter()
            .find(|r| leaf.is(&r.address))
            .map(|r| r.behaviour.clone())
            .unwrap_or_else(|| self.default_behaviour.clone())
    }

    /// The behaviour of `address` on this network.
    pub fn behaviour_of(&self, address: &AtmAddr) -> Behaviour {
        self.remotes
            .iter()
            .find(|r| &r.address == address)
            .map(|r| r.behaviour.clone())
            .unwrap_or_else(|| self.default_behaviour.clone())
    }
}

/// The call manager's limits and strictness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallManagerConfig {
    /// Maximum parties per call (cause 47 beyond). 0: unlimited.
    pub max_leaves: u32,
    /// Maximum AddParty requests in flight per call (cause 92 beyond). 0: unlimited.
    pub max_pending_adds: u32,
    /// Require AAL and B-LLI IEs in a SETUP (RFC 1755).
    pub rfc1755_strict: bool,
    /// Report rejected call parameters as a verifier violation (`Ddi_CallParametersInvalid`).
    pub report_invalid_parameters: bool,
    /// The address families registered on every binding, in order, as (AddressFamily,
    /// MajorVersion, MinorVersion): by default a UNI 4.0 signalling family the client does not
    /// use, then Q.2931 UNI 3.1 ([`offered_families`]).
    pub families: Vec<(u32, u32, u32)>,
}

/// The address families a call manager offers on an ATM adapter by default: Q.2931 for UNI 4.0
/// signalling, which partyline must decline, and Q.2931 UNI 3.1, the one it opens
/// (nc-ndis-protocol_co_af_register_notify: NDIS notifies the client of every family registered on
/// the binding, and the client opens only those it can use).
pub fn offered_families() -> Vec<(u32, u32, u32)> {
    vec![(CO_ADDRESS_FAMILY_Q2931, 4, 0), (CO_ADDRESS_FAMILY_Q2931, 3, 1)]
}

impl Default for CallManagerConfig {
    fn default() -> Self {
        CallManagerConfig {
            max_leaves: 0,
            max_pending_adds: 0,
            rfc1755_strict: true,
            report_invalid_parameters: true,
            families: offered_families(),
        }
    }
}

/// The NDIS status a CM completes a request with for a UNI cause (atm-call-params.md §10).
pub fn cause_to_status(cause: u8) -> NDIS_STATUS {
    match cause {
        16 | 31 => NDIS_STATUS_SUCCESS,
        1 | 28 => NDIS_STATUS_INVALID_ADDRESS,
        2 | 3 => NDIS_STATUS_NO_ROUTE_TO_DESTINATION,
        27 => NDIS_STATUS_DEST_OUT_OF_ORDER,
        35 | 36 | 45 => NDIS_STATUS_VC_NOT_AVAILABLE,
        37 | 51 => NDIS_STATUS_CELLRATE_NOT_AVAILABLE,
        49 | 73 => NDIS_STATUS_INCOMPATIBLE_QOS,
        78 | 93 => NDIS_STATUS_AAL_PARAMS_UNSUPPORTED,
        47 | 92 => NDIS_STATUS_RESOURCES,
        _ => NDIS_STATUS_FAILURE,
    }
}

/// The CM's answer to a SETUP or ADD PARTY for a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Completion status.
    pub status: NDIS_STATUS,
    /// UNI cause (0 when accepted).
    pub cause: u8,
    /// The leaf answers no earlier than this (forces PENDING).
    pub min_delay: u64,
    /// After connecting: (ticks, status, cause) of a remote drop.
    pub leave: Option<(u64, NDIS_STATUS, u8)>,
    /// Accepted with changed parameters (CALL_PARAMETERS_CHANGED).
    pub changed: bool,
}

impl Answer {
    /// The call manager rejects with UNI `cause`, at once.
    pub fn rejected(cause: u8) -> Answer {
        Answer { status: reject_status(cause), cause, min_delay: 0, leave: None, changed: false }
    }
}

/// How the network answers a call to a leaf with `behaviour`.
pub fn answer(behaviour: &Behaviour) -> Answer {
    let accept = Answer { status: NDIS_STATUS_SUCCESS, cause: 0, min_delay: 0, leave: None, changed: false };
    match *behaviour {
        Behaviour::Accept => accept,
        Behaviour::Reject { cause } => Answer { status: reject_status(cause), cause, ..accept },
        Behaviour::AnswerAfter { ticks } => Answer { min_delay: ticks.max(1), ..accept },
        Behaviour::LeaveAfter { ticks } => {
            Answer { leave: Some((ticks.max(1), NDIS_STATUS_SUCCESS, 16)), ..accept }
        }
        Behaviour::VanishAfter { ticks } => {
            Answer { leave: Some((ticks.max(1), NDIS_STATUS_DEST_OUT_OF_ORDER, 27)), ..accept }
        }
        Behaviour::RejectAfter { cause, ticks } => {
            Answer { min_delay: ticks.max(1), ..Answer::rejected(cause) }
        }
        Behaviour::AcceptChanged => Answer { changed: true, ..accept },
    }
}

/// A rejection's status: never SUCCESS, even for the "normal clearing" causes.
pub fn reject_status(cause: u8) -> NDIS_STATUS {
    match cause_to_status(cause) {
        NDIS_STATUS_SUCCESS => NDIS_STATUS_FAILURE,
        status => status,
    }
}
