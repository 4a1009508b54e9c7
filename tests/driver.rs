//! The real partyline.sys in the simulator, driven through its control device: a
//! point-to-multipoint call grows, loses a party locally and one remotely, and closes; the driver
//! unloads clean. Under every fault policy and several seeds, the verifier must find nothing.

use ndis_sim::io::{Caller, IoManager, Poison, Suspects};
use ndis_sim::ndis::{AdapterConfig, AtmAddr, FaultPolicy};
use ndis_sim::sim::{SimConfig, Simulation};
use partyline_core::{AtmAddress, TrafficProfile};
use partyline_ioctl as ioctl;

use ndis_sys::status::STATUS_SUCCESS;

struct Bench {
    sim: Simulation,
}

impl Bench {
    fn new(seed: u64, faults: FaultPolicy) -> Bench {
        let adapter = AdapterConfig::new(
            r"\DEVICE\{ATM-0}",
            AtmAddr::nsap("47.0005.80FFE1000000F21A2B3C.0020481A2B3C.00"),
        );
        let config =
            SimConfig { seed, processors: 2, faults, adapters: vec![adapter], ..SimConfig::default() };
        let mut sim = Simulation::new(config, partyline_image::IMAGE).expect("partyline.sys loads");
        assert_eq!(sim.driver_entry_status, Some(0), "DriverEntry:\n{}", sim.timeline());
        sim.bind_all();
        sim.run_until_idle();
        Bench { sim }
    }

    fn ioctl(&self, caller: Caller, code: u32, input: &[u8], output_len: usize) -> (i32, Vec<u8>) {
        let world = self.sim.world().clone();
        let result =
            IoManager::of(&world).device_control(&world, ioctl::USER_PATH, code, input, output_len, caller);
        let answer =
            result.unwrap_or_else(|e| panic!("device control {code:#x}: {e:?}\n{}", self.sim.timeline()));
        self.sim.run_until_idle();
        answer
    }

    fn af(&self) -> u64 {
        let (status, out) = self.ioctl(
            Caller::User,
            ioctl::IOCTL_PARTYLINE_LIST_BINDINGS,
            &ioctl::request::encode_list_bindings(0),
            4096,
        );
        assert_eq!(status, STATUS_SUCCESS);
        let page = ioctl::decode_list_bindings_response(&out).expect("list");
        let af = page.iter().find_map(|e| match e {
            ioctl::ListEntry::AddressFamily { id, .. } => Some(id),
            _ => None,
        });
        af.unwrap_or_else(|| panic!("no address family open:\n{}", self.sim.timeline()))
    }

    fn make_call(&self, af: u64, leaves: &[AtmAddress]) -> u64 {
        let mut input = vec![0u8; ioctl::request::make_call_len(leaves.len())];
        ioctl::request::encode_make_call(&mut input, af, &TrafficProfile::DEFAULT, leaves).expect("encode");
        let (status, out) = self.ioctl(Caller::Administrator, ioctl::IOCTL_PARTYLINE_MAKE_CALL, &input, 64);
        assert_eq!(status, STATUS_SUCCESS, "make call:\n{}", self.sim.timeline());
        ioctl::decode_make_call_response(&out).expect("call id")
    }

    fn query(&self, call: u64) -> Option<(ioctl::CallSummary, Vec<ioctl::PartyEntry>)> {
        let (status, out) = self.ioctl(
            Caller::User,
            ioctl::IOCTL_PARTYLINE_QUERY_CALL,
            &ioctl::request::encode_query_call(call, 0),
            1 << 16,
        );
        if status != STATUS_SUCCESS {
            return None;
        }
        let (summary, page) = ioctl::decode_query_call_response(&out).expect("query");
        Some((summary, page.iter().collect()))
    }

    fn assert_clean(&self) {
        let violations = self.sim.violations();
        assert!(
            violations.is_empty(),
            "{}\n{}",
            violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n"),
            self.sim.timeline()
        );
    }
}

fn leaf(n: u8) -> AtmAddress {
    AtmAddress::parse(&format!("47.0005.80ffe1000000f21a3f{n:02x}.0020481a3f{n:02x}.00")).expect("leaf")
}

fn grow_drop_close(seed: u64, faults: FaultPolicy) {
    let mut bench = Bench::new(seed, faults);
    let af = bench.af();
    let call = bench.make_call(af, &[leaf(1), leaf(2), leaf(3), leaf(4)]);
    let (summary, parties) = bench.query(call).expect("call exists");
    assert_eq!(summary.connected, 4, "four leaves connected (seed {seed}):\n{}", bench.sim.timeline());
    // Drop one party locally.
    let (status, _) = bench.ioctl(
        Caller::Administrator,
        ioctl::IOCTL_PARTYLINE_DROP_PARTY,
        &ioctl::request::encode_drop_party(parties[1].id),
        0,
    );
    assert_eq!(status, STATUS_SUCCESS);
    // The network drops another.
    let victim = *bench.sim.live_parties().first().expect("live parties");
    bench.sim.remote_drop(victim);
    bench.sim.run_until_idle();
    let (summary, _) = bench.query(call).expect("call exists");
    assert_eq!(summary.connected, 2, "two left (seed {seed}):\n{}", bench.sim.timeline());
    // A user may look but not act: opening the device for write access is refused.
    let world = bench.sim.world().clone();
    let denied = IoManager::of(&world).device_control(
        &world,
        ioctl::USER_PATH,
        ioctl::IOCTL_PARTYLINE_CLOSE_CALL,
        &ioctl::request::encode_close_call(call),
        0,
        Caller::User,
    );
    assert!(denied.is_err(), "a standard user must not close calls: {denied:?}");
    let (status, _) = bench.ioctl(
        Caller::Administrator,
        ioctl::IOCTL_PARTYLINE_CLOSE_CALL,
        &ioctl::request::encode_close_call(call),
        0,
    );
    assert_eq!(status, STATUS_SUCCESS);
    assert!(bench.query(call).is_none(), "the call is gone (seed {seed}):\n{}", bench.sim.timeline());
    bench.sim.unload();
    bench.assert_clean();
}

#[test]
fn a_call_grows_loses_parties_and_closes_with_synchronous_requests() {
    grow_drop_close(1, FaultPolicy::synchronous());
}

#[test]
fn a_call_grows_loses_parties_and_closes_with_pending_requests() {
    grow_drop_close(2, FaultPolicy::always_pending());
}

#[test]
fn a_call_grows_loses_parties_and_closes_under_mixed_outcomes() {
    for seed in 1..=20 {
        grow_drop_close(seed, FaultPolicy::default());
    }
}

#[test]
fn unload_with_calls_up_tears_everything_down() {
    for seed in 1..=10 {
        let mut bench = Bench::new(seed, FaultPolicy::default());
        let af = bench.af();
        bench.make_call(af, &[leaf(1), leaf(2), leaf(3)]);
        bench.make_call(af, &[leaf(4)]);
        bench.sim.unload();
        bench.assert_clean();
    }
}

/// nc-ndis-protocol_cl_incoming_close_call (Ddi_IncomingCloseCall_VcNotDeleted): the network
/// releases a call with a failure status (and another with SUCCESS); partyline closes each and
/// deletes its VC.
#[test]
fn a_call_released_by_a_failing_network_is_closed_and_its_vc_deleted() {
    for seed in 1..=5 {
        let bench = Bench::new(seed, FaultPolicy::default());
        let af = bench.af();
        bench.make_call(af, &[leaf(1), leaf(2), leaf(3)]);
        bench.make_call(af, &[leaf(4)]);
        for (vc, status) in bench
            .sim
            .active_calls()
            .into_iter()
            .zip([ndis_sys::NDIS_STATUS_DEST_OUT_OF_ORDER, ndis_sys::NDIS_STATUS_SUCCESS])
        {
            bench.sim.remote_release(vc, status);
        }
        bench.sim.run_until_idle();
        bench.assert_clean();
        assert_eq!(bench.sim.ndis().live_objects(), (1, 0, 0), "seed {seed}:\n{}", bench.sim.timeline());
    }
}

/// nc-ndis-protocol_co_af_register_notify; verifier-rules.md §7.6 item 45
/// (Ddi_NdisClOpenAddressFamilyEx_AlreadyOpen): the call manager offers two families (UNI 4.0,
/// then Q.2931 UNI 3.1) and registers them again while partyline has UNI 3.1 open; partyline opens
/// UNI 3.1 once, declines the rest, and still makes calls.
#[test]
fn a_family_registered_again_is_not_opened_twice() {
    for seed in 1..=5 {
        let bench = Bench::new(seed, FaultPolicy::default());
        bench.sim.register_afs_again(0);
        bench.sim.run_until_idle();
        let af = bench.af();
        bench.make_call(af, &[leaf(1), leaf(2)]);
        bench.assert_clean();
        let log = bench.sim.log();
        let opens =
            log.iter().filter(|e| e.name == "NdisClOpenAddressFamilyEx" && e.detail.starts_with('(')).count();
        assert_eq!(opens, 1, "seed {seed}:\n{}", bench.sim.timeline());
        assert_eq!(log.iter().filter(|e| e.name == "ProtocolCoAfRegisterNotify").count(), 4);
    }
}

/// network/receiving-data-in-protocol-drivers, network/receiving-net-buffer-structures-in-condis-drivers,
/// nf-ndis-ndisreturnnetbufferlists: the miniport indicates receives on an active VC
/// (ProtocolCoReceiveNetBufferLists) and on the binding (ProtocolReceiveNetBufferLists), with and
/// without NDIS_RECEIVE_FLAGS_RESOURCES, at PASSIVE and at DISPATCH. partyline keeps nothing:
/// every owned list goes back with NdisReturnNetBufferLists (DISPATCH flag exactly at DISPATCH),
/// lent ones are left to NDIS, nothing is outstanding, the driver's counters agree, and the
/// binding closes and the driver unloads clean.
fn receives_are_given_back(seed: u64, faults: FaultPolicy) {
    use ndis_sim::kernel::{DISPATCH_LEVEL, PASSIVE_LEVEL};
    use ndis_sim::ndis::receive::Indication;
    let mut bench = Bench::new(seed, faults);
    let af = bench.af();
    let call = bench.make_call(af, &[leaf(1), leaf(2)]);
    let vc = *bench.sim.active_calls().first().expect("an active call");
    let (mut owned, mut lent) = (0, 0);
    for irql in [PASSIVE_LEVEL, DISPATCH_LEVEL] {
        for resources in [false, true] {
            for (count, on_vc) in [(3, true), (1, true), (2, false)] {
                let indication = Indication { count, resources, irql };
                let indicated = if on_vc {
                    bench.sim.indicate_receive_on_vc(vc, indication)
                } else {
                    bench.sim.indicate_receive_on_binding(0, indication)
                };
                indicated.unwrap_or_else(|e| panic!("{e} (seed {seed}):\n{}", bench.sim.timeline()));
                *(if resources { &mut lent } else { &mut owned }) += u64::from(count);
            }
        }
    }
    let received = bench.sim.receive_counters();
    assert_eq!((received.indicated, received.lent), (owned + lent, lent));
    assert_eq!(
        (received.returned, received.outstanding),
        (owned, 0),
        "every owned list is back (seed {seed}):\n{}",
        bench.sim.timeline()
    );
    let (status, out) = bench.ioctl(
        Caller::User,
        ioctl::IOCTL_PARTYLINE_READ_COUNTERS,
        &ioctl::request::encode_read_counters(),
        ioctl::response::COUNTERS_RESPONSE_LEN,
    );
    assert_eq!(status, STATUS_SUCCESS);
    let counters = ioctl::decode_counters_response(&out).expect("counters");
    assert_eq!(
        (counters.lists_received, counters.lists_returned, counters.refused),
        (owned + lent, owned, 0)
    );
    let (status, _) = bench.ioctl(
        Caller::Administrator,
        ioctl::IOCTL_PARTYLINE_CLOSE_CALL,
        &ioctl::request::encode_close_call(call),
        0,
    );
    assert_eq!(status, STATUS_SUCCESS);
    bench.sim.unload();
    bench.assert_clean();
    assert_eq!(bench.sim.receive_counters().stranded, 0);
}

#[test]
fn receives_on_a_vc_and_on_the_binding_are_given_back_with_synchronous_requests() {
    receives_are_given_back(1, FaultPolicy::synchronous());
}

#[test]
fn receives_on_a_vc_and_on_the_binding_are_given_back_under_mixed_outcomes() {
    for seed in 1..=5 {
        receives_are_given_back(seed, FaultPolicy::default());
    }
}

/// Every IOCTL of the control device once, with room to spare in every output buffer, then the
/// refusals (unknown id, output too small, malformed input), on a simulation poisoned with
/// `poison` (None: the seed's suspecting pattern). Returns the bench and run A's suspects.
fn every_ioctl(seed: u64, poison: Option<Poison>) -> (Bench, Suspects) {
    let bench = Bench::new(seed, FaultPolicy::synchronous());
    let world = bench.sim.world().clone();
    if let Some(poison) = poison {
        IoManager::of(&world).set_poison(poison);
    }
    let admin = Caller::Administrator;
    let af = bench.af();
    let call = bench.make_call(af, &[leaf(1), leaf(2), leaf(3)]);
    let (status, _) = bench.ioctl(
        admin,
        ioctl::IOCTL_PARTYLINE_ADD_PARTY,
        &ioctl::request::encode_add_party(call, &leaf(4)),
        64,
    );
    assert_eq!(status, STATUS_SUCCESS);
    let (_, parties) = bench.query(call).expect("call exists");
    for (code, input) in [
        (ioctl::IOCTL_PARTYLINE_LIST_CALLS, ioctl::request::encode_list_calls(0).to_vec()),
        (ioctl::IOCTL_PARTYLINE_READ_COUNTERS, ioctl::request::encode_read_counters().to_vec()),
        (ioctl::IOCTL_PARTYLINE_READ_TRACE, ioctl::request::encode_read_trace(0).to_vec()),
    ] {
        assert_eq!(bench.ioctl(admin, code, &input, 4096).0, STATUS_SUCCESS, "IOCTL {code:#x}");
    }
    let drop = ioctl::request::encode_drop_party(parties[1].id);
    assert_eq!(bench.ioctl(admin, ioctl::IOCTL_PARTYLINE_DROP_PARTY, &drop, 16).0, STATUS_SUCCESS);
    let close = ioctl::request::encode_close_call(call);
    assert_eq!(bench.ioctl(admin, ioctl::IOCTL_PARTYLINE_CLOSE_CALL, &close, 16).0, STATUS_SUCCESS);
    // Refusals: an id that no longer exists, an output buffer too small, a malformed request.
    let gone = ioctl::request::encode_query_call(call, 0);
    assert_ne!(bench.ioctl(admin, ioctl::IOCTL_PARTYLINE_QUERY_CALL, &gone, 4096).0, STATUS_SUCCESS);
    let list = ioctl::request::encode_list_bindings(0);
    assert_ne!(bench.ioctl(admin, ioctl::IOCTL_PARTYLINE_LIST_BINDINGS, &list, 8).0, STATUS_SUCCESS);
    assert_ne!(bench.ioctl(admin, ioctl::IOCTL_PARTYLINE_MAKE_CALL, &[0xA5; 40], 64).0, STATUS_SUCCESS);
    let suspects = IoManager::of(&world).disclosure_suspects();
    (bench, suspects)
}

/// Failure to Initialize Output Buffers: no response of partyline.sys returns a byte it did not
/// write. Run A is poisoned with the seed's pattern; its suspects (returned bytes that happen to
/// equal the pattern) are confirmed or cleared by run B, the same seed and requests poisoned with
/// the complement (see ndis_sim::io::disclosure for why this is exact).
#[test]
fn no_ioctl_response_returns_a_byte_the_driver_did_not_write() {
    for seed in [1, 2, 3] {
        let (mut first, suspects) = every_ioctl(seed, None);
        let world = first.sim.world().clone();
        let inspected = IoManager::of(&world).disclosure_inspected();
        assert!(inspected > 1000, "the responses carry output beyond the input ({inspected} bytes)");
        eprintln!("seed {seed}: {inspected} returned byte(s) inspected, {} suspect(s)", suspects.len());
        first.sim.unload();
        first.assert_clean();
        if suspects.is_empty() {
            continue; // Run A alone proves every returned byte was written.
        }
        let count = suspects.len();
        let (mut second, _) = every_ioctl(seed, Some(Poison::Confirm { seed, suspects }));
        let world = second.sim.world().clone();
        assert_eq!(IoManager::of(&world).disclosure_diverged(), 0, "run B replays run A (seed {seed})");
        second.sim.unload();
        second.assert_clean();
        eprintln!("seed {seed}: {count} suspect byte(s) in run A, none confirmed");
    }
}
