//! Idle upstream connections kept for reuse, per origin.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchback_core::upstream::Origin;
use tokio::io::{AsyncRead, AsyncWrite};

/// Idle connections kept per origin; the oldest is closed beyond this.
pub(crate) const MAX_IDLE_PER_ORIGIN: usize = 32;
/// An idle connection older than this is closed instead of reused.
pub(crate) const MAX_IDLE_TIME: Duration = Duration::from_secs(60);

/// A byte stream to an upstream: plain TCP or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One upstream connection.
pub(crate) type Conn = Box<dyn Io>;

/// Idle keep-alive connections keyed by [`Origin`], most recently used last.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<HashMap<Origin, Vec<(Conn, Instant)>>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

impl Pool {
    /// The most recently returned idle connection to `origin` that is young enough, if any.
    /// Expired ones found on the way are closed.
    pub(crate) fn take(&self, origin: &Origin) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let conns = idle.get_mut(origin)?;
        let now = Instant::now();
        conns.retain(|(_, since)| now.duration_since(*since) < MAX_IDLE_TIME);
        let conn = conns.pop().map(|(c, _)| c);
        if conns.is_empty() {
            idle.remove(origin);
        }
        conn
    }

    /// Keeps a connection whose last exchange ended reusable.
    pub(crate) fn put(&self, origin: &Origin, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let conns = idle.entry(origin.clone()).or_default();
        if conns.len() >= MAX_IDLE_PER_ORIGIN {
            conns.remove(0);
        }
        conns.push((conn, Instant::now()));
    }
}
