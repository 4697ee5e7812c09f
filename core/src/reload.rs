//! Live reload (spec §13): the gateway a process serves, replaceable while it serves.
//!
//! A [`LiveGateway`] holds the current [`Gateway`]. Connections keep their own `Arc` of
//! it and look for a newer one before each new request ([`refresh`](LiveGateway::refresh)):
//! one atomic load, and a lock only in the rare case that a reload happened. So new
//! requests, on new connections and on kept-alive ones, use the new config, while a
//! request in flight keeps the gateway it started on until it ends.
//!
//! Build the successor with [`Gateway::succeed`] so it takes over the old gateway's
//! block table, budgets, body memory and metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::gateway::Gateway;

/// The gateway being served now. See the module docs.
#[derive(Debug)]
pub struct LiveGateway {
    /// Bumped by every [`replace`](Self::replace), after the new gateway is in place.
    version: AtomicU64,
    current: Mutex<Arc<Gateway>>,
}

impl LiveGateway {
    /// Serves `gateway` until it is replaced.
    pub fn new(gateway: Arc<Gateway>) -> Arc<LiveGateway> {
        Arc::new(LiveGateway {
            version: AtomicU64::new(0),
            current: Mutex::new(gateway),
        })
    }

    /// The gateway new requests use.
    pub fn current(&self) -> Arc<Gateway> {
        Arc::clone(&self.current.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// How many times the gateway was replaced.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// New requests use `gateway` from now on; requests in flight keep theirs.
    pub fn replace(&self, gateway: Arc<Gateway>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = gateway;
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Brings `cached` (last seen at version `seen`) up to date; true if it changed.
    /// Costs one atomic load when nothing was reloaded.
    pub fn refresh(&self, cached: &mut Arc<Gateway>, seen: &mut u64) -> bool {
        let now = self.version();
        if now == *seen {
            return false;
        }
        *cached = self.current();
        *seen = now;
        true
    }
}
