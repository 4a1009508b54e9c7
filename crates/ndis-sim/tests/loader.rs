//! Loading the real `partyline.sys`: binding, relocation, protections, and the precise errors for
//! images Windows would refuse.

mod common;

use std::sync::Arc;
use std::thread;

use common::*;
use ndis_sim::kernel::{APC_LEVEL, DISPATCH_LEVEL};
use ndis_sim::loader::{LoadError, Protection};
use ndis_sim::{ExportKind, Image, World};

fn load(bytes: &[u8]) -> Result<Image, LoadError> {
    Image::load("partyline.sys", bytes, &table())
}

#[test]
fn driver_entry_runs_and_calls_its_imports() {
    let image = load(partyline_image::image()).expect("partyline.sys loads");
    let world = World::new(2);
    world.set_irql(1, APC_LEVEL);
    let _entered = world.enter(1);
    let mut arguments = DriverEntryArguments::new();
    // SAFETY: the entry point of `image`, which outlives the call.
    let status = unsafe { arguments.call(image.entry_point()) };
    // Registration refused: DriverEntry frees its lock and returns NDIS's status.
    assert_eq!(status, TEST_REGISTER_STATUS);
    let log = world.log();
    let names: Vec<&str> = log.iter().map(|entry| entry.name).collect();
    assert_eq!(names, ["NdisAllocateSpinLock", "NdisRegisterProtocolDriver", "NdisFreeSpinLock"], "{log:#?}");
    assert!(log[1].detail.contains("type 0x95 revision 2 size 0x80"), "{log:#?}");
    assert!(log.iter().all(|entry| entry.processor == 1 && entry.irql == APC_LEVEL));
}

#[test]
fn imports_are_bound_to_the_table_entries() {
    let table = table();
    let image = Image::load("partyline.sys", partyline_image::image(), &table).unwrap();
    for (dll, name) in [
        ("ntoskrnl.exe", "memset"),
        ("ntoskrnl.exe", "memcpy"),
        ("ndis.sys", "NdisAllocateSpinLock"),
        ("ndis.sys", "NdisRegisterProtocolDriver"),
    ] {
        let bound = image.imports().iter().find(|i| i.dll == dll && i.name == name).expect(name);
        assert_eq!(bound.address, table.get(dll, name).unwrap().address);
        assert_eq!(bound.kind, ExportKind::Function);
        // The IAT slot really holds it.
        // SAFETY: the slot lies in the mapped, readable image, which is alive.
        let slot = unsafe { ((image.base() + bound.slot_rva as usize) as *const u64).read_unaligned() };
        assert_eq!(slot as usize, bound.address);
    }
}

#[test]
fn image_exposes_entry_point_exports_sections_and_range() {
    let image = load(partyline_image::image()).unwrap();
    assert_eq!(image.export("DriverEntry"), Some(image.entry_point()));
    assert_eq!(image.export("NoSuchExport"), None);
    assert!(image.contains(image.entry_point()));
    assert!(image.contains(image.base()));
    assert!(!image.contains(image.base() + image.size()));
    assert_eq!(image.offset_of(image.entry_point()), Some(entry_rva(partyline_image::image()) as usize));
    assert_eq!(image.preferred_base(), image_base(partyline_image::image()));
    let protection = |name: &str| image.sections().iter().find(|s| s.name == name).map(|s| s.protection);
    assert_eq!(protection(".text"), Some(Protection::ReadExecute));
    assert_eq!(protection(".rdata"), Some(Protection::Read));
    assert!(image.sections().iter().all(|s| s.protection != Protection::NoAccess || s.size == 0));
}

#[test]
fn unresolved_import_fails_the_load_naming_it() {
    let mut table = table();
    table.remove("ndis.sys", "NdisRegisterProtocolDriver").unwrap();
    let error = Image::load("partyline.sys", partyline_image::image(), &table).unwrap_err();
    assert!(
        matches!(&error, LoadError::UnresolvedImport { dll, symbol }
            if dll == "ndis.sys" && symbol == "NdisRegisterProtocolDriver"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "import ndis.sys!NdisRegisterProtocolDriver is not implemented by the simulator"
    );
}

#[test]
fn import_dll_names_match_without_regard_to_case() {
    let table = table_with_dll("NDIS.SYS");
    let image =
        Image::load("partyline.sys", partyline_image::image(), &table).expect("NDIS.SYS binds ndis.sys");
    let bound = image.imports().iter().find(|i| i.name == "NdisRegisterProtocolDriver").unwrap();
    assert_eq!(bound.kind, ExportKind::Function, "bound to the NDIS.SYS export, not a trap");
}

#[test]
fn ordinal_import_fails_the_load_naming_the_ordinal() {
    let mut bytes = partyline_image::image().to_vec();
    let dll = make_first_import_by_ordinal(&mut bytes, 7);
    let error = load(&bytes).unwrap_err();
    assert!(matches!(&error, LoadError::OrdinalImport { ordinal: 7, .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("import {dll}!#7 is by ordinal; the simulator binds imports by name only")
    );
}

#[test]
fn wrong_machine_is_refused() {
    let mut bytes = partyline_image::image().to_vec();
    set_machine(&mut bytes, 0x014c); // IMAGE_FILE_MACHINE_I386
    let error = load(&bytes).unwrap_err();
    assert!(matches!(error, LoadError::WrongMachine { machine: 0x014c }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "wrong machine 0x014c in the file header, expected IMAGE_FILE_MACHINE_AMD64 (0x8664)"
    );
}

#[test]
fn user_mode_subsystem_is_refused() {
    let mut bytes = partyline_image::image().to_vec();
    set_subsystem(&mut bytes, 3); // IMAGE_SUBSYSTEM_WINDOWS_CUI
    let error = load(&bytes).unwrap_err();
    assert!(matches!(error, LoadError::WrongSubsystem { subsystem: 3 }), "{error:?}");
}

#[test]
fn truncated_section_is_refused_naming_it() {
    let mut bytes = partyline_image::image().to_vec();
    let (name, _, _, raw, _, _) =
        section_headers(&bytes).into_iter().max_by_key(|s| s.3).expect("the image has sections");
    bytes.truncate(raw as usize + 1);
    let error = load(&bytes).unwrap_err();
    assert!(
        matches!(&error, LoadError::TruncatedSection { section, offset, file_len, .. }
            if *section == name && *offset == raw && *file_len == raw as usize + 1),
        "{error:?}"
    );
    assert!(error.to_string().starts_with(&format!("section {name} is truncated")), "{error}");
}

#[test]
fn writable_code_section_is_refused() {
    let mut bytes = partyline_image::image().to_vec();
    let (_, _, _, _, _, characteristics) =
        section_headers(&bytes).into_iter().find(|s| s.0 == ".text").unwrap();
    bytes[characteristics + 3] |= 0x80; // IMAGE_SCN_MEM_WRITE
    let error = load(&bytes).unwrap_err();
    assert!(
        matches!(&error, LoadError::WritableExecutableSection { section } if section == ".text"),
        "{error:?}"
    );
}

#[test]
fn relocation_of_unknown_kind_is_refused() {
    let (bytes, slot_rva) = image_with_relocated_pointer(3); // IMAGE_REL_BASED_HIGHLOW
    let error = load(&bytes).unwrap_err();
    assert!(
        matches!(error, LoadError::UnsupportedRelocation { kind: 3, rva } if rva == slot_rva),
        "{error:?}"
    );
    assert!(error
        .to_string()
        .starts_with(&format!("unsupported base relocation type 3 at RVA 0x{slot_rva:x}")));
}

#[test]
fn relocations_are_applied_and_two_instances_run_concurrently() {
    let (bytes, slot_rva) = image_with_relocated_pointer(10); // IMAGE_REL_BASED_DIR64
    let images: Vec<Arc<Image>> = (0..2).map(|_| Arc::new(load(&bytes).expect("loads"))).collect();
    assert_ne!(images[0].base(), images[1].base());
    for image in &images {
        // SAFETY: the slot lies in the added section, mapped readable; the image is alive.
        let pointer = unsafe { ((image.base() + slot_rva as usize) as *const u64).read_unaligned() };
        assert_eq!(pointer as usize, image.entry_point(), "the DIR64 relocation moved the pointer");
    }
    let levels = [APC_LEVEL, DISPATCH_LEVEL];
    let runs: Vec<_> = images
        .iter()
        .zip(levels)
        .map(|(image, level)| {
            let image = Arc::clone(image);
            thread::spawn(move || {
                let world = World::new(1);
                world.set_irql(0, level);
                let _entered = world.enter(0);
                let mut arguments = DriverEntryArguments::new();
                for _ in 0..200 {
                    // SAFETY: `image` is kept alive by this thread's Arc for the call.
                    let status = unsafe { arguments.call(image.entry_point()) };
                    assert_eq!(status, TEST_REGISTER_STATUS);
                }
                // Each thread's calls landed in its own world, at its own processor's IRQL.
                assert!(world.log().iter().all(|entry| entry.irql == level));
                world.call_count("NdisRegisterProtocolDriver")
            })
        })
        .collect();
    for run in runs {
        assert_eq!(run.join().expect("the driver thread"), 200);
    }
}
