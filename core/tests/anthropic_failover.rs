//! Failover across protocols, in simulation: an OpenAI-only client gets OpenAI answers
//! from an Anthropic-interface upstream, streaming and not, and failover works in both
//! directions (spec §5).

mod common;

use std::time::Duration;

use common::{error_body, sim, SUCCESS};
use serde_json::Value;
use switchback_core::sim::{Ending, FakeReply};

const OPENAI: &str = "openai/gpt-4o";
const CLAUDE: &str = "anthropic/claude-sonnet-4-5";

fn config(primary_first: bool) -> String {
    let openai =
        "  - model: openai/gpt-4o\n    base_url: http://127.0.0.1:1\n    access_key: OPENAI-KEY\n";
    let claude = "  - model: anthropic/claude-sonnet-4-5\n    base_url: http://127.0.0.1:2\n    access_key: ANTHROPIC-KEY\n";
    let policy = "    default: true\n    retry_policy:\n      default_strategy: different_provider\n      default_max_attempts: 1\n";
    let (a, b) = if primary_first {
        (openai, claude)
    } else {
        (claude, openai)
    };
    format!("version: v0.3.0\nmodel_providers:\n{a}{policy}{b}")
}

fn fixture(path: &str) -> String {
    let p = format!(
        "{}/tests/fixtures/anthropic/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// An SSE fixture as one scripted reply, its events split on blank lines.
fn sse_fixture(path: &str) -> FakeReply {
    let text = fixture(path);
    let events: Vec<String> = text.split_inclusive("\n\n").map(str::to_owned).collect();
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    FakeReply::sse(&refs, Duration::from_millis(10), Ending::End)
}

fn data_events(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn openai_429_fails_over_to_anthropic_non_streaming() {
    let mut s = sim(&config(true));
    s.script(
        OPENAI,
        vec![FakeReply::json(429, &error_body(429, "slow down"))],
    );
    s.script(
        CLAUDE,
        vec![FakeReply::json(
            200,
            &fixture("response/text.anthropic.json"),
        )],
    );
    let r = s
        .chat(r#"{"model":"openai/gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"temperature":0.2}"#)
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["choices"][0]["message"]["content"]
        .as_str()
        .is_some_and(|c| !c.is_empty()));
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(r.headers["x-switchback-model"], CLAUDE);
    assert_eq!(r.headers["content-type"], "application/json");

    let up = s.upstream(CLAUDE).unwrap();
    let sent: Value = serde_json::from_slice(&up.received[0]).unwrap();
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(sent["messages"][0]["role"], "user");
    assert!(
        sent["max_tokens"].as_u64().unwrap() > 0,
        "max_tokens is always set"
    );
    let headers = &up.received_headers[0];
    assert_eq!(headers["x-api-key"], "ANTHROPIC-KEY");
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert!(headers.get("authorization").is_none());
}

#[test]
fn openai_429_fails_over_to_anthropic_streaming_with_usage() {
    let mut s = sim(&config(true));
    s.script(
        OPENAI,
        vec![FakeReply::json(429, &error_body(429, "slow down"))],
    );
    s.script(CLAUDE, vec![sse_fixture("stream/plain_text.sse")]);
    let r = s
        .chat(r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}"#)
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.streamed);
    let events = data_events(&r.body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(!text.is_empty());
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let last = chunks.last().unwrap();
    assert!(
        last["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "usage in the last chunk"
    );
    let sent: Value = serde_json::from_slice(&s.upstream(CLAUDE).unwrap().received[0]).unwrap();
    assert_eq!(sent["stream"], true);
}

#[test]
fn anthropic_tool_calls_stream_as_openai_tool_call_deltas() {
    let mut s = sim(&config(false));
    s.script(CLAUDE, vec![sse_fixture("stream/tool_call.sse")]);
    let r = s
        .chat(r#"{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"Weather?"}],"stream":true,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}"#)
        .unwrap();
    let events = data_events(&r.body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let name = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["name"].as_str());
    assert_eq!(name, Some("get_weather"));
    let call = |c: &Value| c["choices"][0]["delta"]["tool_calls"][0].clone();
    let args_of = |index: u64| -> String {
        chunks
            .iter()
            .map(call)
            .filter(|t| t["index"] == index)
            .filter_map(|t| t["function"]["arguments"].as_str().map(str::to_owned))
            .collect()
    };
    for index in [0, 1] {
        let args = args_of(index);
        assert!(
            serde_json::from_str::<Value>(&args).is_ok(),
            "call {index}: {args}"
        );
    }
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
}

#[test]
fn anthropic_529_fails_over_to_openai() {
    let mut s = sim(&config(false));
    s.script(
        CLAUDE,
        vec![FakeReply::json(
            529,
            &fixture("error/overloaded.anthropic.json"),
        )],
    );
    s.script(OPENAI, vec![FakeReply::json(200, SUCCESS)]);
    let r = s
        .chat(r#"{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}]}"#)
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-switchback-model"], OPENAI);
    let sent: Value = serde_json::from_slice(&s.upstream(OPENAI).unwrap().received[0]).unwrap();
    assert_eq!(
        sent["model"], "gpt-4o",
        "the OpenAI upstream gets the client's body"
    );
}

#[test]
fn anthropic_streaming_error_before_commit_fails_over_to_openai() {
    let mut s = sim(&config(false));
    let error_stream = FakeReply::sse(
        &[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        ],
        Duration::from_millis(5),
        Ending::End,
    );
    s.script(CLAUDE, vec![error_stream]);
    s.script(
        OPENAI,
        vec![FakeReply::sse(
            &[
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n",
                "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
                "data: [DONE]\n\n",
            ],
            Duration::from_millis(5),
            Ending::End,
        )],
    );
    let r = s
        .chat(r#"{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}],"stream":true}"#)
        .unwrap();
    assert_eq!(r.headers["x-switchback-model"], OPENAI);
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        !text.contains("overloaded"),
        "nothing of the failed attempt reaches the client"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[test]
fn anthropic_errors_reach_the_client_in_openai_shape() {
    let yaml = "version: v0.3.0\nmodel_providers:\n  - model: anthropic/claude-sonnet-4-5\n    access_key: K\n    default: true\n";
    let mut s = sim(yaml);
    s.script(
        CLAUDE,
        vec![FakeReply::json(
            400,
            &fixture("error/invalid_request.anthropic.json"),
        )],
    );
    let r = s
        .chat(r#"{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}]}"#)
        .unwrap();
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[test]
fn requests_anthropic_cannot_express_are_answered_400_without_a_call() {
    let yaml = "version: v0.3.0\nmodel_providers:\n  - model: anthropic/claude-sonnet-4-5\n    access_key: K\n    default: true\n";
    let mut s = sim(yaml);
    s.script(
        CLAUDE,
        vec![FakeReply::json(
            200,
            &fixture("response/text.anthropic.json"),
        )],
    );
    let r = s
        .chat(r#"{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}],"n":2}"#)
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "unsupported_parameter");
    assert_eq!(s.calls(CLAUDE), 0);
}

#[test]
fn a_spend_limit_429_skips_the_provider_for_later_requests() {
    let yaml = "version: v0.3.0\nmodel_providers:\n  - model: anthropic/claude-sonnet-4-5\n    access_key: K\n    default: true\n    retry_policy:\n      default_strategy: same_model\n      default_max_attempts: 2\n  - model: openai/gpt-4o\n    access_key: K\n";
    let mut s = sim(yaml);
    s.script(
        CLAUDE,
        vec![FakeReply::json(
            429,
            &fixture("error/spend_limit.anthropic.json"),
        )],
    );
    s.script(OPENAI, vec![FakeReply::json(200, SUCCESS)]);
    let r = s
        .chat(r#"{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}]}"#)
        .unwrap();
    assert_eq!(s.calls(CLAUDE), 1, "no same-model retry into a spend limit");
    assert!(r.status >= 400);
    assert!(
        r.elapsed() < Duration::from_secs(1),
        "no waiting for a limit that will not lift"
    );
    // The next request is steered away (default_strategy applies to a blocked primary).
    let yaml_failover = yaml.replace("same_model", "different_provider");
    let mut s = sim(&yaml_failover);
    s.script(
        CLAUDE,
        vec![FakeReply::json(
            429,
            &fixture("error/spend_limit.anthropic.json"),
        )],
    );
    s.script(OPENAI, vec![FakeReply::json(200, SUCCESS)]);
    let body =
        r#"{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}]}"#;
    assert_eq!(s.chat(body).unwrap().status, 200);
    let second = s.chat(body).unwrap();
    assert_eq!(second.headers["x-switchback-attempts"], "1");
    assert_eq!(s.calls(CLAUDE), 1);
}

#[test]
fn default_max_tokens_is_configurable_and_the_clients_wins() {
    let yaml = "version: v0.3.0\nmodel_providers:\n  - model: anthropic/claude-sonnet-4-5\n    access_key: K\n    default: true\n    default_max_tokens: 1000\n";
    let mut s = sim(yaml);
    s.script(
        CLAUDE,
        vec![FakeReply::json(
            200,
            &fixture("response/text.anthropic.json"),
        )],
    );
    s.chat(
        r#"{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .unwrap();
    s.chat(r#"{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}],"max_tokens":50}"#)
        .unwrap();
    let up = s.upstream(CLAUDE).unwrap();
    let first: Value = serde_json::from_slice(&up.received[0]).unwrap();
    let second: Value = serde_json::from_slice(&up.received[1]).unwrap();
    assert_eq!(first["max_tokens"], 1000);
    assert_eq!(second["max_tokens"], 50);
}
