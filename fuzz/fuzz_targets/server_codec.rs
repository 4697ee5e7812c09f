//! cargo-fuzz target `server_codec`: see `switchback_fuzz_checks::check_server_codec` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchback_fuzz_checks::check_server_codec(data));
