//! Bounds on what clients and upstreams can make the gateway hold or accept: the
//! gateway-wide body memory (`limits`), oversized SSE events, streams with no valid
//! chunk, and the types of the request fields the gateway reads.

mod common;

use std::time::Duration;

use common::{chat_body, chunk, config, full_stream, provider, retry_policy, sim, SUCCESS};
use switchback_core::machine::{Action, Outcome, MAX_EVENT_BYTES};
use switchback_core::sim::{Ending, FakeReply, SimResponse, Simulation};

const P: &str = "openai/gpt-4o";
const S: &str = "anthropic/claude-3-5-sonnet";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn stream(s: &mut Simulation) -> SimResponse {
    s.chat(&chat_body(P, true)).expect("simulation")
}

fn sse(events: &[String]) -> FakeReply {
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    FakeReply::sse(&refs, ms(1), Ending::End)
}

fn cancelled(r: &SimResponse) -> bool {
    r.trace
        .iter()
        .any(|(_, a)| matches!(a, Action::Cancel { .. }))
}

fn outcome(r: &SimResponse) -> Outcome {
    r.summary.as_ref().expect("finished").outcome
}

/// P failing over to S once, both streaming.
fn pair() -> Simulation {
    let policy = retry_policy("default_max_attempts: 1");
    sim(&config(
        None,
        &[provider(P, 1, &policy), provider(S, 2, "")],
    ))
}

// ---------------------------------------------------------------- SSE events (§6)

fn oversized_event() -> String {
    format!("data: {}\n\n", "x".repeat(MAX_EVENT_BYTES + 1))
}

#[test]
fn an_oversized_event_before_commit_fails_the_attempt_and_is_retried() {
    let mut s = pair();
    let role = chunk("a", r#"{"role":"assistant","content":""}"#, None);
    s.script(P, vec![sse(&[role, oversized_event()])]);
    s.script(S, vec![sse(&full_stream("b"))]);
    let r = stream(&mut s);
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-switchback-model"], S);
    assert!(cancelled(&r), "the oversized stream is not read on");
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert!(!body.contains("xxxx"));
}

#[test]
fn an_oversized_event_after_commit_ends_the_stream_with_the_error() {
    let mut s = pair();
    let text = chunk("a", r#"{"content":"Hel"}"#, None);
    s.script(
        P,
        vec![sse(&[
            text,
            oversized_event(),
            chunk("a", "{}", Some("stop")),
        ])],
    );
    let r = stream(&mut s);
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("Hel"));
    assert!(body.contains("stream_event_too_large"), "{body}");
    assert!(!body.contains("[DONE]"), "{body}");
    // After commit nothing but Forward and Finish follows; Finish drops the attempt, so
    // nothing past the oversized event is read.
    assert!(!cancelled(&r), "no Cancel after StartStream");
    assert_eq!(outcome(&r), Outcome::StreamAborted);
    assert_eq!(s.calls(S), 0, "no retry after commit");
}

#[test]
fn a_stream_of_invalid_events_then_done_is_not_a_success() {
    let events = vec![
        "data: {not json\n\n".to_owned(),
        "data: [DONE]\n\n".to_owned(),
    ];
    // With a policy: a failed attempt, retried elsewhere.
    let mut s = pair();
    s.script(P, vec![sse(&events)]);
    s.script(S, vec![sse(&full_stream("b"))]);
    let r = stream(&mut s);
    assert_eq!(r.headers["x-switchback-model"], S);
    // Without one: a gateway-made 502, never a 200 with only `[DONE]`.
    let mut s = sim(&config(None, &[provider(P, 1, "")]));
    s.script(P, vec![sse(&events)]);
    let r = stream(&mut s);
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    let e = &r.json()["error"];
    assert_eq!(e["error_type"], "invalid_response");
    assert_eq!(e["code"], "upstream_invalid_response");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("without a single well-formed chunk"),
        "{e}"
    );
    // `[DONE]` alone, or JSON of other shapes, is no answer either.
    for events in [
        vec!["data: [DONE]\n\n".to_owned()],
        vec![
            "data: {\"id\":1}\n\n".to_owned(),
            "data: [DONE]\n\n".to_owned(),
        ],
    ] {
        let mut s = sim(&config(None, &[provider(P, 1, "")]));
        s.script(P, vec![sse(&events)]);
        assert_eq!(stream(&mut s).status, 502);
    }
}

#[test]
fn an_empty_but_well_formed_answer_is_still_a_success() {
    let mut s = sim(&config(None, &[provider(P, 1, "")]));
    let events = vec![
        chunk("a", r#"{"role":"assistant","content":""}"#, None),
        chunk("a", "{}", Some("stop")),
        "data: [DONE]\n\n".to_owned(),
    ];
    s.script(P, vec![sse(&events)]);
    let r = stream(&mut s);
    assert_eq!(r.status, 200);
    assert_eq!(outcome(&r), Outcome::Success);
}

// ---------------------------------------------------------------- request fields

#[test]
fn fields_the_gateway_reads_must_have_their_types() {
    let mut s = sim(&config(None, &[provider(P, 1, "")]));
    s.script(P, vec![FakeReply::json(200, SUCCESS)]);
    for (body, param) in [
        (
            r#"{"model":"openai/gpt-4o","messages":[],"stream":"true"}"#,
            "stream",
        ),
        (
            r#"{"model":"openai/gpt-4o","messages":[],"stream":true,"stream_options":[]}"#,
            "stream_options",
        ),
        (
            r#"{"model":"openai/gpt-4o","messages":[],"stream":true,"stream_options":{"include_usage":"yes"}}"#,
            "stream_options.include_usage",
        ),
        (r#"{"model":4,"messages":[]}"#, "model"),
    ] {
        let r = s.chat(body).expect("simulation");
        assert_eq!(r.status, 400, "{body}");
        let e = &r.json()["error"];
        assert_eq!(e["type"], "invalid_request_error");
        assert_eq!(e["param"], param, "{e}");
        assert!(e["message"].as_str().unwrap().contains(param), "{e}");
    }
    let r = s
        .chat(r#"{"model":"openai/gpt-4o","messages":[],"stream":"true"}"#)
        .unwrap();
    assert_eq!(r.json()["error"]["code"], "invalid_type");
    assert_eq!(s.calls(P), 0, "nothing was forwarded");
}

// ---------------------------------------------------------------- body memory (limits)

/// One provider without a policy and `limits.max_buffered_body_bytes: limit`.
fn limited(limit: usize) -> Simulation {
    let yaml = format!(
        "limits: {{max_buffered_body_bytes: {limit}}}\n{}",
        config(None, &[provider(P, 1, "")])
    );
    sim(&yaml)
}

fn assert_overloaded(r: &SimResponse) {
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.headers["retry-after"], "1");
    let e = &r.json()["error"];
    assert_eq!(e["code"], "gateway_overloaded", "{e}");
    assert_eq!(e["type"], "server_error");
}

#[test]
fn a_request_body_that_does_not_fit_gets_503() {
    let mut s = limited(4096);
    s.script(P, vec![FakeReply::json(200, SUCCESS)]);
    let big = format!(
        r#"{{"model":"openai/gpt-4o","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "a".repeat(5000)
    );
    let r = s.chat(&big).expect("simulation");
    assert_overloaded(&r);
    assert_eq!(s.calls(P), 0);
    assert_eq!(s.gateway.body_memory().in_use(), 0);
    let r = s.chat(&chat_body(P, false)).expect("simulation");
    assert_eq!(r.status, 200, "a small request still fits");
    assert_eq!(s.gateway.body_memory().in_use(), 0, "given back when done");
}

#[test]
fn an_upstream_body_that_does_not_fit_ends_the_request_with_503() {
    let mut s = limited(4096);
    let huge = format!(r#"{{"pad":"{}"}}"#, "b".repeat(8000));
    s.script(P, vec![FakeReply::json(200, &huge)]);
    let r = s.chat(&chat_body(P, false)).expect("simulation");
    assert_overloaded(&r);
    assert!(cancelled(&r), "the upstream body is not read on");
    assert_eq!(s.gateway.body_memory().in_use(), 0);
}

#[test]
fn held_stream_bytes_count_and_a_committed_stream_ends_in_band() {
    // Before commit: held events count.
    let mut s = limited(4096);
    let held = chunk(
        "a",
        &format!(
            r#"{{"role":"assistant","content":"","pad":"{}"}}"#,
            "c".repeat(5000)
        ),
        None,
    );
    s.script(
        P,
        vec![sse(&[held, chunk("a", r#"{"content":"x"}"#, None)])],
    );
    assert_overloaded(&stream(&mut s));
    assert_eq!(s.gateway.body_memory().in_use(), 0);
    // After commit: a partial event that grows past the limit ends the stream in band.
    let mut s = limited(4096);
    let text = chunk("a", r#"{"content":"Hi"}"#, None);
    let partial = format!("data: {{\"pad\":\"{}", "d".repeat(6000));
    s.script(P, vec![sse(&[text, partial])]);
    let r = stream(&mut s);
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 200);
    assert!(body.contains("gateway_overloaded"), "{body}");
    assert!(!body.contains("[DONE]"));
    assert_eq!(s.gateway.body_memory().in_use(), 0);
}

#[test]
fn reservations_are_given_back_on_every_path() {
    let mut s = limited(1 << 20);
    s.script(
        P,
        vec![
            FakeReply::json(200, SUCCESS),
            FakeReply::json(500, r#"{"error":{"message":"x"}}"#),
            sse(&full_stream("a")),
            FakeReply::Hang,
        ],
    );
    s.chat(&chat_body(P, false)).unwrap();
    s.chat(&chat_body(P, false)).unwrap();
    stream(&mut s);
    // A client that leaves mid-wait.
    s.request(
        http::Method::POST,
        "/v1/chat/completions",
        http::HeaderMap::new(),
        &chat_body(P, false),
        Some(ms(10)),
    )
    .unwrap();
    assert_eq!(s.gateway.body_memory().in_use(), 0);
}
