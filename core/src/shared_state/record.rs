//! What replicas tell each other: one [`BlockRecord`] per block (or latency event) worth
//! sharing, in local time (`Instant`s). The wire form (`wire.rs`) carries how long a block
//! has left, never a clock reading, so replicas need no synchronised clocks.

use std::time::{Duration, Instant};

use crate::block_table::{BlockKey, LatencyTrigger};

/// Which kind of block (or event) a record is, as the metrics and `/v1/status` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    /// A Retry-After (or other pushback) block, `retry_after_handling.apply_to: global`.
    RetryAfter,
    /// A latency block (`on_high_latency`, `apply_to: global`).
    Latency,
    /// An open failure circuit (`on_failures`).
    Failures,
    /// One or more high-latency events that did not (yet) make a block.
    LatencyEvent,
}

impl RecordKind {
    /// The name on the wire and in Redis keys.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::RetryAfter => "retry_after",
            RecordKind::Latency => "latency",
            RecordKind::Failures => "failures",
            RecordKind::LatencyEvent => "latency_event",
        }
    }

    /// The kind a wire name stands for.
    pub fn from_name(name: &str) -> Option<RecordKind> {
        [
            RecordKind::RetryAfter,
            RecordKind::Latency,
            RecordKind::Failures,
            RecordKind::LatencyEvent,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// One thing a replica learned that the others should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockRecord {
    /// `key` is blocked by pushback until `until`.
    RetryAfter { key: BlockKey, until: Instant },
    /// `key` is latency-blocked until `until`.
    Latency { key: BlockKey, until: Instant },
    /// `key`'s failure circuit is open until `until`; a failed half-open probe opens it
    /// again for `reopen_for`.
    Failures {
        key: BlockKey,
        until: Instant,
        reopen_for: Duration,
    },
    /// `count` high-latency events on `key`, counted under `trigger`.
    LatencyEvent {
        key: BlockKey,
        trigger: LatencyTrigger,
        count: u32,
    },
}

impl BlockRecord {
    /// Its kind.
    pub fn kind(&self) -> RecordKind {
        match self {
            BlockRecord::RetryAfter { .. } => RecordKind::RetryAfter,
            BlockRecord::Latency { .. } => RecordKind::Latency,
            BlockRecord::Failures { .. } => RecordKind::Failures,
            BlockRecord::LatencyEvent { .. } => RecordKind::LatencyEvent,
        }
    }

    /// The model or prefix it is about.
    pub fn key(&self) -> &BlockKey {
        match self {
            BlockRecord::RetryAfter { key, .. }
            | BlockRecord::Latency { key, .. }
            | BlockRecord::Failures { key, .. }
            | BlockRecord::LatencyEvent { key, .. } => key,
        }
    }

    /// When the block ends (`None` for a latency event).
    pub fn until(&self) -> Option<Instant> {
        match self {
            BlockRecord::RetryAfter { until, .. }
            | BlockRecord::Latency { until, .. }
            | BlockRecord::Failures { until, .. } => Some(*until),
            BlockRecord::LatencyEvent { .. } => None,
        }
    }

    /// Folds a later record for the same kind and key into this one: a block keeps the
    /// later end ("never shorten a block"); events add up, to at most what makes a block.
    pub fn merge(&mut self, later: BlockRecord) {
        match (self, later) {
            (
                BlockRecord::RetryAfter { until, .. } | BlockRecord::Latency { until, .. },
                BlockRecord::RetryAfter { until: u, .. } | BlockRecord::Latency { until: u, .. },
            ) => *until = (*until).max(u),
            (
                BlockRecord::Failures {
                    until, reopen_for, ..
                },
                BlockRecord::Failures {
                    until: u,
                    reopen_for: r,
                    ..
                },
            ) => {
                if u > *until {
                    *until = u;
                    *reopen_for = r;
                }
            }
            (
                BlockRecord::LatencyEvent { trigger, count, .. },
                BlockRecord::LatencyEvent {
                    trigger: t,
                    count: c,
                    ..
                },
            ) => {
                *trigger = t;
                *count = count.saturating_add(c).min(t.min_triggers.max(1));
            }
            (this, later) => *this = later,
        }
    }
}
