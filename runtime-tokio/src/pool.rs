//! Idle upstream connections kept for reuse, per origin.

use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use switchback_core::upstream::{IdlePool, Origin};
use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream to an upstream: plain TCP or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One upstream connection.
pub(crate) type Conn = Box<dyn Io>;

/// Idle keep-alive connections, with the core's keep-alive policy ([`IdlePool`]).
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<IdlePool<Conn>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

impl Pool {
    /// A reusable idle connection to `origin`, if the pool holds one.
    pub(crate) fn take(&self, origin: &Origin) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.take(origin, Instant::now())
    }

    /// Keeps a connection whose last exchange ended reusable.
    pub(crate) fn put(&self, origin: &Origin, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.put(origin, conn, Instant::now());
    }
}
