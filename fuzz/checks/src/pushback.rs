//! `pushback`: the pushback parser is total and within its cap.

use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

const NAMES: [&str; 8] = [
    "retry-after-ms",
    "retry-after",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-tokens",
    "x-ratelimit-remaining-tokens",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-requests-remaining",
];

/// Each line of `data` is the value of the next pushback header (cycling through them);
/// the parsed wait, if any, is above zero and at most the cap.
pub fn check(data: &[u8]) {
    let mut headers = HeaderMap::new();
    for (i, part) in data.split(|b| *b == b'\n').enumerate() {
        if let Ok(v) = HeaderValue::from_bytes(part) {
            headers.append(HeaderName::from_static(NAMES[i % NAMES.len()]), v);
        }
    }
    let cap = Duration::from_secs(300);
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Some(d) = switchback_core::pushback::parse_pushback(&headers, now, cap) {
        assert!(
            d > Duration::ZERO && d <= cap,
            "pushback {d:?} outside (0, {cap:?}]"
        );
    }
}
