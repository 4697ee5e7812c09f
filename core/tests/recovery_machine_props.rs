//! Property tests of stream recovery run by the retry machine (spec §12), in the
//! simulation: whatever the cut point and the way the stream fails, whichever candidates
//! accept, reject (400), cut again, answer nothing or hang, for every client API, the client
//! reads the relayed text followed by each continuation's new text in order (never a piece
//! twice, never the answer begun again), one well-formed stream with nothing after its end,
//! and the machine keeps its promises (one `Finish`, last; continuations within
//! `max_continuations` and the retry budget; nothing past the deadline). Random event
//! sequences fed to a machine with recovery on never panic and finish once.

mod common;
mod recovery_support;

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use recovery_support::{anthropic_upstream, chat_upstream, read};
use serde_json::{json, Value};
use switchback_core::apis::ClientApi;
use switchback_core::config::load_str;
use switchback_core::gateway::{ClientRequest, Gateway, Reply as GwReply, RequestContext};
use switchback_core::machine::{Action, AttemptId, Event, Outcome, TransportError};
use switchback_core::sim::{Ending, FakeReply, SimResponse, Simulation};

const GAP: Duration = Duration::from_millis(20);
/// The candidates in the order recovery asks them: the model that was streaming (the
/// primary), then the fallbacks.
const CANDIDATES: [&str; 3] = ["openai/gpt-4o", "anthropic/claude", "mistral/large"];

/// How the committed stream fails.
#[derive(Debug, Clone, Copy)]
enum Break {
    Cut,
    Stall,
    InBandError,
    EndWithoutFinish,
}

/// How a candidate answers its continuation request.
#[derive(Debug, Clone)]
enum Answer {
    Accept(Vec<String>),
    Reject400,
    CutAgain(Vec<String>),
    NoContent,
    Hang,
}

#[derive(Debug, Clone)]
struct Case {
    api: ClientApi,
    include_usage: bool,
    relayed: Vec<String>,
    how: Break,
    answers: [Answer; 3],
    max_continuations: u32,
    timeout_s: u64,
    budget_spent: bool,
}

fn api() -> impl Strategy<Value = ClientApi> {
    prop_oneof![
        Just(ClientApi::ChatCompletions),
        Just(ClientApi::Messages),
        Just(ClientApi::Responses),
    ]
}

/// Relayed text begins with a letter; continuation text with a digit, so that a
/// continuation can never look like the answer begun again.
fn relayed() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("[a-z][a-z ,.\n]{0,8}", 1..8)
}

fn new_text() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("[0-9][a-z ]{0,6}", 1..4)
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        3 => new_text().prop_map(Answer::Accept),
        2 => Just(Answer::Reject400),
        1 => new_text().prop_map(Answer::CutAgain),
        1 => Just(Answer::NoContent),
        1 => Just(Answer::Hang),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        api(),
        any::<bool>(),
        relayed(),
        prop_oneof![
            Just(Break::Cut),
            Just(Break::Stall),
            Just(Break::InBandError),
            Just(Break::EndWithoutFinish),
        ],
        [answer(), answer(), answer()],
        1..=3u32,
        prop::sample::select(vec![4u64, 9, 30, 300]),
        proptest::bool::weighted(0.1),
    )
        .prop_map(
            |(api, include_usage, relayed, how, answers, max, timeout_s, budget_spent)| Case {
                api,
                include_usage,
                relayed,
                how,
                answers,
                max_continuations: max,
                timeout_s,
                budget_spent,
            },
        )
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn events(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .split_inclusive("\n\n")
        .map(str::to_owned)
        .collect()
}

fn reply(events: Vec<String>, ending: Ending) -> FakeReply {
    FakeReply::sse(&refs(&events), GAP, ending)
}

impl Case {
    fn yaml(&self) -> String {
        let budget = if self.budget_spent {
            "retry_budget: {ratio: 0, min_per_second: 0}\n"
        } else {
            ""
        };
        format!(
            "version: v0.3.0
listeners:
  - type: model
    name: l
    port: 12000
    timeout: \"{}s\"
{budget}model_providers:
  - model: openai/gpt-4o
    base_url: http://127.0.0.1:1001
    access_key: sk-primary-secret
    default: true
    continuation: assistant_prefill
    timeouts: {{first_token: 5s, idle: 2s}}
    retry_policy:
      fallback_models: [anthropic/claude, mistral/large]
      stream_recovery: {{max_continuations: {}}}
  - model: anthropic/claude
    base_url: http://127.0.0.1:1002
    access_key: sk-ant-secret
    timeouts: {{first_token: 5s, idle: 2s}}
  - model: mistral/large
    base_url: http://127.0.0.1:1003
    access_key: mistral-secret
    continuation: mistral_prefix
    timeouts: {{first_token: 5s, idle: 2s}}
",
            self.timeout_s, self.max_continuations
        )
    }

    /// The primary's first answer: the relayed pieces, then the failure.
    fn first_stream(&self) -> FakeReply {
        let mut evs = events(&chat_upstream("chatcmpl-r", &refs(&self.relayed), None));
        let ending = match self.how {
            Break::Cut => Ending::Cut,
            Break::Stall => Ending::Stall,
            Break::EndWithoutFinish => Ending::End,
            Break::InBandError => {
                evs.push("data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\"}}\n\n".to_owned());
                Ending::End
            }
        };
        reply(evs, ending)
    }

    fn continuation_reply(model: &str, answer: &Answer) -> FakeReply {
        let stream = |pieces: &[String], finish: bool| {
            if model.starts_with("anthropic/") {
                events(&anthropic_upstream(
                    "msg_c",
                    &refs(pieces),
                    finish.then_some("end_turn"),
                ))
            } else {
                events(&chat_upstream(
                    "chatcmpl-c",
                    &refs(pieces),
                    finish.then_some("stop"),
                ))
            }
        };
        match answer {
            Answer::Accept(p) => reply(stream(p, true), Ending::End),
            Answer::CutAgain(p) => reply(stream(p, false), Ending::Cut),
            Answer::NoContent => reply(stream(&[], true), Ending::End),
            Answer::Reject400 => FakeReply::json(
                400,
                r#"{"error":{"message":"Prefilling assistant messages is not supported","type":"invalid_request_error"}}"#,
            ),
            Answer::Hang => FakeReply::Hang,
        }
    }

    fn simulation(&self, epoch: Instant) -> Simulation {
        let loaded = load_str(&self.yaml(), &|_| None).unwrap_or_else(|e| panic!("{e}"));
        let mut s = Simulation::new(loaded.config, epoch);
        s.script(
            CANDIDATES[0],
            vec![
                self.first_stream(),
                Case::continuation_reply(CANDIDATES[0], &self.answers[0]),
            ],
        );
        for (i, model) in CANDIDATES.iter().enumerate().skip(1) {
            s.script(
                model,
                vec![Case::continuation_reply(model, &self.answers[i])],
            );
        }
        s
    }

    fn request(&self) -> (&'static str, String) {
        match self.api {
            ClientApi::ChatCompletions => {
                let mut v = json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Go."}], "stream": true});
                if self.include_usage {
                    v["stream_options"] = json!({"include_usage": true});
                }
                ("/v1/chat/completions", v.to_string())
            }
            ClientApi::Messages => (
                "/v1/messages",
                json!({"model": "openai/gpt-4o", "max_tokens": 64, "messages": [{"role": "user", "content": "Go."}], "stream": true}).to_string(),
            ),
            _ => (
                "/v1/responses",
                json!({"model": "openai/gpt-4o", "input": "Go.", "stream": true}).to_string(),
            ),
        }
    }

    /// The text the client reads when no deadline intervenes, and whether it is complete.
    fn expected(&self) -> (String, bool, usize) {
        let mut text = self.relayed.concat();
        if self.budget_spent {
            return (text, false, 0);
        }
        let mut asked = 0;
        for a in &self.answers {
            if asked == self.max_continuations as usize {
                break;
            }
            asked += 1;
            match a {
                Answer::Accept(p) => {
                    text.push_str(&p.concat());
                    return (text, true, asked);
                }
                Answer::CutAgain(p) => text.push_str(&p.concat()),
                Answer::Reject400 | Answer::NoContent | Answer::Hang => {}
            }
        }
        (text, false, asked)
    }
}

/// The assistant text a continuation request carries.
fn prefill_of(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).expect("a JSON continuation");
    let last = v["messages"].as_array().and_then(|m| m.last()).cloned();
    let last = last.expect("a messages list");
    assert_eq!(last["role"], "assistant", "{v}");
    last["content"].as_str().expect("text content").to_owned()
}

fn check(c: &Case, r: &SimResponse) {
    let deadline = r.started + Duration::from_secs(c.timeout_s);
    let trace = &r.trace;
    let finishes = trace
        .iter()
        .filter(|(_, a)| matches!(a, Action::Finish(_)))
        .count();
    assert_eq!(finishes, 1, "one Finish");
    let Some((end_at, Action::Finish(summary))) = trace.last() else {
        panic!("Finish is last: {trace:#?}")
    };
    assert!(*end_at <= deadline, "Finish past the deadline");
    let head = trace
        .iter()
        .position(|(_, a)| matches!(a, Action::StartStream { .. }))
        .expect("the relayed stream committed");
    let mut sends = 0usize;
    let mut client = Vec::new();
    for (at, a) in &trace[head + 1..] {
        match a {
            Action::Forward(b) => client.extend_from_slice(b),
            Action::Send { request, model, .. } => {
                sends += 1;
                assert!(*at < deadline, "Send past the deadline");
                // It carries what the client has, Anthropic's without trailing whitespace.
                let has = read(c.api, &client).text;
                let prefill = prefill_of(&request.body);
                if model.starts_with("anthropic/") {
                    assert_eq!(prefill, has.trim_end());
                } else {
                    assert_eq!(prefill, has);
                }
            }
            Action::Cancel { .. } | Action::Finish(_) => {}
            other => panic!("after the stream's head: {other:?}"),
        }
    }
    assert!(
        sends <= c.max_continuations as usize,
        "{sends} continuations, {} allowed",
        c.max_continuations
    );
    if c.budget_spent {
        assert_eq!(sends, 0, "the budget admits no continuation");
    }
    let v = read(c.api, &r.body);
    assert_eq!(v.starts, 1, "one start");
    let relayed = c.relayed.concat();
    assert!(v.text.starts_with(&relayed), "the relayed text first");
    let (expected, complete, asked) = c.expected();
    let rec = summary.recovery.as_ref().expect("recovery ran");
    assert_eq!(rec.completed, summary.outcome == Outcome::Success);
    if rec.not_continued.as_ref().map(|w| w.code()) == Some("deadline") {
        // The deadline ended recovery early: what the client has is a beginning of it.
        assert!(
            expected.starts_with(&v.text),
            "{:?} vs {expected:?}",
            v.text
        );
        assert!(v.error.is_some() && !v.complete);
        assert!(
            c.timeout_s < 300,
            "only a short deadline stops recovery: {rec}"
        );
        return;
    }
    assert_eq!(v.text, expected, "{rec}");
    assert_eq!(v.complete, complete, "{rec}");
    assert_eq!(v.error.is_some(), !complete);
    assert_eq!(summary.outcome == Outcome::Success, complete);
    if complete {
        assert_eq!(sends, asked);
        let sb = v.switchback.expect("switchback on the last event");
        assert_eq!(sb["continuations"], asked);
        if c.api == ClientApi::ChatCompletions && c.include_usage {
            assert_eq!(v.usage_chunks, 1, "one usage chunk");
        }
    } else {
        assert!(v.switchback.is_some());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_client_reads_one_answer_spliced_once(c in case()) {
        let mut s = c.simulation(common::epoch());
        let (path, body) = c.request();
        let r = s.post(path, &[], &body).unwrap_or_else(|e| panic!("{e}"));
        check(&c, &r);
    }
}

// ------------------------------------------------------------- raw event sequences

fn raw_data(kind: u8) -> Bytes {
    let s = match kind {
        0 => String::from_utf8(chat_upstream("c", &["Hello ", "there"], None)).unwrap(),
        1 => String::from_utf8(chat_upstream("c", &["more"], Some("stop"))).unwrap(),
        2 => String::from_utf8(anthropic_upstream("m", &["Hi ", "you"], None)).unwrap(),
        3 => String::from_utf8(anthropic_upstream("m", &["end"], Some("end_turn"))).unwrap(),
        4 => "data: {\"error\":{\"message\":\"x\"}}\n\n".to_owned(),
        5 => "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"o\"}}\n\n".to_owned(),
        6 => "data: [DONE]\n\n".to_owned(),
        _ => "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"t\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n".to_owned(),
    };
    Bytes::from(s)
}

#[derive(Debug, Clone)]
enum Raw {
    Head {
        attempt: u32,
        status: u16,
    },
    Data {
        attempt: u32,
        kind: u8,
        split: usize,
    },
    End {
        attempt: u32,
    },
    Failed {
        attempt: u32,
    },
    Timer,
    ClientGone,
    Shutdown,
}

fn raw() -> impl Strategy<Value = Raw> {
    let attempt = 0..6u32;
    prop_oneof![
        3 => (attempt.clone(), prop::sample::select(vec![200u16, 400, 429, 500, 529]))
            .prop_map(|(attempt, status)| Raw::Head { attempt, status }),
        6 => (attempt.clone(), 0..8u8, 0..400usize)
            .prop_map(|(attempt, kind, split)| Raw::Data { attempt, kind, split }),
        2 => attempt.clone().prop_map(|attempt| Raw::End { attempt }),
        2 => attempt.prop_map(|attempt| Raw::Failed { attempt }),
        3 => Just(Raw::Timer),
        1 => Just(Raw::ClientGone),
        1 => Just(Raw::Shutdown),
    ]
}

fn events_of(r: &Raw) -> Vec<Event> {
    match r.clone() {
        Raw::Head { attempt, status } => {
            let mut headers = HeaderMap::new();
            let ct = if status == 200 {
                "text/event-stream"
            } else {
                "application/json"
            };
            headers.insert("content-type", HeaderValue::from_static(ct));
            vec![Event::UpstreamHead {
                attempt: AttemptId(attempt),
                status,
                headers,
            }]
        }
        Raw::Data {
            attempt,
            kind,
            split,
        } => {
            let data = raw_data(kind);
            let at = split.min(data.len());
            [data.slice(..at), data.slice(at..)]
                .into_iter()
                .filter(|d| !d.is_empty())
                .map(|data| Event::UpstreamData {
                    attempt: AttemptId(attempt),
                    data,
                })
                .collect()
        }
        Raw::End { attempt } => vec![Event::UpstreamEnd {
            attempt: AttemptId(attempt),
        }],
        Raw::Failed { attempt } => vec![Event::UpstreamFailed {
            attempt: AttemptId(attempt),
            error: TransportError::Io("reset".into()),
        }],
        Raw::Timer => vec![Event::Timer],
        Raw::ClientGone => vec![Event::ClientGone],
        Raw::Shutdown => vec![Event::Shutdown],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_events_with_recovery_on_never_panic_and_finish_once(
        c in case(),
        events in proptest::collection::vec((0..4000u64, raw()), 0..80),
    ) {
        let loaded = load_str(&c.yaml(), &|_| None).unwrap();
        let gw = Arc::new(Gateway::new(loaded.config).unwrap());
        let epoch = common::epoch();
        let ctx = RequestContext {
            now: epoch,
            wall: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            timeout: Duration::from_secs(c.timeout_s),
            random: 7,
        };
        let (path, body) = c.request();
        let req = ClientRequest {
            method: Method::POST,
            path: path.into(),
            headers: HeaderMap::new(),
            body: Bytes::from(body),
        };
        let GwReply::Chat(mut m) = gw.handle(req, ctx) else {
            panic!("a streamed request gives a machine");
        };
        let mut now = epoch;
        let mut actions = Vec::new();
        m.handle(now, Event::Start);
        for (dt, r) in &events {
            now += Duration::from_millis(*dt);
            for ev in events_of(r) {
                m.handle(now, ev);
                actions.extend(std::iter::from_fn(|| m.poll_action()));
            }
        }
        let finishes = actions.iter().filter(|a| matches!(a, Action::Finish(_))).count();
        prop_assert!(finishes <= 1);
        prop_assert_eq!(finishes == 1, m.is_finished());
        if finishes == 1 {
            prop_assert!(matches!(actions.last(), Some(Action::Finish(_))), "nothing after Finish");
        }
        let heads = actions
            .iter()
            .filter(|a| matches!(a, Action::Respond(_) | Action::StartStream { .. }))
            .count();
        prop_assert!(heads <= 1, "one answer head");
        if let Some(i) = actions.iter().position(|a| matches!(a, Action::StartStream { .. })) {
            for a in &actions[i + 1..] {
                prop_assert!(
                    matches!(a, Action::Forward(_) | Action::Finish(_) | Action::Cancel { .. } | Action::Send { .. }),
                    "after the head: {:?}", a
                );
            }
            let sends = actions[i + 1..].iter().filter(|a| matches!(a, Action::Send { .. })).count();
            prop_assert!(sends <= c.max_continuations as usize);
            // The stream the client got reads as one well-formed stream, ended at most once.
            let body: Vec<u8> = actions[i + 1..]
                .iter()
                .filter_map(|a| match a { Action::Forward(b) => Some(b.to_vec()), _ => None })
                .flatten()
                .collect();
            read(c.api, &body);
        }
        m.handle(now + Duration::from_secs(1), Event::ClientGone);
        prop_assert!(m.is_finished());
    }
}
