//! The harness: one simulated machine running `partyline.sys` against the simulated NDIS.
//!
//! Flow: [`Simulation::new`] creates a [`World`], installs the simulated NDIS with the config,
//! loads the image with the kernel + ndis.sys (+ I/O, when it lands) exports, and calls
//! DriverEntry at PASSIVE; [`Simulation::bind_all`] binds every configured adapter. Then the test
//! or the `partyline` command drives time ([`Simulation::run_until_idle`],
//! [`Simulation::advance`]) and network events, and reads the [`log`](Simulation::log),
//! [`violations`](Simulation::violations) and [`counters`](Simulation::counters).

use std::sync::Arc;

use crate::exports::ExportTable;
use ndis_sys::base::{NTSTATUS, UNICODE_STRING};
use ndis_sys::kernel::{DRIVER_INITIALIZE, DRIVER_OBJECT};

use crate::kernel::{LogEntry, World, PASSIVE_LEVEL};
use crate::loader::{Image, LoadError};
use crate::ndis::receive::{counters, indicate, Indication, ReceiveCounters, ReceiveError, Target};
use crate::ndis::{self, AdapterConfig, CallManagerConfig, Counters, FaultPolicy, Ndis, NdisConfig, Work};
use crate::verifier::{Cleanup, Verifier, Violation};

/// Everything a run is made of. A plain struct a TOML scenario can map onto.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seed of every random choice; the same seed replays the same run.
    pub seed: u64,
    /// Simulated processors (>= 1).
    pub processors: usize,
    /// How requests are answered and what is injected.
    pub faults: FaultPolicy,
    /// The adapters, each with its network of remote parties.
    pub adapters: Vec<AdapterConfig>,
    /// The call manager's knobs.
    pub call_manager: CallManagerConfig,
    /// How the machine interleaves the processors (see [`crate::machine`]).
    pub schedule: crate::machine::Schedule,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            processors: 2,
            faults: FaultPolicy::default(),
            adapters: Vec::new(),
            call_manager: CallManagerConfig::default(),
            schedule: crate::machine::Schedule::default(),
        }
    }
}

impl SimConfig {
    fn ndis(&self) -> NdisConfig {
        NdisConfig {
            seed: self.seed,
            faults: self.faults.clone(),
            adapters: self.adapters.clone(),
            call_manager: self.call_manager.clone(),
        }
    }
}

/// Every export the image can import: kernel foundation, ndis.sys, and the rest declared by
/// `ndis_sys::IMPORTS` as not implemented (they stop the run, naming themselves, if called).
pub fn export_table() -> ExportTable {
    let mut table = ExportTable::with_kernel();
    ndis::register(&mut table);
    crate::io::register(&mut table);
    table.insert_not_implemented_for_missing(ndis_sys::IMPORTS.iter().map(|i| (i.dll, i.name)));
    table
}

/// One simulated machine with the driver loaded.
pub struct Simulation {
    config: SimConfig,
    world: Arc<World>,
    ndis: Arc<Ndis>,
    image: Option<Image>,
    driver_object: Box<[u64; 0x150 / 8]>,
    _registry_path: (Vec<u16>, Box<[u64; 2]>),
    /// DriverEntry's NTSTATUS.
    pub driver_entry_status: Option<i32>,
}

impl Simulation {
    /// A simulation without an image: the test thread acts as the driver, calling exports.
    pub fn without_image(config: SimConfig) -> Simulation {
        let world = World::new(config.processors.max(1));
        world.machine().configure(config.seed, config.schedule);
        // The I/O manager and the verifier first: extensions are found newest first, and every
        // ndis.sys export looks the simulated NDIS up.
        crate::io::install(&world, config.seed);
        Verifier::of(&world);
        let ndis = ndis::install(&world, config.ndis());
        let path: Vec<u16> =
            r"\Registry\Machine\System\CurrentControlSet\Services\partyline".encode_utf16().collect();
        let bytes = (path.len() * 2) as u64;
        let registry = Box::new([bytes | (bytes << 16), path.as_ptr() as u64]);
        Simulation {
            config,
            world,
            ndis,
            image: None,
            driver_object: Box::new([0; 0x150 / 8]),
            _registry_path: (path, registry),
            driver_entry_status: None,
        }
    }

    /// Loads `image` and runs DriverEntry at PASSIVE on processor 0.
    pub fn new(config: SimConfig, image: &[u8]) -> Result<Simulation, LoadError> {
        Simulation::new_with(config, image, |_| ())
    }

    /// [`Simulation::new`], with `prepare` run on the world before DriverEntry (to watch what
    /// happens while it runs, such as [`crate::io::IoManager::probe_opens`]).
    pub fn new_with(
        config: SimConfig,
        image: &[u8],
        prepare: impl FnOnce(&Arc<World>),
    ) -> Result<Simulation, LoadError> {
        let mut sim = Simulation::without_image(config);
        prepare(&sim.world);
        let image = Image::load("partyline.sys", image, &export_table())?;
        let entry = image.entry_point();
        sim.image = Some(image);
        // SAFETY: the entry point of the image just loaded (DRIVER_INITIALIZE), which lives as
        // long as `sim`.
        let driver_entry: DRIVER_INITIALIZE =
            unsafe { std::mem::transmute::<usize, DRIVER_INITIALIZE>(entry) };
        sim.call_driver_entry(driver_entry);
        Ok(sim)
    }

    /// Calls `driver_entry` as the I/O manager does, at PASSIVE on processor 0's own thread (see
    /// [`crate::machine`]), with this simulation's `DRIVER_OBJECT` and registry path, and records
    /// its status in [`Simulation::driver_entry_status`] (`None` if the run stopped inside it).
    /// [`Simulation::new`] calls it with the image's entry point; tests call it with a host
    /// routine that plays a driver.
    pub fn call_driver_entry(&mut self, driver_entry: DRIVER_INITIALIZE) -> Option<NTSTATUS> {
        let driver_object = self.driver_object.as_mut_ptr().cast::<DRIVER_OBJECT>();
        crate::io::IoManager::of(&self.world).set_driver_object(driver_object);
        let (driver_object, registry) =
            (driver_object as usize, self._registry_path.1.as_mut_ptr().cast::<UNICODE_STRING>() as usize);
        let seed = self.config.seed;
        let world = Arc::clone(&self.world);
        self.driver_entry_status = self.on_processor(0, "sim:DriverEntry", move || {
            world.set_irql(0, PASSIVE_LEVEL);
            crate::io::IoManager::of_ref(&world).driver_entry_begins();
            world.log_call(0, "sim", "DriverEntry", format!("seed {seed}"));
            // SAFETY: DRIVER_INITIALIZE's contract: both arguments are live host allocations of
            // the sizes the driver may touch (a zeroed x64 DRIVER_OBJECT, a UNICODE_STRING over a
            // buffer the simulation keeps), called at PASSIVE_LEVEL.
            let status =
                unsafe { driver_entry(driver_object as *mut DRIVER_OBJECT, registry as *mut UNICODE_STRING) };
            // The I/O manager makes the devices DriverEntry created openable only now.
            crate::io::IoManager::of_ref(&world).driver_entry_returned();
            world.log_call(0, "sim", "DriverEntry", format!("returned {status:#010x}"));
            status
        });
        self.driver_entry_status
    }

    /// Whether DriverEntry ran and failed (an NTSTATUS that is neither success nor informational:
    /// `!NT_SUCCESS`). Such a driver is never loaded, so it never gets a request or DriverUnload.
    pub fn driver_entry_failed(&self) -> bool {
        self.driver_entry_status.is_some_and(|status| status < 0)
    }

    /// Runs `f` as harness work on processor `processor`'s own thread (see [`crate::machine`]) and
    /// returns its result; `None` if the run stopped first.
    pub fn on_processor<R: Send + 'static>(
        &self,
        processor: usize,
        name: &'static str,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        self.world.machine().run_task(&self.world, name, Some(processor), f)
    }

    /// How the run stopped, if it did (a bug check, a deadlock, a special-pool fault...).
    pub fn stop(&self) -> Option<crate::kernel::Stop> {
        self.world.stop()
    }

    /// The world (for tests that call exports directly).
    pub fn world(&self) -> &Arc<World> {
        &self.world
    }

    /// The loaded image, if any (benchmarks use its address range).
    pub fn image(&self) -> Option<&Image> {
        self.image.as_ref()
    }

    /// Switches the verifier's checks on (the default) or off; see [`Verifier::set_enabled`].
    /// Only for measuring what the verifier costs: with it off a run proves nothing.
    pub fn set_verifier(&self, enabled: bool) {
        Verifier::of(&self.world).set_enabled(enabled);
    }

    /// The simulated NDIS.
    pub fn ndis(&self) -> &Arc<Ndis> {
        &self.ndis
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Binds every adapter (ProtocolBindAdapterEx), sends NetEventBindsComplete, and runs until idle.
    pub fn bind_all(&mut self) {
        let (world, ndis) = (Arc::clone(&self.world), Arc::clone(&self.ndis));
        let adapters = self.config.adapters.len();
        self.on_processor(0, "sim:BindAll", move || {
            for adapter in 0..adapters {
                ndis::binding::bind_adapter(&world, &ndis, adapter);
            }
            ndis::pnp::send_global(&world, &ndis, ndis_sys::NetEventBindsComplete);
        });
        self.run_until_idle();
    }

    /// Runs queued work until none is left, then checks owed completions.
    pub fn run_until_idle(&self) {
        ndis::run_until_idle(&self.world);
    }

    /// Runs work due within `ticks` (100 ns) and moves time on.
    pub fn advance(&self, ticks: u64) {
        ndis::advance(&self.world, ticks);
    }

    fn binding_of(&self, adapter: usize) -> Option<u64> {
        self.ndis.bindings().into_iter().filter(|(_, a, _)| *a == adapter).map(|(id, _, _)| id).next_back()
    }

    /// NDIS unbinds `adapter` (NetEventPause if it runs, then ProtocolUnbindAdapterEx) and runs
    /// until idle.
    pub fn unbind(&self, adapter: usize) {
        let Some(binding) = self.binding_of(adapter) else { return };
        let (world, ndis) = (Arc::clone(&self.world), Arc::clone(&self.ndis));
        self.on_processor(0, "sim:Unbind", move || {
            ndis::binding::unbind_binding(&world, &ndis, binding, 0);
        });
        ndis::run_until_idle(&self.world);
    }

    /// NDIS uninstalls the protocol: every adapter still bound is unbound ([`Simulation::unbind`]),
    /// then ProtocolUninstall runs ([`ndis::protocol::call_uninstall`]) and the world runs until
    /// idle. DriverUnload comes later, as for any run.
    pub fn uninstall(&self) {
        let adapters: Vec<usize> =
            self.ndis.bindings().into_iter().filter(|(_, _, bound)| *bound).map(|(_, a, _)| a).collect();
        for adapter in adapters {
            self.unbind(adapter);
        }
        let (world, ndis) = (Arc::clone(&self.world), Arc::clone(&self.ndis));
        self.on_processor(0, "sim:Uninstall", move || {
            ndis::protocol::call_uninstall(&world, &ndis, 0);
        });
        ndis::run_until_idle(&self.world);
    }

    /// The switch address of `adapter` changes to `address`: the call manager tells every open
    /// AF on it (OID_CO_ADDRESS_CHANGE); see [`ndis::co_oid`].
    pub fn change_address(&self, adapter: usize, address: ndis::AtmAddr) {
        ndis::co_oid::change_address(&self.world, &self.ndis, adapter, address);
    }

    /// The call manager registers its address families on `adapter`'s binding again
    /// (ProtocolCoAfRegisterNotify for each, while the client may already have them open).
    pub fn register_afs_again(&self, adapter: usize) {
        let Some(binding) = self.binding_of(adapter) else { return };
        let now = self.world.now();
        self.ndis.state().schedule(now, 0, ndis::Work::AfRegisterNotify { binding, again: true });
        self.world.machine().notify();
    }

    /// NDIS sends the events of `step` to `adapter`'s binding ([`ndis::pnp::deliver_step`]) on
    /// processor 0, at PASSIVE, while the rest of the world runs (completions in flight go on);
    /// returns once the step's last event has its final status. Nothing else runs on after it:
    /// the caller settles. `Err` says why the step does not apply (nothing was sent).
    pub fn pnp(&self, adapter: usize, step: ndis::pnp::PnpStep) -> Result<(), String> {
        let Some(binding) = self.binding_of(adapter) else {
            return Err(format!("adapter {adapter} has no binding"));
        };
        let (world, ndis) = (Arc::clone(&self.world), Arc::clone(&self.ndis));
        self.on_processor(0, "sim:NetPnPEvent", move || ndis::pnp::deliver_step(&world, &ndis, binding, step))
            .unwrap_or_else(|| Err("the run stopped".into()))
    }

    /// `adapter`'s binding's PnP state: its operational state, whether its adapter is in D0, and
    /// whether a query-remove awaits its cancel. `None` when it is not bound.
    pub fn pnp_state(&self, adapter: usize) -> Option<(ndis::pnp::Operational, bool, bool)> {
        let binding = self.binding_of(adapter)?;
        let state = self.ndis.state();
        let b = state.bindings.get(&binding).filter(|b| b.state == ndis::binding::BindingState::Bound)?;
        Some((b.operational, b.power == ndis_sys::NdisDeviceStateD0, b.remove_queried))
    }

    /// The CM closes every open AF on `adapter` (NdisCmNotifyCloseAddressFamily).
    pub fn notify_close_af(&self, adapter: usize) {
        let Some(binding) = self.binding_of(adapter) else { return };
        let afs: Vec<u64> = {
            let state = self.ndis.state();
            state
                .afs
                .iter()
                .filter(|(_, af)| af.binding == binding && af.is_alive())
                .map(|(id, _)| *id)
                .collect()
        };
        let now = self.world.now();
        for af in afs {
            self.ndis.state().schedule(now, 0, Work::NotifyCloseAf { af });
        }
    }

    /// Whether NDIS has no binding of the driver left (every adapter unbound, or none bound).
    pub fn all_unbound(&self) -> bool {
        self.ndis.bindings().iter().all(|(_, _, bound)| !bound)
    }

    /// Party `party` (a `Pt#` id) leaves: remote DROP PARTY with DropStatus SUCCESS.
    pub fn remote_drop(&self, party: u64) {
        let now = self.world.now();
        self.ndis.state().schedule(
            now,
            0,
            Work::RemoteDrop { party, status: ndis_sys::NDIS_STATUS_SUCCESS, cause: 16 },
        );
    }

    /// The network releases call `vc` (a `Vc#` id) with `status` (SUCCESS: remote release).
    pub fn remote_release(&self, vc: u64, status: i32) {
        let now = self.world.now();
        self.ndis.state().schedule(now, 0, Work::RemoteRelease { vc, status });
    }

    /// Live parties (ids) of every call, for choosing whom to drop.
    pub fn live_parties(&self) -> Vec<u64> {
        let state = self.ndis.state();
        state
            .parties
            .iter()
            .filter(|(_, p)| p.state() == ndis::PartyState::Connected)
            .map(|(id, _)| id)
            .collect()
    }

    /// The party at `address` that is not gone (its `Pt#` id and state), if any: the last one made.
    pub fn party_at(&self, address: &ndis::AtmAddr) -> Option<(u64, ndis::PartyState)> {
        let state = self.ndis.state();
        let found =
            state.parties.iter().rev().find(|(_, p)| p.state() != ndis::PartyState::Gone && p.is_at(address));
        found.map(|(id, p)| (id, p.state()))
    }

    /// Parties with a request or a network event in flight (ids): being added, being dropped by
    /// the client, dropped by the network and not yet answered, or on a call the client is
    /// closing. What a DROP PARTY from the network crosses ([`ndis::crossing`]).
    pub fn parties_in_flight(&self) -> Vec<u64> {
        let state = self.ndis.state();
        let closing = |vc: u64| state.vcs.get(&vc).is_some_and(|v| v.state == ndis::vc::VcState::Closing);
        state
            .parties
            .iter()
            .filter(|(_, p)| match p.state() {
                ndis::PartyState::Gone => false,
                ndis::PartyState::Connected => closing(p.vc),
                _ => true,
            })
            .map(|(id, _)| id)
            .collect()
    }

    /// Calls with a request or a network event in flight (VC ids): MakeCall pending, closing, or
    /// released by the network and not yet closed. What a RELEASE from the network crosses.
    pub fn calls_in_flight(&self) -> Vec<u64> {
        let state = self.ndis.state();
        state
            .vcs
            .iter()
            .filter(|(_, vc)| {
                !vc.deleted
                    && match vc.state {
                        ndis::vc::VcState::MakeCallPending | ndis::vc::VcState::Closing => true,
                        ndis::vc::VcState::Active => vc.incoming_close.is_some(),
                        _ => false,
                    }
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Active calls (VC ids).
    pub fn active_calls(&self) -> Vec<u64> {
        let state = self.ndis.state();
        state.vcs.iter().filter(|(_, vc)| vc.state == ndis::vc::VcState::Active).map(|(id, _)| *id).collect()
    }

    /// Calls DriverUnload (PASSIVE), then checks registration, live objects and pool leaks by tag.
    ///
    /// After a failed DriverEntry, DriverUnload is not called, as on Windows, but the same checks
    /// run, charged to DriverEntry: "DriverEntry Return Values": a DriverEntry that fails must
    /// free every object and resource it set up before it returns, and a driver's Unload routine is
    /// not called if its DriverEntry returns a failure status
    /// (https://learn.microsoft.com/windows-hardware/drivers/kernel/driverentry-return-values).
    pub fn unload(&mut self) {
        if self.world.stop().is_some() {
            return;
        }
        let failed = self.driver_entry_failed();
        let unload = self.driver_object[0x68 / 8];
        if failed {
            let status = self.driver_entry_status.unwrap_or_default();
            let detail = format!("not called: DriverEntry failed with {status:#010x}");
            self.world.log_call(0, crate::ndis::DRIVER_DLL, "DriverUnload", detail);
        } else if unload != 0 {
            type DriverUnload = unsafe extern "win64" fn(*mut u64);
            // SAFETY: DRIVER_OBJECT.DriverUnload as DriverEntry set it: a DRIVER_UNLOAD in the
            // loaded image, called at PASSIVE with the same driver object.
            let unload: DriverUnload = unsafe { std::mem::transmute::<usize, DriverUnload>(unload as usize) };
            let driver_object = self.driver_object.as_mut_ptr() as usize;
            let world = Arc::clone(&self.world);
            self.on_processor(0, "sim:DriverUnload", move || {
                world.log_call(0, crate::ndis::DRIVER_DLL, "DriverUnload", String::new());
                // SAFETY: see above; the simulation keeps the driver object alive.
                unsafe { unload(driver_object as *mut u64) };
            });
        }
        ndis::run_until_idle(&self.world);
        if self.world.stop().is_some() {
            return;
        }
        let routine = if failed { Cleanup::FailedDriverEntry } else { Cleanup::DriverUnload };
        check_cleanup(&self.world, &self.ndis, routine);
        crate::io::check_cleanup(&self.world, routine);
    }

    /// Every violation so far.
    pub fn violations(&self) -> Vec<Violation> {
        Verifier::of(&self.world).violations()
    }

    /// The ordered timeline of every DDI call and callback.
    pub fn log(&self) -> Vec<LogEntry> {
        self.world.log()
    }

    /// The timeline rendered one entry per line.
    pub fn timeline(&self) -> String {
        self.log().iter().map(|e| format!("{e}\n")).collect()
    }

    /// Counters of what happened.
    pub fn counters(&self) -> Counters {
        self.ndis.counters()
    }

    /// A short summary: seed, time, counters, violations.
    pub fn summary(&self) -> String {
        let mut out = format!("seed {} | t={} | {:?}\n", self.config.seed, self.world.now(), self.counters());
        for (tag, bytes) in self.ndis.bytes_held_per_tag() {
            out.push_str(&format!("pool '{}': {bytes} bytes held\n", ndis::memory::tag_name(tag)));
        }
        for violation in self.violations() {
            out.push_str(&format!("{violation}\n"));
        }
        out
    }
}

impl Drop for Simulation {
    /// A stopped run's processor threads stay parked for good, holding the world: its log goes
    /// back at once.
    fn drop(&mut self) {
        self.world.release_after_stop();
    }
}

/// The unload checks: the protocol deregistered, no binding left open, no pool left (by tag).
pub fn check_unload(world: &World, ndis: &Ndis) {
    check_cleanup(world, ndis, Cleanup::DriverUnload);
}

/// [`check_unload`] after `routine`: after DriverUnload, or after a DriverEntry that failed.
pub fn check_cleanup(world: &World, ndis: &Ndis, routine: Cleanup) {
    use crate::ndis::rules;
    let (call, ended) = (routine.call(), routine.ended());
    if ndis.is_registered() {
        crate::ndis::violation(
            world,
            rules::UNLOAD_WITH_OBJECTS,
            call,
            format!("{ended} with the protocol still registered"),
        );
    }
    let (afs, vcs, parties) = ndis.live_objects();
    if afs + vcs + parties > 0 {
        crate::ndis::violation(
            world,
            rules::UNLOAD_WITH_OBJECTS,
            call,
            format!("{ended} with {afs} AF(s), {vcs} VC(s), {parties} part(ies) still alive"),
        );
    }
    for (tag, blocks, bytes) in ndis.state().pool.leaks() {
        crate::verifier::report(
            world,
            rules::POOL_LEAK,
            call,
            format!(
                "{ended} leaving pool tag '{}': {blocks} block(s), {bytes} bytes not freed",
                ndis::memory::tag_name(tag)
            ),
        );
    }
    crate::ndis::receive::check_unload(world);
}

/// The receive path, driven from the harness (see [`crate::ndis::receive`]).
impl Simulation {
    /// The miniport indicates `indication.count` lists on the active call `vc` (a `Vc#` id): NDIS
    /// calls ProtocolCoReceiveNetBufferLists with the VC's ProtocolVcContext on processor 0.
    pub fn indicate_receive_on_vc(&self, vc: u64, indication: Indication) -> Result<(), ReceiveError> {
        self.indicate_on_processor(Target::Vc(vc), indication)
    }

    /// Runs the indication on processor 0's own thread (see [`crate::machine`]).
    fn indicate_on_processor(&self, target: Target, indication: Indication) -> Result<(), ReceiveError> {
        let (world, ndis) = (Arc::clone(self.world()), Arc::clone(self.ndis()));
        self.on_processor(0, "sim:Receive", move || indicate(&world, &ndis, target, indication, 0))
            .unwrap_or(Err(ReceiveError::Stopped))
    }

    /// The miniport of `adapter` indicates `indication.count` lists on its binding: NDIS calls
    /// ProtocolReceiveNetBufferLists on processor 0.
    pub fn indicate_receive_on_binding(
        &self,
        adapter: usize,
        indication: Indication,
    ) -> Result<(), ReceiveError> {
        let binding = self
            .ndis()
            .bindings()
            .into_iter()
            .filter(|(_, a, bound)| *a == adapter && *bound)
            .map(|(id, _, _)| id)
            .next_back()
            .ok_or(ReceiveError::AdapterNotBound(adapter))?;
        self.indicate_on_processor(Target::Binding(binding), indication)
    }

    /// Receive totals: lists indicated, lent, returned, still owned by the driver, stranded.
    pub fn receive_counters(&self) -> ReceiveCounters {
        counters(self.world())
    }
}
