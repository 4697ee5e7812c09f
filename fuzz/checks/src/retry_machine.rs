//! `retry_machine`: the RetryMachine over arbitrary event sequences on a virtual clock,
//! checked against the invariants of the design guide:
//!
//! - attempts ≤ 1 + the retries the policy grants (the sum of its rules' `max_attempts`);
//! - no `Send` to a target under a Retry-After block (a wait for the block's expiry ends
//!   after it, so the `Send` then finds the block gone);
//! - nothing but `Forward`/`Finish` after `StartStream`, and at most one response head;
//! - exactly one `Finish`, nothing after it, and `is_finished` agrees;
//! - never past the deadline: the machine's timer is never later than the listener
//!   deadline, no `Send` at or after it, and a timer at the deadline finishes the request;
//! - the same seed and the same events give the same actions.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use switchback_core::config::{load_str, Config};
use switchback_core::gateway::{ClientRequest, Gateway, Reply, RequestContext};
use switchback_core::machine::{Action, AttemptId, Event, RetryMachine, TransportError};

use crate::script::{Script, HEADER_SETS, STATUSES, UPSTREAM_BODIES};

/// A policy with backoff, Retry-After handling, a duration budget and a fallback list.
const POLICY_A: &str = "
listeners:
  - type: model
    name: l
    port: 12000
    timeout: 10s
model_providers:
  - model: openai/gpt-4o
    base_url: http://127.0.0.1:9901
    access_key: key-a
    default: true
    timeouts: {first_token: 2s, idle: 1s}
    retry_policy:
      fallback_models: [anthropic/claude-3-5-sonnet]
      default_strategy: different_provider
      default_max_attempts: 2
      on_status_codes:
        - codes: [429]
          strategy: same_model
          max_attempts: 2
      on_timeout: {strategy: different_provider, max_attempts: 1}
      backoff: {apply_to: same_model, base_ms: 100, max_ms: 400, jitter: true}
      retry_after_handling: {scope: model, apply_to: global, max_retry_after_seconds: 30}
      max_retry_duration_ms: 8000
  - model: openai/gpt-4o-mini
    base_url: http://127.0.0.1:9902
    access_key: key-b
  - model: mistral/mistral-large
    base_url: http://127.0.0.1:9903
    access_key: key-c
  - model: anthropic/claude-3-5-sonnet
    base_url: http://127.0.0.1:9904
    access_key: key-d
";
/// Retries granted by `POLICY_A`: 429 (2) + the defaults (2) + timeouts (1).
const GRANTED_A: u32 = 5;

/// Escalation (`then`), error-code matching and provider-wide blocks.
const POLICY_B: &str = "
listeners:
  - type: model
    name: l
    port: 12000
    timeout: 6s
model_providers:
  - model: openai/gpt-4o
    base_url: http://127.0.0.1:9901
    access_key: key-a
    default: true
    timeouts: {first_token: 1s, idle: 500ms}
    retry_policy:
      default_strategy: same_provider
      default_max_attempts: 1
      on_status_codes:
        - codes: [429]
          strategy: same_model
          max_attempts: 1
          max_wait: 1s
          then: {strategy: different_provider, max_attempts: 2}
        - codes: [400]
          error_codes: [context_length_exceeded]
          strategy: different_provider
          max_attempts: 1
      on_timeout: {strategy: same_model, max_attempts: 1}
      retry_after_handling: {scope: provider, apply_to: global, max_retry_after_seconds: 5}
  - model: openai/gpt-4o-mini
    base_url: http://127.0.0.1:9902
    access_key: key-b
  - model: mistral/mistral-large
    base_url: http://127.0.0.1:9903
    access_key: key-c
  - model: anthropic/claude-3-5-sonnet
    base_url: http://127.0.0.1:9904
    access_key: key-d
";
/// Retries granted by `POLICY_B`: 429 (1, then 2) + 400 (1) + the defaults (1) + timeouts (1).
const GRANTED_B: u32 = 6;

const BODIES: &[&str] = &[
    r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
    r#"{"model":"openai/gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    r#"{"model":"openai/gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#,
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

fn configs() -> &'static [(Config, u32); 2] {
    static CONFIGS: OnceLock<[(Config, u32); 2]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let load = |yaml: &str| load_str(yaml, &|_| None).expect("fuzz policy loads").config;
        [(load(POLICY_A), GRANTED_A), (load(POLICY_B), GRANTED_B)]
    })
}

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
    let (config, granted) = &configs()[s.below(2)];
    let gw = Arc::new(Gateway::new(config.clone()).expect("fuzz gateway"));
    let body = s.pick(BODIES);
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
        path: "/v1/chat/completions".into(),
        headers: HeaderMap::new(),
        body: Bytes::from_static(body.as_bytes()),
    };
    let Reply::Chat(machine) = gw.handle(req, ctx) else {
        panic!("the fuzz request was not routed to the machine");
    };
    let mut d = Driver {
        m: *machine,
        gw,
        now: start,
        deadline: start + timeout,
        max_sends: 1 + granted,
        log: Vec::new(),
        sent: Vec::new(),
        sends: 0,
        streaming: false,
        responded: false,
        finished: false,
    };
    d.handle(Event::Start);
    let mut steps = 0;
    while !s.is_empty() && steps < 512 {
        steps += 1;
        let event = d.next_event(&mut s);
        d.handle(event);
    }
    d.run_out();
    d.log
}

struct Driver {
    m: RetryMachine,
    gw: Arc<Gateway>,
    now: Instant,
    deadline: Instant,
    max_sends: u32,
    log: Vec<String>,
    /// Attempts sent, in order.
    sent: Vec<AttemptId>,
    sends: u32,
    streaming: bool,
    responded: bool,
    finished: bool,
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
                    let piece = s.pick(UPSTREAM_BODIES).as_bytes();
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
        self.drain(&label);
        self.check_timer(timer);
    }

    fn drain(&mut self, cause: &str) {
        while let Some(action) = self.m.poll_action() {
            let at = self.now.duration_since(epoch()).as_millis();
            self.log
                .push(format!("{at} {cause} -> {}", describe(&action)));
            assert!(!self.finished, "an action after Finish: {action:?}");
            if self.streaming {
                assert!(
                    matches!(action, Action::Forward(_) | Action::Finish(_)),
                    "{action:?} after StartStream"
                );
            }
            match action {
                Action::Send { attempt, model, .. } => self.on_send(attempt, &model),
                Action::Cancel { attempt } => {
                    assert!(
                        self.sent.contains(&attempt),
                        "Cancel of {attempt}, never sent"
                    );
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
                Action::Forward(_) => assert!(self.streaming, "Forward before StartStream"),
                Action::Finish(_) => self.finished = true,
            }
        }
        assert_eq!(
            self.m.is_finished(),
            self.finished,
            "is_finished disagrees with Finish"
        );
    }

    fn on_send(&mut self, attempt: AttemptId, model: &str) {
        self.sends += 1;
        assert!(
            self.sends <= self.max_sends,
            "{} attempts, the policy grants {} retries",
            self.sends,
            self.max_sends - 1
        );
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
