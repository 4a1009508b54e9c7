//! The image loader: maps a PE32+ x86-64 kernel image into this process the way the Windows
//! kernel loader would, binding its imports to the simulator's exports.
//!
//! Read: "PE Format" on Microsoft Learn (optional header, section table, `.reloc`, `.idata`,
//! `.edata`).
//!
//! Flow: validate the headers (AMD64, PE32+, subsystem NATIVE, page-aligned sections), `mmap`
//! `SizeOfImage` read-write, copy the headers and each section's raw data to its RVA, add
//! `base - ImageBase` at every `IMAGE_REL_BASED_DIR64` relocation, write the address of each
//! imported `dll!name` from an [`ExportTable`] into its IAT slot (an import the table lacks refuses
//! the image, as Windows refuses a driver with an unresolved import), and finally set each
//! section's protection (code R+X, read-only data R, data R+W; never W+X, headers R, gaps none).
//! Each [`Image`] is its own mapping, unmapped on drop; any number may be loaded at once, from any
//! thread.

use std::collections::HashMap;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Mutex;

use object::pe::{self, ImageNtHeaders64};
use object::read::pe::{ExportTarget, ImageNtHeaders, ImageOptionalHeader, Import, PeFile64};
use object::LittleEndian as LE;

use crate::exports::{ExportKind, ExportTable};

/// Why an image was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// The headers or a directory could not be parsed.
    Malformed(String),
    /// The optional header is not PE32+.
    NotPe32Plus {
        /// The optional header's magic.
        magic: u16,
    },
    /// The machine is not AMD64.
    WrongMachine {
        /// The file header's machine.
        machine: u16,
    },
    /// The subsystem is not NATIVE (not a kernel image).
    WrongSubsystem {
        /// The optional header's subsystem.
        subsystem: u16,
    },
    /// `SectionAlignment` is not a multiple of the host page size, so sections could not get
    /// protections of their own.
    UnsupportedSectionAlignment {
        /// The optional header's `SectionAlignment`.
        alignment: u32,
        /// The host page size.
        page_size: usize,
    },
    /// A section's raw data reaches past the end of the file.
    TruncatedSection {
        /// The section's name.
        section: String,
        /// `PointerToRawData`.
        offset: u32,
        /// The bytes to copy (the smaller of `SizeOfRawData` and `VirtualSize`).
        size: u32,
        /// The file's length.
        file_len: usize,
    },
    /// A section (or the headers) does not fit in `SizeOfImage`.
    SectionOutsideImage {
        /// The section's name (`headers` for the headers).
        section: String,
        /// Its RVA.
        rva: u32,
        /// Its size in memory.
        size: u32,
        /// `SizeOfImage`.
        size_of_image: u32,
    },
    /// A section is both writable and executable.
    WritableExecutableSection {
        /// The section's name.
        section: String,
    },
    /// The image has no relocations and says so; it cannot be loaded at another base.
    RelocationsStripped,
    /// A base relocation of a kind other than `IMAGE_REL_BASED_DIR64` (or the padding kind
    /// `IMAGE_REL_BASED_ABSOLUTE`).
    UnsupportedRelocation {
        /// The relocation type (the top 4 bits of the entry).
        kind: u16,
        /// The RVA it applies to.
        rva: u32,
    },
    /// A base relocation points outside the image.
    RelocationOutOfRange {
        /// The RVA it applies to.
        rva: u32,
    },
    /// An import the export table lacks.
    UnresolvedImport {
        /// The DLL, as the image names it.
        dll: String,
        /// The symbol.
        symbol: String,
    },
    /// An import by ordinal (the simulator binds by name only).
    OrdinalImport {
        /// The DLL, as the image names it.
        dll: String,
        /// The ordinal.
        ordinal: u16,
    },
    /// An IAT slot outside the image.
    ImportSlotOutOfRange {
        /// The DLL.
        dll: String,
        /// The symbol.
        symbol: String,
        /// The slot's RVA.
        rva: u32,
    },
    /// The entry point is outside the image.
    EntryPointOutsideImage {
        /// `AddressOfEntryPoint`.
        rva: u32,
    },
    /// `mmap` or `mprotect` failed.
    Map(std::io::Error),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Malformed(detail) => write!(f, "malformed PE image: {detail}"),
            LoadError::NotPe32Plus { magic } => {
                write!(f, "not a PE32+ image: optional header magic 0x{magic:04x}, expected 0x020b")
            }
            LoadError::WrongMachine { machine } => write!(
                f,
                "wrong machine 0x{machine:04x} in the file header, expected IMAGE_FILE_MACHINE_AMD64 (0x8664)"
            ),
            LoadError::WrongSubsystem { subsystem } => {
                write!(f, "wrong subsystem {subsystem}, expected IMAGE_SUBSYSTEM_NATIVE (1) for a driver")
            }
            LoadError::UnsupportedSectionAlignment { alignment, page_size } => write!(
                f,
                "section alignment 0x{alignment:x} is not a multiple of the host page size 0x{page_size:x}"
            ),
            LoadError::TruncatedSection { section, offset, size, file_len } => write!(
                f,
                "section {section} is truncated: its raw data 0x{offset:x}..0x{:x} lies beyond the end of the file (0x{file_len:x} bytes)",
                u64::from(*offset) + u64::from(*size)
            ),
            LoadError::SectionOutsideImage { section, rva, size, size_of_image } => write!(
                f,
                "section {section} at RVA 0x{rva:x} (0x{size:x} bytes) does not fit in SizeOfImage 0x{size_of_image:x}"
            ),
            LoadError::WritableExecutableSection { section } => {
                write!(f, "section {section} is both writable and executable")
            }
            LoadError::RelocationsStripped => {
                write!(f, "the image has no base relocations (IMAGE_FILE_RELOCS_STRIPPED) and cannot be relocated")
            }
            LoadError::UnsupportedRelocation { kind, rva } => write!(
                f,
                "unsupported base relocation type {kind} at RVA 0x{rva:x} (only IMAGE_REL_BASED_DIR64 (10) and IMAGE_REL_BASED_ABSOLUTE (0) are valid in an x64 image)"
            ),
            LoadError::RelocationOutOfRange { rva } => {
                write!(f, "base relocation at RVA 0x{rva:x} lies outside the image")
            }
            LoadError::UnresolvedImport { dll, symbol } => {
                write!(f, "import {dll}!{symbol} is not implemented by the simulator")
            }
            LoadError::OrdinalImport { dll, ordinal } => write!(
                f,
                "import {dll}!#{ordinal} is by ordinal; the simulator binds imports by name only"
            ),
            LoadError::ImportSlotOutOfRange { dll, symbol, rva } => {
                write!(f, "the IAT slot of import {dll}!{symbol} at RVA 0x{rva:x} lies outside the image")
            }
            LoadError::EntryPointOutsideImage { rva } => {
                write!(f, "entry point RVA 0x{rva:x} lies outside the image")
            }
            LoadError::Map(error) => write!(f, "could not map the image: {error}"),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Map(error) => Some(error),
            _ => None,
        }
    }
}

fn malformed(context: &str) -> impl FnOnce(object::Error) -> LoadError + '_ {
    move |error| LoadError::Malformed(format!("{context}: {error}"))
}

/// The memory protection a section gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// Neither readable, writable nor executable.
    NoAccess,
    /// Read-only.
    Read,
    /// Read and write.
    ReadWrite,
    /// Read and execute.
    ReadExecute,
}

impl Protection {
    fn from_characteristics(characteristics: u32) -> Option<Protection> {
        let execute = characteristics & pe::IMAGE_SCN_MEM_EXECUTE != 0;
        let write = characteristics & pe::IMAGE_SCN_MEM_WRITE != 0;
        let read = characteristics & pe::IMAGE_SCN_MEM_READ != 0;
        match (read || execute || write, write, execute) {
            (_, true, true) => None,
            (_, false, true) => Some(Protection::ReadExecute),
            (_, true, false) => Some(Protection::ReadWrite),
            (true, false, false) => Some(Protection::Read),
            (false, _, _) => Some(Protection::NoAccess),
        }
    }

    fn prot(self) -> libc::c_int {
        match self {
            Protection::NoAccess => libc::PROT_NONE,
            Protection::Read => libc::PROT_READ,
            Protection::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
            Protection::ReadExecute => libc::PROT_READ | libc::PROT_EXEC,
        }
    }
}

/// A section as mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The section's name (`.text`).
    pub name: String,
    /// Its RVA.
    pub rva: u32,
    /// Its size in memory (`VirtualSize`, or `SizeOfRawData` if that is 0).
    pub size: u32,
    /// The section header's characteristics.
    pub characteristics: u32,
    /// The protection its pages got.
    pub protection: Protection,
}

/// An import as bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundImport {
    /// The DLL, as the image names it.
    pub dll: String,
    /// The symbol.
    pub name: String,
    /// The RVA of its IAT slot.
    pub slot_rva: u32,
    /// The address written there.
    pub address: usize,
    /// Whether that is an implementation or a not-implemented trap.
    pub kind: ExportKind,
}

/// A loaded image. Unmapped when dropped.
///
/// Code that calls into the image (through [`Image::entry_point`] or [`Image::export`]) must keep
/// the `Image` alive for as long as any thread may run its code or use a pointer into it.
#[derive(Debug)]
pub struct Image {
    name: String,
    base: NonNull<u8>,
    size: usize,
    preferred_base: u64,
    entry_point: usize,
    sections: Vec<Section>,
    exports: HashMap<String, usize>,
    imports: Vec<BoundImport>,
}

// SAFETY: `Image` owns its mapping; after `load` returns the host never writes through `base`
// (only the image's own code does, under the rules the driver follows on Windows), and the
// bookkeeping fields are plain data. Sharing or moving it between threads is as safe as sharing
// an address.
unsafe impl Send for Image {}
// SAFETY: as for `Send`: every `&self` method only reads immutable bookkeeping.
unsafe impl Sync for Image {}

/// An anonymous mapping that is unmapped on drop unless handed over to an `Image`.
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> Result<Mapping, LoadError> {
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
        if area == libc::MAP_FAILED {
            return Err(LoadError::Map(std::io::Error::last_os_error()));
        }
        let base = NonNull::new(area.cast::<u8>())
            .ok_or_else(|| LoadError::Map(std::io::Error::other("mmap returned a null mapping")))?;
        Ok(Mapping { base, len })
    }

    /// Copies `bytes` to offset `at`.
    fn write(&mut self, at: usize, bytes: &[u8]) {
        assert!(at.checked_add(bytes.len()).is_some_and(|end| end <= self.len), "write outside mapping");
        // SAFETY: the range lies inside the mapping (asserted above), which is still read-write
        // (protections are set only after every write) and not aliased by any Rust reference.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.as_ptr().add(at), bytes.len()) };
    }

    fn read_u64(&self, at: usize) -> u64 {
        assert!(at.checked_add(8).is_some_and(|end| end <= self.len), "read outside mapping");
        // SAFETY: the 8 bytes lie inside the mapping (asserted above), which is readable.
        unsafe { self.base.as_ptr().add(at).cast::<u64>().read_unaligned() }
    }

    fn protect(&self, at: usize, len: usize, protection: Protection) -> Result<(), LoadError> {
        assert!(at.checked_add(len).is_some_and(|end| end <= self.len), "protect outside mapping");
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the page-aligned range lies inside this mapping (asserted above); no Rust
        // reference into it exists, so changing its protection invalidates none.
        let result = unsafe { libc::mprotect(self.base.as_ptr().add(at).cast(), len, protection.prot()) };
        if result != 0 {
            return Err(LoadError::Map(std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base..base+len` is a mapping this value made and still owns.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

fn align_up(value: usize, alignment: usize) -> usize {
    value.div_ceil(alignment) * alignment
}

/// What every loaded image occupies, for naming addresses in reports.
static LOADED: Mutex<Vec<(usize, usize, String)>> = Mutex::new(Vec::new());

/// One loaded image's IAT slots: its base, and (slot address, imported symbol) for each import.
type ImageSlots = (usize, Vec<(usize, String)>);

/// The IAT slots of every loaded image.
static SLOTS: Mutex<Vec<ImageSlots>> = Mutex::new(Vec::new());

/// The symbol whose IAT slot is at `address` in a loaded image (`NdisCoCreateVc`), if any.
pub fn import_slot(address: usize) -> Option<String> {
    let slots = SLOTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    slots
        .iter()
        .flat_map(|(_, image)| image.iter())
        .find(|(slot, _)| *slot == address)
        .map(|(_, name)| name.clone())
}

fn loaded() -> std::sync::MutexGuard<'static, Vec<(usize, usize, String)>> {
    LOADED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The read-write sections of every loaded image: (start, size).
static WRITABLE: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

fn writable() -> std::sync::MutexGuard<'static, Vec<(usize, usize)>> {
    WRITABLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether `[address, address + length)` lies in a read-write section of a loaded image (the
/// image's own data, e.g. for out-parameters that NDIS writes there).
pub fn in_writable_data(address: usize, length: usize) -> bool {
    writable().iter().any(|(start, size)| address >= *start && address.saturating_add(length) <= start + size)
}

/// Names an address for a report: `partyline.sys+0x102a` if it lies in a loaded image, else the
/// bare address.
pub fn describe_address(address: usize) -> String {
    let loaded = loaded();
    match loaded.iter().find(|(base, size, _)| (*base..base + size).contains(&address)) {
        Some((base, _, name)) => format!("{name}+0x{:x}", address - base),
        None => format!("0x{address:x} (outside every loaded image)"),
    }
}

/// Names of every image ever loaded, each once: log entries refer to an image by its index here
/// (see [`image_offset`]), so they can be rendered after the image is gone.
static NAMES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Where `address` lies, as the log shows it later: the index of its image's name (for
/// [`image_name`]) and the offset in that image.
pub(crate) fn image_offset(address: usize) -> Option<(u64, usize)> {
    let loaded = loaded();
    let (base, _, name) = loaded.iter().find(|(base, size, _)| (*base..base + size).contains(&address))?;
    let mut names = NAMES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let index = match names.iter().position(|n| n == name) {
        Some(index) => index,
        None => {
            names.push(name.clone());
            names.len() - 1
        }
    };
    Some((index as u64, address - base))
}

/// The image name [`image_offset`] gave `index` for.
pub(crate) fn image_name(index: u64) -> String {
    let names = NAMES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    usize::try_from(index).ok().and_then(|i| names.get(i)).cloned().unwrap_or_default()
}

/// The loaded image `address` lies in: its base and name (for fault-site ids; see
/// [`crate::ndis::faults`]).
pub fn image_containing(address: usize) -> Option<(usize, String)> {
    let loaded = loaded();
    loaded
        .iter()
        .find(|(base, size, _)| (*base..base + size).contains(&address))
        .map(|(base, _, name)| (*base, name.clone()))
}

impl Image {
    /// Loads `bytes` as the image `name` (used in reports, e.g. `partyline.sys`), binding its
    /// imports from `exports`.
    pub fn load(name: &str, bytes: &[u8], exports: &ExportTable) -> Result<Image, LoadError> {
        // The `object` crate reads header structures in place and needs them aligned; an
        // `include_bytes!` slice is only byte-aligned, so parse an 8-byte-aligned copy.
        let mut aligned = vec![0_u64; bytes.len().div_ceil(8)];
        // SAFETY: `aligned` owns at least `bytes.len()` initialized bytes; viewing u64s as bytes
        // is always valid, and the view lives only within this function.
        let copy = unsafe { std::slice::from_raw_parts_mut(aligned.as_mut_ptr().cast::<u8>(), bytes.len()) };
        copy.copy_from_slice(bytes);
        Self::load_aligned(name, copy, exports)
    }

    fn load_aligned(name: &str, bytes: &[u8], exports: &ExportTable) -> Result<Image, LoadError> {
        let magic = object::read::pe::optional_header_magic(bytes).map_err(malformed("headers"))?;
        if magic != pe::IMAGE_NT_OPTIONAL_HDR64_MAGIC {
            return Err(LoadError::NotPe32Plus { magic });
        }
        let file = PeFile64::parse(bytes).map_err(malformed("headers"))?;
        let nt = file.nt_headers();
        let machine = nt.file_header().machine.get(LE);
        if machine != pe::IMAGE_FILE_MACHINE_AMD64 {
            return Err(LoadError::WrongMachine { machine });
        }
        let optional = nt.optional_header();
        let subsystem = optional.subsystem();
        if subsystem != pe::IMAGE_SUBSYSTEM_NATIVE {
            return Err(LoadError::WrongSubsystem { subsystem });
        }
        let page_size = crate::thunk::libc_page_size();
        let alignment = optional.section_alignment();
        if alignment == 0 || !(alignment as usize).is_multiple_of(page_size) {
            return Err(LoadError::UnsupportedSectionAlignment { alignment, page_size });
        }
        let size_of_image = optional.size_of_image();
        let size_of_headers = optional.size_of_headers();
        if size_of_headers > size_of_image || size_of_headers as usize > bytes.len() {
            return Err(LoadError::SectionOutsideImage {
                section: "headers".into(),
                rva: 0,
                size: size_of_headers,
                size_of_image,
            });
        }

        // Validate every section before mapping anything.
        let section_table = file.section_table();
        let mut sections = Vec::new();
        let mut copies = Vec::new();
        for header in section_table.iter() {
            let name = String::from_utf8_lossy(header.raw_name()).into_owned();
            let rva = header.virtual_address.get(LE);
            let raw_size = header.size_of_raw_data.get(LE);
            let virtual_size = header.virtual_size.get(LE);
            let size = if virtual_size == 0 { raw_size } else { virtual_size };
            let characteristics = header.characteristics.get(LE);
            if u64::from(rva) + u64::from(size) > u64::from(size_of_image) || rva < size_of_headers {
                return Err(LoadError::SectionOutsideImage { section: name, rva, size, size_of_image });
            }
            let protection = Protection::from_characteristics(characteristics)
                .ok_or_else(|| LoadError::WritableExecutableSection { section: name.clone() })?;
            let offset = header.pointer_to_raw_data.get(LE);
            let copy_size = raw_size.min(size);
            if copy_size > 0 {
                let end = u64::from(offset) + u64::from(copy_size);
                if end > bytes.len() as u64 {
                    return Err(LoadError::TruncatedSection {
                        section: name,
                        offset,
                        size: copy_size,
                        file_len: bytes.len(),
                    });
                }
                copies.push((rva as usize, offset as usize..end as usize));
            }
            sections.push(Section { name, rva, size, characteristics, protection });
        }
        let entry_rva = optional.address_of_entry_point();
        if entry_rva >= size_of_image {
            return Err(LoadError::EntryPointOutsideImage { rva: entry_rva });
        }

        let image_len = align_up(size_of_image as usize, page_size);
        let mut mapping = Mapping::new(image_len)?;
        let base = mapping.base.as_ptr() as usize;
        mapping.write(0, &bytes[..size_of_headers as usize]);
        for (rva, range) in copies {
            mapping.write(rva, &bytes[range]);
        }

        // Base relocations.
        let directories = file.data_directories();
        let preferred_base = optional.image_base();
        let delta = (base as u64).wrapping_sub(preferred_base);
        match directories.relocation_blocks(bytes, &section_table).map_err(malformed("relocations"))? {
            Some(mut blocks) => {
                while let Some(block) = blocks.next().map_err(malformed("relocations"))? {
                    for relocation in block {
                        let rva = relocation.virtual_address;
                        match relocation.typ {
                            pe::IMAGE_REL_BASED_ABSOLUTE => {}
                            pe::IMAGE_REL_BASED_DIR64 => {
                                let at = rva as usize;
                                if at + 8 > size_of_image as usize {
                                    return Err(LoadError::RelocationOutOfRange { rva });
                                }
                                let value = mapping.read_u64(at).wrapping_add(delta);
                                mapping.write(at, &value.to_le_bytes());
                            }
                            kind => return Err(LoadError::UnsupportedRelocation { kind, rva }),
                        }
                    }
                }
            }
            None => {
                if nt.file_header().characteristics.get(LE) & pe::IMAGE_FILE_RELOCS_STRIPPED != 0 {
                    return Err(LoadError::RelocationsStripped);
                }
            }
        }

        // Imports.
        let mut imports = Vec::new();
        if let Some(import_table) = file.import_table().map_err(malformed("imports"))? {
            let mut descriptors = import_table.descriptors().map_err(malformed("imports"))?;
            while let Some(descriptor) = descriptors.next().map_err(malformed("imports"))? {
                let dll = import_table.name(descriptor.name.get(LE)).map_err(malformed("import DLL name"))?;
                let dll = String::from_utf8_lossy(dll).into_owned();
                let first_thunk = descriptor.first_thunk.get(LE);
                let lookup = match descriptor.original_first_thunk.get(LE) {
                    0 => first_thunk,
                    rva => rva,
                };
                let mut thunks = import_table.thunks(lookup).map_err(malformed("import thunks"))?;
                let mut index = 0_u32;
                while let Some(thunk) =
                    thunks.next::<ImageNtHeaders64>().map_err(malformed("import thunks"))?
                {
                    let symbol = match import_table
                        .import::<ImageNtHeaders64>(thunk)
                        .map_err(malformed("import name"))?
                    {
                        Import::Name(_hint, symbol) => String::from_utf8_lossy(symbol).into_owned(),
                        Import::Ordinal(ordinal) => return Err(LoadError::OrdinalImport { dll, ordinal }),
                    };
                    let Some(export) = exports.get(&dll, &symbol) else {
                        return Err(LoadError::UnresolvedImport { dll, symbol });
                    };
                    let slot_rva = first_thunk.wrapping_add(index * 8);
                    if u64::from(slot_rva) + 8 > u64::from(size_of_image) || slot_rva < first_thunk {
                        return Err(LoadError::ImportSlotOutOfRange { dll, symbol, rva: slot_rva });
                    }
                    mapping.write(slot_rva as usize, &(export.address as u64).to_le_bytes());
                    imports.push(BoundImport {
                        dll: dll.clone(),
                        name: symbol,
                        slot_rva,
                        address: export.address,
                        kind: export.kind,
                    });
                    index += 1;
                }
            }
        }

        // The image's own exports.
        let mut own_exports = HashMap::new();
        let export_directory =
            directories.get(pe::IMAGE_DIRECTORY_ENTRY_EXPORT).filter(|d| d.size.get(LE) > 0);
        if let Some(directory) = export_directory {
            // Linkers may place the export directory at an address that is not 4-aligned, which
            // `object` refuses to read in place: parse an aligned copy of it.
            let data = directory.data(bytes, &section_table).map_err(malformed("exports"))?;
            let mut aligned = vec![0_u64; data.len().div_ceil(8)];
            // SAFETY: `aligned` owns at least `data.len()` initialized bytes; viewing u64s as
            // bytes is always valid, and the view lives only within this block.
            let copy =
                unsafe { std::slice::from_raw_parts_mut(aligned.as_mut_ptr().cast::<u8>(), data.len()) };
            copy.copy_from_slice(data);
            let export_table = object::read::pe::ExportTable::parse(copy, directory.virtual_address.get(LE))
                .map_err(malformed("exports"))?;
            for export in export_table.exports().map_err(malformed("exports"))? {
                if let (Some(name), ExportTarget::Address(rva)) = (export.name, export.target) {
                    if rva < size_of_image {
                        own_exports.insert(String::from_utf8_lossy(name).into_owned(), base + rva as usize);
                    }
                }
            }
        }

        // Protections, last: nothing is written after this.
        mapping.protect(0, image_len, Protection::NoAccess)?;
        mapping.protect(0, align_up(size_of_headers as usize, page_size), Protection::Read)?;
        for section in &sections {
            let len = align_up(section.size as usize, page_size).min(image_len - section.rva as usize);
            mapping.protect(section.rva as usize, len, section.protection)?;
        }

        let image = Image {
            name: name.to_owned(),
            base: mapping.base,
            size: image_len,
            preferred_base,
            entry_point: base + entry_rva as usize,
            sections,
            exports: own_exports,
            imports,
        };
        std::mem::forget(mapping);
        loaded().push((base, image_len, image.name.clone()));
        writable().extend(
            image
                .sections
                .iter()
                .filter(|s| s.protection == Protection::ReadWrite)
                .map(|s| (base + s.rva as usize, s.size as usize)),
        );
        let slots = image.imports.iter().map(|i| (base + i.slot_rva as usize, i.name.clone())).collect();
        SLOTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((base, slots));
        Ok(image)
    }

    /// The name the image was loaded under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the image is mapped.
    pub fn base(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// The mapped size (`SizeOfImage`, rounded up to whole pages).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The `ImageBase` the image was linked for.
    pub fn preferred_base(&self) -> u64 {
        self.preferred_base
    }

    /// The address of the entry point (`DriverEntry` for a driver).
    pub fn entry_point(&self) -> usize {
        self.entry_point
    }

    /// The sections, in section-table order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The imports, in import-table order, with what they were bound to.
    pub fn imports(&self) -> &[BoundImport] {
        &self.imports
    }

    /// The address of the image's own export `name`, if it has one.
    pub fn export(&self, name: &str) -> Option<usize> {
        self.exports.get(name).copied()
    }

    /// Whether `address` lies in the image.
    pub fn contains(&self, address: usize) -> bool {
        (self.base()..self.base() + self.size).contains(&address)
    }

    /// `address - base`, if `address` lies in the image.
    pub fn offset_of(&self, address: usize) -> Option<usize> {
        self.contains(address).then(|| address - self.base())
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let base = self.base();
        loaded().retain(|(loaded_base, _, _)| *loaded_base != base);
        writable().retain(|(start, _)| !(base..base + self.size).contains(start));
        SLOTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|(slots_base, _)| *slots_base != base);
        drop(Mapping { base: self.base, len: self.size });
    }
}
