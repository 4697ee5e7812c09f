//! Helpers shared by the core's integration tests.
#![allow(dead_code)]

use std::time::Instant;

/// The origin of a test's virtual time. The one real clock reading in the core's
/// tests: after it, time moves only when a test advances it.
#[allow(clippy::disallowed_methods)]
pub fn epoch() -> Instant {
    Instant::now()
}
