//! One simulated machine with partyline.sys loaded and bound, driven through its control device
//! exactly as `tests/driver.rs` does, but over one open administrator handle (a benchmark measures
//! party operations, not `CreateFile`).

use std::sync::Arc;

use ndis_sim::io::{Caller, FileHandle, IoManager};
use ndis_sim::ndis::{AdapterConfig, AtmAddr, FaultPolicy};
use ndis_sim::sim::{SimConfig, Simulation};
use ndis_sim::World;
use partyline_core::{AtmAddress, TrafficProfile};
use partyline_ioctl as ioctl;

use ndis_sys::status::STATUS_SUCCESS;

/// A bound simulation and an open handle to `\\.\Partyline`.
pub struct Harness {
    pub sim: Simulation,
    world: Arc<World>,
    io: Arc<IoManager>,
    handle: FileHandle,
}

/// Leaf `n`: a distinct NSAP address for every `n < 2^32`.
pub fn leaf(n: u32) -> AtmAddress {
    let mut octets = [0u8; 20];
    octets[..8].copy_from_slice(&[0x47, 0x00, 0x05, 0x80, 0xff, 0xe1, 0x00, 0x00]);
    octets[8..12].copy_from_slice(&n.to_be_bytes());
    octets[13..19].copy_from_slice(&[0x00, 0x20, 0x48, 0x1a, 0x3f, 0x01]);
    AtmAddress::nsap(&octets).expect("20-octet NSAP")
}

/// The simulator configuration every benchmark uses: one adapter whose network accepts all.
pub fn config(seed: u64, faults: FaultPolicy) -> SimConfig {
    let adapter =
        AdapterConfig::new(r"\DEVICE\{ATM-0}", AtmAddr::nsap("47.0005.80FFE1000000F21A2B3C.0020481A2B3C.00"));
    SimConfig { seed, processors: 2, faults, adapters: vec![adapter], ..SimConfig::default() }
}

impl Harness {
    /// Loads a fresh image instance, runs DriverEntry, binds, and opens the control device; then
    /// switches the verifier off if `verifier` is false (only to measure what it costs).
    pub fn new(config: SimConfig, verifier: bool) -> Harness {
        let mut sim = Simulation::new(config, partyline_image::image()).expect("partyline.sys loads");
        assert_eq!(sim.driver_entry_status, Some(0), "DriverEntry failed");
        sim.bind_all();
        let world = sim.world().clone();
        let io = IoManager::of(&world);
        let access = ndis_sys::FILE_GENERIC_READ | ndis_sys::FILE_GENERIC_WRITE | ndis_sys::SYNCHRONIZE;
        let handle = io.open(&world, ioctl::USER_PATH, access, Caller::Administrator).expect("open device");
        sim.set_verifier(verifier);
        Harness { sim, world, io, handle }
    }

    /// One DeviceIoControl, then the simulation runs until idle.
    pub fn ioctl(&self, code: u32, input: &[u8], output_len: usize) -> (i32, Vec<u8>) {
        let mut output = vec![0; output_len];
        let (status, written) = self.ioctl_into(code, input, &mut output);
        output.truncate(written);
        (status, output)
    }

    /// [`Harness::ioctl`] into the caller's output buffer (no allocation): the status and how
    /// many bytes were written.
    pub fn ioctl_into(&self, code: u32, input: &[u8], output: &mut [u8]) -> (i32, usize) {
        // Requests from user mode arrive on processor 0; entered once for the request and the
        // drive loop after it.
        let _entered = self.world.enter_unless_current(0);
        let answer = self
            .io
            .device_control_into(&self.world, self.handle, code, input, output)
            .unwrap_or_else(|e| panic!("device control {code:#x}: {e:?}"));
        self.sim.run_until_idle();
        answer
    }

    /// The first open address family.
    pub fn af(&self) -> u64 {
        let (status, out) =
            self.ioctl(ioctl::IOCTL_PARTYLINE_LIST_BINDINGS, &ioctl::request::encode_list_bindings(0), 4096);
        assert_eq!(status, STATUS_SUCCESS, "list bindings");
        let page = ioctl::decode_list_bindings_response(&out).expect("list");
        let af = page
            .iter()
            .find_map(|e| match e {
                ioctl::ListEntry::AddressFamily { id, .. } => Some(id),
                _ => None,
            })
            .expect("an address family is open");
        af
    }

    /// Makes a call to `leaves`; the call's id.
    pub fn make_call(&self, af: u64, leaves: &[AtmAddress]) -> u64 {
        let mut input = vec![0u8; ioctl::request::make_call_len(leaves.len())];
        ioctl::request::encode_make_call(&mut input, af, &TrafficProfile::DEFAULT, leaves).expect("encode");
        let (status, out) = self.ioctl(ioctl::IOCTL_PARTYLINE_MAKE_CALL, &input, 64);
        assert_eq!(status, STATUS_SUCCESS, "make call");
        ioctl::decode_make_call_response(&out).expect("call id")
    }

    /// Adds `leaf` to `call`; the party's id.
    pub fn add_party(&self, call: u64, leaf: &AtmAddress) -> u64 {
        let mut out = [0; 64];
        let input = ioctl::request::encode_add_party(call, leaf);
        let (status, written) = self.ioctl_into(ioctl::IOCTL_PARTYLINE_ADD_PARTY, &input, &mut out);
        assert_eq!(status, STATUS_SUCCESS, "add party");
        ioctl::decode_add_party_response(&out[..written]).expect("party id")
    }

    /// Drops `party` locally.
    pub fn drop_party(&self, party: u64) {
        let input = ioctl::request::encode_drop_party(party);
        let (status, _) = self.ioctl_into(ioctl::IOCTL_PARTYLINE_DROP_PARTY, &input, &mut []);
        assert_eq!(status, STATUS_SUCCESS, "drop party");
    }

    /// Closes `call`.
    pub fn close_call(&self, call: u64) {
        let (status, _) =
            self.ioctl(ioctl::IOCTL_PARTYLINE_CLOSE_CALL, &ioctl::request::encode_close_call(call), 0);
        assert_eq!(status, STATUS_SUCCESS, "close call");
    }

    /// Closes the handle, unloads the driver, and fails on any violation.
    pub fn finish(mut self) {
        self.io.close(&self.world, self.handle).expect("close device");
        self.sim.unload();
        let violations = self.sim.violations();
        assert!(
            violations.is_empty(),
            "{}",
            violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n")
        );
    }
}

/// A small deterministic generator (splitmix64) for drop orders.
pub struct Shuffle(u64);

impl Shuffle {
    pub fn new(seed: u64) -> Shuffle {
        Shuffle(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}
