//! `config_parser`: any text given to the config loader yields a config or errors.

/// Loads `data` (when it is UTF-8) as a config; never panics.
pub fn check(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = switchback_core::config::load_str(text, &|name| Some(format!("value-of-{name}")));
    }
}
