//! Bounds on what one client may make the server hold.

use std::time::Duration;

/// The default bound on one request head (request line and header fields), in bytes.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 64 * 1024;
/// The default bound on the number of header fields in one request head.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// What the server codec and the connection driver allow one client (spec §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Request line plus header fields, in bytes: 431 beyond.
    pub max_head_bytes: usize,
    /// Header fields per request: 431 beyond.
    pub max_headers: usize,
    /// Request body bytes: 413 beyond.
    pub max_body_bytes: usize,
    /// A whole request head must arrive within this of the connection starting to wait for
    /// one: 408 when part of a head arrived, a silent close when none did.
    pub head_timeout: Duration,
    /// The longest gap between request body bytes (408 beyond), and the longest a client may
    /// leave response bytes unread before it is taken for gone.
    pub body_idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: crate::gateway::MAX_REQUEST_BODY_BYTES,
            head_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
        }
    }
}
