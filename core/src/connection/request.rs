//! One request's way through the connection: its head begins it, its complete body is
//! dispatched to the gateway (an answer at once, or a machine to drive), and gateway-made
//! refusals close the connection after their answer.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{Method, Version};

use super::answer::{Answer, Sinks};
use super::log::RequestLog;
use super::meter::RequestMeter;
use super::traced::Propagation;
use super::{Connection, Incoming, Phase};
use crate::gateway::{ClientRequest, Reply, RequestContext};
use crate::response::{accepted_request_id, generate_request_id, set_request_id, REQUEST_ID};
use crate::server::{BodyKind, HttpError, RequestHead, ResponseEncoder, CONTINUE_100};

impl Connection {
    /// A head arrived: acknowledge `Expect: 100-continue` and start reading the body.
    pub(super) fn begin(&mut self, now: Instant, head: RequestHead) {
        if let Some((live, seen)) = &mut self.live {
            live.refresh(&mut self.gw, seen);
        }
        let within_limit = match head.framing {
            crate::server::BodyFraming::Length(n) => {
                n <= self.settings.limits.max_body_bytes as u64
            }
            _ => true,
        };
        if head.expect_continue && within_limit && self.reader.buffered() == 0 {
            self.out.write_with(|b| b.extend_from_slice(CONTINUE_100));
        }
        self.phase = Phase::ReadingBody(Box::new(Incoming {
            head,
            started: now,
            last_byte: now,
            parts: Vec::new(),
            len: 0,
            reservation: self.gw.body_memory().empty_reservation(),
        }));
    }

    /// The request is complete: ask the gateway, then answer at once or start the machine.
    pub(super) fn dispatch(&mut self, now: Instant) {
        let Phase::ReadingBody(inc) = std::mem::replace(&mut self.phase, Phase::Closed) else {
            return;
        };
        let Incoming {
            head,
            started,
            parts,
            len,
            reservation,
            ..
        } = *inc;
        let body = join(parts, len);
        let keep_alive = head.keep_alive && self.draining.is_none();
        let mut encoder =
            ResponseEncoder::new(head.version, head.method == Method::HEAD, keep_alive);
        let method = head.method.clone();
        let target = head.target.clone();
        let random = self.rng.u64(..);
        let wall = self.clock.wall(started);
        let propagation = Propagation::start(
            self.gw.config().tracing.as_ref(),
            &head.headers,
            head.method.as_str(),
            &head.target,
            random,
            started,
            wall,
        );
        let request = ClientRequest {
            method: head.method,
            path: head.target,
            headers: head.headers,
            body,
        };
        let ctx = RequestContext {
            now: started,
            wall,
            timeout: self.settings.request_timeout,
            random,
        };
        let date = self.date.at(self.clock.wall(now)).clone();
        match Arc::clone(&self.gw).handle_on(self.surface, request, ctx, Some(reservation)) {
            Reply::Respond(resp) => {
                let request_id = resp
                    .headers
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned();
                let kind = BodyKind::Full(resp.body.len());
                self.out
                    .write_with(|b| encoder.write_head(b, resp.status, &resp.headers, kind, &date));
                if !encoder.body_is_empty() {
                    self.out.push(resp.body);
                }
                let log = RequestLog {
                    request_id,
                    method,
                    target,
                    started,
                };
                log.finish(now, resp.status.as_u16(), 0, None, None);
                self.record_immediate(Some(&log.target), resp.status.as_u16());
                self.next_request(now, encoder.keeps_alive());
            }
            Reply::Chat(machine) => {
                let meter = self
                    .meter_shard()
                    .map(|shard| RequestMeter::start(shard, &target, started));
                let log = RequestLog {
                    request_id: machine.request_id().to_owned(),
                    method,
                    target,
                    started,
                };
                let mut sinks = Sinks {
                    out: &mut self.out,
                    actions: &mut self.actions,
                    date: &date,
                    spans: &mut self.spans,
                };
                let answer =
                    Answer::start(now, machine, encoder, log, meter, propagation, &mut sinks);
                self.phase = Phase::Answering(Box::new(answer));
            }
        }
    }

    /// The response to the current request is queued: read the next one, or close.
    pub(super) fn next_request(&mut self, now: Instant, keep_alive: bool) {
        if keep_alive && self.draining.is_none() {
            self.reader.next_request();
            self.phase = Phase::AwaitingHead { since: now };
        } else {
            self.start_closing();
        }
    }

    /// Answers a request the codec refused (or that timed out), then closes.
    pub(super) fn refuse(&mut self, now: Instant, head: Option<&RequestHead>, error: HttpError) {
        tracing::debug!(
            status = error.status.as_u16(),
            "refused a client request: {}",
            error.message
        );
        self.answer_and_close(now, head, now, error.to_response());
    }

    /// The gateway-wide body memory is full: this request gets 503 with `Retry-After: 1`
    /// and the connection closes (the rest of its body is not read).
    pub(super) fn overloaded(&mut self, now: Instant) {
        if let Phase::ReadingBody(inc) = std::mem::replace(&mut self.phase, Phase::Closed) {
            self.answer_and_close(
                now,
                Some(&inc.head),
                inc.started,
                crate::errors::overloaded(),
            );
        }
    }

    /// Writes a gateway-made answer to `head` (or to a request that never got a head) with
    /// its request id, logs it, and closes the connection after it.
    pub(super) fn answer_and_close(
        &mut self,
        now: Instant,
        head: Option<&RequestHead>,
        started: Instant,
        mut resp: crate::response::ClientResponse,
    ) {
        if let Some(api) = head.and_then(|h| crate::apis::ClientApi::from_path(&h.target)) {
            resp = crate::apis::errors::reshape_response(api, resp);
        }
        let request_id = head
            .and_then(|h| accepted_request_id(&h.headers))
            .map(str::to_owned)
            .unwrap_or_else(|| generate_request_id(self.rng.u64(..)));
        set_request_id(&mut resp.headers, &request_id);
        let version = head.map_or(Version::HTTP_11, |h| h.version);
        let head_request = head.is_some_and(|h| h.method == Method::HEAD);
        let mut encoder = ResponseEncoder::new(version, head_request, false);
        let date = self.date.at(self.clock.wall(now)).clone();
        let kind = BodyKind::Full(resp.body.len());
        self.out
            .write_with(|b| encoder.write_head(b, resp.status, &resp.headers, kind, &date));
        if !encoder.body_is_empty() {
            self.out.push(resp.body);
        }
        let log = RequestLog {
            request_id,
            method: head.map_or(Method::GET, |h| h.method.clone()),
            target: head.map_or_else(|| "-".to_owned(), |h| h.target.clone()),
            started,
        };
        log.finish(now, resp.status.as_u16(), 0, None, None);
        let target = head.map(|h| h.target.clone());
        self.record_immediate(target.as_deref(), resp.status.as_u16());
        self.start_closing();
    }
}

fn join(mut parts: Vec<Bytes>, len: usize) -> Bytes {
    match parts.len() {
        0 => Bytes::new(),
        1 => parts.pop().unwrap_or_default(),
        _ => {
            let mut all = BytesMut::with_capacity(len);
            for p in parts {
                all.extend_from_slice(&p);
            }
            all.freeze()
        }
    }
}
