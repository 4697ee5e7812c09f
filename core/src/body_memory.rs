//! The gateway-wide bound on buffered bodies (`limits.max_buffered_body_bytes`, default
//! 256 MiB): request bodies read whole, upstream response bodies read whole, and the SSE
//! bytes a stream holds before it commits all count against one shared total.
//!
//! [`BodyMemory`] is the shared counter; a [`BodyReservation`] is one holder's share of
//! it. Reserving more than is left fails instead of waiting, and the holder answers 503
//! with `Retry-After: 1` ([`crate::errors::overloaded`]). A reservation gives its bytes
//! back when it is dropped, on every path: a finished request, an abandoned attempt, a
//! client that went away, a panic. The total never goes below zero and never above the
//! limit.
//!
//! How a connection driver uses it while reading a request body:
//!
//! ```
//! use switchback_core::body_memory::BodyMemory;
//! let memory = BodyMemory::new(1024);
//! let mut reservation = memory.reserve(0).expect("0 bytes always fit");
//! for chunk in [&b"{\"model\":"[..], &b"\"x\"}"[..]] {
//!     // On Err: answer switchback_core::errors::overloaded() and stop reading.
//!     reservation.grow(chunk.len()).expect("within the limit");
//! }
//! assert_eq!(memory.in_use(), 13);
//! drop(reservation); // or hand it to Gateway::handle_reserved with the body
//! assert_eq!(memory.in_use(), 0);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A reservation did not fit: `requested` more bytes with `in_use` of `limit` taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("buffering {requested} more body bytes would pass the gateway's limit of {limit} bytes ({in_use} in use)")]
pub struct BodyMemoryExhausted {
    pub requested: usize,
    pub in_use: usize,
    pub limit: usize,
}

#[derive(Debug)]
struct Counter {
    in_use: AtomicUsize,
    limit: AtomicUsize,
}

/// The shared count of buffered body bytes. Cloning shares it.
#[derive(Clone)]
pub struct BodyMemory(Arc<Counter>);

impl fmt::Debug for BodyMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyMemory")
            .field("in_use", &self.in_use())
            .field("limit", &self.limit())
            .finish()
    }
}

impl BodyMemory {
    /// A counter allowing `limit` bytes in all.
    pub fn new(limit: usize) -> BodyMemory {
        BodyMemory(Arc::new(Counter {
            in_use: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
        }))
    }

    /// The configured total.
    pub fn limit(&self) -> usize {
        self.0.limit.load(Ordering::Relaxed)
    }

    /// Changes the total (a reloaded config). Reservations already made stay; new ones
    /// are held to the new limit.
    pub fn set_limit(&self, limit: usize) {
        self.0.limit.store(limit, Ordering::Relaxed);
    }

    /// Bytes reserved right now, by every holder.
    pub fn in_use(&self) -> usize {
        self.0.in_use.load(Ordering::Relaxed)
    }

    /// A reservation of nothing, to grow as bytes arrive.
    pub fn empty_reservation(&self) -> BodyReservation {
        BodyReservation {
            memory: self.clone(),
            bytes: 0,
        }
    }

    /// Reserves `bytes`, or fails at once when they do not fit. Zero bytes always fit.
    pub fn reserve(&self, bytes: usize) -> Result<BodyReservation, BodyMemoryExhausted> {
        let mut r = BodyReservation {
            memory: self.clone(),
            bytes: 0,
        };
        r.grow(bytes)?;
        Ok(r)
    }

    fn take(&self, more: usize) -> Result<(), BodyMemoryExhausted> {
        let limit = self.limit();
        self.0
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |in_use| {
                in_use.checked_add(more).filter(|total| *total <= limit)
            })
            .map(|_| ())
            .map_err(|in_use| BodyMemoryExhausted {
                requested: more,
                in_use,
                limit,
            })
    }

    fn give_back(&self, bytes: usize) {
        // Only bytes a reservation took are given back, so this never wraps; saturate
        // anyway rather than trust that.
        let _ = self
            .0
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |in_use| {
                Some(in_use.saturating_sub(bytes))
            });
    }
}

/// One holder's share of [`BodyMemory`]; given back when dropped.
#[derive(Debug)]
pub struct BodyReservation {
    memory: BodyMemory,
    bytes: usize,
}

impl BodyReservation {
    /// The bytes this reservation holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds `more` bytes, or fails (holding what it held) when they do not fit.
    pub fn grow(&mut self, more: usize) -> Result<(), BodyMemoryExhausted> {
        if more == 0 {
            return Ok(());
        }
        self.memory.take(more)?;
        self.bytes += more;
        Ok(())
    }

    /// Makes the reservation hold exactly `total` bytes: shrinking always succeeds,
    /// growing fails (holding what it held) when the difference does not fit.
    pub fn resize(&mut self, total: usize) -> Result<(), BodyMemoryExhausted> {
        if total >= self.bytes {
            return self.grow(total - self.bytes);
        }
        self.memory.give_back(self.bytes - total);
        self.bytes = total;
        Ok(())
    }

    /// Moves every byte of this reservation into a new one, leaving this one empty: for
    /// handing a buffer's share on together with the buffer.
    pub fn take(&mut self) -> BodyReservation {
        BodyReservation {
            memory: self.memory.clone(),
            bytes: std::mem::take(&mut self.bytes),
        }
    }

    /// Moves `other`'s bytes into this reservation (both must share one counter).
    pub fn absorb(&mut self, mut other: BodyReservation) {
        if Arc::ptr_eq(&self.memory.0, &other.memory.0) {
            self.bytes += std::mem::take(&mut other.bytes);
        }
    }
}

impl Drop for BodyReservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.memory.give_back(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_limit_and_come_back_when_dropped() {
        let m = BodyMemory::new(100);
        let a = m.reserve(60).expect("fits");
        let err = m.reserve(41).expect_err("over");
        assert_eq!(
            err,
            BodyMemoryExhausted {
                requested: 41,
                in_use: 60,
                limit: 100
            }
        );
        let mut b = m.reserve(40).expect("exactly fits");
        assert_eq!(m.in_use(), 100);
        assert!(b.grow(1).is_err());
        assert_eq!(b.bytes(), 40, "a failed grow keeps what it held");
        drop(a);
        assert_eq!(m.in_use(), 40);
        b.resize(10).expect("shrinking always works");
        assert_eq!(m.in_use(), 10);
        b.resize(90).expect("fits again");
        drop(b);
        assert_eq!(m.in_use(), 0);
    }

    #[test]
    fn absorb_moves_bytes_without_counting_twice() {
        let m = BodyMemory::new(100);
        let mut a = m.reserve(10).expect("fits");
        let b = m.reserve(20).expect("fits");
        a.absorb(b);
        assert_eq!((a.bytes(), m.in_use()), (30, 30));
        drop(a);
        assert_eq!(m.in_use(), 0);
    }

    #[test]
    fn concurrent_holders_never_pass_the_limit() {
        let m = BodyMemory::new(1000);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        if let Ok(mut r) = m.reserve(i % 300) {
                            assert!(m.in_use() <= 1000);
                            let _ = r.grow(7);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(m.in_use(), 0);
    }
}
