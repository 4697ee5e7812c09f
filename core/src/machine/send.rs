//! Starting an attempt (spec §5, §9): which API the target speaks for the client's, the
//! body and path made for that target, the client headers that go with it, and the
//! built-in mock provider's script.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::{decide, Action, Attempt, AttemptId, Event, Phase, RetryMachine, State};
use crate::apis::{self, route, upstream_api_for, Target, TranslateError, UpstreamApi};
use crate::classify::Failure;
use crate::config::{Interface, Provider};
use crate::errors;
use crate::gateway::ProviderId;
use crate::mock::{self, MockStep};
use crate::provider::{self, Endpoint};
use crate::upstream::UpstreamHttpRequest;

impl RetryMachine {
    /// Starts an attempt to `target` now, unless its failure circuit keeps it shut (then
    /// the request waits for it, or ends, as for any block).
    ///
    /// The body is the client's bytes with only `model` replaced when the target speaks the
    /// client's API, the request translated otherwise; a request the target's API cannot
    /// express is a failed attempt with a 400 in the client's shape (like the upstream's
    /// own 400: it passes through unless a rule lists 400) and no upstream call.
    pub(super) fn send(&mut self, now: Instant, target: ProviderId) {
        let probe = match self.claim(now, target) {
            Ok(probe) => probe,
            Err(until) => {
                decide::wait_for(self, now, target, until);
                return;
            }
        };
        if self.next_attempt == 0 {
            self.count_first_attempt(now);
        }
        let id = AttemptId(self.next_attempt);
        self.next_attempt += 1;
        if !self.tried.contains(&target) {
            self.tried.push(target);
        }
        let gw = Arc::clone(&self.gw);
        let p = gw.provider(target);
        let api = self.api();
        let upstream = upstream_api_for(api, p.interface, p.responses);
        // Selection only picks targets that serve the client's API; `None` is refused the
        // same way as a request the target's API cannot express.
        let built = match upstream {
            Some(upstream) => self
                .req
                .api
                .upstream_body(upstream, &Target::for_provider(p))
                .map(|body| (upstream, body)),
            None => Err(TranslateError::Unsupported(format!(
                "the model '{}' cannot answer {} requests",
                p.model,
                api.path()
            ))),
        };
        // After the body: a translation reads the tool names its decoding found.
        let translation = self
            .req
            .api
            .translation(upstream.unwrap_or(UpstreamApi::ChatCompletions), &p.model);
        let commit_by = (now + p.timeouts.first_token).min(self.deadline);
        self.state = State::InFlight(Box::new(Attempt {
            id,
            target,
            sent_at: now,
            commit_by,
            idle: p.timeouts.idle,
            last_progress: now,
            phase: Phase::AwaitingResponse,
            probe,
            buffered: gw.body_memory().empty_reservation(),
            translation,
        }));
        let (upstream, body) = match built {
            Ok(built) => built,
            Err(e) => {
                self.fail_untranslatable(now, &e);
                return;
            }
        };
        if p.interface == Interface::Mock {
            self.play_mock(now, id, target);
            return;
        }
        let Some(endpoint) = gw.endpoint(target) else {
            return; // only the mock provider has none
        };
        let path = self.upstream_path(endpoint, upstream);
        let request = self.upstream_request(p, endpoint, upstream, body, self.is_stream(), path);
        self.push_send(now, id, target, request);
    }

    /// The path (and query) of an ordinary attempt speaking `upstream` to `endpoint`.
    pub(super) fn upstream_path(&self, endpoint: &Endpoint, upstream: UpstreamApi) -> String {
        route::upstream_path(
            &endpoint.path,
            upstream,
            self.api(),
            self.req.client_query.as_deref(),
        )
    }

    /// The HTTP request of an attempt to `p` speaking `upstream`: `body` at `path`, the
    /// target's credentials and headers, and the client headers that go with it
    /// ([`route::forwarded_headers`]).
    pub(super) fn upstream_request(
        &self,
        p: &Provider,
        endpoint: &Endpoint,
        upstream: UpstreamApi,
        body: Bytes,
        stream: bool,
        path: String,
    ) -> UpstreamHttpRequest {
        let headers = &self.req.client_headers;
        let mut request = provider::build_request(p, endpoint, body, headers, stream);
        request.path_and_query = path;
        let forwarded = route::forwarded_headers(self.api(), upstream, headers, p.passthrough_auth);
        add_forwarded(&mut request.headers, forwarded);
        request
    }

    /// Queues the `Send` of attempt `id` to `target`; connecting may take the target's
    /// `connect` timeout, never past the deadline.
    pub(super) fn push_send(
        &mut self,
        now: Instant,
        id: AttemptId,
        target: ProviderId,
        request: UpstreamHttpRequest,
    ) {
        let p = self.gw.provider(target);
        let connect_timeout = p
            .timeouts
            .connect
            .min(self.deadline.saturating_duration_since(now));
        self.actions.push_back(Action::Send {
            attempt: id,
            target,
            model: p.model.clone(),
            connect_timeout,
            request,
        });
    }

    /// The request cannot be expressed for the current attempt's target: on the first
    /// attempt treated like the upstream's own 400, so it passes through (in the client's
    /// shape) unless a rule lists 400; on a failover attempt the candidate is skipped
    /// ([`decide::after_untranslatable`]).
    fn fail_untranslatable(&mut self, now: Instant, e: &TranslateError) {
        let body = errors::error_body(
            &e.to_string(),
            "invalid_request_error",
            Some(e.code()),
            serde_json::Value::Null,
        );
        let answer = apis::errors::reshape(self.api(), 400, &body);
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let failure = Failure::Http {
            status: 400,
            headers,
            body,
        };
        if self.in_continuation() {
            self.fail_with_answer(now, failure, answer);
        } else {
            decide::after_untranslatable(self, now, failure, answer);
        }
    }

    /// Plays the built-in mock provider's answer for attempt `id` on the machine's own
    /// timer (it speaks Chat Completions; the attempt's translation reads it like any).
    fn play_mock(&mut self, now: Instant, id: AttemptId, target: ProviderId) {
        let gw = Arc::clone(&self.gw);
        let p = gw.provider(target);
        let mut at = now;
        for (after, step) in mock::plan(&p.model, &p.mock, self.is_stream()) {
            at += after;
            let ev = match step {
                MockStep::Head { status, headers } => Event::UpstreamHead {
                    attempt: id,
                    status,
                    headers,
                },
                MockStep::Data(data) => Event::UpstreamData { attempt: id, data },
                MockStep::End => Event::UpstreamEnd { attempt: id },
                MockStep::Fail(error) => Event::UpstreamFailed { attempt: id, error },
            };
            self.mock_steps.push_back((at, ev));
        }
        self.on_timer(now);
    }
}

/// Adds the client headers [`route::forwarded_headers`] chose, after the target's own: each
/// replaces what the target's headers set (the client's `anthropic-version` wins over the
/// default), except `anthropic-beta`, whose values join any the entry's `headers:` set.
fn add_forwarded(headers: &mut HeaderMap, forwarded: Vec<(HeaderName, HeaderValue)>) {
    let beta = HeaderName::from_static("anthropic-beta");
    let mut replaced: Vec<HeaderName> = Vec::new();
    for (name, value) in forwarded {
        if name == beta {
            let joined = match headers.get(&beta).map(HeaderValue::as_bytes) {
                Some(existing) if !existing.is_empty() => {
                    let mut v = existing.to_vec();
                    v.push(b',');
                    v.extend_from_slice(value.as_bytes());
                    HeaderValue::from_bytes(&v).unwrap_or(value)
                }
                _ => value,
            };
            headers.insert(beta.clone(), joined);
        } else if replaced.contains(&name) {
            headers.append(name, value);
        } else {
            headers.insert(name.clone(), value);
            replaced.push(name);
        }
    }
}
