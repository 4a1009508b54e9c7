//! The real partyline.sys in the simulator, driven through its control device: a
//! point-to-multipoint call grows, loses a party locally and one remotely, and closes; the driver
//! unloads clean. Under every fault policy and several seeds, the verifier must find nothing.

use ndis_sim::io::{Caller, IoManager};
use ndis_sim::ndis::{AdapterConfig, AtmAddr, FaultPolicy};
use ndis_sim::sim::{SimConfig, Simulation};
use partyline_core::{AtmAddress, TrafficProfile};
use partyline_ioctl as ioctl;

const STATUS_SUCCESS: i32 = 0;

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
