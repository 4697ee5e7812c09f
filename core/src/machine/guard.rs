//! What guards the upstreams and the gateway around each attempt (spec §11): the retry
//! budget, the failure circuits of the shared block table, and the gateway-wide count of
//! buffered body bytes.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::{Phase, RetryMachine, State};
use crate::block_table::BlockKey;
use crate::body_memory::BodyReservation;
use crate::config::RetryPolicy;
use crate::errors;
use crate::failure_blocks::{FailureGate, FailureTrigger, ProbeTicket};
use crate::gateway::ProviderId;
use crate::routing::Targets;

/// The half-open probe an attempt holds (see [`crate::failure_blocks`]). Dropping it
/// without [`resolved`](Self::resolved) hands the turn to the next request, so a probe
/// whose attempt is cancelled, or whose machine is dropped, never holds a model shut.
pub(super) struct ProbeGuard {
    gw: Arc<Targets>,
    target: ProviderId,
    ticket: Option<ProbeTicket>,
}

impl ProbeGuard {
    /// The probe's outcome was recorded (a success or a retriable failure).
    pub(super) fn resolved(mut self) {
        self.ticket = None;
    }
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let model = &self.gw.provider(self.target).model;
            self.gw.blocks().lock().end_probe(model, ticket);
        }
    }
}

impl fmt::Debug for ProbeGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeGuard")
            .field("target", &self.target)
            .field("ticket", &self.ticket)
            .finish()
    }
}

impl RetryMachine {
    /// Keeps the request body's share of the body memory until the machine is dropped.
    pub(crate) fn hold_request_body(&mut self, reservation: BodyReservation) {
        self.request_body = Some(reservation);
    }

    /// Counts this request's first attempt in its retry budget.
    pub(super) fn count_first_attempt(&self, now: Instant) {
        if let Some(budget) = self.gw.retry_budget(self.req.primary) {
            budget.lock().record_first_attempt(now);
        }
    }

    /// Asks the request's retry budget for one retry; `true` counts it as made.
    pub(super) fn admit_retry(&self, now: Instant) -> bool {
        match self.gw.retry_budget(self.req.primary) {
            Some(budget) => budget.lock().try_retry(now),
            None => true,
        }
    }

    /// Whether an attempt on `target` may start now by its failure circuits: `Ok` with
    /// the probe it takes when the circuit is half-open, `Err` with when to look again.
    /// Requests without a retry policy ignore blocks (spec §4.1, IT-4), so they always go.
    pub(super) fn claim(
        &self,
        now: Instant,
        target: ProviderId,
    ) -> Result<Option<ProbeGuard>, Instant> {
        if self.policy().is_none() {
            return Ok(None);
        }
        let model = &self.gw.provider(target).model;
        let gate = self
            .gw
            .blocks()
            .lock()
            .claim_attempt(now, model, self.deadline);
        match gate {
            FailureGate::Free => Ok(None),
            FailureGate::Probe(ticket) => {
                tracing::info!(request_id = %self.req.request_id, %model, "probing a model after its failure block");
                Ok(Some(ProbeGuard {
                    gw: Arc::clone(&self.gw),
                    target,
                    ticket: Some(ticket),
                }))
            }
            FailureGate::Blocked(until) => Err(until),
        }
    }

    /// The current attempt succeeded (committed, or delivered a whole answer): clears
    /// its model's failure run and closes a half-open circuit.
    pub(super) fn record_success(&mut self, now: Instant) {
        if self.policy().is_none() {
            return;
        }
        let State::InFlight(a) = &mut self.state else {
            return;
        };
        let probe = a.probe.take();
        let model = &self.gw.provider(a.target).model;
        self.gw.blocks().lock().record_success(now, model);
        if let Some(p) = probe {
            p.resolved();
        }
    }

    /// A retriable failure of an attempt on `failed` under the primary's `policy`:
    /// counts towards its failure block and reopens a half-open circuit.
    pub(super) fn record_failure(
        &self,
        now: Instant,
        policy: &RetryPolicy,
        failed: ProviderId,
        probe: Option<ProbeGuard>,
    ) {
        let model = &self.gw.provider(failed).model;
        let trigger = policy.on_failures.map(|f| {
            (
                BlockKey::for_scope(f.scope, model),
                FailureTrigger {
                    consecutive: f.consecutive,
                    window: f.window,
                    block_duration: f.block_duration,
                },
            )
        });
        let opened = self.gw.blocks().lock().record_failure(now, model, trigger);
        if let Some(p) = probe {
            p.resolved();
        }
        if let Some(until) = opened {
            let block_ms = until.saturating_duration_since(now).as_millis() as u64;
            tracing::info!(request_id = %self.req.request_id, %model, block_ms, "consecutive failures: model blocked");
        }
    }

    /// Sets the in-flight stream's share of the body memory to what its relay holds.
    /// `false`: the gateway is full.
    pub(super) fn account_stream(&mut self) -> bool {
        let State::InFlight(a) = &mut self.state else {
            return true;
        };
        let held = match &a.phase {
            Phase::HoldingStream { relay, .. } | Phase::Streaming { relay } => {
                relay.buffered_bytes()
            }
            _ => return true,
        };
        a.buffered.resize(held).is_ok()
    }

    /// Keeps the in-flight attempt's body share until the machine is dropped (the body
    /// now lives on in a response or in the last failure).
    pub(super) fn keep_attempt_body(&mut self) {
        if let State::InFlight(a) = &mut self.state {
            self.kept_body = Some(a.buffered.take());
        }
    }

    /// The body memory is full: a stream that committed ends with the in-band error;
    /// otherwise the attempt is dropped and the client told to come back in a second.
    pub(super) fn on_body_memory_full(&mut self) {
        tracing::warn!(request_id = %self.req.request_id, limit = self.gw.body_memory().limit(), "buffered body memory is full: ending the request");
        if self.client_status.is_some() {
            self.abort_stream(
                "The gateway ran out of memory for buffered responses; the answer is incomplete.",
                "gateway_overloaded",
            );
            return;
        }
        self.cancel_current();
        self.respond_error(errors::overloaded());
    }
}
