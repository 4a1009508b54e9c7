//! The real `partyline.sys`'s control device in the simulated I/O manager: closed from its first
//! instant, and without a namespace.
//!
//! "What does DO_DEVICE_INITIALIZING really do?": the I/O manager refuses every open by name of a
//! device whose DO_DEVICE_INITIALIZING is set, and clears it for the devices created in DriverEntry
//! when DriverEntry returns
//! (https://learn.microsoft.com/previous-versions/windows/hardware/design/dn614010(v=vs.85)).
//! "Controlling Device Namespace Access": a driver without a namespace fails an IRP_MJ_CREATE
//! whose FileObject->FileName is not empty
//! (https://learn.microsoft.com/windows-hardware/drivers/kernel/controlling-device-namespace-access).

use ndis_sim::io::{Caller, IoError, IoManager, STATUS_NO_SUCH_DEVICE};
use ndis_sim::ndis::FaultPolicy;
use ndis_sim::sim::{SimConfig, Simulation};
use ndis_sys::*;

fn config() -> SimConfig {
    SimConfig { seed: 16, faults: FaultPolicy::synchronous(), ..SimConfig::default() }
}

#[test]
fn no_open_reaches_the_device_before_driver_entry_returns() {
    let sim = Simulation::new_with(config(), partyline_image::image(), |world| {
        IoManager::of(world).probe_opens(r"\Device\Partyline", GENERIC_READ, Caller::User)
    })
    .expect("the image loads");
    assert_eq!(sim.driver_entry_status, Some(STATUS_SUCCESS), "{}", sim.timeline());
    let io = IoManager::of(sim.world());
    let answers = io.probe_answers();
    // The window between IoCreateDevice and the restrictive DACL: the probe at the entry of
    // ZwSetSecurityObject runs while the device still has its default descriptor.
    let created = answers.iter().position(|(export, _)| *export == "IoCreateDevice").expect("probed");
    let secured = answers.iter().position(|(export, _)| *export == "ZwSetSecurityObject").expect("probed");
    assert!(created < secured);
    for (export, answer) in &answers[created + 1..] {
        let refused = matches!(answer, Err(IoError::Initializing(_)));
        assert!(refused, "an open at the entry of {export} got {answer:?}");
        assert_eq!(answer.as_ref().unwrap_err().status(), STATUS_NO_SUCH_DEVICE);
    }
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
    // Once DriverEntry has returned, the device opens, with its restrictive DACL.
    let handle = io.open(sim.world(), r"\\.\Partyline", GENERIC_READ, Caller::User).expect("opens");
    assert_eq!(io.close(sim.world(), handle), Ok(STATUS_SUCCESS));
}

#[test]
fn an_open_with_a_trailing_file_name_is_refused_by_the_driver() {
    let sim = Simulation::new(config(), partyline_image::image()).expect("the image loads");
    let io = IoManager::of(sim.world());
    let world = sim.world();
    for caller in [Caller::System, Caller::Administrator, Caller::User] {
        let handle = io.open(world, r"\\.\Partyline", GENERIC_READ, caller).expect("a plain open succeeds");
        assert_eq!(io.close(world, handle), Ok(STATUS_SUCCESS));
        for path in [r"\\.\Partyline\anything", r"\\.\Partyline\", r"\Device\Partyline\x\y"] {
            let refused = io.open(world, path, GENERIC_READ, caller);
            assert_eq!(refused, Err(IoError::CreateFailed(STATUS_ACCESS_DENIED)), "{path} as {caller:?}");
        }
    }
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
}
