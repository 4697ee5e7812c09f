//! The retry decisions (spec §4.2 to §4.5, §4.7, §4.9): the first target, and what
//! follows a failed attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;

use super::report::{self, AttemptRecord, EndReason};
use super::select::{pick_first, pick_retry, Pick, Seeking};
use super::{Outcome, RetryMachine, State};
use crate::anthropic;
use crate::apis::{count_tokens, ClientApi};
use crate::backoff::backoff_delay;
use crate::block_table::BlockKey;
use crate::classify::{classify, Failure, RuleRef, Verdict};
use crate::config::{BlockApplyTo, BlockScope, Interface, RetryPolicy};
use crate::gateway::ProviderId;
use crate::pushback::parse_pushback;
use crate::response::ClientResponse;
use crate::response::SHOULD_RETRY;

/// Chooses the first target: the primary, unless blocks steer the request elsewhere or
/// make it wait (spec §4.5: blocks count from the first attempt).
pub(super) fn first_attempt(m: &mut RetryMachine, now: Instant) {
    let primary = m.req.primary;
    let gw = Arc::clone(&m.gw);
    let Some(policy) = gw.provider(primary).retry_policy.as_ref() else {
        m.send(now, primary);
        return;
    };
    let seeking = Seeking {
        primary,
        tried: &[],
        api: m.api(),
    };
    let pick = m.with_blocks(now, |blocks| pick_first(&gw, policy, blocks, &seeking));
    match pick {
        Pick::Go {
            target,
            ready_at: None,
        } => m.send(now, target),
        Pick::Go {
            target,
            ready_at: Some(until),
        } => {
            let within_budget = policy
                .max_retry_duration
                .is_none_or(|budget| until <= now + budget);
            if until < m.deadline && within_budget {
                m.state = State::BackingOff { until, target };
            } else {
                let reason = EndReason {
                    budget_exhausted: !within_budget,
                    shortest_block: Some(until.saturating_duration_since(now)),
                };
                let resp = report::exhausted(&m.records, None, reason);
                give_up(m, resp, true);
            }
        }
        Pick::Nothing => m.send(now, primary),
    }
}

/// Records a failed attempt and its pushback, then retries (now or after a wait) or
/// ends the request with the right answer. `answer` is an upstream error's body in the
/// client's shape (what passes through when the request ends on it); `failure` carries
/// the same error in OpenAI's shape, for the rules and the exhaustion body.
pub(super) fn after_failure(
    m: &mut RetryMachine,
    now: Instant,
    failure: Failure,
    answer: Option<Bytes>,
) {
    after_attempt(m, now, failure, answer, Sent::Yes);
}

/// The current attempt's target cannot express the request (`failure`: its 400, made
/// here; no upstream call was made). On the request's first attempt that 400 is the
/// answer, as an upstream's own would be. On a failover attempt the candidate is skipped:
/// the failure that sent the request on to it decides what follows (the next candidate
/// under the same rule, or the exhaustion error listing every attempt), so a request its
/// primary can take never ends in a 400 that only a fallback would give. An attempt
/// that was never sent is no upstream failure: it never counts toward a failure block,
/// and its record says [`UNTRANSLATABLE_REQUEST`] with no status, not an upstream 400.
pub(super) fn after_untranslatable(
    m: &mut RetryMachine,
    now: Instant,
    failure: Failure,
    answer: Bytes,
) {
    let decided_by = m.last_failure.clone();
    after_attempt(m, now, failure, Some(answer), Sent::No { decided_by });
}

/// The `error_type` of an attempt whose target could not express the request, so no
/// call was made.
pub const UNTRANSLATABLE_REQUEST: &str = "untranslatable_request";

/// Whether the attempt being judged reached its upstream.
enum Sent {
    Yes,
    /// The target could not express the request. `decided_by`: the earlier failure
    /// that sent the request on to this failover candidate, which classifies it (none
    /// on the request's first attempt, where the refusal itself is judged).
    No {
        decided_by: Option<Failure>,
    },
}

/// [`after_failure`] for an attempt that was or was not `sent`.
fn after_attempt(
    m: &mut RetryMachine,
    now: Instant,
    failure: Failure,
    answer: Option<Bytes>,
    sent: Sent,
) {
    let State::InFlight(attempt) = &mut m.state else {
        return;
    };
    let failed = attempt.target;
    let latency = now.saturating_duration_since(attempt.sent_at);
    let started = attempt.sent_at.saturating_duration_since(m.started_at);
    let probe = attempt.probe.take();
    let model = m.gw.provider(failed).model.clone();
    if matches!(failure, Failure::Http { .. }) {
        // The error body lives on in the answer or the last failure: keep it counted.
        m.keep_attempt_body();
    }
    m.state = State::Idle;

    let gw = Arc::clone(&m.gw);
    let policy = gw.provider(m.req.primary).retry_policy.as_ref();
    let (error_type, status, retry_after) = match sent {
        Sent::Yes => {
            let retry_after = policy
                .as_ref()
                .and_then(|p| record_pushback(m, now, p, &model, &failure));
            tracing::info!(
                request_id = %m.req.request_id, %model, error_type = %failure.error_type(),
                latency_ms = latency.as_millis() as u64,
                detail = failure.log_detail().unwrap_or(""), "attempt failed"
            );
            (failure.error_type(), failure.status(), retry_after)
        }
        Sent::No { .. } => {
            tracing::info!(
                request_id = %m.req.request_id, %model, error_type = UNTRANSLATABLE_REQUEST,
                detail = failure.log_detail().unwrap_or(""),
                "attempt not sent: the target cannot express the request"
            );
            (UNTRANSLATABLE_REQUEST.to_owned(), None, None)
        }
    };
    m.records.push(AttemptRecord {
        model,
        target: failed,
        error_type,
        status,
        started,
        latency,
        retry_after,
    });

    let Some(policy) = policy else {
        end_without_retry(m, failure, answer, false);
        return;
    };
    let (failure, was_sent) = match sent {
        Sent::Yes => (failure, true),
        Sent::No {
            decided_by: Some(previous),
        } => (previous, false),
        Sent::No { decided_by: None } => (failure, false),
    };
    let rule = match classify(policy, &failure) {
        Verdict::NotRetriable => {
            drop(probe);
            end_without_retry(m, failure, answer, false);
            return;
        }
        Verdict::Retriable(rule) => rule,
    };
    if was_sent {
        m.record_failure(now, policy, failed, probe);
    } else {
        drop(probe);
    }
    match next_retry(m, now, policy, rule, failed) {
        Ok((target, at)) => {
            m.last_failure = Some(failure);
            if at <= now {
                m.send(now, target);
            } else {
                m.state = State::BackingOff { until: at, target };
            }
        }
        Err(reason) => {
            if m.retries == 0 && reason == EndReason::default() {
                end_without_retry(m, failure, answer, true);
            } else {
                let resp = report::exhausted(&m.records, Some(&failure), reason);
                give_up(m, resp, true);
            }
        }
    }
}

/// Reads the failure's pushback and blocks the model or prefix (spec §4.5). Returns
/// the pushback for the attempt record.
pub(super) fn record_pushback(
    m: &mut RetryMachine,
    now: Instant,
    policy: &RetryPolicy,
    model: &str,
    failure: &Failure,
) -> Option<Duration> {
    let Failure::Http {
        status,
        headers,
        body,
    } = failure
    else {
        return None;
    };
    let handling = &policy.retry_after_handling;
    let interface = m.gw.find_model(model).map(|id| m.gw.provider(id).interface);
    if *status == 429 && interface == Some(Interface::Anthropic) && anthropic::is_spend_limit(body)
    {
        // A spend limit does not lift in seconds: skip the whole provider for as long as
        // any pushback may last, for every request.
        let until = now + handling.max_retry_after;
        let key = BlockKey::for_scope(BlockScope::Provider, model);
        m.gw.blocks().lock().record_pushback(now, key, until);
        return Some(handling.max_retry_after);
    }
    let pushback = parse_pushback(headers, m.wall(now), handling.max_retry_after)?;
    let key = BlockKey::for_scope(handling.scope, model);
    match handling.apply_to {
        BlockApplyTo::Global => {
            m.gw.blocks()
                .lock()
                .record_pushback(now, key, now + pushback)
        }
        BlockApplyTo::Request => m.request_blocks.record_pushback(now, key, now + pushback),
    }
    Some(pushback)
}

/// `target` was chosen but its failure circuit is shut until `until` (a block, or another
/// request's probe): wait for it when that fits the deadline and the duration budget,
/// otherwise end with the exhaustion error.
pub(super) fn wait_for(m: &mut RetryMachine, now: Instant, target: ProviderId, until: Instant) {
    let max_duration = m.policy().and_then(|p| p.max_retry_duration);
    let start = m.first_retry_at.unwrap_or(now);
    let within_budget = max_duration.is_none_or(|budget| until <= start + budget);
    if until < m.deadline && within_budget {
        m.state = State::BackingOff { until, target };
        return;
    }
    let reason = EndReason {
        budget_exhausted: !within_budget,
        shortest_block: Some(until.saturating_duration_since(now)),
    };
    let resp = report::exhausted(&m.records, m.last_failure.as_ref(), reason);
    give_up(m, resp, true);
}

/// No retry was made: the upstream's answer passes through unchanged (spec §4.1, IT-4),
/// in the client's shape (`answer`), or, for a transport failure, a gateway-made error.
/// `gave_up` marks a retriable failure the policy could not retry: the client is told not
/// to retry either.
fn end_without_retry(m: &mut RetryMachine, failure: Failure, answer: Option<Bytes>, gave_up: bool) {
    let model = m
        .records
        .last()
        .map(|r| r.model.clone())
        .unwrap_or_default();
    match failure {
        Failure::Http {
            status,
            headers,
            body,
        } => {
            let mut r = report::pass_through(status, &headers, answer.unwrap_or(body));
            if gave_up {
                r.headers
                    .insert(SHOULD_RETRY, HeaderValue::from_static("false"));
                give_up(m, r, false);
            } else {
                m.respond(r, Outcome::Failed);
            }
        }
        transport => give_up(m, report::transport_error(&model, &transport), true),
    }
}

/// The request ends without an answer after a retriable failure (or blocks) with `resp`:
/// a gateway-made error (`made_here`: reshaped for the client's API) or an upstream error
/// already in the client's shape. A count_tokens client gets the local estimate instead
/// (spec §9: an estimate, marked as one, serves a client better than an outage does).
fn give_up(m: &mut RetryMachine, resp: ClientResponse, made_here: bool) {
    if m.api() == ClientApi::CountTokens {
        let estimate = count_tokens::local_response(m.req.api.body());
        if estimate.status.is_success() {
            tracing::info!(request_id = %m.req.request_id, "count_tokens answered with the local estimate");
            // No model answered: the gateway counted.
            m.respond_as(estimate, Outcome::Success, None);
            return;
        }
    }
    if made_here {
        m.respond_error(resp);
    } else {
        m.respond(resp, Outcome::Failed);
    }
}

/// The next retry under `rule_ref`, escalating to its `then` stage when the rule's own
/// retries are spent or its target would wait longer than `max_wait` (spec §4.9).
/// `Ok((target, when))` consumes one retry; `Err` says why the request ends.
fn next_retry(
    m: &mut RetryMachine,
    now: Instant,
    policy: &RetryPolicy,
    rule_ref: RuleRef,
    failed: ProviderId,
) -> Result<(ProviderId, Instant), EndReason> {
    let rule = rule_ref.rule(policy).clone();
    let budget_start = *m.first_retry_at.get_or_insert(now);
    let budget_end = policy.max_retry_duration.map(|d| budget_start + d);
    let mut stage = m.stage.get(&rule_ref).copied().unwrap_or(0);
    loop {
        let (strategy, granted) = match (stage, rule.then) {
            (0, _) | (_, None) => (rule.strategy, rule.max_attempts),
            (_, Some(then)) => (then.strategy, then.max_attempts),
        };
        let can_escalate = stage == 0 && rule.then.is_some();
        let used = m.used.get(&(rule_ref, stage)).copied().unwrap_or(0);
        let outcome = if used >= granted {
            Err(EndReason::default())
        } else {
            let seeking = Seeking {
                primary: m.req.primary,
                tried: &m.tried,
                api: m.api(),
            };
            let gw = &m.gw;
            let pick = m.with_blocks(now, |blocks| {
                pick_retry(gw, policy, blocks, &seeking, failed, strategy)
            });
            match pick {
                Pick::Nothing => Err(EndReason::default()),
                Pick::Go { target, ready_at } => schedule(
                    m,
                    now,
                    policy,
                    failed,
                    target,
                    ready_at,
                    budget_end,
                    can_escalate.then_some(rule.max_wait),
                ),
            }
        };
        match outcome {
            Ok(found) => {
                // Every attempt after the first is a retry, and the budget has the last
                // word on each (spec §11); a refused retry ends the request, whatever
                // stage the rule is in.
                if !m.admit_retry(now) {
                    tracing::info!(request_id = %m.req.request_id, "retry refused: the retry budget is spent");
                    return Err(EndReason {
                        budget_exhausted: true,
                        shortest_block: None,
                    });
                }
                *m.used.entry((rule_ref, stage)).or_default() += 1;
                m.stage.insert(rule_ref, stage);
                m.retries += 1;
                return Ok(found);
            }
            Err(_) if can_escalate => {
                stage = 1;
                m.stage.insert(rule_ref, 1);
            }
            Err(reason) => return Err(reason),
        }
    }
}

/// When a retry to `target` may start: the larger of the backoff and the end of the
/// target's pushback block (spec §4.4), refused when it would pass the deadline, the
/// duration budget, or (before escalation) the rule's `max_wait`.
#[allow(clippy::too_many_arguments)]
fn schedule(
    m: &mut RetryMachine,
    now: Instant,
    policy: &RetryPolicy,
    failed: ProviderId,
    target: ProviderId,
    ready_at: Option<Instant>,
    budget_end: Option<Instant>,
    max_wait: Option<Duration>,
) -> Result<(ProviderId, Instant), EndReason> {
    let block_wait = ready_at.map(|until| until.saturating_duration_since(now));
    let blocked = EndReason {
        budget_exhausted: false,
        shortest_block: block_wait,
    };
    if let (Some(wait), Some(max)) = (block_wait, max_wait) {
        if wait > max {
            return Err(blocked);
        }
    }
    let backoff = match &policy.backoff {
        Some(b) => {
            let u = 0.5 + m.rng.f64() * 0.5;
            let failed_model = &m.gw.provider(failed).model;
            let next_model = &m.gw.provider(target).model;
            backoff_delay(b, m.retries, failed_model, next_model, u)
        }
        None => Duration::ZERO,
    };
    let at = (now + backoff).max(ready_at.unwrap_or(now));
    if at >= m.deadline {
        return Err(blocked);
    }
    if budget_end.is_some_and(|end| at > end) {
        return Err(EndReason {
            budget_exhausted: true,
            ..blocked
        });
    }
    Ok((target, at))
}
