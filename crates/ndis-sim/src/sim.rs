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
use crate::kernel::{LogEntry, World, PASSIVE_LEVEL};
use crate::loader::{Image, LoadError};
use crate::ndis::{self, AdapterConfig, CallManagerConfig, Counters, FaultPolicy, Ndis, NdisConfig, Work};
use crate::verifier::{Verifier, Violation};

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
        crate::io::IoManager::of(&world);
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
        let mut sim = Simulation::without_image(config);
        let image = Image::load("partyline.sys", image, &export_table())?;
        let entry = image.entry_point();
        sim.image = Some(image);
        type DriverEntry = unsafe extern "win64" fn(*mut u64, *mut u64) -> i32;
        // SAFETY: the entry point of the image just loaded (DRIVER_INITIALIZE), which lives as
        // long as `sim`.
        let driver_entry: DriverEntry = unsafe { std::mem::transmute::<usize, DriverEntry>(entry) };
        let driver_object = sim.driver_object.as_mut_ptr() as usize;
        crate::io::IoManager::of(&sim.world).set_driver_object(driver_object as *mut _);
        let registry = sim._registry_path.1.as_mut_ptr() as usize;
        let seed = sim.config.seed;
        let world = Arc::clone(&sim.world);
        sim.driver_entry_status = sim.on_processor(0, "sim:DriverEntry", move || {
            world.set_irql(0, PASSIVE_LEVEL);
            world.log_call(0, "sim", "DriverEntry", format!("seed {seed}"));
            // SAFETY: both arguments are live host allocations of the sizes the driver may touch
            // (the simulation keeps them while the driver is loaded).
            let status = unsafe { driver_entry(driver_object as *mut u64, registry as *mut u64) };
            world.log_call(0, "sim", "DriverEntry", format!("returned {status:#010x}"));
            status
        });
        Ok(sim)
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
                ndis::protocol::bind_adapter(&world, &ndis, adapter);
            }
            ndis::protocol::net_pnp_event(&world, &ndis, None, ndis_sys::NetEventBindsComplete);
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

    /// NDIS unbinds `adapter` (NetEventPause, then ProtocolUnbindAdapterEx) and runs until idle.
    pub fn unbind(&self, adapter: usize) {
        let Some(binding) = self.binding_of(adapter) else { return };
        let (world, ndis) = (Arc::clone(&self.world), Arc::clone(&self.ndis));
        self.on_processor(0, "sim:Unbind", move || {
            ndis::protocol::net_pnp_event(&world, &ndis, Some(binding), ndis_sys::NetEventPause);
            ndis::protocol::unbind_binding(&world, &ndis, binding, 0);
        });
        ndis::run_until_idle(&self.world);
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
            .filter(|(_, p)| p.state() == ndis::condis::PartyState::Connected)
            .map(|(id, _)| id)
            .collect()
    }

    /// Active calls (VC ids).
    pub fn active_calls(&self) -> Vec<u64> {
        let state = self.ndis.state();
        state
            .vcs
            .iter()
            .filter(|(_, vc)| vc.state == ndis::condis::VcState::Active)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Calls DriverUnload (PASSIVE), then checks registration, live objects and pool leaks by tag.
    pub fn unload(&mut self) {
        if self.world.stop().is_some() {
            return;
        }
        let unload = self.driver_object[0x68 / 8];
        if unload != 0 {
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
        check_unload(&self.world, &self.ndis);
        crate::io::check_unload(&self.world);
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

/// The unload checks: the protocol deregistered, no binding left open, no pool left (by tag).
pub fn check_unload(world: &World, ndis: &Ndis) {
    use crate::ndis::rules;
    if ndis.is_registered() {
        crate::ndis::violation(
            world,
            rules::UNLOAD_WITH_OBJECTS,
            "partyline.sys!DriverUnload",
            "returned with the protocol still registered",
        );
    }
    let (afs, vcs, parties) = ndis.live_objects();
    if afs + vcs + parties > 0 {
        crate::ndis::violation(
            world,
            rules::UNLOAD_WITH_OBJECTS,
            "partyline.sys!DriverUnload",
            format!("{afs} AF(s), {vcs} VC(s), {parties} part(ies) still alive"),
        );
    }
    for (tag, blocks, bytes) in ndis.state().pool.leaks() {
        crate::verifier::report(
            world,
            rules::POOL_LEAK,
            "partyline.sys!DriverUnload",
            format!("pool tag '{}': {blocks} block(s), {bytes} bytes not freed", ndis::memory::tag_name(tag)),
        );
    }
    crate::ndis::receive::check_unload(world);
}
