//! The real `partyline.sys` in the simulator: DriverEntry → bind → AF open, on the simulated NDIS.

use ndis_sim::ndis::{AdapterConfig, AtmAddr, FaultPolicy};
use ndis_sim::sim::{SimConfig, Simulation};

fn config(seed: u64, faults: FaultPolicy) -> SimConfig {
    let adapter =
        AdapterConfig::new(r"\DEVICE\{ATM-0}", AtmAddr::nsap("47.0005.80FFE1000000F21A2B3C.0020481A2B3C.00"));
    SimConfig { seed, processors: 2, faults, adapters: vec![adapter], ..SimConfig::default() }
}

#[test]
fn driver_entry_binds_and_opens_the_q2931_af() {
    let mut sim = Simulation::new(config(1, FaultPolicy::synchronous()), partyline_image::image())
        .expect("partyline.sys loads");
    println!("seed 1");
    assert_eq!(sim.driver_entry_status, Some(0), "{}", sim.timeline());
    assert!(sim.ndis().is_registered(), "{}", sim.timeline());
    sim.bind_all();
    let log = sim.log();
    for name in [
        "ProtocolBindAdapterEx",
        "NdisOpenAdapterEx",
        "ProtocolCoAfRegisterNotify",
        "NdisClOpenAddressFamilyEx",
    ] {
        assert!(log.iter().any(|e| e.name == name), "{name} missing:\n{}", sim.timeline());
    }
    assert_eq!(sim.ndis().live_objects().0, 1, "one AF open:\n{}", sim.timeline());
    assert!(sim.violations().is_empty(), "{}", sim.summary());
}
