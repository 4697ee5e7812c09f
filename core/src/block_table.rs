//! Blocks: which models (or whole provider prefixes) selection should avoid until
//! when, from rate-limit pushback (spec §4.5), from latency triggers (§4.6) and from
//! consecutive failures (§11, [`FailureBlocks`]).
//!
//! One [`BlockTable`] is shared by every request of a gateway (`apply_to: global`);
//! each request also keeps a private one (`apply_to: request`; failure blocks are always
//! global). With sharing on (spec §14, [`crate::shared_state`]) the gateway's table also
//! puts every block it records into an outbox for other replicas, and merges theirs with
//! [`BlockTable::apply_remote`]. The table is sans-IO: every method takes `now`.
//!
//! Memory: one entry per key with a block in force or a recent trigger history, each
//! holding at most `min_triggers` (or `on_failures.consecutive`) instants, plus an outbox
//! of at most [`OUTBOX_CAPACITY`](crate::shared_state::OUTBOX_CAPACITY) records. Every
//! call that records something prunes first: ended blocks, latency events older than
//! their window and failure runs older than theirs go. The keys the config names are
//! bounded by the config; under a wildcard entry the client names the model, so the
//! other keys are capped at [`MAX_DERIVED_KEYS`](crate::key_cap::MAX_DERIVED_KEYS) per
//! kind of entry, the least recent evicted first ([`KeyCap`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::config::{model_prefix, BlockScope};
use crate::failure_blocks::{FailureBlocks, FailureGate, FailureTrigger, ProbeTicket};
use crate::key_cap::KeyCap;
use crate::shared_state::{BlockRecord, Outbox};

/// What a block covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlockKey {
    /// One model, by its full `prefix/model-id` string.
    Model(String),
    /// Every model whose prefix is this.
    Prefix(String),
}

impl BlockKey {
    /// The key a block of `scope` for `model` is recorded under.
    pub fn for_scope(scope: BlockScope, model: &str) -> BlockKey {
        match scope {
            BlockScope::Model => BlockKey::Model(model.to_owned()),
            BlockScope::Provider => BlockKey::Prefix(model_prefix(model).to_owned()),
        }
    }
}

/// The latency-trigger settings that decide when events become a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyTrigger {
    /// Events needed inside the window.
    pub min_triggers: u32,
    /// The sliding window; `None` means events never expire (only sensible with one trigger).
    pub window: Option<Duration>,
    /// How long the block lasts once triggered.
    pub block_duration: Duration,
}

/// Why a block is in force, as `/metrics` and `/v1/status` name it (spec §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlockKind {
    /// The upstream pushed back (`Retry-After` and the rate-limit reset headers).
    RetryAfter,
    /// High-latency events crossed `on_high_latency.min_triggers`.
    Latency,
    /// `on_failures`: consecutive retriable failures opened the circuit.
    Failures,
}

impl BlockKind {
    /// The label value: `retry_after`, `latency`, `failures`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockKind::RetryAfter => "retry_after",
            BlockKind::Latency => "latency",
            BlockKind::Failures => "failures",
        }
    }
}

/// One block of a [`BlockTable`], as [`BlockTable::blocks`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEntry {
    pub key: BlockKey,
    pub kind: BlockKind,
    /// When it ends; `None` for a failure circuit that is half-open (its block ended and
    /// the next attempt is the probe that closes or reopens it).
    pub until: Option<Instant>,
}

/// Pushback, latency and failure blocks, and the recent events behind the latter two.
#[derive(Debug, Default)]
pub struct BlockTable {
    pushback: BTreeMap<BlockKey, Instant>,
    latency: BTreeMap<BlockKey, Instant>,
    latency_events: BTreeMap<BlockKey, LatencyEvents>,
    failures: FailureBlocks,
    /// With sharing on (spec §14): what this replica recorded and has not yet shared.
    outbox: Option<Outbox>,
    cap: KeyCap,
}

/// The recent high-latency events of one key, and the window that forgets them.
#[derive(Debug, Default)]
struct LatencyEvents {
    at: VecDeque<Instant>,
    window: Option<Duration>,
}

impl LatencyEvents {
    /// Forgets the events older than the window at `now`.
    fn trim(&mut self, now: Instant) {
        if let Some(window) = self.window {
            while self
                .at
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) > window)
            {
                self.at.pop_front();
            }
        }
    }
}

impl BlockTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets which exact models the config names (a gateway calls it on every build and
    /// reload): their keys, like every prefix key, are never evicted and do not count
    /// towards the cap on other keys.
    pub fn set_configured_models(&mut self, models: impl IntoIterator<Item = String>) {
        self.set_key_cap(self.cap.with_models(models.into_iter().collect()));
    }

    /// Allows `limit` derived keys per kind of entry instead of
    /// [`MAX_DERIVED_KEYS`](crate::key_cap::MAX_DERIVED_KEYS) (for tests of the cap).
    pub fn set_derived_key_limit(&mut self, limit: usize) {
        self.set_key_cap(self.cap.with_limit(limit));
    }

    fn set_key_cap(&mut self, cap: KeyCap) {
        self.failures.set_key_cap(cap.clone());
        self.cap = cap;
    }

    /// Blocks `key` until `until` because an upstream pushed back (Retry-After and kin).
    /// Never shortens an existing block.
    pub fn record_pushback(&mut self, now: Instant, key: BlockKey, until: Instant) {
        self.prune(now);
        let shared = self.outbox.is_some().then(|| key.clone());
        self.cap.make_room(&mut self.pushback, &key, |u| *u);
        if extend(&mut self.pushback, key, until) {
            if let Some(key) = shared {
                self.share(BlockRecord::RetryAfter { key, until });
            }
        }
    }

    /// Records one high-latency event for `key`; once `trigger.min_triggers` events fall
    /// inside the window, blocks `key` for `trigger.block_duration` (never shortening an
    /// existing block). Returns the block's end when this event created or extended one.
    pub fn record_latency_event(
        &mut self,
        now: Instant,
        key: BlockKey,
        trigger: LatencyTrigger,
    ) -> Option<Instant> {
        self.prune(now);
        let shared = self.outbox.is_some().then(|| key.clone());
        let blocked = self.count_latency_events(now, key, trigger, 1);
        if let Some(key) = shared {
            self.share(match blocked {
                Some(until) => BlockRecord::Latency { key, until },
                None => BlockRecord::LatencyEvent {
                    key,
                    trigger,
                    count: 1,
                },
            });
        }
        blocked
    }

    /// Counts `n` high-latency events at `now`; see
    /// [`record_latency_event`](Self::record_latency_event).
    fn count_latency_events(
        &mut self,
        now: Instant,
        key: BlockKey,
        trigger: LatencyTrigger,
        n: u32,
    ) -> Option<Instant> {
        let needed = trigger.min_triggers.max(1) as usize;
        self.cap
            .make_room(&mut self.latency_events, &key, |e| e.at.back().copied());
        let events = self.latency_events.entry(key.clone()).or_default();
        events.window = trigger.window;
        for _ in 0..(n as usize).min(needed) {
            events.at.push_back(now);
        }
        events.trim(now);
        while events.at.len() > needed {
            events.at.pop_front();
        }
        if events.at.len() < needed {
            return None;
        }
        self.latency_events.remove(&key);
        let until = now + trigger.block_duration;
        self.cap.make_room(&mut self.latency, &key, |u| *u);
        let entry = self.latency.entry(key).or_insert(until);
        if *entry < until {
            *entry = until;
        }
        Some(*entry)
    }

    /// When the pushback block covering `model` (by model or by prefix) ends, if it is
    /// still in force at `now`.
    pub fn pushback_until(&self, now: Instant, model: &str) -> Option<Instant> {
        Self::lookup(&self.pushback, now, model)
    }

    /// When the latency block covering `model` ends, if it is still in force at `now`.
    pub fn latency_until(&self, now: Instant, model: &str) -> Option<Instant> {
        Self::lookup(&self.latency, now, model)
    }

    /// Records a retriable failure on `model` (see [`FailureBlocks::record_failure`]):
    /// reopens a half-open circuit, and with `trigger` counts towards opening `key`'s.
    /// Returns the block's end when one was opened.
    pub fn record_failure(
        &mut self,
        now: Instant,
        model: &str,
        trigger: Option<(BlockKey, FailureTrigger)>,
    ) -> Option<Instant> {
        self.prune(now);
        let opened = self.failures.record_failure_opening(now, model, trigger);
        let until = opened.iter().map(|o| o.until).max();
        if self.outbox.is_some() {
            for o in opened {
                self.share(BlockRecord::Failures {
                    key: o.key,
                    until: o.until,
                    reopen_for: o.block_duration,
                });
            }
        }
        until
    }

    /// Records a success on `model`: clears its failure runs, closes a half-open circuit.
    pub fn record_success(&mut self, now: Instant, model: &str) {
        self.failures.record_success(now, model);
    }

    /// Until when the failure circuits of `model` keep selection away from it at `now`
    /// (see [`FailureBlocks::blocked_until`]).
    pub fn failure_until(&self, now: Instant, model: &str) -> Option<Instant> {
        self.failures.blocked_until(now, model)
    }

    /// Decides an attempt on `model` by its failure circuits, taking the half-open probe
    /// when it is free (see [`FailureBlocks::claim`]).
    pub fn claim_attempt(
        &mut self,
        now: Instant,
        model: &str,
        lease_until: Instant,
    ) -> FailureGate {
        self.failures.claim(now, model, lease_until)
    }

    /// Hands a probe's turn on without an outcome (see [`FailureBlocks::end_probe`]).
    pub fn end_probe(&mut self, model: &str, ticket: ProbeTicket) {
        self.failures.end_probe(model, ticket);
    }

    /// Turns sharing on (spec §14): from now on every block this table records (and every
    /// high-latency event that does not make one) also goes to an outbox for the task that
    /// shares them. Blocks applied with [`apply_remote`](Self::apply_remote) never do.
    pub fn enable_sharing(&mut self) {
        self.outbox.get_or_insert_with(Outbox::new);
    }

    /// Takes up to `max` records waiting to be shared, oldest first.
    pub fn take_shared(&mut self, max: usize) -> Vec<BlockRecord> {
        self.outbox.as_mut().map_or_else(Vec::new, |o| o.take(max))
    }

    /// How many records wait to be shared.
    pub fn shared_pending(&self) -> usize {
        self.outbox.as_ref().map_or(0, Outbox::len)
    }

    /// The waker of the sharing task: woken when a record is added to the outbox.
    pub fn set_share_waker(&mut self, waker: &Waker) {
        if let Some(o) = &mut self.outbox {
            o.set_waker(waker);
        }
    }

    /// Puts every block still in force at `now` into the outbox again (after the shared
    /// store may have lost them, e.g. a Redis restarted without persistence).
    pub fn share_live_blocks(&mut self, now: Instant) {
        for record in self.live_blocks(now) {
            self.share(record);
        }
    }

    /// Every block in force at `now`, as records.
    pub fn live_blocks(&self, now: Instant) -> Vec<BlockRecord> {
        let live = |map: &BTreeMap<BlockKey, Instant>| {
            map.iter()
                .filter(|(_, until)| **until > now)
                .map(|(k, u)| (k.clone(), *u))
                .collect::<Vec<_>>()
        };
        let mut out: Vec<BlockRecord> = live(&self.pushback)
            .into_iter()
            .map(|(key, until)| BlockRecord::RetryAfter { key, until })
            .collect();
        out.extend(
            live(&self.latency)
                .into_iter()
                .map(|(key, until)| BlockRecord::Latency { key, until }),
        );
        out.extend(
            self.failures
                .open_circuits(now)
                .into_iter()
                .map(|o| BlockRecord::Failures {
                    key: o.key,
                    until: o.until,
                    reopen_for: o.block_duration,
                }),
        );
        out
    }

    /// Applies a record another replica shared (spec §14), merging by "never shorten a
    /// block": a block that already ends later stays; a latency event counts towards the
    /// key's trigger as one seen here at `now`. Nothing applied here is shared again.
    pub fn apply_remote(&mut self, now: Instant, record: &BlockRecord) {
        self.prune(now);
        match record {
            BlockRecord::RetryAfter { key, until } if *until > now => {
                self.cap.make_room(&mut self.pushback, key, |u| *u);
                extend(&mut self.pushback, key.clone(), *until);
            }
            BlockRecord::Latency { key, until } if *until > now => {
                self.cap.make_room(&mut self.latency, key, |u| *u);
                extend(&mut self.latency, key.clone(), *until);
            }
            BlockRecord::Failures {
                key,
                until,
                reopen_for,
            } => self.failures.apply_open(now, key, *until, *reopen_for),
            BlockRecord::LatencyEvent {
                key,
                trigger,
                count,
            } => {
                self.count_latency_events(now, key.clone(), *trigger, *count);
            }
            BlockRecord::RetryAfter { .. } | BlockRecord::Latency { .. } => {}
        }
    }

    fn share(&mut self, record: BlockRecord) {
        if let Some(o) = &mut self.outbox {
            o.push(record);
        }
    }

    fn lookup(map: &BTreeMap<BlockKey, Instant>, now: Instant, model: &str) -> Option<Instant> {
        let by_model = map.get(&BlockKey::Model(model.to_owned()));
        let by_prefix = map.get(&BlockKey::Prefix(model_prefix(model).to_owned()));
        by_model
            .into_iter()
            .chain(by_prefix)
            .copied()
            .filter(|until| *until > now)
            .max()
    }

    /// Every block in force at `now` and every half-open failure circuit, ordered by key
    /// and kind. For `/metrics` and `/v1/status`; selection uses the `*_until` lookups.
    pub fn blocks(&self, now: Instant) -> Vec<BlockEntry> {
        let timed = |map: &BTreeMap<BlockKey, Instant>, kind: BlockKind| {
            map.iter()
                .filter(|(_, until)| **until > now)
                .map(move |(key, until)| BlockEntry {
                    key: key.clone(),
                    kind,
                    until: Some(*until),
                })
                .collect::<Vec<_>>()
        };
        let mut out = timed(&self.pushback, BlockKind::RetryAfter);
        out.extend(timed(&self.latency, BlockKind::Latency));
        out.extend(
            self.failures
                .circuits(now)
                .into_iter()
                .map(|(key, until)| BlockEntry {
                    key,
                    kind: BlockKind::Failures,
                    until,
                }),
        );
        out.sort_by(|a, b| (&a.key, a.kind).cmp(&(&b.key, b.kind)));
        out
    }

    /// Keeps only what `keep` accepts: the blocks, trigger histories and failure circuits
    /// of other keys are dropped. A reloaded gateway calls it to forget the models its new
    /// config no longer has.
    pub fn retain_keys(&mut self, keep: impl Fn(&BlockKey) -> bool) {
        self.pushback.retain(|k, _| keep(k));
        self.latency.retain(|k, _| keep(k));
        self.latency_events.retain(|k, _| keep(k));
        self.failures.retain_keys(&keep);
    }

    /// Drops blocks that have ended, latency events older than their window, failure runs
    /// older than theirs and half-open circuits nobody probed for a block duration (see
    /// [`FailureBlocks::prune`]). Every recording method calls it first.
    pub fn prune(&mut self, now: Instant) {
        self.pushback.retain(|_, until| *until > now);
        self.latency.retain(|_, until| *until > now);
        self.latency_events.retain(|_, events| {
            events.trim(now);
            !events.at.is_empty()
        });
        self.failures.prune(now);
    }

    /// How many entries the table holds (blocks plus trigger histories); for tests and metrics.
    pub fn len(&self) -> usize {
        self.pushback.len() + self.latency.len() + self.latency_events.len() + self.failures.len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sets `map[key]` to `until` unless the block there already ends as late or later;
/// true when it changed.
fn extend(map: &mut BTreeMap<BlockKey, Instant>, key: BlockKey, until: Instant) -> bool {
    match map.get_mut(&key) {
        Some(current) if *current >= until => false,
        Some(current) => {
            *current = until;
            true
        }
        None => {
            map.insert(key, until);
            true
        }
    }
}

/// A [`BlockTable`] shared by every request of a gateway. Cloning shares the table.
#[derive(Debug, Clone, Default)]
pub struct SharedBlockTable(Arc<Mutex<BlockTable>>);

impl SharedBlockTable {
    /// A new, empty shared table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks the table. A panic in another holder never poisons it for good: the
    /// table holds no invariant a half-finished update could break.
    pub fn lock(&self) -> MutexGuard<'_, BlockTable> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
