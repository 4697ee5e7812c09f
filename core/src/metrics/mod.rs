//! Counters for `GET /metrics` (spec §13), recorded without a lock shared by all threads.
//!
//! Each worker thread records into its own [`MetricsShard`] (a runtime hands a connection
//! its thread's shard; see [`Connection::set_metrics_shard`]). A shard's lock is taken by
//! its own thread on the request path and, for a moment, by a scrape, so it is never
//! contended by other requests; a scrape merges every shard ([`Metrics::merged`]) and
//! renders the text exposition with `prometheus-client` (`render.rs`).
//!
//! Label values are indices on the request path ([`Slot`]s for model names interned from
//! the config, `&'static str` for the closed sets of [`labels`]), so a series is never
//! made from client input.
//!
//! [`Connection::set_metrics_shard`]: crate::connection::Connection::set_metrics_shard

mod histogram;
pub mod labels;
mod render;

pub use histogram::{Histogram, BUCKETS};
pub use labels::ApiLabel;
pub use render::{render, CONTENT_TYPE};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::gateway::ProviderId;

/// A model name's index in [`Metrics`]: what the request path records under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(pub u32);

impl Slot {
    /// No model: the request was answered before one was chosen.
    pub const NONE: Slot = Slot(u32::MAX);
}

/// What the counters of one request are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RequestKey {
    pub api: ApiLabel,
    pub model: Slot,
    pub status_class: &'static str,
    pub outcome: &'static str,
}

/// One shard's (or the merged) counts.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub(crate) requests: BTreeMap<RequestKey, u64>,
    pub(crate) attempts: BTreeMap<(Slot, &'static str), u64>,
    pub(crate) retries: BTreeMap<Slot, u64>,
    pub(crate) failovers: BTreeMap<(Slot, Slot), u64>,
    pub(crate) recoveries: BTreeMap<(Slot, &'static str), u64>,
    pub(crate) commit: BTreeMap<Slot, Histogram>,
    pub(crate) duration: BTreeMap<Slot, Histogram>,
    pub(crate) in_flight: i64,
    pub(crate) open_streams: i64,
    pub(crate) spans_exported: u64,
    pub(crate) spans_dropped: u64,
    pub(crate) export_failures: u64,
}

impl Counts {
    fn merge(&mut self, o: &Counts) {
        fn add<K: Ord + Copy>(a: &mut BTreeMap<K, u64>, b: &BTreeMap<K, u64>) {
            for (k, v) in b {
                *a.entry(*k).or_default() += v;
            }
        }
        fn add_h(a: &mut BTreeMap<Slot, Histogram>, b: &BTreeMap<Slot, Histogram>) {
            for (k, v) in b {
                a.entry(*k).or_default().merge(v);
            }
        }
        add(&mut self.requests, &o.requests);
        add(&mut self.attempts, &o.attempts);
        add(&mut self.retries, &o.retries);
        add(&mut self.failovers, &o.failovers);
        add(&mut self.recoveries, &o.recoveries);
        add_h(&mut self.commit, &o.commit);
        add_h(&mut self.duration, &o.duration);
        self.in_flight += o.in_flight;
        self.open_streams += o.open_streams;
        self.spans_exported += o.spans_exported;
        self.spans_dropped += o.spans_dropped;
        self.export_failures += o.export_failures;
    }

    /// Requests counted under any label.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Requests counted with this model label (every API, status and outcome).
    pub fn requests_of(&self, model: Slot) -> u64 {
        self.requests
            .iter()
            .filter(|(k, _)| k.model == model)
            .map(|(_, v)| v)
            .sum()
    }

    /// Attempts on `model`, by `error_type`.
    pub fn attempts_of(&self, model: Slot) -> Vec<(&'static str, u64)> {
        self.attempts
            .iter()
            .filter(|((s, _), _)| *s == model)
            .map(|((_, e), v)| (*e, *v))
            .collect()
    }

    /// Retries made for requests routed to `model`.
    pub fn retries_of(&self, model: Slot) -> u64 {
        self.retries.get(&model).copied().unwrap_or(0)
    }

    /// Failovers away from `model`.
    pub fn failovers_from(&self, model: Slot) -> u64 {
        self.failovers
            .iter()
            .filter(|((from, _), _)| *from == model)
            .map(|(_, v)| v)
            .sum()
    }

    /// Stream recoveries of requests routed to `model`, by outcome.
    pub fn recoveries_of(&self, model: Slot) -> Vec<(&'static str, u64)> {
        self.recoveries
            .iter()
            .filter(|((s, _), _)| *s == model)
            .map(|((_, o), v)| (*o, *v))
            .collect()
    }

    /// Requests being answered by the retry machine now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight
    }

    /// Streamed responses being written now.
    pub fn open_streams(&self) -> i64 {
        self.open_streams
    }
}

/// One upstream attempt of a finished request, as the counters need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptFacts {
    pub target: ProviderId,
    pub slot: Slot,
    pub error_type: &'static str,
}

/// A request the retry machine finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished<'a> {
    pub api: ApiLabel,
    /// The model that answered, or the last one tried.
    pub model: Slot,
    /// The model the request was routed to (whose policy governed it).
    pub primary: Slot,
    pub status: u16,
    pub outcome: &'static str,
    /// From the request's arrival to its response head (a stream's commit point).
    pub commit: Option<Duration>,
    /// From the request's arrival to its end.
    pub total: Duration,
    pub attempts: &'a [AttemptFacts],
    /// How the request's stream recovery ended, when its committed stream failed and
    /// recovery ran ([`labels::recovery_outcome`]).
    pub recovery: Option<&'static str>,
}

/// One worker thread's counters. See the module docs.
#[derive(Debug, Default)]
pub struct MetricsShard {
    counts: Mutex<Counts>,
}

impl MetricsShard {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request the gateway answered at once (no upstream attempt).
    pub fn record_immediate(&self, api: ApiLabel, status: u16) {
        let key = RequestKey {
            api,
            model: Slot::NONE,
            status_class: labels::status_class(status),
            outcome: labels::immediate_outcome(status),
        };
        *self.lock().requests.entry(key).or_default() += 1;
    }

    /// A request the retry machine answered: its request counter, its attempts, retries
    /// and failovers, and its latency histograms.
    pub fn record_finished(&self, f: &Finished<'_>) {
        let mut c = self.lock();
        let key = RequestKey {
            api: f.api,
            model: f.model,
            status_class: labels::status_class(f.status),
            outcome: f.outcome,
        };
        *c.requests.entry(key).or_default() += 1;
        for a in f.attempts {
            *c.attempts.entry((a.slot, a.error_type)).or_default() += 1;
        }
        if f.attempts.len() > 1 {
            *c.retries.entry(f.primary).or_default() += f.attempts.len() as u64 - 1;
        }
        for pair in f.attempts.windows(2) {
            if pair[0].target != pair[1].target {
                *c.failovers.entry((pair[0].slot, pair[1].slot)).or_default() += 1;
            }
        }
        if let Some(o) = f.recovery {
            *c.recoveries.entry((f.primary, o)).or_default() += 1;
        }
        if let Some(commit) = f.commit {
            c.commit.entry(f.model).or_default().observe(commit);
        }
        c.duration.entry(f.model).or_default().observe(f.total);
    }

    /// Spans handed to the exporter's queue (`exported`) and dropped because it was full
    /// or the collector refused them (`dropped`), and failed export calls.
    pub fn record_spans(&self, exported: u64, dropped: u64, failures: u64) {
        let mut c = self.lock();
        c.spans_exported += exported;
        c.spans_dropped += dropped;
        c.export_failures += failures;
    }

    fn add_in_flight(&self, requests: i64, streams: i64) {
        let mut c = self.lock();
        c.in_flight += requests;
        c.open_streams += streams;
    }
}

/// A request in flight on a shard: counted while this lives (and as an open stream once
/// [`stream_opened`](Self::stream_opened)), so a request dropped half-way is uncounted too.
#[derive(Debug)]
pub struct InFlight {
    shard: Arc<MetricsShard>,
    streaming: bool,
}

impl InFlight {
    /// Counts a request in flight on `shard`.
    pub fn start(shard: Arc<MetricsShard>) -> InFlight {
        shard.add_in_flight(1, 0);
        InFlight {
            shard,
            streaming: false,
        }
    }

    /// The request's streamed response head was written.
    pub fn stream_opened(&mut self) {
        if !self.streaming {
            self.streaming = true;
            self.shard.add_in_flight(0, 1);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let streams = if self.streaming { -1 } else { 0 };
        self.shard.add_in_flight(-1, streams);
    }
}

/// Every shard and the model names behind the slots; shared by a gateway and the
/// gateways that reload it, so counters never go back to zero on a reload.
#[derive(Debug, Default)]
pub struct Metrics {
    names: Mutex<Vec<String>>,
    shards: Mutex<Vec<Arc<MetricsShard>>>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

impl Metrics {
    /// No shards and no names yet.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// The slot of `name`, interned once. Call when a gateway is built, never per request.
    pub fn slot(&self, name: &str) -> Slot {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = names.iter().position(|n| n == name) {
            return Slot(i as u32);
        }
        names.push(name.to_owned());
        Slot(names.len() as u32 - 1)
    }

    /// The name behind `slot` (`none` for [`Slot::NONE`]).
    pub fn name(&self, slot: Slot) -> String {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        names
            .get(slot.0 as usize)
            .cloned()
            .unwrap_or_else(|| "none".to_owned())
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.names.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Shard `index` (made on first use). A runtime takes one per worker thread once
    /// and hands it to every connection of that thread.
    pub fn shard(&self, index: usize) -> Arc<MetricsShard> {
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        while shards.len() <= index {
            shards.push(Arc::default());
        }
        Arc::clone(&shards[index])
    }

    /// A config reload took effect (`ok`) or was refused.
    pub fn record_reload(&self, ok: bool) {
        let c = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Reloads that took effect and that were refused.
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
        )
    }

    /// The sum of every shard's counts.
    pub fn merged(&self) -> Counts {
        let shards: Vec<Arc<MetricsShard>> = self
            .shards
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut all = Counts::default();
        for s in shards {
            let c = s.lock().clone();
            all.merge(&c);
        }
        all
    }
}

// The counters as a connection records them are tested in `core/tests/metrics_counts.rs`.
