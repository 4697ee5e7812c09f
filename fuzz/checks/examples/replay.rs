//! Runs one fuzz input through its target's check on stable, with a backtrace on failure:
//! `cargo run -p switchback-fuzz-checks --example replay -- TARGET FILE...`.

use switchback_fuzz_checks::TARGETS;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().expect("usage: replay TARGET FILE...");
    let target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no target {name}"));
    for file in args {
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        (target.check)(&data);
        println!("{file}: ok");
    }
}
