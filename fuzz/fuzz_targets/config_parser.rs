//! Any text given to the config loader yields a config or errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = switchback_core::config::load_str(text, &|name| Some(format!("value-of-{name}")));
    }
});
