//! A worker process that dies costs only its runs (issue 12): with an image whose entry point is an
//! illegal instruction, every run kills its worker; each seed is reported as a stopped run with
//! how its worker ended, and the campaign finishes. (One test in its own process: it chooses the
//! image for the whole process.)

use partyline_campaign::{run_with, Campaign, Executor, Options};

/// partyline.sys with `ud2` at its entry point.
fn image_that_kills_its_process() -> std::path::PathBuf {
    let mut image = partyline_image::IMAGE.to_vec();
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
    let pe = u32_at(&image, 0x3C);
    let entry = u32_at(&image, pe + 24 + 16);
    let sections = pe + 24 + u16_at(&image, pe + 20);
    let offset = (0..u16_at(&image, pe + 6))
        .map(|i| sections + 40 * i)
        .find_map(|s| {
            let (address, raw_size, raw) =
                (u32_at(&image, s + 12), u32_at(&image, s + 16), u32_at(&image, s + 20));
            (address..address + raw_size).contains(&entry).then(|| raw + entry - address)
        })
        .expect("the entry point is in a section");
    image[offset..offset + 2].copy_from_slice(&[0x0F, 0x0B]);
    let path = std::env::temp_dir().join(format!("partyline-ud2-{}.sys", std::process::id()));
    std::fs::write(&path, image).expect("written");
    path
}

#[test]
fn a_worker_that_dies_costs_only_its_runs() {
    let image = image_that_kills_its_process();
    partyline_image::use_file(&image).expect("a PE image");
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_partyline-campaign"));
    let options = Options { only: vec![Campaign::Schedule], seeds: 3, steps: 10, ..Options::short() };
    let figures = run_with(&options, None, Executor::Workers { jobs: 2, program }).expect("workers start");
    let _ = std::fs::remove_file(&image);
    let (_, row) = &figures.rows[0];
    assert_eq!((row.seeds, row.runs, row.stops), (3, 3, 3), "{figures}");
    let seeds: Vec<u64> = figures.failures.iter().map(|f| f.seed).collect();
    assert_eq!(seeds, [1, 2, 3], "{figures}");
    assert!(figures.failures.iter().all(|f| f.problem.contains("SIGILL")), "{figures}");
}
