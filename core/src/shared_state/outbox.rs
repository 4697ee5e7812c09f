//! The records a replica has not yet shared: filled under the shared block table's lock
//! by whichever worker thread recorded a block, drained by the one task that talks to
//! Redis. Bounded: one entry per kind and key (a later record for the same key is merged
//! into the pending one, since only the latest block per key matters), and at most
//! [`OUTBOX_CAPACITY`] keys, the oldest dropped beyond that. So while Redis is down the
//! outbox holds at most the latest block of each key, and nothing grows.

use std::collections::BTreeMap;
use std::task::Waker;

use super::record::{BlockRecord, RecordKind};
use crate::block_table::BlockKey;

/// The most distinct (kind, key) pairs waiting to be shared.
pub const OUTBOX_CAPACITY: usize = 4096;

#[derive(Debug)]
struct Pending {
    /// Order of first arrival: drained and dropped oldest first.
    seq: u64,
    record: BlockRecord,
}

/// Records waiting to be shared, and the waker of the task that shares them.
#[derive(Debug, Default)]
pub struct Outbox {
    pending: BTreeMap<(RecordKind, BlockKey), Pending>,
    next_seq: u64,
    dropped: u64,
    waker: Option<Waker>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `record`, merging it into a pending one for the same kind and key; wakes the
    /// sharing task. Never blocks and never grows past [`OUTBOX_CAPACITY`] entries.
    pub fn push(&mut self, record: BlockRecord) {
        let slot = (record.kind(), record.key().clone());
        if let Some(p) = self.pending.get_mut(&slot) {
            p.record.merge(record);
        } else {
            if self.pending.len() >= OUTBOX_CAPACITY {
                let oldest = self
                    .pending
                    .iter()
                    .min_by_key(|(_, p)| p.seq)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.pending.remove(&k);
                    self.dropped += 1;
                }
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.pending.insert(slot, Pending { seq, record });
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Takes up to `max` records, oldest first.
    pub fn take(&mut self, max: usize) -> Vec<BlockRecord> {
        if max >= self.pending.len() {
            let mut all: Vec<Pending> = std::mem::take(&mut self.pending).into_values().collect();
            all.sort_by_key(|p| p.seq);
            return all.into_iter().map(|p| p.record).collect();
        }
        let mut order: Vec<(u64, (RecordKind, BlockKey))> = self
            .pending
            .iter()
            .map(|(k, p)| (p.seq, k.clone()))
            .collect();
        order.sort();
        order
            .into_iter()
            .take(max)
            .filter_map(|(_, k)| self.pending.remove(&k))
            .map(|p| p.record)
            .collect()
    }

    /// Remembers the waker to wake when a record arrives (replacing an earlier one).
    pub fn set_waker(&mut self, waker: &Waker) {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.waker = Some(waker.clone());
        }
    }

    /// How many records wait.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// How many records were dropped because the outbox was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
