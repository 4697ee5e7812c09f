//! Candidate selection (spec §4.3, §4.5, §4.6, §11): which target an attempt goes to.
//!
//! Pushback blocks and failure blocks are *hard* blocks: a hard-blocked candidate is
//! only chosen to be waited for, when every candidate is hard-blocked. Latency blocks are
//! soft: they never leave a request without a target.
//!
//! A candidate must also be able to answer the client's API (spec §9): embeddings only
//! on OpenAI-interface targets, count_tokens only on Anthropic ones. Embeddings fail over
//! only to their `fallback_models`: vectors from another model are not comparable with
//! the ones a client already stored, so a model the config merely lists is no fallback.

use std::time::Instant;

use crate::apis::{upstream_api_for, ClientApi};
use crate::block_table::BlockTable;
use crate::config::{model_prefix, RetryPolicy, Strategy};
use crate::gateway::ProviderId;
use crate::routing::Targets;

/// The result of looking for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Go to `target`, no earlier than `ready_at` (the end of its hard block).
    Go {
        target: ProviderId,
        ready_at: Option<Instant>,
    },
    /// Nothing fits the strategy (or everything was already tried).
    Nothing,
}

/// The block state of targets, from the shared table and the request's own.
pub struct Blocks<'a> {
    pub shared: &'a BlockTable,
    pub request: &'a BlockTable,
    pub now: Instant,
}

impl Blocks<'_> {
    /// When the pushback block on `model` ends, if one is in force.
    pub fn pushback(&self, model: &str) -> Option<Instant> {
        let a = self.shared.pushback_until(self.now, model);
        let b = self.request.pushback_until(self.now, model);
        a.max(b)
    }

    /// When the failure block on `model` ends (or, while another request probes it, when
    /// to look again), if one is in force. Failure blocks are always global.
    pub fn failure(&self, model: &str) -> Option<Instant> {
        self.shared.failure_until(self.now, model)
    }

    /// When the hard blocks on `model` (pushback and failure) end, if any is in force.
    pub fn hard(&self, model: &str) -> Option<Instant> {
        self.pushback(model).max(self.failure(model))
    }

    /// When the latency block on `model` ends, if one is in force.
    pub fn latency(&self, model: &str) -> Option<Instant> {
        let a = self.shared.latency_until(self.now, model);
        let b = self.request.latency_until(self.now, model);
        a.max(b)
    }
}

/// What one request asks of a candidate: who its primary is, what it already tried, and
/// the client API every candidate must be able to answer.
#[derive(Debug, Clone, Copy)]
pub struct Seeking<'a> {
    pub primary: ProviderId,
    pub tried: &'a [ProviderId],
    pub api: ClientApi,
}

impl Seeking<'_> {
    /// Whether target `id` can answer this request's API at all.
    fn serves(&self, gw: &Targets, id: ProviderId) -> bool {
        let p = gw.provider(id);
        upstream_api_for(self.api, p.interface, p.responses).is_some()
    }
}

/// Ordered candidates for a failover strategy relative to the primary: `fallback_models`
/// first in their order, then the config's other entries in file order (not for
/// embeddings); each once, never the primary, never one already tried, only those that fit
/// `strategy` and can answer the client's API.
pub fn failover_candidates(
    gw: &Targets,
    policy: &RetryPolicy,
    seeking: &Seeking<'_>,
    strategy: Strategy,
) -> Vec<ProviderId> {
    let primary = seeking.primary;
    let primary_prefix = gw.provider(primary).prefix();
    let fits = |id: ProviderId| {
        let prefix = model_prefix(&gw.provider(id).model);
        let by_strategy = match strategy {
            Strategy::SameModel => false,
            Strategy::SameProvider => prefix == primary_prefix,
            Strategy::DifferentProvider => prefix != primary_prefix,
        };
        by_strategy && seeking.serves(gw, id)
    };
    let mut out: Vec<ProviderId> = Vec::new();
    let listed = seeking.api != ClientApi::Embeddings;
    let ordered = policy
        .fallback_models
        .iter()
        .filter_map(|m| gw.find_model(m))
        .chain(gw.provider_ids().filter(|_| listed));
    for id in ordered {
        if id != primary && !seeking.tried.contains(&id) && !out.contains(&id) && fits(id) {
            out.push(id);
        }
    }
    out
}

/// Picks among ordered `candidates`: the first with no block; else, among those with
/// no pushback block, the one whose latency block ends first (latency blocks never
/// leave a request without a target); else the one whose pushback block ends first,
/// to be waited for.
pub fn pick_from(gw: &Targets, blocks: &Blocks<'_>, candidates: &[ProviderId]) -> Pick {
    let model = |id: ProviderId| gw.provider(id).model.as_str();
    if let Some(&id) = candidates
        .iter()
        .find(|id| blocks.hard(model(**id)).is_none() && blocks.latency(model(**id)).is_none())
    {
        return Pick::Go {
            target: id,
            ready_at: None,
        };
    }
    let latency_only = candidates
        .iter()
        .filter(|id| blocks.hard(model(**id)).is_none())
        .min_by_key(|id| blocks.latency(model(**id)));
    if let Some(&id) = latency_only {
        return Pick::Go {
            target: id,
            ready_at: None,
        };
    }
    candidates
        .iter()
        .filter_map(|id| blocks.hard(model(*id)).map(|until| (until, *id)))
        .min()
        .map(|(until, id)| Pick::Go {
            target: id,
            ready_at: Some(until),
        })
        .unwrap_or(Pick::Nothing)
}

/// The target of a retry under `strategy` after `failed` failed.
pub fn pick_retry(
    gw: &Targets,
    policy: &RetryPolicy,
    blocks: &Blocks<'_>,
    seeking: &Seeking<'_>,
    failed: ProviderId,
    strategy: Strategy,
) -> Pick {
    match strategy {
        Strategy::SameModel => Pick::Go {
            target: failed,
            ready_at: blocks.hard(&gw.provider(failed).model),
        },
        _ => {
            let candidates = failover_candidates(gw, policy, seeking, strategy);
            pick_from(gw, blocks, &candidates)
        }
    }
}

/// The first attempt's target (spec §4.5, §4.6, §11: blocks count from the first
/// attempt). An unblocked primary is used as is; a hard-blocked one (pushback or
/// failures) is replaced per `default_strategy`, a latency-blocked one per
/// `on_high_latency.strategy`; the primary stays a candidate to wait for when nothing
/// else is free.
pub fn pick_first(
    gw: &Targets,
    policy: &RetryPolicy,
    blocks: &Blocks<'_>,
    seeking: &Seeking<'_>,
) -> Pick {
    let primary = seeking.primary;
    let model = gw.provider(primary).model.as_str();
    let strategy = if blocks.hard(model).is_some() {
        policy.default_rule.strategy
    } else if blocks.latency(model).is_some() {
        match &policy.on_high_latency {
            Some(h) => h.strategy,
            None => policy.default_rule.strategy,
        }
    } else {
        return Pick::Go {
            target: primary,
            ready_at: None,
        };
    };
    let mut candidates = match strategy {
        Strategy::SameModel => Vec::new(),
        s => failover_candidates(gw, policy, seeking, s),
    };
    candidates.push(primary);
    pick_from(gw, blocks, &candidates)
}
