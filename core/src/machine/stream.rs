//! The streaming side of the machine (spec §6): framing upstream events, holding them
//! until the commit point, relaying them after it, and ending a stream cleanly or with
//! the terminal error event.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, StatusCode};

use super::relay::{self, Meaning, StreamRelay, DONE_EVENT, MAX_EVENT_BYTES, MAX_HELD_BYTES};
use super::{Action, Outcome, Phase, RetryMachine, State};
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

    /// Acts on every framed event of the current stream.
    pub(super) fn drain_stream(&mut self, now: Instant) {
        loop {
            let Some((relay, committed)) = self.relay_mut() else {
                return;
            };
            let Some(meaning) = relay.next() else { return };
            match meaning {
                Meaning::Dropped(why) => {
                    tracing::warn!(request_id = %self.req.request_id, "dropped an upstream SSE event: {why}");
                }
                Meaning::TooLarge => {
                    let message = format!(
                        "The upstream sent an event larger than {} MiB; the answer is incomplete.",
                        MAX_EVENT_BYTES / (1024 * 1024)
                    );
                    if committed {
                        self.abort_stream(&message, "stream_event_too_large");
                    } else {
                        self.cancel_current();
                        let failure =
                            TransportFailure::invalid("a stream event is larger than 1 MiB");
                        self.fail(now, Failure::Transport(failure));
                    }
                    return;
                }
                Meaning::Done => {
                    if !committed {
                        if !self.relay_mut().is_some_and(|(r, _)| r.chunk_seen) {
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
                    self.actions
                        .push_back(Action::Forward(Bytes::from_static(DONE_EVENT)));
                    self.finish(Outcome::Success, 200);
                    return;
                }
                Meaning::Error { data, encoded } => {
                    let (data, encoded) = self.scrub_event(data, encoded);
                    if committed {
                        self.actions.push_back(Action::Forward(encoded));
                        self.finish(Outcome::StreamAborted, 200);
                    } else {
                        self.cancel_current();
                        self.fail(
                            now,
                            Failure::Transport(TransportFailure::StreamError { data }),
                        );
                    }
                    return;
                }
                Meaning::Content(encoded) => {
                    if committed {
                        self.actions.push_back(Action::Forward(encoded));
                    } else {
                        self.commit(now, encoded);
                    }
                }
                Meaning::Other(encoded) => {
                    if committed {
                        self.actions.push_back(Action::Forward(encoded));
                    } else if !self.relay_mut().is_some_and(|(r, _)| r.hold(&encoded)) {
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
        self.actions.push_back(Action::StartStream {
            status: StatusCode::OK,
            headers: out,
        });
        let mut bytes = BytesMut::with_capacity(held.len() + first.len());
        bytes.extend_from_slice(&held);
        bytes.extend_from_slice(&first);
        if !bytes.is_empty() {
            self.actions.push_back(Action::Forward(bytes.freeze()));
        }
        self.record_latency(now, LatencyMeasure::Ttfb);
    }

    /// The upstream stream ended with good framing but no `[DONE]`: finish it with
    /// `[DONE]` when a `finish_reason` shows the answer is complete; otherwise it was
    /// cut, which fails the attempt before commit and aborts the stream after it.
    pub(super) fn end_stream_cleanly(&mut self, now: Instant, committed: bool) {
        let Some((relay, _)) = self.relay_mut() else {
            return;
        };
        let finish_seen = relay.finish_seen;
        if finish_seen {
            if !committed {
                self.commit(now, Bytes::new());
            }
            self.record_latency(now, LatencyMeasure::Total);
            self.actions
                .push_back(Action::Forward(Bytes::from_static(DONE_EVENT)));
            self.finish(Outcome::Success, 200);
        } else if committed {
            self.abort_stream(
                "The upstream stream ended before the answer was complete.",
                "stream_truncated",
            );
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

    /// After commit: the terminal error event, no `[DONE]` (spec §6).
    pub(super) fn abort_stream(&mut self, message: &str, code: &str) {
        self.cancel_current();
        self.actions
            .push_back(Action::Forward(relay::terminal_error_event(message, code)));
        self.finish(Outcome::StreamAborted, 200);
    }
}
