//! The keep-alive policy for upstream connections, as a sans-IO container: which idle
//! connection to reuse and which to close. Runtimes own the sockets and a lock around
//! this; time is an argument.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::Origin;

/// Idle connections kept per origin (per worker thread); beyond it the oldest is evicted.
/// HTTP/1.1 carries one request per connection at a time, so this should cover the
/// concurrency a worker sees to one upstream: when more connections come back idle at once
/// than are kept, the next burst pays new TCP (and TLS) handshakes.
pub const MAX_IDLE_PER_ORIGIN: usize = 256;
/// An idle connection older than this is closed instead of reused.
pub const MAX_IDLE_TIME: Duration = Duration::from_secs(60);

/// Idle keep-alive connections keyed by [`Origin`], most recently returned last.
/// Memory is bounded by the configured origins times [`MAX_IDLE_PER_ORIGIN`].
#[derive(Debug)]
pub struct IdlePool<C> {
    idle: BTreeMap<Origin, Vec<(C, Instant)>>,
}

impl<C> Default for IdlePool<C> {
    fn default() -> Self {
        IdlePool {
            idle: BTreeMap::new(),
        }
    }
}

impl<C> IdlePool<C> {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most recently returned connection to `origin` that has idled less than
    /// [`MAX_IDLE_TIME`]. Expired ones found on the way are dropped (closing them).
    pub fn take(&mut self, origin: &Origin, now: Instant) -> Option<C> {
        let conns = self.idle.get_mut(origin)?;
        conns.retain(|(_, since)| now.saturating_duration_since(*since) < MAX_IDLE_TIME);
        let conn = conns.pop().map(|(c, _)| c);
        if conns.is_empty() {
            self.idle.remove(origin);
        }
        conn
    }

    /// Keeps a connection whose exchange ended reusable. When the origin already holds
    /// [`MAX_IDLE_PER_ORIGIN`], the oldest is dropped to make room.
    pub fn put(&mut self, origin: &Origin, conn: C, now: Instant) {
        let conns = self.idle.entry(origin.clone()).or_default();
        if conns.len() >= MAX_IDLE_PER_ORIGIN {
            conns.remove(0);
        }
        conns.push((conn, now));
    }

    /// Idle connections held, over all origins.
    pub fn len(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.idle.is_empty()
    }
}
