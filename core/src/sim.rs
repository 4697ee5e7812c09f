//! A deterministic simulation harness: a [`Gateway`] with scripted fake upstreams and
//! virtual time. Time jumps straight to the next scripted event or machine deadline,
//! so a 60 s block or a 30 s timeout costs microseconds. Used by the core's tests and
//! useful to anyone who wants to check what a config does before deploying it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::config::Config;
use crate::gateway::{ClientRequest, Gateway, Reply, RequestContext};
use crate::machine::{Action, AttemptId, Event, RetryMachine, Summary, TransportError};

/// How a scripted answer's body ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Clean end of the body.
    End,
    /// The connection breaks after the last chunk.
    Cut,
    /// Nothing more is ever sent (a stall).
    Stall,
}

/// One scripted upstream answer.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeReply {
    /// Connection refused: fails at once.
    Refuse,
    /// Accepts the request and never answers.
    Hang,
    /// An HTTP answer: head after `delay`, then body chunks each after its own gap.
    Http {
        delay: Duration,
        status: u16,
        headers: Vec<(String, String)>,
        chunks: Vec<(Duration, Bytes)>,
        ending: Ending,
    },
}

impl FakeReply {
    /// A JSON answer sent at once.
    pub fn json(status: u16, body: &str) -> FakeReply {
        FakeReply::Http {
            delay: Duration::ZERO,
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks: vec![(Duration::ZERO, Bytes::from(body.to_owned()))],
            ending: Ending::End,
        }
    }

    /// The same with extra headers.
    pub fn json_with(status: u16, headers: &[(&str, &str)], body: &str) -> FakeReply {
        let mut r = FakeReply::json(status, body);
        if let FakeReply::Http { headers: h, .. } = &mut r {
            h.extend(
                headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
        }
        r
    }

    /// An SSE answer: each event after `gap`.
    pub fn sse(events: &[&str], gap: Duration, ending: Ending) -> FakeReply {
        FakeReply::Http {
            delay: Duration::ZERO,
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            chunks: events
                .iter()
                .map(|e| (gap, Bytes::from((*e).to_owned())))
                .collect(),
            ending,
        }
    }

    /// Delays this answer's head by `delay`.
    pub fn delayed(mut self, by: Duration) -> FakeReply {
        if let FakeReply::Http { delay, .. } = &mut self {
            *delay = by;
        }
        self
    }
}

/// A scripted upstream: answers in order, repeating the last one (like the seed mocks).
#[derive(Debug, Clone, Default)]
pub struct FakeUpstream {
    replies: Vec<FakeReply>,
    /// Request bodies received, in order.
    pub received: Vec<Bytes>,
    /// Request headers received, in order.
    pub received_headers: Vec<HeaderMap>,
    /// Request targets (path and query) received, in order.
    pub received_paths: Vec<String>,
    /// When each request arrived.
    pub arrivals: Vec<Instant>,
}

impl FakeUpstream {
    /// How many requests it received.
    pub fn calls(&self) -> usize {
        self.received.len()
    }
}

/// What the client saw for one simulated request.
#[derive(Debug, Clone)]
pub struct SimResponse {
    pub status: u16,
    pub headers: HeaderMap,
    /// The whole body (a stream's bytes concatenated).
    pub body: Bytes,
    /// Whether the response was streamed.
    pub streamed: bool,
    pub summary: Option<Summary>,
    pub started: Instant,
    pub finished: Instant,
    /// Every action the machine emitted, with the virtual time it was drained.
    pub trace: Vec<(Instant, Action)>,
}

impl SimResponse {
    /// Virtual time from request to `Finish`.
    pub fn elapsed(&self) -> Duration {
        self.finished.saturating_duration_since(self.started)
    }

    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A gateway over scripted upstreams in virtual time.
#[derive(Debug)]
pub struct Simulation {
    pub gateway: Arc<Gateway>,
    pub now: Instant,
    upstreams: BTreeMap<String, FakeUpstream>,
    seed: u64,
    /// The listener timeout used for requests (the first listener's, else 300 s).
    pub timeout: Duration,
    /// Safety valve: the most steps one request may take before the run is declared stuck.
    pub max_steps: usize,
}

/// The simulation cannot finish a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("the machine waits for nothing: no upstream event and no timer, before Finish")]
    Stuck,
    #[error("the request took more than the step limit")]
    TooManySteps,
    #[error("the machine sent to '{0}', which has no script")]
    Unscripted(String),
}

impl Simulation {
    /// A simulation of `config`, starting at virtual time `epoch`.
    pub fn new(config: Config, epoch: Instant) -> Simulation {
        let timeout = config
            .listeners
            .first()
            .map(|l| l.timeout)
            .unwrap_or(Duration::from_secs(300));
        let gateway = Gateway::new(config).unwrap_or_else(|e| panic!("simulation config: {e}"));
        Simulation {
            gateway: Arc::new(gateway),
            now: epoch,
            upstreams: BTreeMap::new(),
            seed: 1,
            timeout,
            max_steps: 100_000,
        }
    }

    /// Scripts the upstream of `model` (a full `prefix/model-id`).
    pub fn script(&mut self, model: &str, replies: Vec<FakeReply>) {
        self.upstreams.insert(
            model.to_owned(),
            FakeUpstream {
                replies,
                ..FakeUpstream::default()
            },
        );
    }

    /// The scripted upstream of `model`.
    pub fn upstream(&self, model: &str) -> Option<&FakeUpstream> {
        self.upstreams.get(model)
    }

    /// Calls received by the upstream of `model` (0 when unscripted).
    pub fn calls(&self, model: &str) -> usize {
        self.upstreams.get(model).map_or(0, FakeUpstream::calls)
    }

    /// Moves virtual time forward.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Sends `body` to `POST /v1/chat/completions` and runs it to the end.
    pub fn chat(&mut self, body: &str) -> Result<SimResponse, SimError> {
        self.request(
            Method::POST,
            "/v1/chat/completions",
            HeaderMap::new(),
            body,
            None,
        )
    }

    /// Sends `body` to `POST path` (any client API: `/v1/messages`, `/v1/responses`, ...)
    /// with `headers`, and runs it to the end.
    pub fn post(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<SimResponse, SimError> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                map.append(k, v);
            }
        }
        self.request(Method::POST, path, map, body, None)
    }

    /// Runs one request to the end; with `disconnect_at`, the client goes away then.
    pub fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: &str,
        disconnect_at: Option<Duration>,
    ) -> Result<SimResponse, SimError> {
        self.seed = self
            .seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let ctx = RequestContext {
            now: self.now,
            wall: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            timeout: self.timeout,
            random: self.seed,
        };
        let req = ClientRequest {
            method,
            path: path.to_owned(),
            headers,
            body: Bytes::from(body.to_owned()),
        };
        let started = self.now;
        match self.gateway.handle(req, ctx) {
            Reply::Respond(r) => Ok(SimResponse {
                status: r.status.as_u16(),
                headers: r.headers,
                body: r.body,
                streamed: false,
                summary: None,
                started,
                finished: started,
                trace: Vec::new(),
            }),
            Reply::Chat(m) => self.drive(*m, started, disconnect_at.map(|d| started + d)),
        }
    }

    fn drive(
        &mut self,
        mut m: RetryMachine,
        started: Instant,
        disconnect_at: Option<Instant>,
    ) -> Result<SimResponse, SimError> {
        let mut out = SimResponse {
            status: 0,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            streamed: false,
            summary: None,
            started,
            finished: started,
            trace: Vec::new(),
        };
        let mut body = BytesMut::new();
        let mut pending: BTreeMap<(Instant, u64), (AttemptId, Event)> = BTreeMap::new();
        let mut seq = 0u64;
        let mut disconnect_at = disconnect_at;
        m.handle(self.now, Event::Start);
        for _ in 0..self.max_steps {
            while let Some(action) = m.poll_action() {
                out.trace.push((self.now, action.clone()));
                match action {
                    Action::Send { attempt, model, .. } => {
                        let events = self.answer(&model, &action_request(&out))?;
                        let mut at = self.now;
                        for (after, ev) in events {
                            at += after;
                            seq += 1;
                            pending.insert((at, seq), (attempt, with_attempt(ev, attempt)));
                        }
                    }
                    Action::Cancel { attempt } => pending.retain(|_, (a, _)| *a != attempt),
                    Action::Respond(r) => {
                        out.status = r.status.as_u16();
                        out.headers = r.headers;
                        body.extend_from_slice(&r.body);
                    }
                    Action::StartStream { status, headers } => {
                        out.status = status.as_u16();
                        out.headers = headers;
                        out.streamed = true;
                    }
                    Action::Forward(bytes) => body.extend_from_slice(&bytes),
                    Action::Finish(summary) => {
                        out.summary = Some(summary);
                        out.finished = self.now;
                    }
                }
            }
            if m.is_finished() {
                out.body = body.freeze();
                return Ok(out);
            }
            let next_event = pending.keys().next().map(|(at, _)| *at);
            let next_timer = m.poll_timeout();
            let next = [next_event, next_timer, disconnect_at]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else {
                return Err(SimError::Stuck);
            };
            self.now = self.now.max(next);
            if disconnect_at.is_some_and(|d| d <= self.now) {
                disconnect_at = None;
                m.handle(self.now, Event::ClientGone);
            } else if next_event.is_some_and(|at| at <= self.now) {
                if let Some((_, (_, ev))) = pending.pop_first() {
                    m.handle(self.now, ev);
                }
            } else {
                m.handle(self.now, Event::Timer);
            }
        }
        Err(SimError::TooManySteps)
    }

    /// The scripted events answering a request to `model`.
    fn answer(
        &mut self,
        model: &str,
        request: &Option<(Bytes, HeaderMap, String)>,
    ) -> Result<Vec<(Duration, Event)>, SimError> {
        let now = self.now;
        let up = self
            .upstreams
            .get_mut(model)
            .ok_or_else(|| SimError::Unscripted(model.to_owned()))?;
        let (body, headers, path) = request.clone().unwrap_or_default();
        up.received.push(body);
        up.received_headers.push(headers);
        up.received_paths.push(path);
        up.arrivals.push(now);
        let idx = (up.received.len() - 1).min(up.replies.len().saturating_sub(1));
        let Some(reply) = up.replies.get(idx).cloned() else {
            return Err(SimError::Unscripted(model.to_owned()));
        };
        let placeholder = AttemptId(u32::MAX);
        Ok(match reply {
            FakeReply::Refuse => vec![(
                Duration::ZERO,
                Event::UpstreamFailed {
                    attempt: placeholder,
                    error: TransportError::Connect("connection refused".into()),
                },
            )],
            FakeReply::Hang => Vec::new(),
            FakeReply::Http {
                delay,
                status,
                headers,
                chunks,
                ending,
            } => {
                let mut map = HeaderMap::new();
                for (k, v) in headers {
                    if let (Ok(k), Ok(v)) = (
                        HeaderName::from_bytes(k.as_bytes()),
                        HeaderValue::from_str(&v),
                    ) {
                        map.append(k, v);
                    }
                }
                let mut evs = vec![(
                    delay,
                    Event::UpstreamHead {
                        attempt: placeholder,
                        status,
                        headers: map,
                    },
                )];
                for (gap, data) in chunks {
                    evs.push((
                        gap,
                        Event::UpstreamData {
                            attempt: placeholder,
                            data,
                        },
                    ));
                }
                match ending {
                    Ending::End => evs.push((
                        Duration::ZERO,
                        Event::UpstreamEnd {
                            attempt: placeholder,
                        },
                    )),
                    Ending::Cut => evs.push((
                        Duration::ZERO,
                        Event::UpstreamFailed {
                            attempt: placeholder,
                            error: TransportError::Io("connection reset by peer".into()),
                        },
                    )),
                    Ending::Stall => {}
                }
                evs
            }
        })
    }
}

/// The body, headers and request target of the last `Send` in the trace.
fn action_request(out: &SimResponse) -> Option<(Bytes, HeaderMap, String)> {
    out.trace.iter().rev().find_map(|(_, a)| match a {
        Action::Send { request, .. } => Some((
            request.body.clone(),
            request.headers.clone(),
            request.path_and_query.clone(),
        )),
        _ => None,
    })
}

fn with_attempt(ev: Event, attempt: AttemptId) -> Event {
    match ev {
        Event::UpstreamHead {
            status, headers, ..
        } => Event::UpstreamHead {
            attempt,
            status,
            headers,
        },
        Event::UpstreamData { data, .. } => Event::UpstreamData { attempt, data },
        Event::UpstreamEnd { .. } => Event::UpstreamEnd { attempt },
        Event::UpstreamFailed { error, .. } => Event::UpstreamFailed { attempt, error },
        other => other,
    }
}
