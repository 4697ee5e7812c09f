//! The RetryMachine: one client request of any generative or auxiliary API (spec §9), from
//! the first target to the last byte, as a sans-IO state machine (spec §4 to §7).
//!
//! Drive it like this (see `docs/architecture.md`):
//!
//! ```text
//! m.handle(now, Event::Start);
//! loop {
//!     while let Some(action) = m.poll_action() { carry it out }   // drain after every handle
//!     if m.is_finished() { break }
//!     wait for an upstream event, the poll_timeout() instant, or the client leaving;
//!     m.handle(now, event);
//! }
//! ```
//!
//! States are named after what they wait for: `Idle` (not started), `BackingOff`
//! (a wait before the next attempt), `AwaitingResponse` (request sent, no head yet),
//! `ReadingBody` (a whole body is being collected), `HoldingStream` (SSE before the
//! commit point), `Streaming` (committed: no more retries), `Done`. With stream recovery
//! (spec §12) a committed stream that fails is continued by further attempts whose
//! answers are read in `Continuation` (`recover.rs`, `recover_read.rs`).

mod decide;
mod guard;
mod receive;
mod recover;
mod recover_read;
mod relay;
mod report;
mod select;
mod send;
mod stream;
mod types;

pub use decide::UNTRANSLATABLE_REQUEST;
pub use relay::{MAX_EVENT_BYTES, MAX_HELD_BYTES};
pub use report::AttemptRecord;
pub use types::{Action, AttemptId, Event, Outcome, Summary, TransportError};

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};

use crate::apis::{self, ApiRequest, ClientApi, Translation};
use crate::block_table::{BlockKey, BlockTable, LatencyTrigger};
use crate::body_memory::BodyReservation;
use crate::classify::{Failure, RuleRef, TransportFailure};
use crate::config::{BlockApplyTo, LatencyMeasure, RetryPolicy};
use crate::errors;
use crate::gateway::{ProviderId, RequestContext};
use crate::response::{set_attempt_headers, set_request_id, ClientResponse};
use crate::routing::Targets;
use crate::sse::SseFramer;
use relay::StreamRelay;
use select::Blocks;

/// The largest upstream response body read whole (success or error).
pub const MAX_RESPONSE_BODY_BYTES: usize = 32 * 1024 * 1024;

/// A routed client request, as the gateway hands it to the machine.
#[derive(Debug)]
pub struct RoutedRequest {
    /// The provider the request's model resolved to; its policy governs the request.
    pub primary: ProviderId,
    /// The client's request, inspected: its API, body and what routing read. Each attempt's
    /// body is made from it per target (spec §5, §9).
    pub api: ApiRequest,
    /// The client's headers (credentials only for `passthrough_auth`; `anthropic-*` for
    /// Anthropic targets of Messages clients).
    pub client_headers: HeaderMap,
    /// The query of the client's request target, forwarded to targets of the client's own
    /// API (Claude Code's `?beta=true`).
    pub client_query: Option<String>,
    pub request_id: String,
}

#[derive(Debug)]
enum Phase {
    AwaitingResponse,
    ReadingBody {
        status: u16,
        headers: HeaderMap,
        buf: BytesMut,
    },
    HoldingStream {
        headers: HeaderMap,
        relay: StreamRelay,
    },
    Streaming {
        relay: StreamRelay,
    },
    /// A continuation's event stream (spec §12), read by the request's `Recovery`;
    /// `started` once its new text reached the client.
    Continuation {
        /// Its response status (a 2xx).
        status: u16,
        framer: SseFramer,
        started: bool,
    },
}

#[derive(Debug)]
struct Attempt {
    id: AttemptId,
    target: ProviderId,
    sent_at: Instant,
    /// `first_token` (bounded by the deadline): when the attempt must have committed.
    commit_by: Instant,
    idle: Duration,
    last_progress: Instant,
    phase: Phase,
    /// The half-open probe this attempt is, if it is one (spec §11).
    probe: Option<guard::ProbeGuard>,
    /// This attempt's share of the gateway's body memory: the body being read, or what
    /// its stream relay holds.
    buffered: BodyReservation,
    /// How the target's answers become the client's.
    translation: Translation,
}

/// The timer an attempt runs: when it fires, and the limit it enforces.
struct AttemptTimer {
    at: Instant,
    /// The configured span that runs out at `at` (`first_token`, `idle`, or what was left
    /// of the request when the attempt started): what `timeout_<ms>ms` reports.
    limit: Duration,
}

impl Attempt {
    /// The earliest of the timers that apply in this phase: `first_token` (bounded by
    /// the request deadline) until commit, `idle` between chunks, the request deadline
    /// while a body is read or streamed.
    fn timer(&self, request_deadline: Instant) -> AttemptTimer {
        let span = |from: Instant, to: Instant| AttemptTimer {
            at: to,
            limit: to.saturating_duration_since(from),
        };
        let commit = span(self.sent_at, self.commit_by);
        let idle = AttemptTimer {
            at: self.last_progress + self.idle,
            limit: self.idle,
        };
        let deadline = span(self.sent_at, request_deadline);
        let earliest = |a: AttemptTimer, b: AttemptTimer| if b.at < a.at { b } else { a };
        match self.phase {
            Phase::AwaitingResponse => commit,
            Phase::HoldingStream { .. } | Phase::Continuation { started: false, .. } => {
                earliest(commit, idle)
            }
            Phase::ReadingBody { .. }
            | Phase::Streaming { .. }
            | Phase::Continuation { started: true, .. } => earliest(deadline, idle),
        }
    }
}

#[derive(Debug)]
enum State {
    Idle,
    BackingOff { until: Instant, target: ProviderId },
    InFlight(Box<Attempt>),
    Done,
}

/// One client request's retry and relay decisions. See the module docs for the contract.
#[derive(Debug)]
pub struct RetryMachine {
    gw: Arc<Targets>,
    req: RoutedRequest,
    started_at: Instant,
    deadline: Instant,
    wall_at_start: SystemTime,
    rng: fastrand::Rng,
    request_blocks: BlockTable,
    state: State,
    actions: VecDeque<Action>,
    next_attempt: u32,
    records: Vec<AttemptRecord>,
    tried: Vec<ProviderId>,
    used: BTreeMap<(RuleRef, u8), u32>,
    stage: BTreeMap<RuleRef, u8>,
    retries: u32,
    first_retry_at: Option<Instant>,
    mock_steps: VecDeque<(Instant, Event)>,
    /// The status of the response head sent to the client, once one was.
    client_status: Option<StatusCode>,
    /// The last failure, for an exhaustion error given after a wait.
    last_failure: Option<Failure>,
    /// The request body's share of the body memory (given back when dropped).
    request_body: Option<BodyReservation>,
    /// The share of the body the machine handed on last (a response, the last failure).
    kept_body: Option<BodyReservation>,
    /// The latest `now` the machine was handed (the end of its last attempt's record).
    last_event_at: Instant,
    /// Stream recovery of the committed stream, when the primary's policy turns it on.
    recovery: Option<Box<recover::Recovering>>,
}

impl RetryMachine {
    /// A machine for one routed request. `ctx.random` seeds its jitter, so the same
    /// seed and the same events give the same actions.
    pub fn new(gw: Arc<Targets>, req: RoutedRequest, ctx: RequestContext) -> RetryMachine {
        RetryMachine {
            gw,
            req,
            started_at: ctx.now,
            deadline: ctx.now + ctx.timeout,
            wall_at_start: ctx.wall,
            rng: fastrand::Rng::with_seed(ctx.random),
            request_blocks: BlockTable::new(),
            state: State::Idle,
            actions: VecDeque::new(),
            next_attempt: 0,
            records: Vec::new(),
            tried: Vec::new(),
            used: BTreeMap::new(),
            stage: BTreeMap::new(),
            retries: 0,
            first_retry_at: None,
            mock_steps: VecDeque::new(),
            client_status: None,
            last_failure: None,
            request_body: None,
            kept_body: None,
            last_event_at: ctx.now,
            recovery: None,
        }
    }

    /// The primary's retry policy, which governs the whole request (`None`: no retries).
    fn policy(&self) -> Option<&RetryPolicy> {
        self.gw.provider(self.req.primary).retry_policy.as_ref()
    }

    /// Runs `f` with the block state (the shared table, locked, and the request's own).
    fn with_blocks<T>(&self, now: Instant, f: impl FnOnce(&Blocks<'_>) -> T) -> T {
        let shared = self.gw.blocks().lock();
        f(&Blocks {
            shared: &shared,
            request: &self.request_blocks,
            now,
        })
    }

    /// The request id the responses carry.
    pub fn request_id(&self) -> &str {
        &self.req.request_id
    }

    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.req.api.info().stream
    }

    /// The client's API.
    pub fn api(&self) -> ClientApi {
        self.req.api.api()
    }

    /// True once `Finish` has been queued; the machine ignores every later event.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The next action to carry out. Drain until `None` after every `handle`.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The one instant at which the machine wants `handle(now, Event::Timer)`, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = match &self.state {
            State::Idle | State::Done => None,
            State::BackingOff { until, .. } => Some(*until),
            State::InFlight(a) => Some(a.timer(self.deadline).at),
        };
        let mock = self.mock_steps.front().map(|(at, _)| *at);
        match (own, mock) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Feeds one input. Never panics; events for abandoned attempts are ignored.
    pub fn handle(&mut self, now: Instant, event: Event) {
        if matches!(self.state, State::Done) {
            return;
        }
        self.last_event_at = self.last_event_at.max(now);
        match event {
            Event::Start => self.start(now),
            Event::Timer => self.on_timer(now),
            Event::ClientGone => self.on_client_gone(),
            Event::Shutdown => self.on_shutdown(),
            upstream => self.on_upstream(now, upstream),
        }
    }

    fn start(&mut self, now: Instant) {
        if !matches!(self.state, State::Idle) {
            return;
        }
        decide::first_attempt(self, now);
    }

    fn on_timer(&mut self, now: Instant) {
        while self.mock_steps.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, ev)) = self.mock_steps.pop_front() {
                self.on_upstream(now, ev);
            }
        }
        match &self.state {
            // A wake-up so late that the deadline passed during the wait: no attempt may
            // start past it (spec §4.7), so the request ends as timed out.
            State::BackingOff { .. } if now >= self.deadline => {
                let after = self.deadline.saturating_duration_since(self.started_at);
                let failure = Failure::Transport(TransportFailure::Timeout { after });
                let resp = report::exhausted(&self.records, Some(&failure), Default::default());
                self.respond(resp, Outcome::Failed);
            }
            State::BackingOff { until, target } if *until <= now => {
                let target = *target;
                self.send(now, target);
            }
            State::InFlight(a) => {
                let timer = a.timer(self.deadline);
                if now < timer.at {
                    return;
                }
                if matches!(a.phase, Phase::Streaming { .. }) {
                    let message = if now >= self.deadline {
                        "The request deadline passed mid-stream; the answer is incomplete."
                            .to_owned()
                    } else {
                        format!(
                            "The upstream stream stalled for {} ms; the answer is incomplete.",
                            timer.limit.as_millis()
                        )
                    };
                    let error_type = format!("timeout_{}ms", timer.limit.as_millis());
                    self.stream_broke(now, &message, "stream_timeout", &error_type);
                } else {
                    self.cancel_current();
                    let after = timer.limit;
                    self.fail(now, Failure::Transport(TransportFailure::Timeout { after }));
                }
            }
            _ => {}
        }
    }

    fn on_client_gone(&mut self) {
        self.cancel_current();
        let status = self.client_status.map_or(0, |s| s.as_u16());
        self.finish(Outcome::Cancelled, status);
    }

    fn on_shutdown(&mut self) {
        if self.client_status.is_some() {
            self.abort_stream(
                "The gateway is shutting down; the answer is incomplete.",
                "gateway_shutdown",
            );
            return;
        }
        self.cancel_current();
        let mut resp = errors::error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "The gateway is shutting down; send the request again.",
            "api_error",
            Some("gateway_shutdown"),
            serde_json::Value::Null,
        );
        resp.headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
        self.respond_error(resp);
    }

    fn current(&self, attempt: AttemptId) -> bool {
        matches!(&self.state, State::InFlight(a) if a.id == attempt)
    }

    fn on_upstream(&mut self, now: Instant, event: Event) {
        match event {
            Event::UpstreamHead {
                attempt,
                status,
                headers,
            } if self.current(attempt) => self.on_head(now, status, headers),
            Event::UpstreamData { attempt, data } if self.current(attempt) => {
                self.on_data(now, data)
            }
            Event::UpstreamEnd { attempt } if self.current(attempt) => self.on_end(now),
            Event::UpstreamFailed { attempt, error } if self.current(attempt) => {
                self.on_transport_error(now, error)
            }
            _ => {}
        }
    }

    fn attempt_mut(&mut self) -> Option<&mut Attempt> {
        match &mut self.state {
            State::InFlight(a) => Some(a),
            _ => None,
        }
    }

    /// Emits `Cancel` for the in-flight attempt, if any, unless a stream was started: after
    /// commit only stream recovery starts and cancels attempts (`recover.rs`), and `Finish`
    /// drops the attempt.
    fn cancel_current(&mut self) {
        if let State::InFlight(a) = &self.state {
            if self.client_status.is_none() {
                self.actions.push_back(Action::Cancel { attempt: a.id });
            }
        }
        self.mock_steps.clear();
    }

    /// Records a high-latency event when the attempt's latency (by `measure`) passes
    /// the primary policy's threshold.
    fn record_latency(&mut self, now: Instant, at: LatencyMeasure) {
        let Some(h) = self.policy().and_then(|p| p.on_high_latency) else {
            return;
        };
        if h.measure != at {
            return;
        }
        let State::InFlight(a) = &self.state else {
            return;
        };
        let latency = now.saturating_duration_since(a.sent_at);
        if latency <= h.threshold {
            return;
        }
        let model = self.gw.provider(a.target).model.clone();
        let key = BlockKey::for_scope(h.scope, &model);
        let trigger = LatencyTrigger {
            min_triggers: h.min_triggers,
            window: h.trigger_window,
            block_duration: h.block_duration,
        };
        let blocked = match h.apply_to {
            BlockApplyTo::Global => self
                .gw
                .blocks()
                .lock()
                .record_latency_event(now, key, trigger),
            BlockApplyTo::Request => self.request_blocks.record_latency_event(now, key, trigger),
        };
        tracing::info!(request_id = %self.req.request_id, %model, latency_ms = latency.as_millis() as u64, blocked = blocked.is_some(), "high latency");
    }

    /// Adds the request id and attempt headers to a response's headers.
    fn decorate(&self, headers: &mut HeaderMap, model_of: Option<ProviderId>) {
        set_request_id(headers, &self.req.request_id);
        let model = model_of.map(|id| self.gw.provider(id).model.as_str());
        set_attempt_headers(headers, self.next_attempt, model);
    }

    /// Sends a whole response and finishes; `x-switchback-model` names the last target.
    fn respond(&mut self, resp: ClientResponse, outcome: Outcome) {
        let model = self.tried.last().copied();
        self.respond_as(resp, outcome, model);
    }

    /// [`respond`](Self::respond), naming `model` (or no model) as the one that answered.
    fn respond_as(
        &mut self,
        mut resp: ClientResponse,
        outcome: Outcome,
        model: Option<ProviderId>,
    ) {
        self.decorate(&mut resp.headers, model);
        let status = resp.status.as_u16();
        self.client_status = Some(resp.status);
        self.actions.push_back(Action::Respond(resp));
        self.finish(outcome, status);
    }

    fn finish(&mut self, outcome: Outcome, status: u16) {
        let model = self
            .tried
            .last()
            .map(|id| self.gw.provider(*id).model.clone());
        if let State::InFlight(a) = &self.state {
            // The attempt still running is the one that answered, aborted or was cut off.
            let error_type = match outcome {
                Outcome::Success => "ok",
                Outcome::StreamAborted => "stream_aborted",
                Outcome::Failed | Outcome::Cancelled => "cancelled",
            };
            let record = AttemptRecord {
                model: self.gw.provider(a.target).model.clone(),
                target: a.target,
                error_type: error_type.to_owned(),
                status: self
                    .client_status
                    .filter(|_| matches!(outcome, Outcome::Success | Outcome::StreamAborted))
                    .map(|s| s.as_u16()),
                started: a.sent_at.saturating_duration_since(self.started_at),
                latency: self.last_event_at.saturating_duration_since(a.sent_at),
                retry_after: None,
            };
            self.records.push(record);
        }
        self.state = State::Done;
        self.mock_steps.clear();
        self.actions.push_back(Action::Finish(Summary {
            outcome,
            status,
            attempts: self.next_attempt,
            model,
            primary: self.req.primary,
            target: self.tried.last().copied(),
            records: std::mem::take(&mut self.records),
            recovery: self.recovery.as_ref().and_then(|r| r.ran()).cloned(),
        }));
    }

    /// A gateway-made error (OpenAI's shape) in the client's shape, sent, and the end.
    fn respond_error(&mut self, resp: ClientResponse) {
        let resp = apis::errors::reshape_response(self.api(), resp);
        self.respond(resp, Outcome::Failed);
    }

    /// The providers this request reads (for metric labels of its targets).
    pub fn targets(&self) -> &Targets {
        &self.gw
    }

    /// Handles a failed attempt (spec §4): records it, then retries or ends.
    fn fail(&mut self, now: Instant, failure: Failure) {
        if self.in_continuation() {
            self.continuation_failed(now, failure);
            return;
        }
        decide::after_failure(self, now, failure, None);
    }

    /// [`fail`](Self::fail) for an upstream error whose body, in the client's shape, is
    /// `answer`: what the client gets if the error passes through (spec §4.1).
    fn fail_with_answer(&mut self, now: Instant, failure: Failure, answer: Bytes) {
        if self.in_continuation() {
            self.continuation_failed(now, failure);
            return;
        }
        decide::after_failure(self, now, failure, Some(answer));
    }

    /// Wall-clock time at `now`, for HTTP-date pushback.
    fn wall(&self, now: Instant) -> SystemTime {
        self.wall_at_start + now.saturating_duration_since(self.started_at)
    }
}
