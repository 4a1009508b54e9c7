//! The export table: what the simulator offers a loaded image to import, by `(dll, name)`.
//!
//! Read: PE format, "The .idata Section" (how imports are named), and "Export Address Table".
//!
//! Flow: each simulated DDI module (the kernel foundation in [`crate::kernel`], the simulated NDIS
//! after it) has a `register(&mut ExportTable)` function with one [`export!`](crate::export) line
//! per export, next to the implementations. The loader binds every import of an image to the
//! address found here, and refuses the image if one is missing. An import the simulator knows
//! about but does not implement is registered with
//! [`ExportTable::insert_not_implemented`]: it binds, and if the driver ever calls it the run
//! stops with `dll!name is not implemented by the simulator` instead of doing something wrong.
//!
//! The DLL part of a key is compared without regard to case (as the Windows loader does); the
//! symbol part is compared exactly.

use std::collections::{btree_map, BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, OnceLock};

/// A function pointer with the Windows x64 calling convention (`extern "win64"`), which is the
/// only kind of host function an image can call. Implemented for safe and `unsafe` fn pointers of
/// up to 16 parameters, with any return type (including `!`).
pub trait Win64Fn: Copy {
    /// The function's address.
    fn address(self) -> usize;
}

macro_rules! impl_win64_fn {
    ($($arg:ident),*) => {
        impl<R, $($arg),*> Win64Fn for extern "win64" fn($($arg),*) -> R {
            fn address(self) -> usize {
                self as usize
            }
        }
        impl<R, $($arg),*> Win64Fn for unsafe extern "win64" fn($($arg),*) -> R {
            fn address(self) -> usize {
                self as usize
            }
        }
    };
}

impl_win64_fn!();
impl_win64_fn!(A1);
impl_win64_fn!(A1, A2);
impl_win64_fn!(A1, A2, A3);
impl_win64_fn!(A1, A2, A3, A4);
impl_win64_fn!(A1, A2, A3, A4, A5);
impl_win64_fn!(A1, A2, A3, A4, A5, A6);
impl_win64_fn!(A1, A2, A3, A4, A5, A6, A7);
impl_win64_fn!(A1, A2, A3, A4, A5, A6, A7, A8);
impl_win64_fn!(A1, A2, A3, A4, A5, A6, A7, A8, A9);
impl_win64_fn!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);
impl_win64_fn!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11);
impl_win64_fn!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12);
impl_win64_fn!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13);
impl_win64_fn!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14);
impl_win64_fn!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15);
impl_win64_fn!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16);

/// Registers a host function as an export, type-checked against the import's signature.
///
/// ```ignore
/// // One line per export, next to its implementation:
/// export!(table, "ntoskrnl.exe", KeGetCurrentIrql: ndis_sys::signatures::KeGetCurrentIrql = ke_get_current_irql);
/// // The same, with the signature taken from `ndis_sys::signatures::<name>`:
/// export!(table, "ntoskrnl.exe", KeGetCurrentIrql = ke_get_current_irql);
/// // An import that is known but deliberately not implemented: calling it stops the run.
/// export!(table, "ndis.sys", NdisFoo: not_implemented);
/// ```
///
/// The signature is any `extern "win64"` fn-pointer type; the implementation must coerce to it
/// (a safe `extern "win64" fn` item coerces to an `unsafe extern "win64" fn` pointer type), so a
/// host function whose parameters or result differ from the driver's declaration is a compile
/// error. Registering the same `(dll, name)` twice panics, naming it.
#[macro_export]
macro_rules! export {
    ($table:expr, $dll:literal, $name:ident : not_implemented) => {
        $table.insert_not_implemented($dll, stringify!($name))
    };
    ($table:expr, $dll:literal, $name:ident : $signature:ty = $implementation:expr) => {{
        let implementation: $signature = $implementation;
        $table.insert($dll, stringify!($name), implementation)
    }};
    ($table:expr, $dll:literal, $name:ident = $implementation:expr) => {
        $crate::export!($table, $dll, $name: $crate::__ndis_sys::signatures::$name = $implementation)
    };
}

/// What an export is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    /// A host implementation.
    Function,
    /// A trap: calling it reports `dll!name is not implemented by the simulator` and stops the
    /// run (see [`crate::kernel::fatal`]).
    NotImplemented,
}

/// One entry of an [`ExportTable`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// The DLL as it was registered (e.g. `ntoskrnl.exe`).
    pub dll: String,
    /// The exported symbol.
    pub name: String,
    /// The address an import of it is bound to.
    pub address: usize,
    /// Whether that address is an implementation or a not-implemented trap.
    pub kind: ExportKind,
}

/// A registry of `(dll, name) -> host function address`, from which the loader binds imports.
#[derive(Clone, Default)]
pub struct ExportTable {
    entries: BTreeMap<(String, String), Export>,
}

impl fmt::Debug for ExportTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries.values().map(|e| format!("{}!{}", e.dll, e.name))).finish()
    }
}

fn key(dll: &str, name: &str) -> (String, String) {
    (dll.to_ascii_lowercase(), name.to_owned())
}

impl ExportTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// A table with the kernel foundation's exports ([`crate::kernel::register`]).
    pub fn with_kernel() -> Self {
        let mut table = Self::new();
        crate::kernel::register(&mut table);
        table
    }

    /// Registers `function` as `dll!name`. Prefer the [`export!`](crate::export) macro, which
    /// checks the function against the import's signature.
    ///
    /// # Panics
    /// If `dll!name` is already registered (a bug in the simulator's tables); use
    /// [`ExportTable::replace`] to override an entry on purpose.
    pub fn insert<F: Win64Fn>(&mut self, dll: &str, name: &str, function: F) {
        let address = crate::thunk::wrap(name, function.address());
        self.insert_entry(dll, name, address, ExportKind::Function);
    }

    /// Registers `dll!name` as known but not implemented: it binds to a trap that stops the run
    /// when called.
    ///
    /// # Panics
    /// If `dll!name` is already registered.
    pub fn insert_not_implemented(&mut self, dll: &str, name: &str) {
        let address = not_implemented_traps(&[(dll, name)])[0];
        self.insert_entry(dll, name, address, ExportKind::NotImplemented);
    }

    /// Registers every `(dll, name)` of `imports` that the table lacks as not implemented, e.g.
    /// from `ndis_sys::IMPORTS` after all implemented exports are in, so that every import the
    /// driver declares binds and the unimplemented ones say so when called.
    pub fn insert_not_implemented_for_missing<'a>(
        &mut self,
        imports: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        let missing: Vec<(&str, &str)> =
            imports.into_iter().filter(|(dll, name)| self.get(dll, name).is_none()).collect();
        let mut unique = missing.clone();
        unique.sort_by_key(|(dll, name)| key(dll, name));
        unique.dedup_by_key(|(dll, name)| key(dll, name));
        let traps = not_implemented_traps(&unique);
        for ((dll, name), address) in unique.into_iter().zip(traps) {
            self.insert_entry(dll, name, address, ExportKind::NotImplemented);
        }
    }

    /// Registers `function` as `dll!name`, replacing any previous entry, which is returned.
    pub fn replace<F: Win64Fn>(&mut self, dll: &str, name: &str, function: F) -> Option<Export> {
        let export = Export {
            dll: dll.to_owned(),
            name: name.to_owned(),
            address: crate::thunk::wrap(name, function.address()),
            kind: ExportKind::Function,
        };
        self.entries.insert(key(dll, name), export)
    }

    /// Removes `dll!name`, returning it if it was there.
    pub fn remove(&mut self, dll: &str, name: &str) -> Option<Export> {
        self.entries.remove(&key(dll, name))
    }

    /// Looks up `dll!name` (DLL without regard to case).
    pub fn get(&self, dll: &str, name: &str) -> Option<&Export> {
        self.entries.get(&key(dll, name))
    }

    /// Every entry, ordered by DLL (lower case) then name.
    pub fn iter(&self) -> impl Iterator<Item = &Export> {
        self.entries.values()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn insert_entry(&mut self, dll: &str, name: &str, address: usize, kind: ExportKind) {
        match self.entries.entry(key(dll, name)) {
            btree_map::Entry::Occupied(_) => {
                panic!("export {dll}!{name} is registered twice")
            }
            btree_map::Entry::Vacant(slot) => {
                slot.insert(Export { dll: dll.to_owned(), name: name.to_owned(), address, kind });
            }
        }
    }
}

/// What a not-implemented trap knows about itself.
#[derive(Debug)]
pub(crate) struct TrapRecord {
    pub(crate) dll: String,
    pub(crate) name: String,
}

/// Size of one trap thunk in bytes.
const TRAP_SIZE: usize = 32;

/// Returns one trap per `(dll, name)`, creating those not made before.
///
/// A trap is a few bytes of x86-64 code in an executable page of its own making:
/// `mov rdx, [rsp]` (the caller's return address), `mov rcx, record`, `mov rax, handler`,
/// `jmp rax`, so the Rust handler learns which import was called and from where. Traps are made
/// once per `(dll, name)` per process and never freed: an image bound to one may outlive the table
/// it came from. Pages are written while read-write and only then made read-execute (never both).
fn not_implemented_traps(imports: &[(&str, &str)]) -> Vec<usize> {
    static TRAPS: OnceLock<Mutex<HashMap<(String, String), usize>>> = OnceLock::new();
    let mut traps = TRAPS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let new: Vec<(String, String)> = {
        let mut new: Vec<(String, String)> =
            imports.iter().map(|(d, n)| key(d, n)).filter(|k| !traps.contains_key(k)).collect();
        new.sort();
        new.dedup();
        new
    };
    if !new.is_empty() {
        let page = crate::thunk::libc_page_size();
        let len = (new.len() * TRAP_SIZE).div_ceil(page) * page;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing aliases no
        // Rust object; the result is checked against MAP_FAILED before use.
        let area = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(area != libc::MAP_FAILED, "mmap for not-implemented traps failed");
        let area = area.cast::<u8>();
        let handler = crate::kernel::not_implemented_trap as extern "win64" fn(&TrapRecord, usize) -> !;
        for (index, (dll_key, name)) in new.iter().enumerate() {
            // The display name keeps the caller's spelling of the DLL.
            let dll =
                imports.iter().find(|(d, n)| key(d, n) == (dll_key.clone(), name.clone())).map(|(d, _)| *d);
            let record: &'static TrapRecord = Box::leak(Box::new(TrapRecord {
                dll: dll.unwrap_or(dll_key).to_owned(),
                name: name.clone(),
            }));
            let mut code = [0xCC_u8; TRAP_SIZE];
            code[0..4].copy_from_slice(&[0x48, 0x8B, 0x14, 0x24]); // mov rdx, [rsp]
            code[4..6].copy_from_slice(&[0x48, 0xB9]); // mov rcx, imm64
            code[6..14].copy_from_slice(&(record as *const TrapRecord as u64).to_le_bytes());
            code[14..16].copy_from_slice(&[0x48, 0xB8]); // mov rax, imm64
            code[16..24].copy_from_slice(&(handler as usize as u64).to_le_bytes());
            code[24..26].copy_from_slice(&[0xFF, 0xE0]); // jmp rax
                                                         // SAFETY: `index * TRAP_SIZE + TRAP_SIZE <= len`, inside the read-write mapping made
                                                         // above, which nothing else references yet.
            unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), area.add(index * TRAP_SIZE), TRAP_SIZE) };
            traps.insert((dll_key.clone(), name.clone()), area as usize + index * TRAP_SIZE);
        }
        // SAFETY: `area..area+len` is the mapping made above; making it read-execute ends its
        // writable life before any trap address is handed out.
        let result = unsafe { libc::mprotect(area.cast(), len, libc::PROT_READ | libc::PROT_EXEC) };
        assert_eq!(result, 0, "mprotect of not-implemented traps failed");
    }
    imports.iter().map(|(d, n)| traps[&key(d, n)]).collect()
}
