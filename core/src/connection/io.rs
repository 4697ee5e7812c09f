//! The connection driver's vocabulary with the runtime: what to do with the upstream
//! socket, and what happened on it.

use std::time::Duration;

use crate::server::ServerLimits;
use crate::upstream::Origin;

/// What the runtime must do with the connection's one upstream socket slot, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAction {
    /// Get a connection to `origin`: an idle pooled one when `reuse` allows and one is there
    /// (report `Opened { reused: true }` at once), else a new one: TCP (with `TCP_NODELAY`),
    /// then TLS for `https` (report `Opened { reused: false }` or `ConnectFailed`). The
    /// connect deadline is the driver's: it closes the slot when it passes.
    Open { origin: Origin, reuse: bool },
    /// Drop the upstream connection or the connect in progress; it must not be pooled.
    Close,
    /// The exchange ended and the connection may carry another: keep it in the idle pool
    /// under `origin`.
    Release { origin: Origin },
}

/// What happened on the upstream socket slot; pass each to
/// [`Connection::handle_upstream`](super::Connection::handle_upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamInput<'a> {
    /// The slot holds a connection now (`reused`: it came from the idle pool).
    Opened { reused: bool },
    /// Connecting failed: `tls` tells a handshake or certificate failure from a TCP one.
    ConnectFailed { tls: bool, detail: &'a str },
    /// Bytes read from the connection.
    Data(&'a [u8]),
    /// The peer closed its side.
    Eof,
    /// Reading failed (reset, ...).
    ReadFailed(&'a str),
    /// Writing failed (broken pipe, reset, ...).
    WriteFailed(&'a str),
}

/// What one client connection is served with: limits and the listener's request deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// What one client may make the server hold, and its timeouts.
    pub limits: ServerLimits,
    /// The listener's `timeout`: the overall deadline of each request.
    pub request_timeout: Duration,
}
