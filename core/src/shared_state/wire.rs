//! The records as they travel: JSON in a Redis key (a block, with a Redis-side expiry)
//! and in a pub/sub message (a block or a latency event), and the rules a record from
//! elsewhere must pass before it may steer this replica.
//!
//! A record carries how long its block has left (`ms`), measured by the sender when it
//! sends, never a wall-clock instant: the receiver adds it to its own monotonic clock, and
//! a block loaded from Redis takes its remaining time from the key's `PTTL`, measured by
//! Redis itself. Clock skew between replicas therefore never moves a block; only the time a
//! record is in flight does (it makes the receiver's copy end that much later).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::record::{BlockRecord, RecordKind};
use crate::block_table::{BlockKey, LatencyTrigger};
use crate::config::model_prefix;
use crate::gateway::Gateway;

/// The wire format's version; records of another version are ignored.
pub const WIRE_VERSION: u32 = 1;
/// The longest model or prefix name accepted from elsewhere: the longest model id a
/// wildcard entry routes.
const MAX_NAME: usize = crate::routing::MAX_WILDCARD_MODEL_BYTES;
/// The most `min_triggers` a latency event may carry.
const MAX_MIN_TRIGGERS: u32 = 10_000;

/// One record as JSON. In a key the `from` and `ms` fields are left out (the key's
/// expiry is the block's end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRecord {
    pub v: u32,
    /// The sending replica's id (hex), so a replica skips its own messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `retry_after`, `latency`, `failures` or `latency_event`.
    pub kind: String,
    /// `model` or `provider`.
    pub scope: String,
    /// The model (`openai/gpt-4o`) or the prefix (`openai`).
    pub name: String,
    /// Milliseconds the block has left when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
    /// `failures`: how long a failed half-open probe reopens the circuit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reopen_ms: Option<u64>,
    /// `latency_event`: how many events, and the trigger they count under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_triggers: Option<u32>,
    /// `latency_event`: the trigger window (absent: events never expire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_ms: Option<u64>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `model` or `provider`, and the name, of a key.
fn scope_name(key: &BlockKey) -> (&'static str, &str) {
    match key {
        BlockKey::Model(m) => ("model", m),
        BlockKey::Prefix(p) => ("provider", p),
    }
}

/// The Redis key a block of `kind` on `key` is stored under:
/// `{prefix}:block:{kind}:{model|provider}:{name}`.
pub fn redis_key(prefix: &str, kind: RecordKind, key: &BlockKey) -> String {
    let (scope, name) = scope_name(key);
    format!("{prefix}:block:{}:{scope}:{name}", kind.as_str())
}

/// The `SCAN MATCH` pattern of every block key under `prefix`.
pub fn scan_pattern(prefix: &str) -> String {
    format!("{prefix}:block:*")
}

/// The pub/sub channel of `prefix` in database `db` (pub/sub ignores `SELECT`, so the
/// database is part of the name and deployments in different databases stay apart).
pub fn channel(prefix: &str, db: u32) -> String {
    format!("{prefix}:blocks:{db}")
}

/// `record` as JSON for a pub/sub message from replica `from`, with the time its block has
/// left at `now`. `None` when the block has already ended.
pub fn encode_message(record: &BlockRecord, from: u64, now: Instant) -> Option<String> {
    let mut wire = to_wire(record, now)?;
    wire.from = Some(format!("{from:016x}"));
    serde_json::to_string(&wire).ok()
}

/// `record` as JSON for its Redis key, and the milliseconds until it ends at `now` (the
/// key's `PX`). `None` for latency events (never stored) and ended blocks.
pub fn encode_stored(record: &BlockRecord, now: Instant) -> Option<(String, u64)> {
    if record.kind() == RecordKind::LatencyEvent {
        return None;
    }
    let mut wire = to_wire(record, now)?;
    let px = wire.ms.take()?;
    Some((serde_json::to_string(&wire).ok()?, px))
}

fn to_wire(record: &BlockRecord, now: Instant) -> Option<WireRecord> {
    let (scope, name) = scope_name(record.key());
    let mut wire = WireRecord {
        v: WIRE_VERSION,
        from: None,
        kind: record.kind().as_str().to_string(),
        scope: scope.to_string(),
        name: name.to_string(),
        ms: None,
        reopen_ms: None,
        count: None,
        min_triggers: None,
        window_ms: None,
        block_ms: None,
    };
    if let Some(until) = record.until() {
        let left = ms(until.saturating_duration_since(now));
        if left == 0 {
            return None;
        }
        wire.ms = Some(left);
    }
    match record {
        BlockRecord::Failures { reopen_for, .. } => wire.reopen_ms = Some(ms(*reopen_for)),
        BlockRecord::LatencyEvent { trigger, count, .. } => {
            wire.count = Some(*count);
            wire.min_triggers = Some(trigger.min_triggers);
            wire.window_ms = trigger.window.map(ms);
            wire.block_ms = Some(ms(trigger.block_duration));
        }
        _ => {}
    }
    Some(wire)
}

/// What a record from elsewhere must satisfy to be applied here: it names a model or
/// prefix this gateway routes to, and it blocks no longer than this gateway's own config
/// could (longer values are cut to that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRules {
    /// Exact model names of the gateway's targets.
    models: BTreeSet<String>,
    /// Prefixes of wildcard entries: any model under them is accepted.
    wildcard_prefixes: BTreeSet<String>,
    /// Every prefix of the gateway's targets.
    prefixes: BTreeSet<String>,
    /// The longest block accepted.
    max_block: Duration,
}

impl RemoteRules {
    /// Rules for `models` (full `prefix/id` strings, `prefix/*` for wildcards) and
    /// blocks of at most `max_block`.
    pub fn new<'a>(models: impl IntoIterator<Item = &'a str>, max_block: Duration) -> Self {
        let mut rules = RemoteRules {
            models: BTreeSet::new(),
            wildcard_prefixes: BTreeSet::new(),
            prefixes: BTreeSet::new(),
            max_block,
        };
        for m in models {
            let prefix = model_prefix(m).to_string();
            if crate::config::is_wildcard_model(m) {
                rules.wildcard_prefixes.insert(prefix.clone());
            } else {
                rules.models.insert(m.to_string());
            }
            rules.prefixes.insert(prefix);
        }
        rules
    }

    /// The rules of `gateway`: its targets, and the longest block any of its retry
    /// policies can record (Retry-After cap, latency and failure block durations).
    pub fn for_gateway(gateway: &Gateway) -> Self {
        let models: Vec<String> = gateway
            .provider_ids()
            .map(|id| gateway.provider(id).model.clone())
            .collect();
        let max_block = gateway
            .config()
            .providers
            .iter()
            .filter_map(|p| p.retry_policy.as_ref())
            .flat_map(|policy| {
                [
                    Some(policy.retry_after_handling.max_retry_after),
                    policy.on_high_latency.map(|h| h.block_duration),
                    policy.on_failures.map(|f| f.block_duration),
                ]
            })
            .flatten()
            .max()
            .unwrap_or(Duration::from_secs(300));
        RemoteRules::new(models.iter().map(String::as_str), max_block)
    }

    /// The longest block accepted.
    pub fn max_block(&self) -> Duration {
        self.max_block
    }

    fn accepts(&self, key: &BlockKey) -> bool {
        match key {
            BlockKey::Model(m) => {
                self.models.contains(m) || self.wildcard_prefixes.contains(model_prefix(m))
            }
            BlockKey::Prefix(p) => self.prefixes.contains(p),
        }
    }

    fn clamp(&self, ms: u64) -> Duration {
        Duration::from_millis(ms).min(self.max_block)
    }

    /// Decodes a JSON record received at `now`; `left` overrides its `ms` (a stored
    /// block's `PTTL`). `None` for anything malformed, from another wire version, about a
    /// model this gateway does not route to, or already ended.
    pub fn decode(&self, json: &[u8], now: Instant, left: Option<u64>) -> Option<Decoded> {
        let wire: WireRecord = serde_json::from_slice(json).ok()?;
        if wire.v != WIRE_VERSION || wire.name.is_empty() || wire.name.len() > MAX_NAME {
            return None;
        }
        let key = match wire.scope.as_str() {
            "model" if wire.name.contains('/') => BlockKey::Model(wire.name.clone()),
            "provider" if !wire.name.contains('/') => BlockKey::Prefix(wire.name.clone()),
            _ => return None,
        };
        if !self.accepts(&key) {
            return None;
        }
        let from = match &wire.from {
            Some(hex) => Some(u64::from_str_radix(hex, 16).ok()?),
            None => None,
        };
        let kind = RecordKind::from_name(&wire.kind)?;
        let until = || {
            let left = left.or(wire.ms).filter(|ms| *ms > 0)?;
            Some(now + self.clamp(left))
        };
        let record = match kind {
            RecordKind::RetryAfter => BlockRecord::RetryAfter {
                key,
                until: until()?,
            },
            RecordKind::Latency => BlockRecord::Latency {
                key,
                until: until()?,
            },
            RecordKind::Failures => BlockRecord::Failures {
                key,
                until: until()?,
                reopen_for: self.clamp(wire.reopen_ms.filter(|ms| *ms > 0)?),
            },
            RecordKind::LatencyEvent => {
                let min_triggers = wire
                    .min_triggers
                    .filter(|n| (1..=MAX_MIN_TRIGGERS).contains(n))?;
                let count = wire.count.filter(|c| *c >= 1)?.min(min_triggers);
                BlockRecord::LatencyEvent {
                    key,
                    trigger: LatencyTrigger {
                        min_triggers,
                        window: wire.window_ms.map(Duration::from_millis),
                        block_duration: self.clamp(wire.block_ms.filter(|ms| *ms > 0)?),
                    },
                    count,
                }
            }
        };
        Some(Decoded { from, record })
    }
}

/// A record received from elsewhere, ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The sender, when it was a message.
    pub from: Option<u64>,
    pub record: BlockRecord,
}
