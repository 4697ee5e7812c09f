//! What an attempt's upstream sends (spec §6, §7): the response head, body bytes, the
//! end of the body, or a failure below HTTP, each moving the attempt to its next phase.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode};

use super::relay::StreamRelay;
use super::{Outcome, Phase, RetryMachine, TransportError, MAX_RESPONSE_BODY_BYTES};
use crate::apis::{Translation, UpstreamApi};
use crate::classify::{Failure, TransportFailure};
use crate::config::LatencyMeasure;
use crate::response::{relayable_headers, ClientResponse};
use crate::secrets::{provider_credentials, scrub};

impl RetryMachine {
    /// The current attempt's response head: a 2xx SSE answer to a streaming request is
    /// held until its commit point; anything else is read whole.
    pub(super) fn on_head(&mut self, now: Instant, status: u16, headers: HeaderMap) {
        if self.in_continuation() {
            self.on_continuation_head(now, status, headers);
            return;
        }
        let stream = self.is_stream();
        let Some(a) = self.attempt_mut() else { return };
        if !matches!(a.phase, Phase::AwaitingResponse) {
            return;
        }
        a.last_progress = now;
        let is_sse = is_event_stream(&headers);
        if (200..300).contains(&status) && stream && is_sse {
            let relay = StreamRelay::new(a.translation.stream());
            a.phase = Phase::HoldingStream { headers, relay };
        } else {
            a.phase = Phase::ReadingBody {
                status,
                headers,
                buf: BytesMut::new(),
            };
            if (200..300).contains(&status) {
                self.record_latency(now, LatencyMeasure::Ttfb);
            }
        }
    }

    /// Body bytes of the current attempt: collected (bounded, and counted in the body
    /// memory) or framed into stream events.
    pub(super) fn on_data(&mut self, now: Instant, data: Bytes) {
        let Some(a) = self.attempt_mut() else { return };
        a.last_progress = now;
        let too_large = match &mut a.phase {
            Phase::AwaitingResponse => false,
            Phase::ReadingBody { buf, .. } => {
                let too_large = buf.len() + data.len() > MAX_RESPONSE_BODY_BYTES;
                if !too_large {
                    if a.buffered.grow(data.len()).is_err() {
                        self.on_body_memory_full();
                        return;
                    }
                    buf.extend_from_slice(&data);
                }
                too_large
            }
            Phase::HoldingStream { relay, .. } | Phase::Streaming { relay } => {
                relay.push(&data);
                self.drain_stream(now);
                if !self.account_stream() {
                    self.on_body_memory_full();
                }
                return;
            }
            Phase::Continuation { framer, .. } => {
                framer.push(&data);
                self.read_continuation(now);
                return;
            }
        };
        if too_large {
            self.cancel_current();
            let failure = TransportFailure::invalid("the response body is larger than 32 MiB");
            self.fail(now, Failure::Transport(failure));
        }
    }

    /// The current attempt's body ended with correct framing: a whole body is judged
    /// (an error to classify, a success to check and send), a stream is ended cleanly.
    pub(super) fn on_end(&mut self, now: Instant) {
        let Some(a) = self.attempt_mut() else { return };
        let target = a.target;
        match std::mem::replace(&mut a.phase, Phase::AwaitingResponse) {
            Phase::AwaitingResponse => {}
            Phase::ReadingBody {
                status,
                headers,
                buf,
            } => {
                let translation = a.translation.clone();
                let raw = buf.freeze();
                let gw = Arc::clone(&self.gw);
                let p = gw.provider(target);
                if (300..400).contains(&status) {
                    // Following would send the request where the config did not say, and
                    // passing it on would send the client there with its credentials.
                    let failure = Failure::Transport(TransportFailure::InvalidResponse {
                        reason: "the upstream answered with a redirect, which is not followed",
                        detail: format!("status {status}"),
                    });
                    self.fail(now, failure);
                    return;
                }
                if !(200..300).contains(&status) {
                    // An upstream that echoes the credentials it was sent must not show
                    // them to the client.
                    let raw = scrub(raw, provider_credentials(p));
                    let rules = translation.error_for_rules(status, &raw);
                    let client = translation.error_for_client(status, raw);
                    let failure = Failure::Http {
                        status,
                        headers,
                        body: rules,
                    };
                    self.fail_with_answer(now, failure, client);
                    return;
                }
                match success_body(&translation, raw) {
                    Ok(body) => {
                        self.record_latency(now, LatencyMeasure::Total);
                        self.record_success(now);
                        self.keep_attempt_body();
                        let mut out = relayable_headers(&headers);
                        if !translation.is_passthrough() {
                            let json = HeaderValue::from_static("application/json");
                            out.insert(http::header::CONTENT_TYPE, json);
                        }
                        self.decorate(&mut out, Some(target));
                        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                        let resp = ClientResponse {
                            status,
                            headers: out,
                            body,
                        };
                        self.respond(resp, Outcome::Success);
                    }
                    Err(failure) => self.fail(now, Failure::Transport(failure)),
                }
            }
            Phase::HoldingStream { headers, relay } => {
                a.phase = Phase::HoldingStream { headers, relay };
                self.end_stream_cleanly(now, false);
            }
            Phase::Streaming { relay } => {
                a.phase = Phase::Streaming { relay };
                self.end_stream_cleanly(now, true);
            }
            Phase::Continuation {
                status,
                framer,
                started,
            } => {
                a.phase = Phase::Continuation {
                    status,
                    framer,
                    started,
                };
                self.end_continuation(now);
            }
        }
    }

    /// The current attempt failed below HTTP: a failed attempt before commit, the
    /// in-band error after it. The runtime's detail goes to the log only.
    pub(super) fn on_transport_error(&mut self, now: Instant, error: TransportError) {
        let committed = self.relay_mut().is_some_and(|(_, committed)| committed);
        if committed {
            // The detail may name the upstream's address: the log has it, the client not.
            tracing::info!(request_id = %self.req.request_id, error = %error, "upstream failed mid-stream");
            let code = "stream_interrupted";
            let message = "The upstream connection failed mid-stream; the answer is incomplete.";
            self.stream_broke(now, message, code, code);
            return;
        }
        let failure = match error {
            TransportError::Connect(detail) | TransportError::Tls(detail) => {
                TransportFailure::Connect { detail }
            }
            TransportError::ConnectTimeout => TransportFailure::Connect {
                detail: "connect timed out".into(),
            },
            TransportError::Io(detail) => TransportFailure::InvalidResponse {
                reason: "the connection failed before the response was complete",
                detail,
            },
            TransportError::Protocol(detail) => TransportFailure::InvalidResponse {
                reason: "the response is not valid HTTP or was cut short",
                detail,
            },
        };
        self.fail(now, Failure::Transport(failure));
    }
}

/// Whether a response head announces an SSE stream.
pub(super) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/event-stream"))
}

/// A success body as the client gets it: passed through (checked to be well-formed JSON)
/// or translated into the client's API. `Err` says why it is unusable.
fn success_body(translation: &Translation, raw: Bytes) -> Result<Bytes, TransportFailure> {
    translation.success_body(raw).map_err(|e| {
        let reason = match translation.upstream() {
            UpstreamApi::Embeddings => "the response is not a valid embeddings answer",
            _ if translation.is_passthrough() => "the response body is not well-formed JSON",
            UpstreamApi::Messages | UpstreamApi::CountTokens => {
                "the response is not a valid Anthropic message"
            }
            UpstreamApi::ChatCompletions => "the response is not a valid chat completion",
            UpstreamApi::Responses => "the response is not a valid Responses answer",
        };
        TransportFailure::InvalidResponse {
            reason,
            detail: e.to_string(),
        }
    })
}
