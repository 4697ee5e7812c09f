//! Property tests of the RetryMachine: random configs and random scripted upstreams
//! run through the simulation, and random event sequences fed to a machine directly.
//! Every trace must keep the machine's promises (docs/architecture.md, "The drive/drain
//! contract"): one `Finish`, last; a bounded number of attempts; nothing but relaying after
//! commit; never past the deadline; no `Send` into a pushback block; determinism.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use common::{chat_body, chunk, full_stream};
use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use switchback_core::config::load_str;
use switchback_core::gateway::{ClientRequest, Gateway, Reply as GwReply, RequestContext};
use switchback_core::machine::{Action, AttemptId, Event, Outcome, TransportError};
use switchback_core::sim::{Ending, FakeReply, SimResponse, Simulation};

const POOL: [&str; 5] = [
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "anthropic/claude",
    "mistral/large",
    "groq/llama",
];
const STRATEGIES: [&str; 3] = ["same_model", "same_provider", "different_provider"];
const APPLY_TO: [&str; 3] = ["same_model", "same_provider", "global"];
const CODE_SETS: [&str; 5] = ["[429]", "[503]", "[400]", "[\"500-504\"]", "[429, 503]"];

#[derive(Debug, Clone)]
struct Rule {
    strategy: usize,
    max: u32,
    then: Option<(usize, u32)>,
}

impl Rule {
    fn grants(&self) -> u32 {
        self.max + self.then.map_or(0, |(_, m)| m)
    }

    fn yaml(&self) -> String {
        let mut out = format!(
            "strategy: {}\nmax_attempts: {}\n",
            STRATEGIES[self.strategy], self.max
        );
        if let Some((s, m)) = self.then {
            out.push_str(&format!(
                "then:\n  strategy: {}\n  max_attempts: {m}\n",
                STRATEGIES[s]
            ));
        }
        out
    }
}

#[derive(Debug, Clone)]
struct Backoff {
    apply_to: usize,
    base: u64,
    extra: u64,
    jitter: bool,
}

#[derive(Debug, Clone)]
struct Policy {
    default: Rule,
    entries: Vec<(usize, Rule)>,
    on_timeout: Option<Rule>,
    backoff: Option<Backoff>,
    fallback: Vec<usize>,
    max_retry_after: u64,
    budget_ms: Option<u64>,
}

impl Policy {
    /// The most retries this policy could ever grant one request.
    fn grants(&self) -> u32 {
        self.default.grants()
            + self.entries.iter().map(|(_, r)| r.grants()).sum::<u32>()
            + self.on_timeout.as_ref().map_or(0, Rule::grants)
    }
}

#[derive(Debug, Clone)]
enum Reply {
    Ok {
        delay: u64,
    },
    TooMany {
        retry_after: Option<u64>,
        delay: u64,
    },
    Unavailable {
        delay: u64,
    },
    BadRequest {
        delay: u64,
    },
    Hang,
    Refuse,
    StreamOk {
        gap: u64,
    },
    StreamCut {
        at: usize,
        gap: u64,
    },
    StreamError {
        gap: u64,
    },
}

#[derive(Debug, Clone)]
struct Request {
    stream: bool,
    advance_ms: u64,
    disconnect_ms: Option<u64>,
}

#[derive(Debug, Clone)]
struct Scenario {
    models: Vec<&'static str>,
    policy: Policy,
    timeout_s: u64,
    first_token_s: Vec<u64>,
    idle_s: Vec<u64>,
    scripts: Vec<Vec<Reply>>,
    requests: Vec<Request>,
}

fn rule(min_max: u32) -> impl Strategy<Value = Rule> {
    (
        0..3usize,
        min_max..=3u32,
        proptest::option::of((0..3usize, 1..=2u32)),
    )
        .prop_map(|(strategy, max, then)| Rule {
            strategy,
            max,
            then,
        })
}

fn policy(n_models: usize) -> impl Strategy<Value = Policy> {
    (
        rule(0),
        proptest::collection::vec((0..CODE_SETS.len(), rule(0)), 0..=2),
        proptest::option::of(rule(1)),
        proptest::option::of(
            (0..3usize, 1..2000u64, 1..10_000u64, any::<bool>()).prop_map(
                |(apply_to, base, extra, jitter)| Backoff {
                    apply_to,
                    base,
                    extra,
                    jitter,
                },
            ),
        ),
        proptest::collection::vec(1..n_models, 0..n_models),
        1..=300u64,
        proptest::option::weighted(0.25, 1..60_000u64),
    )
        .prop_map(
            |(default, entries, on_timeout, backoff, fallback, max_retry_after, budget_ms)| {
                let mut fb = Vec::new();
                for f in fallback {
                    if !fb.contains(&f) {
                        fb.push(f);
                    }
                }
                Policy {
                    default,
                    entries,
                    on_timeout,
                    backoff,
                    fallback: fb,
                    max_retry_after,
                    budget_ms,
                }
            },
        )
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        3 => (0..5000u64).prop_map(|delay| Reply::Ok { delay }),
        4 => (proptest::option::weighted(0.75, 1..=120u64), 0..5000u64)
            .prop_map(|(retry_after, delay)| Reply::TooMany { retry_after, delay }),
        2 => (0..5000u64).prop_map(|delay| Reply::Unavailable { delay }),
        1 => (0..5000u64).prop_map(|delay| Reply::BadRequest { delay }),
        1 => Just(Reply::Hang),
        1 => Just(Reply::Refuse),
        2 => (0..2000u64).prop_map(|gap| Reply::StreamOk { gap }),
        2 => (0..5usize, 0..2000u64).prop_map(|(at, gap)| Reply::StreamCut { at, gap }),
        1 => (0..2000u64).prop_map(|gap| Reply::StreamError { gap }),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    proptest::sample::subsequence(POOL.to_vec(), 2..=4)
        .prop_shuffle()
        .prop_flat_map(|models| {
            let n = models.len();
            (
                Just(models),
                policy(n),
                1..=120u64,
                proptest::collection::vec(1..=40u64, n),
                proptest::collection::vec(1..=30u64, n),
                proptest::collection::vec(proptest::collection::vec(reply(), 1..=4), n),
                proptest::collection::vec(
                    (
                        any::<bool>(),
                        0..60_000u64,
                        proptest::option::weighted(0.2, 0..60_000u64),
                    )
                        .prop_map(|(stream, advance_ms, disconnect_ms)| {
                            Request {
                                stream,
                                advance_ms,
                                disconnect_ms,
                            }
                        }),
                    1..=3,
                ),
            )
        })
        .prop_map(
            |(models, policy, timeout_s, first_token_s, idle_s, scripts, requests)| Scenario {
                models,
                policy,
                timeout_s,
                first_token_s,
                idle_s,
                scripts,
                requests,
            },
        )
}

impl Scenario {
    fn yaml(&self) -> String {
        let p = &self.policy;
        let mut rp = format!(
            "default_strategy: {}\ndefault_max_attempts: {}\n",
            STRATEGIES[p.default.strategy], p.default.max
        );
        if let Some((s, m)) = p.default.then {
            rp.push_str(&format!(
                "default_then:\n  strategy: {}\n  max_attempts: {m}\n",
                STRATEGIES[s]
            ));
        }
        if !p.fallback.is_empty() {
            let fb: Vec<&str> = p.fallback.iter().map(|i| self.models[*i]).collect();
            rp.push_str(&format!("fallback_models: [{}]\n", fb.join(", ")));
        }
        if !p.entries.is_empty() {
            rp.push_str("on_status_codes:\n");
            for (codes, r) in &p.entries {
                rp.push_str(&format!("  - codes: {}\n", CODE_SETS[*codes]));
                rp.push_str(&common::indent(&r.yaml(), 4));
            }
        }
        if let Some(r) = &p.on_timeout {
            rp.push_str("on_timeout:\n");
            rp.push_str(&common::indent(&r.yaml(), 2));
        }
        if let Some(b) = &p.backoff {
            rp.push_str(&format!(
                "backoff:\n  apply_to: {}\n  base_ms: {}\n  max_ms: {}\n  jitter: {}\n",
                APPLY_TO[b.apply_to],
                b.base,
                b.base + b.extra,
                b.jitter
            ));
        }
        rp.push_str(&format!(
            "retry_after_handling:\n  scope: model\n  apply_to: global\n  max_retry_after_seconds: {}\n",
            p.max_retry_after
        ));
        if let Some(ms) = p.budget_ms {
            rp.push_str(&format!("max_retry_duration_ms: {ms}\n"));
        }
        let providers: Vec<String> = self
            .models
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut extra = format!(
                    "timeouts:\n  first_token: \"{}s\"\n  idle: \"{}s\"\n",
                    self.first_token_s[i], self.idle_s[i]
                );
                if i == 0 {
                    extra.push_str(&common::retry_policy(&rp));
                }
                common::provider(m, i + 1, &extra)
            })
            .collect();
        common::config(Some(&format!("{}s", self.timeout_s)), &providers)
    }

    fn simulation(&self, epoch: Instant) -> Simulation {
        let loaded = load_str(&self.yaml(), &|_| None)
            .unwrap_or_else(|e| panic!("generated config: {e}\n{}", self.yaml()));
        let mut s = Simulation::new(loaded.config, epoch);
        for (m, script) in self.models.iter().zip(&self.scripts) {
            s.script(m, script.iter().map(fake).collect());
        }
        s
    }

    /// Runs every request in order; the traces, or the first simulation error.
    fn run(&self, epoch: Instant) -> Result<Vec<SimResponse>, String> {
        let mut s = self.simulation(epoch);
        let mut out = Vec::new();
        for r in &self.requests {
            s.advance(Duration::from_millis(r.advance_ms));
            let resp = s
                .request(
                    Method::POST,
                    "/v1/chat/completions",
                    HeaderMap::new(),
                    &chat_body(self.models[0], r.stream),
                    r.disconnect_ms.map(Duration::from_millis),
                )
                .map_err(|e| format!("{e:?}"))?;
            out.push(resp);
        }
        Ok(out)
    }
}

fn fake(r: &Reply) -> FakeReply {
    let ms = Duration::from_millis;
    let err = |status: u16| common::error_body(status, "scripted failure");
    let events = |evs: &[String], gap: u64, ending: Ending| {
        let refs: Vec<&str> = evs.iter().map(String::as_str).collect();
        FakeReply::sse(&refs, ms(gap), ending)
    };
    match r {
        Reply::Ok { delay } => FakeReply::json(200, common::SUCCESS).delayed(ms(*delay)),
        Reply::TooMany { retry_after, delay } => {
            let ra = retry_after.map(|s| s.to_string());
            let headers: Vec<(&str, &str)> =
                ra.iter().map(|v| ("retry-after", v.as_str())).collect();
            FakeReply::json_with(429, &headers, &err(429)).delayed(ms(*delay))
        }
        Reply::Unavailable { delay } => FakeReply::json(503, &err(503)).delayed(ms(*delay)),
        Reply::BadRequest { delay } => FakeReply::json(400, &err(400)).delayed(ms(*delay)),
        Reply::Hang => FakeReply::Hang,
        Reply::Refuse => FakeReply::Refuse,
        Reply::StreamOk { gap } => events(&full_stream("ok"), *gap, Ending::End),
        Reply::StreamCut { at, gap } => events(&full_stream("cut")[..*at], *gap, Ending::Cut),
        Reply::StreamError { gap } => events(
            &[
                chunk("e", r#"{"role":"assistant","content":""}"#, None),
                "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n"
                    .to_owned(),
            ],
            *gap,
            Ending::End,
        ),
    }
}

/// The per-trace promises. `deadline` is the request's start plus the listener timeout.
fn check_trace(trace: &[(Instant, Action)], deadline: Instant, max_sends: usize) {
    let finishes: Vec<usize> = trace
        .iter()
        .enumerate()
        .filter(|(_, (_, a))| matches!(a, Action::Finish(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(finishes.len(), 1, "exactly one Finish: {trace:#?}");
    assert_eq!(finishes[0], trace.len() - 1, "Finish is last");
    let Action::Finish(summary) = &trace[trace.len() - 1].1 else {
        unreachable!()
    };
    let sends = common::sends(trace);
    assert!(
        sends <= max_sends,
        "{sends} attempts, at most {max_sends} allowed"
    );
    let answers = trace
        .iter()
        .filter(|(_, a)| matches!(a, Action::Respond(_) | Action::StartStream { .. }))
        .count();
    if summary.outcome == Outcome::Cancelled {
        assert!(answers <= 1);
    } else {
        assert_eq!(answers, 1, "one answer: {trace:#?}");
    }
    if let Some(i) = trace
        .iter()
        .position(|(_, a)| matches!(a, Action::StartStream { .. }))
    {
        for (_, a) in &trace[i + 1..] {
            assert!(
                matches!(
                    a,
                    Action::Forward(_) | Action::Finish(_) | Action::Cancel { .. }
                ),
                "after commit: {a:?}"
            );
        }
    }
    for (at, a) in trace {
        if matches!(a, Action::Send { .. }) {
            assert!(*at <= deadline, "Send past the deadline");
        }
    }
    assert!(
        trace[trace.len() - 1].0 <= deadline,
        "Finish past the deadline"
    );
}

/// No `Send` to a model while a Retry-After block recorded earlier (scope model, apply_to
/// global) is still in force.
fn check_pushback_blocks(sc: &Scenario, runs: &[SimResponse]) {
    let cap = Duration::from_secs(sc.policy.max_retry_after);
    let mut calls: BTreeMap<&str, usize> = BTreeMap::new();
    let mut blocked: BTreeMap<String, Instant> = BTreeMap::new();
    for r in runs {
        let cancelled = r
            .summary
            .as_ref()
            .is_some_and(|s| s.outcome == Outcome::Cancelled);
        for (i, (at, a)) in r.trace.iter().enumerate() {
            let Action::Send { attempt, model, .. } = a else {
                continue;
            };
            if let Some(until) = blocked.get(model) {
                assert!(
                    at >= until,
                    "Send to {model} at {:?} inside its block (ends {:?})",
                    *at - r.started,
                    *until - r.started
                );
            }
            let idx = sc.models.iter().position(|m| m == model).unwrap();
            let n = calls.entry(sc.models[idx]).or_default();
            let script = &sc.scripts[idx];
            let reply = &script[(*n).min(script.len() - 1)];
            *n += 1;
            let Reply::TooMany {
                retry_after: Some(ra),
                delay,
            } = reply
            else {
                continue;
            };
            let head = *at + Duration::from_millis(*delay);
            // When this attempt ended: the next Send, its Cancel, or the Finish.
            let end = r.trace[i + 1..].iter().find(|(_, b)| match b {
                Action::Send { .. } | Action::Finish(_) => true,
                Action::Cancel { attempt: c } => c == attempt,
                _ => false,
            });
            let Some((end_at, end_action)) = end else {
                continue;
            };
            let seen = head < *end_at
                || (head == *end_at
                    && !(cancelled
                        && matches!(end_action, Action::Finish(_) | Action::Cancel { .. })));
            if seen {
                let until = head + Duration::from_secs(*ra).min(cap);
                let e = blocked.entry(model.clone()).or_insert(until);
                *e = (*e).max(until);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn simulated_requests_keep_the_machine_promises(sc in scenario()) {
        let epoch = common::epoch();
        let runs = match sc.run(epoch) {
            Ok(r) => r,
            Err(e) => panic!("simulation failed: {e}\n{}", sc.yaml()),
        };
        let timeout = Duration::from_secs(sc.timeout_s);
        let max_sends = 1 + sc.policy.grants() as usize;
        for r in &runs {
            check_trace(&r.trace, r.started + timeout, max_sends);
        }
        check_pushback_blocks(&sc, &runs);
    }

    #[test]
    fn same_seed_config_and_scripts_give_the_same_traces(sc in scenario()) {
        let epoch = common::epoch();
        let a = sc.run(epoch);
        let b = sc.run(epoch);
        let show = |r: &Result<Vec<SimResponse>, String>| match r {
            Ok(v) => format!("{:?}", v.iter().map(|r| &r.trace).collect::<Vec<_>>()),
            Err(e) => e.clone(),
        };
        prop_assert_eq!(show(&a), show(&b));
    }
}

// ------------------------------------------------------------- raw event sequences

#[derive(Debug, Clone)]
enum RawEvent {
    Start,
    Head {
        attempt: u32,
        status: u16,
        retry_after: Option<u32>,
        sse: bool,
    },
    Data {
        attempt: u32,
        kind: u8,
        junk: Vec<u8>,
    },
    End {
        attempt: u32,
    },
    Failed {
        attempt: u32,
        kind: u8,
    },
    Timer,
    ClientGone,
}

fn raw_event() -> impl Strategy<Value = RawEvent> {
    let attempt = 0..5u32;
    prop_oneof![
        1 => Just(RawEvent::Start),
        3 => (
            attempt.clone(),
            prop::sample::select(vec![200u16, 201, 400, 404, 408, 429, 500, 503, 529, 999]),
            proptest::option::of(0..400u32),
            any::<bool>(),
        )
            .prop_map(|(attempt, status, retry_after, sse)| RawEvent::Head {
                attempt,
                status,
                retry_after,
                sse
            }),
        4 => (attempt.clone(), 0..7u8, proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(attempt, kind, junk)| RawEvent::Data { attempt, kind, junk }),
        2 => attempt.clone().prop_map(|attempt| RawEvent::End { attempt }),
        1 => (attempt, 0..5u8).prop_map(|(attempt, kind)| RawEvent::Failed { attempt, kind }),
        3 => Just(RawEvent::Timer),
        1 => Just(RawEvent::ClientGone),
    ]
}

fn to_event(e: &RawEvent) -> Event {
    match e.clone() {
        RawEvent::Start => Event::Start,
        RawEvent::Head {
            attempt,
            status,
            retry_after,
            sse,
        } => {
            let mut headers = HeaderMap::new();
            let ct = if sse {
                "text/event-stream"
            } else {
                "application/json"
            };
            headers.insert("content-type", HeaderValue::from_static(ct));
            if let Some(ra) = retry_after {
                headers.insert("retry-after", HeaderValue::from(ra));
            }
            Event::UpstreamHead {
                attempt: AttemptId(attempt),
                status,
                headers,
            }
        }
        RawEvent::Data {
            attempt,
            kind,
            junk,
        } => {
            let data = match kind {
                0 => Bytes::from_static(common::SUCCESS.as_bytes()),
                1 => Bytes::from(chunk("x", r#"{"content":"hi"}"#, None)),
                2 => Bytes::from(chunk("x", r#"{"role":"assistant"}"#, None)),
                3 => Bytes::from(chunk("x", "{}", Some("stop"))),
                4 => Bytes::from_static(b"data: [DONE]\n\n"),
                5 => Bytes::from_static(b"data: {\"error\":{\"message\":\"x\"}}\n\n"),
                _ => Bytes::from(junk),
            };
            Event::UpstreamData {
                attempt: AttemptId(attempt),
                data,
            }
        }
        RawEvent::End { attempt } => Event::UpstreamEnd {
            attempt: AttemptId(attempt),
        },
        RawEvent::Failed { attempt, kind } => Event::UpstreamFailed {
            attempt: AttemptId(attempt),
            error: match kind {
                0 => TransportError::Connect("refused".into()),
                1 => TransportError::ConnectTimeout,
                2 => TransportError::Tls("bad cert".into()),
                3 => TransportError::Io("reset".into()),
                _ => TransportError::Protocol("garbage".into()),
            },
        },
        RawEvent::Timer => Event::Timer,
        RawEvent::ClientGone => Event::ClientGone,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_event_sequences_never_panic_and_finish_once(
        sc in scenario(),
        stream in any::<bool>(),
        seed in any::<u64>(),
        events in proptest::collection::vec((0..10_000u64, raw_event()), 0..60),
    ) {
        let loaded = load_str(&sc.yaml(), &|_| None).unwrap();
        let gw = Arc::new(Gateway::new(loaded.config).unwrap());
        let epoch = common::epoch();
        let ctx = RequestContext {
            now: epoch,
            wall: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            timeout: Duration::from_secs(sc.timeout_s),
            random: seed,
        };
        let req = ClientRequest {
            method: Method::POST,
            path: "/v1/chat/completions".into(),
            headers: HeaderMap::new(),
            body: Bytes::from(chat_body(sc.models[0], stream)),
        };
        let GwReply::Chat(mut m) = gw.handle(req, ctx) else {
            panic!("a chat request gives a machine");
        };
        let mut now = epoch;
        let mut actions = Vec::new();
        m.handle(now, Event::Start);
        for (dt, raw) in &events {
            while let Some(a) = m.poll_action() {
                actions.push(a);
            }
            now += Duration::from_millis(*dt);
            m.handle(now, to_event(raw));
            if matches!(raw, RawEvent::ClientGone) {
                prop_assert!(m.is_finished(), "ClientGone finishes the request");
            }
        }
        while let Some(a) = m.poll_action() {
            actions.push(a);
        }
        let finishes: Vec<usize> = actions
            .iter()
            .enumerate()
            .filter(|(_, a)| matches!(a, Action::Finish(_)))
            .map(|(i, _)| i)
            .collect();
        prop_assert!(finishes.len() <= 1, "at most one Finish");
        prop_assert_eq!(finishes.len() == 1, m.is_finished());
        if let Some(&i) = finishes.first() {
            prop_assert_eq!(i, actions.len() - 1, "nothing after Finish");
        }
        let answers = actions
            .iter()
            .filter(|a| matches!(a, Action::Respond(_) | Action::StartStream { .. }))
            .count();
        prop_assert!(answers <= 1);
        if let Some(i) = actions.iter().position(|a| matches!(a, Action::StartStream { .. })) {
            for a in &actions[i + 1..] {
                prop_assert!(
                    matches!(a, Action::Forward(_) | Action::Finish(_) | Action::Cancel { .. }),
                    "after commit: {:?}", a
                );
            }
        }
        // Once finished, nothing more comes out; otherwise the client leaving finishes it.
        let was_finished = m.is_finished();
        m.handle(now + Duration::from_secs(1), Event::Timer);
        m.handle(now + Duration::from_secs(1), Event::ClientGone);
        prop_assert!(m.is_finished());
        let late: Vec<Action> = std::iter::from_fn(|| m.poll_action()).collect();
        if was_finished {
            prop_assert!(late.is_empty(), "actions after Finish: {:?}", late);
        } else {
            prop_assert!(matches!(late.last(), Some(Action::Finish(_))));
        }
    }
}
