//! Reading a continuation's answer (spec §12): a 2xx event stream is framed and handed to
//! the request's `Recovery`, which splices its new text into the client's stream; an error
//! status is read whole and fails the continuation (`recover.rs` asks the next candidate).
//! The first-token timer runs until the continuation's text reaches the client, the idle
//! timer after it (`Attempt::timer`).

use std::time::Instant;

use bytes::BytesMut;
use http::HeaderMap;

use super::receive::is_event_stream;
use super::relay::MAX_EVENT_BYTES;
use super::{Action, Outcome, Phase, RetryMachine, State};
use crate::classify::{Failure, TransportFailure};
use crate::config::LatencyMeasure;
use crate::recovery::{ContinuationState, ContinuationStep};
use crate::sse::SseFramer;

impl RetryMachine {
    /// A continuation's response head: a 2xx event stream is read event by event; an
    /// error status is read whole (then judged like any attempt's); a 2xx that is not a
    /// stream fails the continuation now.
    pub(super) fn on_continuation_head(&mut self, now: Instant, status: u16, headers: HeaderMap) {
        let Some(a) = self.attempt_mut() else { return };
        if !matches!(a.phase, Phase::AwaitingResponse) {
            return;
        }
        a.last_progress = now;
        let success = (200..300).contains(&status);
        if success && is_event_stream(&headers) {
            a.phase = Phase::Continuation {
                status,
                framer: SseFramer::new(MAX_EVENT_BYTES),
                started: false,
            };
        } else if success {
            let failure = TransportFailure::invalid("the continuation's answer is not a stream");
            self.fail(now, Failure::Transport(failure));
        } else {
            a.phase = Phase::ReadingBody {
                status,
                headers,
                buf: BytesMut::new(),
            };
        }
    }

    /// Acts on every event the continuation's framer has complete.
    pub(super) fn read_continuation(&mut self, now: Instant) {
        loop {
            let State::InFlight(a) = &mut self.state else {
                return;
            };
            let Phase::Continuation { framer, .. } = &mut a.phase else {
                return;
            };
            let event = match framer.next_event() {
                None => break,
                Some(Ok(event)) => event,
                Some(Err(_)) => {
                    let failure = TransportFailure::invalid("a stream event is larger than 1 MiB");
                    self.fail(now, Failure::Transport(failure));
                    return;
                }
            };
            let Some(r) = self.recovering() else { return };
            let step = r.rec_mut().push_continuation(&event);
            if !self.apply_step(now, step) {
                return;
            }
        }
        if !self.account_continuation() {
            self.on_body_memory_full();
        }
    }

    /// The continuation's stream ended with good framing.
    pub(super) fn end_continuation(&mut self, now: Instant) {
        let Some(r) = self.recovering() else { return };
        let step = r.rec_mut().end_continuation();
        self.apply_step(now, step);
    }

    /// Forwards what a continuation event produced and acts on where the continuation
    /// stands. `false`: the continuation is over (the request finished, or the next
    /// candidate was asked).
    fn apply_step(&mut self, now: Instant, step: ContinuationStep) -> bool {
        let bytes = step.bytes();
        if !bytes.is_empty() {
            self.actions.push_back(Action::Forward(bytes));
        }
        match step.state {
            ContinuationState::Waiting => true,
            ContinuationState::Continuing => {
                self.continuation_began(now);
                true
            }
            ContinuationState::Complete => {
                self.continuation_began(now);
                self.record_latency(now, LatencyMeasure::Total);
                if let Some(r) = self.recovering() {
                    let summary = r.rec_mut().summary().to_string();
                    tracing::info!(request_id = %self.req.request_id, recovery = %summary, "stream recovered");
                }
                self.finish(Outcome::Success, 200);
                false
            }
            ContinuationState::Failed => {
                self.continuation_rejected(now);
                false
            }
        }
    }

    /// The continuation's text reached the client: like an ordinary attempt's commit, it
    /// counts as a success of its model (and its time to first text as its latency). Once.
    fn continuation_began(&mut self, now: Instant) {
        let State::InFlight(a) = &mut self.state else {
            return;
        };
        let Phase::Continuation { started, .. } = &mut a.phase else {
            return;
        };
        if *started {
            return;
        }
        *started = true;
        self.record_success(now);
        self.record_latency(now, LatencyMeasure::Ttfb);
    }

    /// Sizes the continuation's body memory share (what its framer holds, and the text
    /// recovery keeps); `false` when the gateway is full.
    fn account_continuation(&mut self) -> bool {
        let framed = match &mut self.state {
            State::InFlight(a) => match &mut a.phase {
                Phase::Continuation { framer, .. } => a.buffered.resize(framer.buffered_bytes()),
                _ => Ok(()),
            },
            _ => Ok(()),
        };
        let kept = self.recovering().is_none_or(|r| r.account());
        framed.is_ok() && kept
    }
}
