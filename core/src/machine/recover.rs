//! Stream recovery in the machine (spec §12): what happens when a committed stream fails.
//!
//! At commit the machine keeps a [`Recovery`] (when the primary's policy has
//! `stream_recovery`) and shows it every byte the client is sent. When the committed stream
//! then fails (a cut, a stall past `idle`, an in-band error, an oversized event, a clean end
//! before the answer's end), the failure is not sent: candidates are asked, in the order
//! [`continuation_candidates`] gives, to continue the text the client has. Each is picked
//! as a retry target is (blocks skip it, latency blocks put it last), admitted into the
//! retry budget, and sent within the deadline; its answer is read in `recover_read.rs`.
//! When no candidate is left, or recovery is refused, the stream ends with the recovery's
//! in-band error, which names every failure.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::guard::ProbeGuard;
use super::select::{pick_from, Pick};
use super::{
    decide, Action, Attempt, AttemptId, AttemptRecord, Outcome, Phase, RetryMachine, State,
};
use crate::body_memory::BodyReservation;
use crate::classify::{classify, Failure, TransportFailure, Verdict};
use crate::gateway::ProviderId;
use crate::recovery::{
    continuation_candidates, ContinuationPlan, NoContinuation, NotContinuable, Recovery,
    RecoverySummary,
};

/// How the committed stream failed: what the client's final error says when recovery
/// cannot complete the answer.
#[derive(Debug)]
struct Broken {
    message: String,
    code: String,
}

/// A committed stream's recovery: the [`Recovery`] and what the machine keeps around it.
#[derive(Debug)]
pub(super) struct Recovering {
    rec: Recovery,
    /// The target whose committed stream the client is reading.
    streamed_by: ProviderId,
    /// Candidates already asked to continue (each is asked once per request).
    asked: Vec<ProviderId>,
    /// Set once the committed stream failed: recovery has taken the stream over.
    broken: Option<Broken>,
    /// The continuation attempt in flight.
    attempt: Option<AttemptId>,
    /// The body memory the relayed text takes.
    kept: BodyReservation,
}

impl Recovering {
    /// What recovery did, once the committed stream failed (`None` while it streams).
    pub(super) fn ran(&self) -> Option<&RecoverySummary> {
        self.broken.as_ref().map(|_| self.rec.summary())
    }

    pub(super) fn rec_mut(&mut self) -> &mut Recovery {
        &mut self.rec
    }

    /// Sizes the body memory share to the text kept; `false` when the gateway is full.
    pub(super) fn account(&mut self) -> bool {
        self.kept.resize(self.rec.relayed_text().len()).is_ok()
    }
}

impl RetryMachine {
    /// Whether stream recovery is on for the committed stream.
    pub(super) fn has_recovery(&self) -> bool {
        self.recovery.is_some()
    }

    pub(super) fn recovering(&mut self) -> Option<&mut Recovering> {
        self.recovery.as_deref_mut()
    }

    /// Whether the in-flight attempt is a continuation.
    pub(super) fn in_continuation(&self) -> bool {
        match (&self.state, &self.recovery) {
            (State::InFlight(a), Some(r)) => r.attempt == Some(a.id),
            _ => false,
        }
    }

    /// At commit: stream recovery for the stream `target` is relaying, when the primary's
    /// policy turns it on for this request.
    pub(super) fn start_recovery(&mut self, target: ProviderId) {
        let Some(rec) = Recovery::for_request(self.policy(), &self.req.api) else {
            return;
        };
        self.recovery = Some(Box::new(Recovering {
            rec,
            streamed_by: target,
            asked: Vec::new(),
            broken: None,
            attempt: None,
            kept: self.gw.body_memory().empty_reservation(),
        }));
    }

    /// Forwards bytes of the committed stream to the client, shown to recovery first. When
    /// the gateway has no memory left for the text, recovery is given up for this request
    /// (the stream goes on; a failure then ends it with the in-band error).
    pub(super) fn forward_relayed(&mut self, bytes: Bytes) {
        if let Some(r) = self.recovery.as_deref_mut() {
            r.rec.observe(&bytes);
            if !r.account() {
                tracing::warn!(request_id = %self.req.request_id, "buffered body memory is full: stream recovery is off for this request");
                self.recovery = None;
            }
        }
        self.actions.push_back(Action::Forward(bytes));
    }

    /// The committed stream failed; `message` and `code` make the client's in-band error
    /// when the answer cannot be completed, `error_type` names the failure in the
    /// recovery report. Without stream recovery the stream ends here (spec §6).
    pub(super) fn stream_broke(
        &mut self,
        now: Instant,
        message: &str,
        code: &str,
        error_type: &str,
    ) {
        let State::InFlight(a) = &self.state else {
            return;
        };
        let model = self.gw.provider(a.target).model.clone();
        let Some(r) = self.recovery.as_deref_mut() else {
            self.abort_stream(message, code);
            return;
        };
        r.rec.stream_failed(&model, error_type);
        r.broken = Some(Broken {
            message: message.to_owned(),
            code: code.to_owned(),
        });
        let relayed_chars = r.rec.relayed_text().chars().count();
        tracing::info!(request_id = %self.req.request_id, %model, error_type, relayed_chars, "committed stream failed: stream recovery");
        let status = self.client_status.map(|s| s.as_u16());
        self.drop_attempt(now, "stream_aborted", status);
        self.continue_stream(now);
    }

    /// Closes the in-flight attempt's connection (it must not be reused) and forgets it,
    /// recording it (for metrics and traces) as failed with `error_type` and `status`.
    fn drop_attempt(
        &mut self,
        now: Instant,
        error_type: &str,
        status: Option<u16>,
    ) -> Option<(ProviderId, Option<ProbeGuard>, bool)> {
        let State::InFlight(a) = std::mem::replace(&mut self.state, State::Idle) else {
            return None;
        };
        let mut a = a;
        self.records.push(AttemptRecord {
            model: self.gw.provider(a.target).model.clone(),
            target: a.target,
            error_type: error_type.to_owned(),
            status,
            started: a.sent_at.saturating_duration_since(self.started_at),
            latency: now.saturating_duration_since(a.sent_at),
            retry_after: None,
        });
        self.actions.push_back(Action::Cancel { attempt: a.id });
        let started = matches!(a.phase, Phase::Continuation { started: true, .. });
        if let Some(r) = self.recovery.as_deref_mut() {
            r.attempt = None;
        }
        Some((a.target, a.probe.take(), started))
    }

    /// Asks the next candidate to continue the stream, or ends it with the recovery's
    /// error when none is left or recovery is refused (the retry budget, the deadline,
    /// blocks, `max_continuations`, what the client was sent).
    pub(super) fn continue_stream(&mut self, now: Instant) {
        let gw = Arc::clone(&self.gw);
        let primary = self.req.primary;
        let Some(policy) = gw.provider(primary).retry_policy.as_ref() else {
            self.end_recovery();
            return;
        };
        loop {
            let Some(r) = self.recovery.as_deref_mut() else {
                return;
            };
            if !r.rec.can_continue() {
                break;
            }
            if now >= self.deadline {
                r.rec.stop(NotContinuable::Deadline);
                break;
            }
            let candidates = continuation_candidates(&gw, policy, primary, r.streamed_by, &r.asked);
            let target = match self.with_blocks(now, |b| pick_from(&gw, b, &candidates)) {
                Pick::Go {
                    target,
                    ready_at: None,
                } => target,
                Pick::Go { .. } => {
                    // Every candidate left is hard-blocked: waiting would keep the client's
                    // stream silent for the length of a block.
                    self.stop_recovery(NotContinuable::Blocked);
                    break;
                }
                Pick::Nothing => break,
            };
            let Some(r) = self.recovery.as_deref_mut() else {
                return;
            };
            r.asked.push(target);
            let Ok(probe) = self.claim(now, target) else {
                continue; // blocked since the pick (another request's probe)
            };
            let Some(r) = self.recovery.as_deref_mut() else {
                return;
            };
            let plan = match r
                .rec
                .next_continuation(&self.req.api, target, gw.provider(target))
            {
                Ok(plan) => plan,
                Err(NoContinuation::Skipped(reason)) => {
                    tracing::info!(request_id = %self.req.request_id, model = %gw.provider(target).model, %reason, "candidate skipped for the continuation");
                    continue;
                }
                Err(NoContinuation::NotContinuable(_) | NoContinuation::Busy) => break,
            };
            // Every continuation is a retry (spec §11).
            if !self.admit_retry(now) {
                tracing::info!(request_id = %self.req.request_id, "continuation refused: the retry budget is spent");
                if let Some(r) = self.recovery.as_deref_mut() {
                    r.rec.withdraw(NotContinuable::RetryBudget);
                }
                break;
            }
            self.send_continuation(now, plan, probe);
            return;
        }
        self.end_recovery();
    }

    fn stop_recovery(&mut self, why: NotContinuable) {
        if let Some(r) = self.recovery.as_deref_mut() {
            r.rec.stop(why);
        }
    }

    /// Starts the continuation attempt `plan` (its target's probe, if it takes one).
    fn send_continuation(
        &mut self,
        now: Instant,
        plan: ContinuationPlan,
        probe: Option<ProbeGuard>,
    ) {
        let gw = Arc::clone(&self.gw);
        let target = plan.target;
        let p = gw.provider(target);
        let id = AttemptId(self.next_attempt);
        self.next_attempt += 1;
        if !self.tried.contains(&target) {
            self.tried.push(target);
        }
        self.state = State::InFlight(Box::new(Attempt {
            id,
            target,
            sent_at: now,
            commit_by: (now + p.timeouts.first_token).min(self.deadline),
            idle: p.timeouts.idle,
            last_progress: now,
            phase: Phase::AwaitingResponse,
            probe,
            buffered: gw.body_memory().empty_reservation(),
            translation: self.req.api.translation(plan.upstream, &p.model),
        }));
        if let Some(r) = self.recovery.as_deref_mut() {
            r.attempt = Some(id);
        }
        tracing::info!(request_id = %self.req.request_id, model = %p.model, continuation = %plan.style, "continuing the stream");
        let Some(endpoint) = gw.endpoint(target) else {
            // Only the mock provider has none, and it is never a candidate.
            let failure = TransportFailure::invalid("the target has no upstream endpoint");
            self.continuation_failed(now, Failure::Transport(failure));
            return;
        };
        let path = continuation_path(&plan, &self.upstream_path(endpoint, plan.upstream));
        let request = self.upstream_request(p, endpoint, plan.upstream, plan.body, true, path);
        self.push_send(now, id, target, request);
    }

    /// The continuation in flight failed (an error status, a transport failure, a
    /// timeout, an unusable answer): its pushback and failure are recorded as for any
    /// attempt (failures after its text began do not count toward failure blocks, as for a
    /// committed stream), and the next candidate is asked.
    pub(super) fn continuation_failed(&mut self, now: Instant, failure: Failure) {
        let Some((target, probe, started)) =
            self.drop_attempt(now, &failure.error_type(), failure.status())
        else {
            return;
        };
        let gw = Arc::clone(&self.gw);
        let p = gw.provider(target);
        tracing::info!(
            request_id = %self.req.request_id, model = %p.model, error_type = %failure.error_type(),
            detail = failure.log_detail().unwrap_or(""), "continuation failed"
        );
        if let Some(policy) = gw.provider(self.req.primary).retry_policy.as_ref() {
            decide::record_pushback(self, now, policy, &p.model, &failure);
            let retriable = matches!(classify(policy, &failure), Verdict::Retriable(_));
            if retriable && !started {
                self.record_failure(now, policy, target, probe);
            }
        }
        if let Some(r) = self.recovery.as_deref_mut() {
            r.rec.fail_continuation(&failure, p);
        }
        self.continue_stream(now);
    }

    /// The recovery judged the continuation in flight failed (an in-band error, a cut or
    /// empty stream, a restart, a tool call or refusal; recorded already): an in-band error
    /// before its text began counts toward failure blocks, as before commit; the next
    /// candidate is asked.
    pub(super) fn continuation_rejected(&mut self, now: Instant) {
        let last = self
            .recovery
            .as_ref()
            .and_then(|r| r.rec.summary().failures.last().cloned());
        let error_type = last
            .as_ref()
            .map_or("stream_error", |f| f.error_type.as_str());
        let status = match &self.state {
            State::InFlight(a) => match a.phase {
                Phase::Continuation { status, .. } => Some(status),
                _ => None,
            },
            _ => None,
        };
        let Some((target, probe, started)) = self.drop_attempt(now, error_type, status) else {
            return;
        };
        let gw = Arc::clone(&self.gw);
        if let Some(f) = &last {
            tracing::info!(request_id = %self.req.request_id, model = %f.model, error_type = %f.error_type, "continuation failed");
        }
        let in_band = last.is_some_and(|f| f.error_type == "stream_error");
        if let Some(policy) = gw.provider(self.req.primary).retry_policy.as_ref() {
            if in_band && !started {
                self.record_failure(now, policy, target, probe);
            }
        }
        self.continue_stream(now);
    }

    /// No continuation will complete the stream: the recovery's in-band error ends it.
    fn end_recovery(&mut self) {
        let Some(r) = self.recovery.as_deref_mut() else {
            return;
        };
        let (message, code) = match &r.broken {
            Some(b) => (b.message.clone(), b.code.clone()),
            None => (
                "The upstream stream failed; the answer is incomplete.".to_owned(),
                "stream_interrupted".to_owned(),
            ),
        };
        let bytes = r.rec.terminal_error(&message, &code);
        tracing::info!(request_id = %self.req.request_id, recovery = %r.rec.summary(), "stream recovery did not complete the answer");
        if !bytes.is_empty() {
            self.actions.push_back(Action::Forward(bytes));
        }
        self.finish(Outcome::StreamAborted, 200);
    }

    /// Once recovery took the stream over: its in-band error for an end the machine
    /// decides (shutdown, memory), naming what recovery tried. `None` before that.
    pub(super) fn recovery_error(&mut self, message: &str, code: &str) -> Option<Bytes> {
        let r = self.recovery.as_deref_mut()?;
        r.broken.as_ref()?;
        Some(r.rec.terminal_error(message, code))
    }
}

/// The request target of a continuation, from the target's ordinary one for the plan's
/// API: the plan's path (DeepSeek's beta path), the query kept.
fn continuation_path(plan: &ContinuationPlan, ordinary: &str) -> String {
    match ordinary.split_once('?') {
        Some((path, query)) => format!("{}?{query}", plan.path(path)),
        None => plan.path(ordinary),
    }
}
