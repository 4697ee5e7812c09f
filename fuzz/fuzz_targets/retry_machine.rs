//! cargo-fuzz target `retry_machine`: see `switchback_fuzz_checks::check_retry_machine` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchback_fuzz_checks::check_retry_machine(data));
