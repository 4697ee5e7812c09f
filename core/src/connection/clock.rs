//! Wall-clock readings derived from the runtime's monotonic `now`, and the `Date` header.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::HeaderValue;

/// Wall-clock time as an offset from one reading the runtime gave, so the driver never
/// reads a clock itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    at: Instant,
    wall: SystemTime,
}

impl WallClock {
    pub(crate) fn new(at: Instant, wall: SystemTime) -> Self {
        WallClock { at, wall }
    }

    /// The wall-clock time at `now`.
    pub(crate) fn wall(&self, now: Instant) -> SystemTime {
        self.wall + now.saturating_duration_since(self.at)
    }
}

/// The `Date` header value, formatted once per second.
#[derive(Debug)]
pub(crate) struct DateHeader {
    second: u64,
    value: HeaderValue,
}

impl DateHeader {
    pub(crate) fn new() -> Self {
        DateHeader {
            second: u64::MAX,
            value: HeaderValue::from_static(""),
        }
    }

    /// The header value for wall-clock time `wall`.
    pub(crate) fn at(&mut self, wall: SystemTime) -> &HeaderValue {
        let second = wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        if second != self.second {
            self.second = second;
            let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second));
            self.value = HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(""));
        }
        &self.value
    }
}
