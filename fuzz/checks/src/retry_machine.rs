//! `retry_machine`: the RetryMachine over arbitrary event sequences on a virtual clock,
//! checked against the invariants of the design guide:
//!
//! - attempts ≤ 1 + the retries the policy grants (the sum of its rules' `max_attempts`);
//! - no `Send` to a target under a Retry-After block (a wait for the block's expiry ends
//!   after it, so the `Send` then finds the block gone);
//! - nothing but `Forward`/`Finish` after `StartStream`, and at most one response head;
//!   under `stream_recovery` (the third policy) continuations may `Send` and `Cancel`
//!   after it, at most `max_continuations` of them, and the client's bytes after the head
//!   must still be one well-formed stream of its API with nothing after its end (complete
//!   when the request succeeded, ended unless the client left);
//! - every wait before a retry stays within the policy's bounds: no longer than the
//!   larger of the backoff's `max` and the longest block in force when the wait began
//!   (a Retry-After or failure block, or a half-open recheck), and no shorter than the
//!   least backoff when the backoff applies;
//! - with the primary's own `retry_budget`, at most `ratio` × the first attempts plus
//!   `min_per_second` × 10 retries (continuations included) in any 10 s window;
//! - exactly one `Finish`, nothing after it, and `is_finished` agrees;
//! - never past the deadline: the machine's timer is never later than the listener
//!   deadline, no `Send` at or after it, and a timer at the deadline finishes the request;
//! - the same seed and the same events give the same actions.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use switchback_core::apis::ClientApi;
use switchback_core::gateway::{ClientRequest, Gateway, Reply, RequestContext};
use switchback_core::machine::{Action, AttemptId, Event, Outcome, RetryMachine, TransportError};

use crate::client_stream::{check_client_stream, StreamEnd};
use crate::retry_policies::{policies, FuzzPolicy, MODELS, PROBE_RECHECK};
use crate::script::{Script, HEADER_SETS, STATUSES, UPSTREAM_BODIES};

/// Client requests, as (path, body). Every policy takes the first three (Chat
/// Completions); the recovery policy takes them all.
const REQUESTS: &[(&str, &str)] = &[
    (
        "/v1/chat/completions",
        r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
    ),
    (
        "/v1/chat/completions",
        r#"{"model":"openai/gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    ),
    (
        "/v1/chat/completions",
        r#"{"model":"openai/gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#,
    ),
    (
        "/v1/messages",
        r#"{"model":"openai/gpt-4o","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    ),
    (
        "/v1/responses",
        r#"{"model":"openai/gpt-4o","stream":true,"input":"hi"}"#,
    ),
];

/// Upstream stream pieces with text to continue, for the recovery policy: Chat chunks
/// and Anthropic Messages events (the fallback's interface), whole or cut by the script.
const RECOVERY_PIECES: &[&str] = &[
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"One two \"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"three.\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}}\n\n",
    "data: [DONE]\n\n",
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"four five \"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":4}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    "event: ping\ndata: {\"type\":\"ping\"}\n\n",
];

const STEPS: &[Duration] = &[
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(90),
    Duration::from_millis(450),
    Duration::from_millis(1100),
    Duration::from_secs(3),
    Duration::from_secs(12),
];

const ERRORS: &[fn() -> TransportError] = &[
    || TransportError::Connect("refused".into()),
    || TransportError::ConnectTimeout,
    || TransportError::Tls("bad certificate".into()),
    || TransportError::Io("reset".into()),
    || TransportError::Protocol("garbage".into()),
];

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Runs `data` twice on fresh gateways and checks the invariants; both runs must act alike.
pub fn check(data: &[u8]) {
    let first = run(data);
    let second = run(data);
    assert_eq!(
        first, second,
        "the same seed and events gave different actions"
    );
}

/// One run: the machine's actions, as text with their virtual times.
fn run(data: &[u8]) -> Vec<String> {
    let mut s = Script::new(data);
    let policy = &policies()[s.below(3)];
    let config = &policy.config;
    let gw = Arc::new(Gateway::new(config.clone()).expect("fuzz gateway"));
    let requests = if policy.max_continuations.is_some() {
        REQUESTS
    } else {
        &REQUESTS[..3]
    };
    let (path, body) = s.pick(requests);
    let start = epoch();
    let timeout = config.listeners[0].timeout;
    let ctx = RequestContext {
        now: start,
        wall: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        timeout,
        random: s.u64(),
    };
    let req = ClientRequest {
        method: Method::POST,
        path: path.into(),
        headers: HeaderMap::new(),
        body: Bytes::from_static(body.as_bytes()),
    };
    let Reply::Chat(machine) = gw.handle(req, ctx) else {
        panic!("the fuzz request was not routed to the machine");
    };
    let api = machine.api();
    let mut d = Driver {
        m: *machine,
        gw,
        policy,
        api,
        now: start,
        deadline: start + timeout,
        log: Vec::new(),
        sent: Vec::new(),
        sent_model: None,
        sends: 0,
        continuations: 0,
        first_sent_at: start,
        retries_at: Vec::new(),
        streaming: false,
        client: Vec::new(),
        responded: false,
        finished: false,
        timer: None,
        timer_set_at: start,
        wait_allowed_until: start,
        cancelled_in_drain: false,
    };
    d.handle(Event::Start);
    let mut steps = 0;
    while !s.is_empty() && steps < 512 {
        steps += 1;
        let event = d.next_event(&mut s);
        d.handle(event);
    }
    d.run_out();
    if std::env::var_os("SWITCHBACK_FUZZ_DEBUG").is_some() {
        eprintln!("{}", d.log.join("\n"));
    }
    d.log
}

struct Driver {
    m: RetryMachine,
    gw: Arc<Gateway>,
    policy: &'static FuzzPolicy,
    api: ClientApi,
    now: Instant,
    deadline: Instant,
    log: Vec<String>,
    /// Attempts sent, in order.
    sent: Vec<AttemptId>,
    /// The model of the last `Send`.
    sent_model: Option<String>,
    /// `Send`s before the stream's head.
    sends: u32,
    /// `Send`s after the stream's head: continuations.
    continuations: u32,
    /// When the first attempt was sent.
    first_sent_at: Instant,
    /// When each retry (every `Send` after the first) was made.
    retries_at: Vec<Instant>,
    streaming: bool,
    /// The body bytes the client got after the stream's head.
    client: Vec<u8>,
    responded: bool,
    finished: bool,
    /// The machine's timer after the last event.
    timer: Option<Instant>,
    /// When `timer` took its value: the start of a wait, when the machine waits.
    timer_set_at: Instant,
    /// The latest a wait begun at `timer_set_at` may end: the larger, over the events
    /// since, of the event's time plus the backoff's `max` and the longest block then in
    /// force.
    wait_allowed_until: Instant,
    /// Whether the actions drained so far for the current event include a `Cancel`.
    cancelled_in_drain: bool,
}

impl Driver {
    fn next_event(&mut self, s: &mut Script<'_>) -> Event {
        let attempt = match s.below(8) {
            0 => AttemptId(u32::from(s.byte())),
            1 => self.sent.first().copied().unwrap_or(AttemptId(0)),
            _ => self.sent.last().copied().unwrap_or(AttemptId(0)),
        };
        match s.below(16) {
            0..=2 => {
                let step = if s.byte() % 3 == 0 {
                    self.m
                        .poll_timeout()
                        .map_or(Duration::ZERO, |t| t.saturating_duration_since(self.now))
                } else {
                    s.pick(STEPS)
                };
                self.now += step;
                Event::Timer
            }
            3..=5 => {
                let status = s.pick(STATUSES);
                let set = s.pick(HEADER_SETS);
                Event::UpstreamHead {
                    attempt,
                    status,
                    headers: headers(set),
                }
            }
            6..=9 => {
                let data = if s.byte() % 4 == 0 {
                    Bytes::copy_from_slice(s.bytes(64))
                } else {
                    let pieces = if self.policy.max_continuations.is_some() && s.byte() % 2 == 0 {
                        RECOVERY_PIECES
                    } else {
                        UPSTREAM_BODIES
                    };
                    let piece = s.pick(pieces).as_bytes();
                    let cut = s.below(piece.len() + 1);
                    Bytes::copy_from_slice(if s.byte() % 2 == 0 {
                        piece
                    } else {
                        &piece[..cut]
                    })
                };
                Event::UpstreamData { attempt, data }
            }
            10 | 11 => Event::UpstreamEnd { attempt },
            12 | 13 => Event::UpstreamFailed {
                attempt,
                error: s.pick(ERRORS)(),
            },
            14 => {
                if s.byte() % 4 == 0 {
                    Event::ClientGone
                } else {
                    Event::Timer
                }
            }
            _ => {
                if s.byte() % 4 == 0 {
                    Event::Shutdown
                } else {
                    self.now += Duration::from_millis(u64::from(s.byte()));
                    Event::Timer
                }
            }
        }
    }

    fn handle(&mut self, event: Event) {
        let label = format!("{event:?}");
        let timer = event == Event::Timer;
        self.m.handle(self.now, event);
        self.cancelled_in_drain = false;
        self.drain(&label, timer);
        self.check_timer(timer);
        self.note_timer();
    }

    /// Follows the machine's timer: a new value starts a possible wait at `now`; every
    /// event widens what that wait may be by the blocks in force after it.
    fn note_timer(&mut self) {
        let t = self.m.poll_timeout();
        let allowed = self.now + self.longest_allowed_wait();
        if t != self.timer {
            self.timer = t;
            self.timer_set_at = self.now;
            self.wait_allowed_until = allowed;
        } else {
            self.wait_allowed_until = self.wait_allowed_until.max(allowed);
        }
    }

    /// The longest a wait begun now may last: the backoff's `max`, the longest pushback
    /// or failure block in force on any model, and with a failure circuit the recheck of
    /// a half-open one.
    fn longest_allowed_wait(&self) -> Duration {
        let mut most = self.policy.backoff.map_or(Duration::ZERO, |b| b.most);
        if self.policy.has_failure_circuit {
            most = most.max(PROBE_RECHECK);
        }
        let blocks = self.gw.blocks().lock();
        for model in MODELS {
            for until in [
                blocks.pushback_until(self.now, model),
                blocks.failure_until(self.now, model),
            ]
            .into_iter()
            .flatten()
            {
                most = most.max(until.saturating_duration_since(self.now));
            }
        }
        most
    }

    fn drain(&mut self, cause: &str, on_timer: bool) {
        while let Some(action) = self.m.poll_action() {
            let at = self.now.duration_since(epoch()).as_millis();
            self.log
                .push(format!("{at} {cause} -> {}", describe(&action)));
            assert!(!self.finished, "an action after Finish: {action:?}");
            if self.streaming {
                let recovering = self.policy.max_continuations.is_some()
                    && matches!(action, Action::Send { .. } | Action::Cancel { .. });
                assert!(
                    recovering || matches!(action, Action::Forward(_) | Action::Finish(_)),
                    "{action:?} after StartStream"
                );
            }
            match action {
                Action::Send { attempt, model, .. } => {
                    if self.sent.is_empty() {
                        self.first_sent_at = self.now;
                    }
                    let woken = on_timer && !self.cancelled_in_drain;
                    self.on_send(attempt, &model, woken);
                }
                Action::Cancel { attempt } => {
                    assert!(
                        self.sent.contains(&attempt),
                        "Cancel of {attempt}, never sent"
                    );
                    self.cancelled_in_drain = true;
                }
                Action::Respond(_) => {
                    assert!(!self.responded, "a second response");
                    self.responded = true;
                }
                Action::StartStream { .. } => {
                    assert!(!self.responded, "a stream after a response");
                    self.responded = true;
                    self.streaming = true;
                }
                Action::Forward(bytes) => {
                    assert!(self.streaming, "Forward before StartStream");
                    self.client.extend_from_slice(&bytes);
                }
                Action::Finish(summary) => {
                    self.finished = true;
                    if self.streaming {
                        self.check_client_bytes(summary.outcome);
                    }
                }
            }
        }
        assert_eq!(
            self.m.is_finished(),
            self.finished,
            "is_finished disagrees with Finish"
        );
    }

    /// Checks a `Send`: `woken` when it came of a wake-up with nothing cancelled first,
    /// which is the end of a wait before a retry.
    fn on_send(&mut self, attempt: AttemptId, model: &str, woken: bool) {
        if self.streaming {
            self.continuations += 1;
            let max = self.policy.max_continuations.unwrap_or(0);
            assert!(
                self.continuations <= max,
                "{} continuations, `max_continuations` is {max}",
                self.continuations
            );
        } else {
            self.sends += 1;
            assert!(
                self.sends <= 1 + self.policy.granted,
                "{} attempts, the policy grants {} retries",
                self.sends,
                self.policy.granted
            );
            if woken && self.sends > 1 {
                self.check_wait(model);
            }
        }
        if !self.sent.is_empty() {
            self.check_budget();
        }
        self.sent_model = Some(model.to_owned());
        assert!(
            self.now < self.deadline,
            "a Send at or past the deadline; the run so far:\n{}\n{:?}",
            self.log.join("\n"),
            self.m
        );
        assert!(
            self.sent.last().is_none_or(|last| *last < attempt),
            "attempt ids not increasing"
        );
        self.sent.push(attempt);
        let blocked = self.gw.blocks().lock().pushback_until(self.now, model);
        assert!(
            blocked.is_none(),
            "a Send to {model}, blocked until {:?} from now",
            blocked.map(|b| b.saturating_duration_since(self.now))
        );
    }

    /// A retry sent when its wait ended: the wait, from when the machine's timer took the
    /// value that woke it, is within the policy's bounds.
    fn check_wait(&self, model: &str) {
        let Some(fired) = self.timer else {
            panic!("a retry sent on a wake-up with no timer set");
        };
        assert!(fired <= self.now, "a retry sent before its wait ended");
        let wait = fired.saturating_duration_since(self.timer_set_at);
        assert!(
            fired <= self.wait_allowed_until,
            "a wait of {wait:?} before a retry to {model}, beyond the backoff's max and every block; the run so far:\n{}",
            self.log.join("\n")
        );
        let Some(backoff) = self.policy.backoff else {
            return;
        };
        // Waits for a half-open circuit are rechecks, not backoffs.
        if self.policy.has_failure_circuit {
            return;
        }
        let applies = !backoff.same_model_only || self.sent_model.as_deref() == Some(model);
        assert!(
            !applies || wait >= backoff.least,
            "a wait of {wait:?} before a retry to {model}, shorter than the least backoff {:?}; the run so far:\n{}",
            backoff.least,
            self.log.join("\n")
        );
    }

    /// A retry just made: with the primary's own budget, the retries in the 10 s window
    /// ending now are within what the first attempts in it admit (this run's request is
    /// the only one its fresh gateway saw).
    fn check_budget(&mut self) {
        self.retries_at.push(self.now);
        let Some(budget) = self.policy.budget else {
            return;
        };
        let window = Duration::from_secs(10);
        let within = |t: Instant| self.now.saturating_duration_since(t) < window;
        let in_window = self.retries_at.iter().filter(|&&t| within(t)).count() as u64;
        let first_attempts = u64::from(within(self.first_sent_at));
        let admitted = budget.admits(first_attempts);
        assert!(
            in_window <= admitted,
            "{in_window} retries within 10 s, the budget admits {admitted}"
        );
    }

    /// The stream is over: what the client got after its head is one well-formed stream of
    /// its API, complete when the request succeeded and ended unless the client left.
    fn check_client_bytes(&self, outcome: Outcome) {
        let end = check_client_stream(self.api, &self.client);
        match outcome {
            Outcome::Success => assert_eq!(
                end,
                StreamEnd::Complete,
                "a successful stream without its end"
            ),
            Outcome::Cancelled => {}
            Outcome::Failed | Outcome::StreamAborted => assert_ne!(
                end,
                StreamEnd::Open,
                "a failed stream ended without its end or an error"
            ),
        }
    }

    /// After a timer at or past the deadline the request is over; an unfinished machine
    /// always has a timer, and never one past the deadline.
    fn check_timer(&self, after_timer: bool) {
        if self.finished {
            return;
        }
        let t = self.m.poll_timeout();
        assert!(
            t.is_some(),
            "an unfinished machine without a timer waits forever"
        );
        if let Some(t) = t {
            assert!(t <= self.deadline, "a timer past the deadline");
        }
        assert!(
            !after_timer || self.now < self.deadline,
            "still running after a timer at or past the deadline"
        );
    }

    /// Only time passes: the machine must finish by its deadline.
    fn run_out(&mut self) {
        for _ in 0..10_000 {
            if self.finished {
                break;
            }
            let Some(t) = self.m.poll_timeout() else {
                panic!("an unfinished machine without a timer");
            };
            self.now = self.now.max(t);
            self.handle(Event::Timer);
        }
        assert!(self.finished, "the machine did not finish with time alone");
        // Nothing after Finish, whatever arrives.
        for ev in [Event::Timer, Event::ClientGone, Event::Shutdown] {
            self.m.handle(self.now, ev);
            assert!(self.m.poll_action().is_none(), "an action after Finish");
        }
    }
}

fn headers(set: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in set {
        map.append(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    map
}

/// An action as deterministic text (no clock readings inside).
fn describe(action: &Action) -> String {
    match action {
        Action::Send {
            attempt,
            model,
            request,
            ..
        } => format!("send {attempt} {model} {}", request.body.len()),
        Action::Cancel { attempt } => format!("cancel {attempt}"),
        Action::Respond(r) => format!("respond {} {:?}", r.status, r.body),
        Action::StartStream { status, .. } => format!("stream {status}"),
        Action::Forward(b) => format!("forward {b:?}"),
        Action::Finish(s) => format!("finish {s:?}"),
    }
}
