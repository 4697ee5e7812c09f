//! The decisions `docs/configuration.md` lists under "Behaviour where the specification is
//! silent", one test each that the rules tests do not already make.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{error_body, sim, two_providers, CHAT, SUCCESS};
use switchback_core::machine::{MAX_HELD_BYTES, MAX_RESPONSE_BODY_BYTES};
use switchback_core::sim::{Ending, FakeReply};

const P: &str = "openai/gpt-4o";
const S: &str = "anthropic/claude-3-5-sonnet";
const FAIL_OVER: &str = "    retry_policy:\n      default_strategy: different_provider\n      default_max_attempts: 1\n";

#[test]
fn a_provider_without_policy_ignores_blocks_other_policies_made() {
    // The secondary's policy blocks the primary's model globally; the primary has no policy.
    let yaml = format!(
        "version: v0.3.0\nmodel_providers:\n  - model: {P}\n    base_url: http://127.0.0.1:1\n    access_key: k\n    default: true\n  - model: {S}\n    provider_interface: openai\n    base_url: http://127.0.0.1:2\n    access_key: k\n    retry_policy:\n      fallback_models: [{P}]\n      default_strategy: different_provider\n"
    );
    let mut s = sim(&yaml);
    s.script(S, vec![FakeReply::json(429, &error_body(429, "slow down"))]);
    s.script(
        P,
        vec![FakeReply::json_with(
            429,
            &[("retry-after", "60")],
            &error_body(429, "x"),
        )],
    );
    // A request for the secondary fails over to the primary, whose pushback its policy records.
    s.chat(
        r#"{"model":"anthropic/claude-3-5-sonnet","messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .unwrap();
    assert_eq!(s.calls(P), 1);
    assert!(
        s.gateway.blocks().lock().pushback_until(s.now, P).is_some(),
        "P is blocked"
    );
    // The policy-less primary still sends its own requests to itself, blocked or not.
    let r = s.chat(CHAT).unwrap();
    assert_eq!(s.calls(P), 2, "the primary is asked despite the block");
    assert_eq!(r.status, 429, "and its answer passes through");
}

#[test]
fn a_transport_failure_with_no_retry_is_a_gateway_made_502() {
    let mut s = sim(&two_providers(""));
    s.script(P, vec![FakeReply::Refuse]);
    let r = s.chat(CHAT).unwrap();
    assert_eq!(r.status, 502);
    let e = &r.json()["error"];
    assert_eq!(e["type"], "upstream_error");
    assert_eq!(e["code"], "upstream_unreachable");
    assert_eq!(e["error_type"], "connect_error");
}

#[test]
fn an_in_band_error_before_commit_is_recorded_as_stream_error() {
    let mut s = sim(&two_providers(FAIL_OVER));
    let error_event = FakeReply::sse(
        &["data: {\"error\":{\"message\":\"boom\"}}\n\n"],
        Duration::ZERO,
        Ending::End,
    );
    s.script(P, vec![error_event.clone()]);
    s.script(S, vec![error_event]);
    let r = s
        .chat(r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"Hi"}],"stream":true}"#)
        .unwrap();
    let e = &r.json()["error"];
    assert_eq!(e["type"], "retry_exhausted");
    assert_eq!(e["attempts"][0]["error_type"], "stream_error");
    assert_eq!(e["last_error"]["error"]["message"], "boom");
}

#[test]
fn held_events_before_commit_are_bounded() {
    let mut s = sim(&two_providers(FAIL_OVER));
    // Role-only chunks (no content) that together pass the bound.
    let filler = format!(
        "data: {{\"choices\":[{{\"delta\":{{\"role\":\"assistant\"}},\"pad\":\"{}\"}}]}}\n\n",
        "x".repeat(64 * 1024)
    );
    let n = MAX_HELD_BYTES / filler.len() + 2;
    let events: Vec<&str> = std::iter::repeat_n(filler.as_str(), n).collect();
    s.script(
        P,
        vec![FakeReply::sse(&events, Duration::ZERO, Ending::Stall)],
    );
    s.script(S, vec![FakeReply::sse(&["data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\n", "data: [DONE]\n\n"], Duration::ZERO, Ending::End)]);
    let r = s
        .chat(r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"Hi"}],"stream":true}"#)
        .unwrap();
    assert_eq!(
        r.headers["x-switchback-model"], S,
        "the overflowing attempt failed over"
    );
    assert!(
        !String::from_utf8_lossy(&r.body).contains("pad"),
        "nothing held was relayed"
    );
}

#[test]
fn a_response_body_over_the_bound_is_a_failed_attempt() {
    let mut s = sim(&two_providers(FAIL_OVER));
    let chunk = Bytes::from(vec![b' '; 4 * 1024 * 1024]);
    let chunks = (0..MAX_RESPONSE_BODY_BYTES / chunk.len() + 1)
        .map(|_| (Duration::ZERO, chunk.clone()))
        .collect();
    s.script(
        P,
        vec![FakeReply::Http {
            delay: Duration::ZERO,
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks,
            ending: Ending::End,
        }],
    );
    s.script(S, vec![FakeReply::json(200, SUCCESS)]);
    let r = s.chat(CHAT).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-switchback-model"], S);
    assert_eq!(r.headers["x-switchback-attempts"], "2");
}

#[test]
fn a_redirect_is_an_invalid_response_never_followed_or_passed_on() {
    let mut s = sim(&two_providers(FAIL_OVER));
    let redirect = FakeReply::json_with(301, &[("location", "https://elsewhere.example/v1")], "");
    s.script(P, vec![redirect.clone()]);
    s.script(S, vec![FakeReply::json(200, SUCCESS)]);
    let r = s.chat(CHAT).unwrap();
    assert_eq!(r.status, 200, "the redirect was retried elsewhere");
    assert_eq!(r.headers["x-switchback-attempts"], "2");
    // Without a retry left, the client gets a gateway error, not the redirect.
    let mut s = sim(&two_providers(""));
    s.script(P, vec![redirect]);
    let r = s.chat(CHAT).unwrap();
    assert_eq!(r.status, 502);
    assert!(r.headers.get("location").is_none());
    assert_eq!(r.json()["error"]["error_type"], "invalid_response");
}

#[test]
fn a_wait_woken_past_the_deadline_ends_the_request_without_an_attempt() {
    use std::sync::Arc;
    use std::time::UNIX_EPOCH;

    use http::{HeaderMap, HeaderValue, Method};
    use switchback_core::gateway::{ClientRequest, Gateway, Reply, RequestContext};
    use switchback_core::machine::{Action, AttemptId, Event};

    let policy = "    retry_policy:\n      on_status_codes:\n        - codes: [429]\n          strategy: same_model\n          max_attempts: 2\n";
    let yaml = two_providers(policy).replace("port: 12000", "port: 12000\n    timeout: 10s");
    let config = switchback_core::config::load_str(&yaml, &|_| None)
        .unwrap()
        .config;
    let gw = Arc::new(Gateway::new(config).unwrap());
    let start = common::epoch();
    let ctx = RequestContext {
        now: start,
        wall: UNIX_EPOCH,
        timeout: Duration::from_secs(10),
        random: 1,
    };
    let req = ClientRequest {
        method: Method::POST,
        path: "/v1/chat/completions".into(),
        headers: HeaderMap::new(),
        body: Bytes::from_static(CHAT.as_bytes()),
    };
    let Reply::Chat(mut m) = gw.handle(req, ctx) else {
        panic!("not a chat")
    };
    m.handle(start, Event::Start);
    while m.poll_action().is_some() {}
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("2"));
    let at = start + Duration::from_secs(5);
    m.handle(
        at,
        Event::UpstreamHead {
            attempt: AttemptId(0),
            status: 429,
            headers,
        },
    );
    m.handle(
        at,
        Event::UpstreamEnd {
            attempt: AttemptId(0),
        },
    );
    while m.poll_action().is_some() {}
    assert!(m
        .poll_timeout()
        .is_some_and(|t| t < start + Duration::from_secs(10)));
    // The runtime wakes the wait up only after the deadline (a stalled machine).
    m.handle(start + Duration::from_secs(12), Event::Timer);
    let actions: Vec<Action> = std::iter::from_fn(|| m.poll_action()).collect();
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Send { .. })),
        "an attempt past the deadline: {actions:?}"
    );
    let Some(Action::Respond(r)) = actions.first() else {
        panic!("{actions:?}")
    };
    assert_eq!(r.status.as_u16(), 504);
    assert!(m.is_finished());
}

#[test]
fn after_commit_only_forward_and_finish_follow_even_when_the_stream_fails() {
    use http::{HeaderMap, Method};
    use switchback_core::machine::Action;

    let stream =
        r#"{"model":"openai/gpt-4o","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
    let content = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n";
    for (ending, leave) in [
        (Ending::Cut, None),
        (Ending::Stall, None),
        (Ending::Stall, Some(Duration::from_millis(50))),
    ] {
        let mut s = sim(&two_providers(FAIL_OVER));
        s.script(
            P,
            vec![FakeReply::sse(&[content], Duration::ZERO, ending.clone())],
        );
        let r = s
            .request(
                Method::POST,
                "/v1/chat/completions",
                HeaderMap::new(),
                stream,
                leave,
            )
            .unwrap();
        let after: Vec<&Action> = r
            .trace
            .iter()
            .map(|(_, a)| a)
            .skip_while(|a| !matches!(a, Action::StartStream { .. }))
            .skip(1)
            .collect();
        assert!(
            after
                .iter()
                .all(|a| matches!(a, Action::Forward(_) | Action::Finish(_))),
            "{ending:?} {leave:?}: {after:?}"
        );
        assert!(matches!(after.last(), Some(Action::Finish(_))));
    }
}
