//! The streaming side of the machine (spec §6, §9): the relay's client events held until
//! the commit point of the client's API, relayed after it, and the stream ended cleanly or
//! with the terminal error in the client's shape. A committed stream that fails goes to
//! stream recovery (`recover.rs`), which ends it the same way when it cannot continue it.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, StatusCode};

use super::relay::{Relayed, StreamRelay, MAX_EVENT_BYTES, MAX_HELD_BYTES};
use super::{Action, Outcome, Phase, RetryMachine, State};
use crate::apis::{EventKind, StreamTranslator};
use crate::classify::{Failure, TransportFailure};
use crate::config::LatencyMeasure;
use crate::response::relayable_headers;
use crate::secrets::{provider_credentials, scrub};

impl RetryMachine {
    /// The relay of the in-flight stream, and whether it has committed.
    pub(super) fn relay_mut(&mut self) -> Option<(&mut StreamRelay, bool)> {
        let State::InFlight(a) = &mut self.state else {
            return None;
        };
        match &mut a.phase {
            Phase::HoldingStream { relay, .. } => Some((relay, false)),
            Phase::Streaming { relay } => Some((relay, true)),
            _ => None,
        }
    }

    /// Acts on every client event the current stream has ready.
    pub(super) fn drain_stream(&mut self, now: Instant) {
        loop {
            let Some((relay, committed)) = self.relay_mut() else {
                return;
            };
            let Some(relayed) = relay.next() else { return };
            let event = match relayed {
                Relayed::Event(event) => event,
                Relayed::TooLarge => {
                    let message = format!(
                        "The upstream sent an event larger than {} MiB; the answer is incomplete.",
                        MAX_EVENT_BYTES / (1024 * 1024)
                    );
                    if committed {
                        let code = "stream_event_too_large";
                        self.stream_broke(now, &message, code, code);
                    } else {
                        self.cancel_current();
                        let failure =
                            TransportFailure::invalid("a stream event is larger than 1 MiB");
                        self.fail(now, Failure::Transport(failure));
                    }
                    return;
                }
            };
            match event.kind {
                EventKind::Dropped { reason } => {
                    tracing::warn!(request_id = %self.req.request_id, "dropped an upstream SSE event: {reason}");
                }
                EventKind::Done => {
                    if !committed {
                        if !self.relay_mut().is_some_and(|(r, _)| r.has_answer()) {
                            self.cancel_current();
                            let failure = TransportFailure::invalid(
                                "the stream ended without a single well-formed chunk",
                            );
                            self.fail(now, Failure::Transport(failure));
                            return;
                        }
                        self.commit(now, Bytes::new());
                    }
                    self.record_latency(now, LatencyMeasure::Total);
                    self.forward_relayed(event.bytes);
                    self.finish(Outcome::Success, 200);
                    return;
                }
                EventKind::Error { detail } => {
                    let (detail, bytes) = self.scrub_event(detail, event.bytes);
                    if committed && self.has_recovery() {
                        // Not forwarded: recovery may still complete the answer, and ends
                        // the stream with its own error when it cannot.
                        let message = format!(
                            "The upstream reported an error mid-stream ({}); the answer is incomplete.",
                            upstream_error_message(&detail)
                        );
                        self.stream_broke(now, &message, "stream_error", "stream_error");
                    } else if committed {
                        self.actions.push_back(Action::Forward(bytes));
                        self.finish(Outcome::StreamAborted, 200);
                    } else {
                        self.cancel_current();
                        let failure = TransportFailure::StreamError { data: detail };
                        self.fail(now, Failure::Transport(failure));
                    }
                    return;
                }
                EventKind::Content => {
                    if committed {
                        self.forward_relayed(event.bytes);
                    } else {
                        self.commit(now, event.bytes);
                    }
                }
                EventKind::Held => {
                    if committed {
                        self.forward_relayed(event.bytes);
                    } else if !self.relay_mut().is_some_and(|(r, _)| r.hold(&event.bytes)) {
                        debug_assert_eq!(MAX_HELD_BYTES, 1024 * 1024);
                        self.cancel_current();
                        let failure = TransportFailure::invalid(
                            "more than 1 MiB of events arrived before any content",
                        );
                        self.fail(now, Failure::Transport(failure));
                        return;
                    }
                }
            }
        }
    }

    /// The commit point (spec §6): send the head, the held events and `first`.
    pub(super) fn commit(&mut self, now: Instant, first: Bytes) {
        let State::InFlight(a) = &mut self.state else {
            return;
        };
        let Phase::HoldingStream { headers, relay } =
            std::mem::replace(&mut a.phase, Phase::AwaitingResponse)
        else {
            return;
        };
        let mut relay = relay;
        let held = relay.take_held();
        a.phase = Phase::Streaming { relay };
        let target = a.target;
        let mut out = relayable_headers(&headers);
        out.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        out.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
        self.decorate(&mut out, Some(target));
        self.client_status = Some(StatusCode::OK);
        self.record_success(now);
        self.start_recovery(target);
        self.actions.push_back(Action::StartStream {
            status: StatusCode::OK,
            headers: out,
        });
        let bytes = if held.is_empty() {
            first
        } else {
            let mut bytes = BytesMut::with_capacity(held.len() + first.len());
            bytes.extend_from_slice(&held);
            bytes.extend_from_slice(&first);
            bytes.freeze()
        };
        if !bytes.is_empty() {
            self.forward_relayed(bytes);
        }
        self.record_latency(now, LatencyMeasure::Ttfb);
    }

    /// The upstream stream ended with good framing. When the client's API says the answer
    /// is complete (Chat and Messages: a finish or stop reason came; Responses: its
    /// `response.completed`), the events that close it are relayed (`[DONE]` or
    /// `message_stop` supplied when the upstream left it out); otherwise it was cut, which
    /// fails the attempt before commit and aborts the stream after it.
    pub(super) fn end_stream_cleanly(&mut self, now: Instant, committed: bool) {
        let State::InFlight(a) = &self.state else {
            return;
        };
        let attempt = a.id;
        let Some((relay, _)) = self.relay_mut() else {
            return;
        };
        if relay.end() {
            self.drain_stream(now);
            if !self.current(attempt) {
                return; // finished, or failed over
            }
            // Complete, but nothing said so in the client's grammar: end it as it is.
            if !committed && !self.relay_mut().is_some_and(|(r, _)| r.has_answer()) {
                let failure = TransportFailure::invalid("the stream ended before any content");
                self.fail(now, Failure::Transport(failure));
                return;
            }
            if !committed {
                self.commit(now, Bytes::new());
            }
            self.record_latency(now, LatencyMeasure::Total);
            self.finish(Outcome::Success, 200);
        } else if committed {
            let code = "stream_truncated";
            let message = "The upstream stream ended before the answer was complete.";
            self.stream_broke(now, message, code, code);
        } else {
            let failure = TransportFailure::invalid("the stream ended before any content");
            self.fail(now, Failure::Transport(failure));
        }
    }

    /// An in-band error event with the target's credentials scrubbed out, in case the
    /// upstream echoes what it was sent.
    fn scrub_event(&self, data: String, encoded: Bytes) -> (String, Bytes) {
        let State::InFlight(a) = &self.state else {
            return (data, encoded);
        };
        let p = self.gw.provider(a.target);
        let clean = scrub(Bytes::from(data.into_bytes()), provider_credentials(p));
        let encoded = scrub(encoded, provider_credentials(p));
        (String::from_utf8_lossy(&clean).into_owned(), encoded)
    }

    /// After commit: the terminal error event in the client's shape, and no completion
    /// event (spec §6, §9). Once stream recovery took over, its error, which also names
    /// what recovery tried.
    pub(super) fn abort_stream(&mut self, message: &str, code: &str) {
        let bytes = match (self.recovery_error(message, code), self.relay_mut()) {
            (Some(bytes), _) => bytes,
            (None, Some((relay, _))) => relay.terminal_error(message, code),
            (None, None) => StreamTranslator::relay(self.api(), "").terminal_error(message, code),
        };
        self.cancel_current();
        self.actions.push_back(Action::Forward(bytes));
        self.finish(Outcome::StreamAborted, 200);
    }
}

/// What an upstream's in-band error event says, for the client's final error: its
/// message, at most 200 characters (its credentials were scrubbed already).
fn upstream_error_message(data: &str) -> String {
    let message = crate::apis::messages::read_error(0, data.as_bytes()).message;
    let message = message.trim();
    match message.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}
