//! Failure blocks (spec §11, `on_failures`): a circuit breaker per model or provider
//! prefix, kept in the shared [`BlockTable`](crate::block_table::BlockTable).
//!
//! Each key is in one of three states:
//!
//! - **counting**: the recent run of consecutive retriable failures (at most
//!   `consecutive` instants, those older than `window` forgotten). A success clears it.
//!   `consecutive` failures inside the window open the circuit.
//! - **open**: blocked until `now + block_duration`. Selection avoids the key as it
//!   avoids a Retry-After block. Time ends the block; a success meanwhile does not.
//! - **half-open**: the block ended. The next request that selects the key is the
//!   *probe* and is let through first; until its attempt has an outcome, every other
//!   request sees the key as still blocked (and is steered elsewhere, or waits and looks
//!   again every [`PROBE_RECHECK`]). A success of the probe (or of any attempt on the
//!   key) closes the circuit; a retriable failure opens it again for another
//!   `block_duration`. A probe that ends without either (a 400 passed through, a client
//!   that left) gives the turn to the next request; a probe that is never reported at
//!   all lapses at its lease.
//!
//! A half-open circuit that no request probes within one more `block_duration` is
//! forgotten: with nothing pending, the next failure starts a fresh count.
//!
//! Memory: one entry per key that failed recently or is blocked, each holding at most
//! `consecutive` instants. [`prune`](FailureBlocks::prune) drops failure runs whose
//! window has passed and half-open circuits nobody probed for a `block_duration`; under
//! a wildcard entry the client names the keys, so besides the configured ones at most
//! [`MAX_DERIVED_KEYS`](crate::key_cap::MAX_DERIVED_KEYS) are kept (see
//! [`KeyCap`](crate::key_cap::KeyCap)).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::block_table::BlockKey;
use crate::config::model_prefix;
use crate::key_cap::KeyCap;

/// How often a request that waits for a probe's outcome looks again.
pub const PROBE_RECHECK: Duration = Duration::from_millis(250);

/// The `on_failures` settings that decide when failures open a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureTrigger {
    /// Consecutive retriable failures that open the circuit.
    pub consecutive: u32,
    /// The failures must fall within this span.
    pub window: Duration,
    /// How long the circuit stays open.
    pub block_duration: Duration,
}

/// A circuit that is open: which key, until when, and for how long a failed probe
/// reopens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedCircuit {
    pub key: BlockKey,
    pub until: Instant,
    pub block_duration: Duration,
}

/// Names one probe, so that only its holder can hand the turn on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeTicket(u64);

/// What may happen to an attempt on a model, by its failure circuits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureGate {
    /// Go ahead.
    Free,
    /// Go ahead as the probe of a half-open circuit; report the outcome.
    Probe(ProbeTicket),
    /// Not now: blocked, or another request's probe is out. Look again at this instant.
    Blocked(Instant),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Circuit {
    Counting {
        failures: VecDeque<Instant>,
        window: Duration,
    },
    Open {
        until: Instant,
        block_duration: Duration,
    },
    HalfOpen {
        block_duration: Duration,
        /// Since when the circuit waits for a probe (the block's end, or the end of the
        /// last probe that resolved nothing).
        since: Instant,
        /// The probe out, and when its lease lapses.
        probe: Option<Probe>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    ticket: ProbeTicket,
    claimed_at: Instant,
    lease: Instant,
}

impl Circuit {
    /// The state at `now`: an open circuit whose block ended is half-open.
    fn at(&self, now: Instant) -> Circuit {
        match self {
            Circuit::Open {
                until,
                block_duration,
            } if *until <= now => Circuit::HalfOpen {
                block_duration: *block_duration,
                since: *until,
                probe: None,
            },
            Circuit::HalfOpen {
                block_duration,
                probe: Some(p),
                ..
            } if p.lease <= now => Circuit::HalfOpen {
                block_duration: *block_duration,
                since: p.lease,
                probe: None,
            },
            other => other.clone(),
        }
    }

    /// True while the circuit still matters at `now`: a failure run inside its window,
    /// a block in force, a probe out, or a half-open circuit that has waited for its
    /// probe less than one `block_duration`.
    ///
    /// Reads the circuit as [`at`](Self::at) would see it, without building that state
    /// (it runs for every circuit on every prune).
    fn is_live(&self, now: Instant) -> bool {
        match self {
            Circuit::Counting { failures, window } => failures
                .back()
                .is_some_and(|t| now.saturating_duration_since(*t) <= *window),
            // In force, or lapsed and half-open since `until`.
            Circuit::Open {
                until,
                block_duration,
            } => now < *until + *block_duration,
            // A probe out, or its lease lapsed and half-open again since the lease ended.
            Circuit::HalfOpen {
                probe: Some(p),
                block_duration,
                ..
            } => now < p.lease + *block_duration,
            Circuit::HalfOpen {
                since,
                block_duration,
                probe: None,
            } => now < *since + *block_duration,
        }
    }

    /// How much the circuit matters at `now`, lowest first, for eviction at the key cap:
    /// failure runs (oldest last failure first), then half-open circuits, then open ones
    /// (the block that ends soonest first). The circuit as [`at`](Self::at) would see it,
    /// without building that state.
    fn rank_at(&self, now: Instant) -> (u8, Option<Instant>) {
        match self {
            Circuit::Counting { failures, .. } => (0, failures.back().copied()),
            Circuit::Open { until, .. } if *until <= now => (1, Some(*until)),
            Circuit::Open { until, .. } => (2, Some(*until)),
            Circuit::HalfOpen { probe: Some(p), .. } if p.lease <= now => (1, Some(p.lease)),
            Circuit::HalfOpen { since, .. } => (1, Some(*since)),
        }
    }
}

/// Every failure circuit of a gateway. See the module docs.
#[derive(Debug, Default)]
pub struct FailureBlocks {
    circuits: BTreeMap<BlockKey, Circuit>,
    next_ticket: u64,
    cap: KeyCap,
}

/// The two keys that cover a model: the model itself and its prefix.
fn keys_of(model: &str) -> [BlockKey; 2] {
    [
        BlockKey::Model(model.to_owned()),
        BlockKey::Prefix(model_prefix(model).to_owned()),
    ]
}

impl FailureBlocks {
    /// No circuits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets which keys the config names and how many others are kept (see [`KeyCap`]).
    pub fn set_key_cap(&mut self, cap: KeyCap) {
        self.cap = cap;
    }

    /// Records a retriable failure of an attempt on `model`. A half-open circuit covering
    /// the model opens again at once. With `trigger`, the failure also counts towards
    /// opening the circuit of `key`. Returns the end of the block when this failure
    /// opened (or reopened) one.
    pub fn record_failure(
        &mut self,
        now: Instant,
        model: &str,
        trigger: Option<(BlockKey, FailureTrigger)>,
    ) -> Option<Instant> {
        self.record_failure_opening(now, model, trigger)
            .iter()
            .map(|o| o.until)
            .max()
    }

    /// As [`record_failure`](Self::record_failure), returning every circuit this failure
    /// opened (or reopened), so a caller can share them.
    pub fn record_failure_opening(
        &mut self,
        now: Instant,
        model: &str,
        trigger: Option<(BlockKey, FailureTrigger)>,
    ) -> Vec<OpenedCircuit> {
        let mut opened = Vec::new();
        for key in keys_of(model) {
            let Some(circuit) = self.circuits.get_mut(&key) else {
                continue;
            };
            if let Circuit::HalfOpen { block_duration, .. } = circuit.at(now) {
                let until = now + block_duration;
                *circuit = Circuit::Open {
                    until,
                    block_duration,
                };
                opened.push(OpenedCircuit {
                    key,
                    until,
                    block_duration,
                });
            }
        }
        let Some((key, trigger)) = trigger else {
            return opened;
        };
        self.cap
            .make_room(&mut self.circuits, &key, |c| c.rank_at(now));
        let circuit = self
            .circuits
            .entry(key.clone())
            .or_insert_with(|| Circuit::Counting {
                failures: VecDeque::new(),
                window: trigger.window,
            });
        let Circuit::Counting { failures, window } = circuit else {
            return opened;
        };
        *window = trigger.window;
        failures.push_back(now);
        while failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > trigger.window)
        {
            failures.pop_front();
        }
        let needed = trigger.consecutive.max(1) as usize;
        while failures.len() > needed {
            failures.pop_front();
        }
        if failures.len() < needed {
            return opened;
        }
        let until = now + trigger.block_duration;
        *circuit = Circuit::Open {
            until,
            block_duration: trigger.block_duration,
        };
        opened.push(OpenedCircuit {
            key,
            until,
            block_duration: trigger.block_duration,
        });
        opened
    }

    /// Another replica opened `key`'s circuit until `until` (spec §14): the circuit is
    /// open until then, unless it already is for longer. Its failure run and a local
    /// half-open probe give way to the block; a failed probe later reopens it for
    /// `reopen_for`.
    pub fn apply_open(
        &mut self,
        now: Instant,
        key: &BlockKey,
        until: Instant,
        reopen_for: Duration,
    ) {
        if until <= now {
            return;
        }
        if let Some(Circuit::Open { until: current, .. }) =
            self.circuits.get(key).map(|c| c.at(now))
        {
            if current >= until {
                return;
            }
        }
        self.cap
            .make_room(&mut self.circuits, key, |c| c.rank_at(now));
        self.circuits.insert(
            key.clone(),
            Circuit::Open {
                until,
                block_duration: reopen_for,
            },
        );
    }

    /// Every circuit open at `now`.
    pub fn open_circuits(&self, now: Instant) -> Vec<OpenedCircuit> {
        self.circuits
            .iter()
            .filter_map(|(key, c)| match c.at(now) {
                Circuit::Open {
                    until,
                    block_duration,
                } => Some(OpenedCircuit {
                    key: key.clone(),
                    until,
                    block_duration,
                }),
                _ => None,
            })
            .collect()
    }

    /// Records a success on `model`: clears the failure runs of its keys and closes a
    /// half-open circuit. A block still in force stays (time ends it).
    pub fn record_success(&mut self, now: Instant, model: &str) {
        for key in keys_of(model) {
            let remove = match self.circuits.get(&key).map(|c| c.at(now)) {
                Some(Circuit::Counting { .. } | Circuit::HalfOpen { .. }) => true,
                Some(Circuit::Open { .. }) | None => false,
            };
            if remove {
                self.circuits.remove(&key);
            }
        }
    }

    /// Until when selection should avoid `model` at `now`: the end of a block in force,
    /// or, while another request's probe is out, the next instant to look again.
    pub fn blocked_until(&self, now: Instant, model: &str) -> Option<Instant> {
        keys_of(model)
            .iter()
            .filter_map(|key| match self.circuits.get(key)?.at(now) {
                Circuit::Open { until, .. } => Some(until),
                Circuit::HalfOpen { probe: Some(p), .. } => Some(p.lease.min(now + PROBE_RECHECK)),
                _ => None,
            })
            .max()
    }

    /// Decides an attempt on `model` at `now`, and takes the probe when the model's
    /// circuit is half-open and free: the caller then holds it until `lease_until` at
    /// the latest, and must report the outcome (or [`end_probe`](Self::end_probe)).
    pub fn claim(&mut self, now: Instant, model: &str, lease_until: Instant) -> FailureGate {
        if let Some(until) = self.blocked_until(now, model) {
            return FailureGate::Blocked(until);
        }
        let ticket = ProbeTicket(self.next_ticket);
        let mut claimed = false;
        for key in keys_of(model) {
            let Some(circuit) = self.circuits.get_mut(&key) else {
                continue;
            };
            if let Circuit::HalfOpen {
                block_duration,
                since,
                ..
            } = circuit.at(now)
            {
                *circuit = Circuit::HalfOpen {
                    block_duration,
                    since,
                    probe: Some(Probe {
                        ticket,
                        claimed_at: now,
                        lease: lease_until.max(now),
                    }),
                };
                claimed = true;
            }
        }
        if !claimed {
            return FailureGate::Free;
        }
        self.next_ticket += 1;
        FailureGate::Probe(ticket)
    }

    /// The probe `ticket` on `model` ended without a success or a retriable failure:
    /// the next request may probe. Does nothing if the turn has already passed on.
    pub fn end_probe(&mut self, model: &str, ticket: ProbeTicket) {
        for key in keys_of(model) {
            if let Some(Circuit::HalfOpen { probe, since, .. }) = self.circuits.get_mut(&key) {
                if let Some(p) = probe.filter(|p| p.ticket == ticket) {
                    *since = p.claimed_at;
                    *probe = None;
                }
            }
        }
    }

    /// Drops what no longer matters at `now`: failure runs whose last failure is older
    /// than their window, and half-open circuits with no probe out that have waited one
    /// `block_duration` for one (the next failure on such a key starts a fresh count).
    /// Open circuits and probes out stay.
    pub fn prune(&mut self, now: Instant) {
        self.circuits.retain(|_, c| c.is_live(now));
    }

    /// The circuits that keep selection away at `now` (`Some(until)`: open) or wait for
    /// their probe (`None`: half-open), by key.
    pub fn circuits(&self, now: Instant) -> Vec<(BlockKey, Option<Instant>)> {
        self.circuits
            .iter()
            .filter_map(|(key, c)| match c.at(now) {
                Circuit::Open { until, .. } => Some((key.clone(), Some(until))),
                Circuit::HalfOpen { .. } => Some((key.clone(), None)),
                Circuit::Counting { .. } => None,
            })
            .collect()
    }

    /// Keeps only the circuits of keys `keep` accepts.
    pub fn retain_keys(&mut self, keep: &impl Fn(&BlockKey) -> bool) {
        self.circuits.retain(|k, _| keep(k));
    }

    /// How many keys have a circuit.
    pub fn len(&self) -> usize {
        self.circuits.len()
    }

    /// True when no key has a circuit.
    pub fn is_empty(&self) -> bool {
        self.circuits.is_empty()
    }
}
