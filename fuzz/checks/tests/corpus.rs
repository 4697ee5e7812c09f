//! Replays every committed fuzz corpus file through its target's check, on stable: the
//! corpus under `fuzz/corpus/<target>/` is what `cargo fuzz cmin` kept after the runs
//! recorded in docs/reliability.md, plus the regression inputs of the bugs they found.

use std::fs;
use std::path::Path;

use switchback_fuzz_checks::TARGETS;

/// The stack each corpus input is replayed on.
const STACK_BYTES: usize = 64 * 1024 * 1024;

#[test]
fn every_corpus_file_passes_its_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let mut total = 0;
    for target in TARGETS {
        let dir = root.join(target.name);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no corpus for {} at {}: {e}", target.name, dir.display()))
            .map(|e| e.expect("a corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "the {} corpus is empty", target.name);
        for file in &files {
            let data = fs::read(file).expect("a corpus file");
            let check = target.check;
            // Unoptimized frames are several times larger than release ones: the deepest
            // config inputs (nested flow collections replayed through aliases) need more
            // than a test thread's 2 MiB here, while release builds pass them in 512 KiB.
            let run = std::thread::Builder::new()
                .stack_size(STACK_BYTES)
                .spawn(move || check(&data))
                .expect("a replay thread")
                .join();
            assert!(run.is_ok(), "{} fails on {}", target.name, file.display());
        }
        total += files.len();
    }
    assert!(total > 0);
}

#[test]
fn every_target_has_a_fuzz_binary() {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
        .expect("fuzz/Cargo.toml");
    for target in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{}\"", target.name)),
            "fuzz/Cargo.toml has no [[bin]] for {}",
            target.name
        );
    }
}
