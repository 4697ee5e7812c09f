//! The seed integration suite's 13 scenarios (IT-1 .. IT-13), replayed in the core's
//! simulation: scripted fake providers, virtual time. Each asserts what the seed suite
//! asserts (status, who was called how often, minimum waits) and a little more.

mod common;

use std::time::Duration;

use common::{error_body, sim, two_providers, CHAT, SUCCESS};
use switchback_core::sim::{Ending, FakeReply};

const P: &str = "openai/gpt-4o";
const S: &str = "anthropic/claude-3-5-sonnet";
const T: &str = "mistral/mistral-large";

fn policy(lines: &str) -> String {
    let mut out = String::from("    retry_policy:\n");
    for l in lines.lines() {
        out.push_str("      ");
        out.push_str(l);
        out.push('\n');
    }
    out
}

const DIFFERENT_429: &str = "default_strategy: different_provider\ndefault_max_attempts: 2\non_status_codes:\n  - codes: [429]\n    strategy: different_provider\n    max_attempts: 2";

#[test]
fn it1_basic_retry_on_429() {
    let mut s = sim(&two_providers(&policy(DIFFERENT_429)));
    s.script(
        P,
        vec![FakeReply::json(
            429,
            &error_body(429, "Rate limit exceeded"),
        )],
    );
    s.script(S, vec![FakeReply::json(200, SUCCESS)]);
    let r = s.chat(CHAT).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from mock provider!"
    );
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
    assert_eq!(r.headers["x-switchback-attempts"], "2");
    assert_eq!(r.headers["x-switchback-model"], S);
}

#[test]
fn it2_retry_on_503_different_provider() {
    let p = policy(&DIFFERENT_429.replace("[429]", "[503]"));
    let mut s = sim(&two_providers(&p));
    s.script(
        P,
        vec![FakeReply::json(
            503,
            &error_body(503, "Service Unavailable"),
        )],
    );
    s.script(S, vec![FakeReply::json(200, SUCCESS)]);
    let r = s.chat(CHAT).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
}

#[test]
fn it3_all_retries_exhausted() {
    let mut s = sim(&two_providers(&policy(DIFFERENT_429)));
    s.script(
        P,
        vec![FakeReply::json(
            429,
            &error_body(429, "Rate limit exceeded"),
        )],
    );
    s.script(
        S,
        vec![FakeReply::json(
            429,
            &error_body(429, "Rate limit exceeded"),
        )],
    );
    let r = s.chat(CHAT).unwrap();
    assert_eq!(r.status, 429);
    let e = &r.json()["error"];
    assert_eq!(e["type"], "retry_exhausted");
    assert_eq!(e["total_attempts"], 2);
    assert_eq!(e["attempts"][0]["model"], P);
    assert_eq!(e["attempts"][0]["error_type"], "http_429");
    assert_eq!(e["attempts"][1]["model"], S);
    assert_eq!(e["last_error"]["error"]["message"], "Rate limit exceeded");
    assert_eq!(e["retry_budget_exhausted"], false);
    assert_eq!(r.headers["x-should-retry"], "false");
}

#[test]
fn it4_no_retry_policy_no_retry() {
    let mut s = sim(&two_providers(""));
    let body = error_body(429, "Rate limit exceeded");
    s.script(P, vec![FakeReply::json(429, &body)]);
    s.script(S, vec![FakeReply::json(200, SUCCESS)]);
    let r = s.chat(CHAT).unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.body, body.as_bytes(), "passed through unchanged");
    assert_eq!((s.calls(P), s.calls(S)), (1, 0));
}

#[test]
fn it5_max_attempts_respected() {
    let p = policy(&DIFFERENT_429.replace("max_attempts: 2", "max_attempts: 1"));
    let yaml = format!(
        "{}  - model: {T}\n    base_url: http://127.0.0.1:3\n    access_key: k3\n",
        two_providers(&p)
    );
    let mut s = sim(&yaml);
    s.script(
        P,
        vec![FakeReply::json(
            429,
            &error_body(429, "Rate limit exceeded"),
        )],
    );
    s.script(
        S,
        vec![FakeReply::json(
            429,
            &error_body(429, "Rate limit exceeded"),
        )],
    );
    s.script(T, vec![FakeReply::json(200, SUCCESS)]);
    let r = s.chat(CHAT).unwrap();
    assert!(r.status >= 400);
    assert_eq!((s.calls(P), s.calls(S), s.calls(T)), (1, 1, 0));
    assert_eq!(r.json()["error"]["total_attempts"], 2);
}

#[test]
fn it6_backoff_delay_observed() {
    let p = policy("default_strategy: same_model\ndefault_max_attempts: 3\non_status_codes:\n  - codes: [429]\n    strategy: same_model\n    max_attempts: 3\nbackoff:\n  apply_to: same_model\n  base_ms: 500\n  max_ms: 5000\n  jitter: false");
    let yaml = two_providers(&p);
    let yaml = &yaml[..yaml.find("  - model: anthropic").unwrap()];
    let mut s = sim(yaml);
    let e = error_body(429, "Rate limit exceeded");
    s.script(
        P,
        vec![
            FakeReply::json(429, &e),
            FakeReply::json(429, &e),
            FakeReply::json(200, SUCCESS),
        ],
    );
    let r = s.chat(CHAT).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(s.calls(P), 3);
    let at = &s.upstream(P).unwrap().arrivals;
    assert_eq!(at[1] - at[0], Duration::from_millis(500));
    assert_eq!(at[2] - at[1], Duration::from_millis(1000));
    assert!(r.elapsed() >= Duration::from_millis(1500));
}

#[test]
fn it7_fallback_models_priority() {
    let p = policy(&format!(
        "fallback_models: [{S}, {T}]\n{}",
        DIFFERENT_429.replace("max_attempts: 2", "max_attempts: 3")
    ));
    // The config lists the tertiary before the secondary: fallback_models decides.
    let yaml = format!(
        "version: v0.3.0\nmodel_providers:\n  - model: {P}\n    base_url: http://127.0.0.1:1\n    access_key: k\n    default: true\n{p}\n  - model: {T}\n    base_url: http://127.0.0.1:3\n    access_key: k\n  - model: {S}\n    provider_interface: openai\n    base_url: http://127.0.0.1:2\n    access_key: k\n"
    );
    let mut s = sim(&yaml);
    let e = error_body(429, "Rate limit exceeded");
    s.script(P, vec![FakeReply::json(429, &e)]);
    s.script(S, vec![FakeReply::json(429, &e)]);
    s.script(T, vec![FakeReply::json(200, SUCCESS)]);
    let r = s.chat(CHAT).unwrap();
    assert_eq!(r.status, 200);
    let (p, f1, f2) = (
        s.upstream(P).unwrap(),
        s.upstream(S).unwrap(),
        s.upstream(T).unwrap(),
    );
    assert!(p.arrivals[0] <= f1.arrivals[0] && f1.arrivals[0] <= f2.arrivals[0]);
    assert_eq!((p.calls(), f1.calls(), f2.calls()), (1, 1, 1));
    assert_eq!(r.headers["x-switchback-model"], T);
}

#[test]
fn it8_retry_after_header_honored() {
    let p = policy("default_strategy: same_model\ndefault_max_attempts: 2\non_status_codes:\n  - codes: [429]\n    strategy: same_model\n    max_attempts: 2\nretry_after_handling:\n  scope: model\n  apply_to: request\n  max_retry_after_seconds: 300");
    let yaml = two_providers(&p);
    let yaml = &yaml[..yaml.find("  - model: anthropic").unwrap()];
    let mut s = sim(yaml);
    s.script(
        P,
        vec![
            FakeReply::json_with(
                429,
                &[("retry-after", "2")],
                &error_body(429, "Rate limit exceeded"),
            ),
            FakeReply::json(200, SUCCESS),
        ],
    );
    let r = s.chat(CHAT).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(s.calls(P), 2);
    let at = &s.upstream(P).unwrap().arrivals;
    assert_eq!(at[1] - at[0], Duration::from_secs(2));
    assert!(r.elapsed() >= Duration::from_secs(2));
    // apply_to: request: the next request is not blocked.
    let r2 = s.chat(CHAT).unwrap();
    assert_eq!(r2.status, 200);
    assert_eq!(r2.elapsed(), Duration::ZERO);
}

#[test]
fn it9_retry_after_blocks_initial_selection() {
    let p = policy(&format!("fallback_models: [{S}]\n{DIFFERENT_429}\nretry_after_handling:\n  scope: model\n  apply_to: global\n  max_retry_after_seconds: 300"));
    let mut s = sim(&two_providers(&p));
    s.script(
        P,
        vec![
            FakeReply::json_with(
                429,
                &[("retry-after", "60")],
                &error_body(429, "Rate limit exceeded"),
            ),
            FakeReply::json(200, SUCCESS),
        ],
    );
    s.script(S, vec![FakeReply::json(200, SUCCESS)]);
    let r1 = s.chat(CHAT).unwrap();
    assert_eq!(r1.status, 200);
    assert_eq!(
        r1.elapsed(),
        Duration::ZERO,
        "failing over does not wait for Retry-After"
    );
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
    s.advance(Duration::from_secs(30));
    let r2 = s
        .chat(
            r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"Second request"}]}"#,
        )
        .unwrap();
    assert_eq!(r2.status, 200);
    assert_eq!(
        (s.calls(P), s.calls(S)),
        (1, 2),
        "the blocked primary is skipped"
    );
    assert_eq!(r2.headers["x-switchback-attempts"], "1");
    // After the block ends the primary is used again.
    s.advance(Duration::from_secs(31));
    let r3 = s.chat(CHAT).unwrap();
    assert_eq!(r3.status, 200);
    assert_eq!(s.calls(P), 2);
}

#[test]
fn it10_timeout_triggers_retry() {
    let p = policy(&format!("fallback_models: [{S}]\n{DIFFERENT_429}\non_timeout:\n  strategy: different_provider\n  max_attempts: 2"));
    let mut s = sim(&two_providers(&p));
    s.script(P, vec![FakeReply::Hang]);
    s.script(S, vec![FakeReply::json(200, SUCCESS)]);
    let r = s.chat(CHAT).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
    // The default first_token timeout (30 s) passed in virtual time.
    assert_eq!(r.elapsed(), Duration::from_secs(30));
}

#[test]
fn it11_high_latency_proactive_failover() {
    let p = policy(&format!("fallback_models: [{S}]\n{DIFFERENT_429}\non_high_latency:\n  threshold_ms: 1000\n  measure: total\n  min_triggers: 1\n  strategy: different_provider\n  block_duration_seconds: 60\n  scope: model\n  apply_to: global"));
    let mut s = sim(&two_providers(&p));
    let slow = FakeReply::json(200, SUCCESS).delayed(Duration::from_millis(1500));
    s.script(P, vec![slow.clone(), slow]);
    s.script(S, vec![FakeReply::json(200, SUCCESS)]);
    let r1 = s.chat(CHAT).unwrap();
    assert_eq!(r1.status, 200, "the slow answer is still delivered");
    assert_eq!(r1.headers["x-switchback-model"], P);
    let r2 = s.chat(CHAT).unwrap();
    assert_eq!(r2.status, 200);
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
    assert_eq!(r2.headers["x-switchback-model"], S);
}

const STREAM: [&str; 5] = [
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" from\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" stream!\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n",
];

#[test]
fn it12_streaming_preserved_across_retry() {
    let mut s = sim(&two_providers(&policy(DIFFERENT_429)));
    s.script(
        P,
        vec![FakeReply::json(
            429,
            &error_body(429, "Rate limit exceeded"),
        )],
    );
    s.script(
        S,
        vec![FakeReply::sse(
            &STREAM,
            Duration::from_millis(50),
            Ending::End,
        )],
    );
    let r = s.chat(r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"Hello"}],"stream":true}"#).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.streamed);
    assert_eq!(
        r.body,
        STREAM.concat().as_bytes(),
        "relayed event for event"
    );
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
}

#[test]
fn it13_request_body_preserved_across_retry() {
    let mut s = sim(&two_providers(&policy(DIFFERENT_429)));
    s.script(
        P,
        vec![FakeReply::json(
            429,
            &error_body(429, "Rate limit exceeded"),
        )],
    );
    s.script(S, vec![FakeReply::json(200, SUCCESS)]);
    let body = "{\"model\": \"openai/gpt-4o\", \"messages\": [{\"role\": \"system\", \"content\": \"You are a helpful assistant.\"}, {\"role\": \"user\", \"content\": \"Tell me about retry mechanisms.\"}], \"temperature\": 0.7, \"max_tokens\": 100}";
    let r = s.chat(body).unwrap();
    assert_eq!(r.status, 200);
    let sent_to_primary = &s.upstream(P).unwrap().received[0];
    let sent_to_secondary = &s.upstream(S).unwrap().received[0];
    assert_eq!(
        sent_to_primary,
        body.replace("openai/gpt-4o", "gpt-4o").as_bytes()
    );
    assert_eq!(
        sent_to_secondary,
        body.replace("openai/gpt-4o", "claude-3-5-sonnet")
            .as_bytes()
    );
}
