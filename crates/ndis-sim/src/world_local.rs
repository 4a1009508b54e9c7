//! State of a driver played by host code, one per world: what `thread_local!` was for such
//! drivers before every processor ran on a thread of its own (see [`crate::machine`]).
//!
//! Flow: a test that plays the driver declares `static STATE: WorldLocal<RefCell<T>> =
//! WorldLocal::new(|| RefCell::new(…));` and uses `STATE.with(|s| …)` exactly as a `LocalKey`,
//! from the test thread (in the world) and from the driver callbacks the processors' threads
//! run. The value is made on first use in a world and kept (leaked) for the process: worlds are
//! told apart by [`crate::kernel::World::id`], never reused. Only one thread of a world runs at a
//! time (the machine's baton), which is what makes a `RefCell` inside sound.

use std::sync::Mutex;

/// See the module documentation.
pub struct WorldLocal<T: 'static> {
    init: fn() -> T,
    values: Mutex<Vec<(u64, &'static T)>>,
}

// SAFETY: a value is reached only through `with`, from a thread that is in its world, and the
// machine runs one thread of a world at a time (a thread outside every world gets the value of
// world 0, its own, used by one test thread at a time by the tests' contract).
unsafe impl<T> Sync for WorldLocal<T> {}

impl<T: 'static> WorldLocal<T> {
    /// A value per world, made by `init` on first use.
    pub const fn new(init: fn() -> T) -> WorldLocal<T> {
        WorldLocal { init, values: Mutex::new(Vec::new()) }
    }

    /// Runs `f` with the calling thread's world's value.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let id = crate::kernel::current_world_ref().map_or(0, crate::kernel::World::id);
        let value = {
            let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
            match values.iter().find(|(world, _)| *world == id) {
                Some((_, value)) => *value,
                None => {
                    let value: &'static T = Box::leak(Box::new((self.init)()));
                    values.push((id, value));
                    value
                }
            }
        };
        f(value)
    }
}
