//! Shared helpers for the simulator's tests: byte-level edits of the real image (so no binary is
//! checked in), host stubs for the NDIS calls DriverEntry makes first, and running a scenario that ends the process in a child.

#![allow(dead_code)]

use std::ffi::c_void;
use std::process::{Command, Output};

use ndis_sim::kernel;

/// Signature of `DriverEntry`.
pub type DriverEntry = unsafe extern "win64" fn(*mut c_void, *mut c_void) -> i32;

/// What the test `NdisRegisterProtocolDriver` answers: DriverEntry must give up and return it.
pub const TEST_REGISTER_STATUS: i32 = 0xC001_0004_u32 as i32; // NDIS_STATUS_BAD_VERSION

/// A test `NdisAllocateSpinLock` that logs its call.
pub extern "win64" fn allocate_spin_lock(_lock: *mut ndis_sys::NDIS_SPIN_LOCK) {
    kernel::with_current("ndis.sys!NdisAllocateSpinLock", |world, processor| {
        world.log_call(processor, "ndis.sys", "NdisAllocateSpinLock", String::new());
    })
}

/// A test `NdisFreeSpinLock` that logs its call.
pub extern "win64" fn free_spin_lock(_lock: *mut ndis_sys::NDIS_SPIN_LOCK) {
    kernel::with_current("ndis.sys!NdisFreeSpinLock", |world, processor| {
        world.log_call(processor, "ndis.sys", "NdisFreeSpinLock", String::new());
    })
}

/// A test `NdisRegisterProtocolDriver` that logs the characteristics' header and refuses them.
pub extern "win64" fn register_protocol_driver(
    _context: ndis_sys::NDIS_HANDLE,
    characteristics: *mut ndis_sys::NDIS_PROTOCOL_DRIVER_CHARACTERISTICS,
    _handle: *mut ndis_sys::NDIS_HANDLE,
) -> ndis_sys::NDIS_STATUS {
    kernel::with_current("ndis.sys!NdisRegisterProtocolDriver", |world, processor| {
        // SAFETY: the driver passes its characteristics for the duration of the call.
        let header = unsafe { (*characteristics).Header };
        world.log_call(
            processor,
            "ndis.sys",
            "NdisRegisterProtocolDriver",
            format!("type {:#x} revision {} size {:#x}", header.Type, header.Revision, header.Size),
        );
        TEST_REGISTER_STATUS
    })
}

/// The kernel foundation, logging stubs for the NDIS calls DriverEntry makes when registration
/// is refused, and a not-implemented trap for every other import of the image (`dll` spelled as
/// given, to test case-insensitive binding).
pub fn table_with_dll(dll: &'static str) -> ndis_sim::ExportTable {
    let mut table = ndis_sim::ExportTable::with_kernel();
    use ndis_sys::signatures as sig;
    table.insert(dll, "NdisAllocateSpinLock", allocate_spin_lock as sig::NdisAllocateSpinLock);
    table.insert(dll, "NdisFreeSpinLock", free_spin_lock as sig::NdisFreeSpinLock);
    table.insert(
        dll,
        "NdisRegisterProtocolDriver",
        register_protocol_driver as sig::NdisRegisterProtocolDriver,
    );
    table.insert_not_implemented_for_missing(ndis_sys::IMPORTS.iter().map(|i| (i.dll, i.name)));
    table
}

/// [`table_with_dll`] for `ndis.sys`.
pub fn table() -> ndis_sim::ExportTable {
    table_with_dll("ndis.sys")
}

/// Host-allocated arguments for `DriverEntry`: a zeroed `DRIVER_OBJECT`-sized block and a
/// `UNICODE_STRING` registry path.
pub struct DriverEntryArguments {
    driver_object: Vec<u64>,
    /// Kept alive for `registry_path.Buffer`.
    _path: Vec<u16>,
    registry_path: Box<[u64; 2]>,
}

impl DriverEntryArguments {
    pub fn new() -> Self {
        let path: Vec<u16> =
            r"\Registry\Machine\System\CurrentControlSet\Services\partyline".encode_utf16().collect();
        let bytes = (path.len() * 2) as u64;
        // UNICODE_STRING { USHORT Length; USHORT MaximumLength; PWSTR Buffer; }
        let registry_path = Box::new([bytes | (bytes << 16), path.as_ptr() as u64]);
        DriverEntryArguments { driver_object: vec![0; 0x150 / 8], _path: path, registry_path }
    }

    /// Calls `DriverEntry` at `entry`.
    ///
    /// # Safety
    /// `entry` is the entry point of a loaded image that outlives the call.
    pub unsafe fn call(&mut self, entry: usize) -> i32 {
        // SAFETY: the caller guarantees `entry` is a live image's DriverEntry, whose type is
        // `DriverEntry` (win64, two pointers, NTSTATUS).
        let driver_entry: DriverEntry = unsafe { std::mem::transmute::<usize, DriverEntry>(entry) };
        // SAFETY: both arguments are live host allocations of the sizes the driver may touch.
        unsafe {
            driver_entry(self.driver_object.as_mut_ptr().cast(), self.registry_path.as_mut_ptr().cast())
        }
    }
}

// ---- byte-level PE edits ------------------------------------------------------------------------

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap())
}
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}
fn put_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}
fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Offsets of the PE headers of an image.
pub struct Layout {
    pub file_header: usize,
    pub optional_header: usize,
    pub sections: usize,
    pub section_count: usize,
}

pub const SECTION_HEADER_SIZE: usize = 40;

pub fn layout(bytes: &[u8]) -> Layout {
    let pe = u32_at(bytes, 0x3c) as usize;
    assert_eq!(&bytes[pe..pe + 4], b"PE\0\0");
    let file_header = pe + 4;
    let optional_header = file_header + 20;
    let section_count = u16_at(bytes, file_header + 2) as usize;
    let sections = optional_header + u16_at(bytes, file_header + 16) as usize;
    Layout { file_header, optional_header, sections, section_count }
}

pub fn set_machine(bytes: &mut [u8], machine: u16) {
    let l = layout(bytes);
    put_u16(bytes, l.file_header, machine);
}

pub fn set_subsystem(bytes: &mut [u8], subsystem: u16) {
    let l = layout(bytes);
    put_u16(bytes, l.optional_header + 68, subsystem);
}

pub fn image_base(bytes: &[u8]) -> u64 {
    u64_at(bytes, layout(bytes).optional_header + 24)
}

pub fn entry_rva(bytes: &[u8]) -> u32 {
    u32_at(bytes, layout(bytes).optional_header + 16)
}

/// `(name, rva, virtual size, raw offset, raw size, characteristics offset in the file)`.
pub fn section_headers(bytes: &[u8]) -> Vec<(String, u32, u32, u32, u32, usize)> {
    let l = layout(bytes);
    (0..l.section_count)
        .map(|i| {
            let at = l.sections + i * SECTION_HEADER_SIZE;
            let name = String::from_utf8_lossy(&bytes[at..at + 8]).trim_end_matches('\0').to_owned();
            (
                name,
                u32_at(bytes, at + 12),
                u32_at(bytes, at + 8),
                u32_at(bytes, at + 20),
                u32_at(bytes, at + 16),
                at + 36,
            )
        })
        .collect()
}

/// File offset of `rva`.
pub fn rva_to_offset(bytes: &[u8], rva: u32) -> usize {
    for (_, va, vsize, raw, raw_size, _) in section_headers(bytes) {
        if rva >= va && rva < va + vsize.max(raw_size) {
            return (raw + (rva - va)) as usize;
        }
    }
    panic!("RVA 0x{rva:x} is in no section");
}

pub fn directory(bytes: &[u8], index: usize) -> (u32, u32) {
    let at = layout(bytes).optional_header + 112 + index * 8;
    (u32_at(bytes, at), u32_at(bytes, at + 4))
}

pub fn set_directory(bytes: &mut [u8], index: usize, rva: u32, size: u32) {
    let at = layout(bytes).optional_header + 112 + index * 8;
    put_u32(bytes, at, rva);
    put_u32(bytes, at + 4, size);
}

pub const BASE_RELOCATION_DIRECTORY: usize = 5;
pub const IMPORT_DIRECTORY: usize = 1;

/// The RVA a section added by [`add_section`] will get.
pub fn next_section_rva(bytes: &[u8]) -> u32 {
    let l = layout(bytes);
    let alignment = u32_at(bytes, l.optional_header + 32);
    u32_at(bytes, l.optional_header + 56).div_ceil(alignment) * alignment
}

/// Appends an initialized, read-only data section holding `data`; returns its RVA.
pub fn add_section(bytes: &mut Vec<u8>, name: &str, data: &[u8]) -> u32 {
    let l = layout(bytes);
    let section_alignment = u32_at(bytes, l.optional_header + 32);
    let file_alignment = u32_at(bytes, l.optional_header + 36) as usize;
    let size_of_headers = u32_at(bytes, l.optional_header + 60) as usize;
    let header = l.sections + l.section_count * SECTION_HEADER_SIZE;
    assert!(header + SECTION_HEADER_SIZE <= size_of_headers, "no room for another section header");
    let rva = next_section_rva(bytes);
    let raw = bytes.len().div_ceil(file_alignment) * file_alignment;
    let raw_size = data.len().div_ceil(file_alignment) * file_alignment;
    bytes.resize(raw + raw_size, 0);
    bytes[raw..raw + data.len()].copy_from_slice(data);
    let mut name_field = [0u8; 8];
    name_field[..name.len()].copy_from_slice(name.as_bytes());
    bytes[header..header + 8].copy_from_slice(&name_field);
    put_u32(bytes, header + 8, data.len() as u32);
    put_u32(bytes, header + 12, rva);
    put_u32(bytes, header + 16, raw_size as u32);
    put_u32(bytes, header + 20, raw as u32);
    put_u32(bytes, header + 36, 0x4000_0040); // INITIALIZED_DATA | MEM_READ
    put_u16(bytes, l.file_header + 2, (l.section_count + 1) as u16);
    let size_of_image = (rva + data.len() as u32).div_ceil(section_alignment) * section_alignment;
    put_u32(bytes, l.optional_header + 56, size_of_image);
    rva
}

/// The real image with one more section holding a pointer to `DriverEntry` (as linked, i.e.
/// `ImageBase + entry RVA`) and a base-relocation block for it of type `kind` (10 =
/// `IMAGE_REL_BASED_DIR64`), after the image's own relocation blocks. Returns the bytes and the
/// pointer's RVA.
pub fn image_with_relocated_pointer(kind: u16) -> (Vec<u8>, u32) {
    let mut bytes = partyline_image::image().to_vec();
    let rva = next_section_rva(&bytes);
    let mut data = (image_base(&bytes) + u64::from(entry_rva(&bytes))).to_le_bytes().to_vec();
    let (old_rva, old_size) = directory(&bytes, BASE_RELOCATION_DIRECTORY);
    if old_size > 0 {
        let at = rva_to_offset(&bytes, old_rva);
        data.extend_from_slice(&bytes[at..at + old_size as usize]);
    }
    data.extend_from_slice(&(rva & !0xfff).to_le_bytes());
    data.extend_from_slice(&12u32.to_le_bytes());
    data.extend_from_slice(&((kind << 12) | (rva & 0xfff) as u16).to_le_bytes());
    data.extend_from_slice(&0u16.to_le_bytes()); // IMAGE_REL_BASED_ABSOLUTE padding
    let directory_size = (data.len() - 8) as u32;
    let added = add_section(&mut bytes, ".reloc2", &data);
    assert_eq!(added, rva);
    set_directory(&mut bytes, BASE_RELOCATION_DIRECTORY, rva + 8, directory_size);
    (bytes, rva)
}

/// Turns the first import of the first import descriptor into an import by `ordinal`; returns
/// that descriptor's DLL name.
pub fn make_first_import_by_ordinal(bytes: &mut [u8], ordinal: u16) -> String {
    let (import_rva, _) = directory(bytes, IMPORT_DIRECTORY);
    let descriptor = rva_to_offset(bytes, import_rva);
    let lookup_rva = match u32_at(bytes, descriptor) {
        0 => u32_at(bytes, descriptor + 16),
        rva => rva,
    };
    let name_at = rva_to_offset(bytes, u32_at(bytes, descriptor + 12));
    let name_end = bytes[name_at..].iter().position(|b| *b == 0).unwrap();
    let dll = String::from_utf8_lossy(&bytes[name_at..name_at + name_end]).into_owned();
    let thunk = rva_to_offset(bytes, lookup_rva);
    bytes[thunk..thunk + 8].copy_from_slice(&((1u64 << 63) | u64::from(ordinal)).to_le_bytes());
    dll
}

// ---- scenarios that end the process ---------------------------------------------------------------

const CHILD_VARIABLE: &str = "NDIS_SIM_CHILD_TEST";

/// Runs `scenario` in a child process (this test binary, running only `test_name`), and returns
/// the child's output; in the child, runs `scenario` itself, which must end the process.
pub fn in_child_process(test_name: &str, scenario: impl FnOnce()) -> Output {
    if std::env::var(CHILD_VARIABLE).as_deref() == Ok(test_name) {
        scenario();
        panic!("the scenario of {test_name} returned instead of ending the process");
    }
    Command::new(std::env::current_exe().expect("test binary path"))
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VARIABLE, test_name)
        .output()
        .expect("run the test binary as a child")
}
