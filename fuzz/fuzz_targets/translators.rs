//! cargo-fuzz target `translators`: see `switchback_fuzz_checks::check_translators` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchback_fuzz_checks::check_translators(data));
