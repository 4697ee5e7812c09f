//! The client-API doors over loopback (spec §9): Anthropic Messages (and count_tokens),
//! OpenAI Responses and Embeddings clients, each failing over across upstream interfaces,
//! the commit contract of each API, and the error shapes.

use serde_json::{json, Value};
use switchback_tests::client::{request, Response};
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::{Ending, MockUpstream, Reply};
use switchback_tests::table::{assert_header, assert_status, start, HEAD};

use crate::doors_wire::*;

const FAILOVER: &str = "    retry_policy:\n      default_strategy: different_provider\n      default_max_attempts: 1\n";

/// A provider entry on `${port_var}`; `extra` are more lines of the entry.
fn entry(model: &str, port_var: &str, extra: &str) -> String {
    format!(
        "  - model: {model}\n    base_url: http://127.0.0.1:${{{port_var}}}\n    access_key: key-{port_var}\n    timeouts: {{first_token: 2s, idle: 2s}}\n{extra}"
    )
}

/// `first` (default, one failover, speaking `first_lines`) on PRIMARY, `second` on SECONDARY.
fn pair(first: &str, first_lines: &str, second: &str, second_lines: &str) -> String {
    format!(
        "{HEAD}{}{}",
        entry(
            first,
            "PRIMARY",
            &format!("{first_lines}    default: true\n{FAILOVER}")
        ),
        entry(second, "SECONDARY", second_lines)
    )
}

const ANTHROPIC: &str = "    provider_interface: anthropic\n";
const OPENAI: &str = "    provider_interface: openai\n";
const RESPONSES: &str = "    provider_interface: openai\n    responses: true\n";

fn anthropic_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("x-api-key", "sk-ant-client"),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "claude-code-20250219"),
    ]
}

/// Claude Code's case: Anthropic answers 529, the OpenAI fallback's stream reaches the
/// Messages client as Anthropic's events.
pub(crate) fn doors_messages_529_fails_over_to_openai_stream<R: Runtime>() {
    let claude = MockUpstream::start(vec![anthropic_error(529, "overloaded_error")]);
    let openai = MockUpstream::start(vec![sse(&chat_events())]);
    let gw = start::<R>(
        &pair("anthropic/claude-a", ANTHROPIC, "openai/gpt-4o", OPENAI),
        &[&claude, &openai],
    );
    let r = post_stream(
        gw.addr,
        "/v1/messages?beta=true",
        &anthropic_headers(),
        &messages_request("anthropic/claude-a", true),
    );
    assert_status(&r, 200);
    assert!(r.complete, "{}", r.text());
    assert_header(&r, "x-switchback-model", "openai/gpt-4o");
    assert_header(&r, "x-switchback-attempts", "2");
    let evs = events(&r);
    assert_eq!(messages_stream_text(&evs), TEXT, "{}", r.text());
    assert!(
        evs.iter().any(|e| e.0.as_deref() == Some("ping")),
        "{evs:?}"
    );
    assert_eq!(
        evs.last().and_then(|e| e.0.as_deref()),
        Some("message_stop")
    );
    let delta = evs
        .iter()
        .find(|e| e.0.as_deref() == Some("message_delta"))
        .expect("message_delta");
    assert_eq!(delta.1["delta"]["stop_reason"], "end_turn");

    let q = &claude.requests()[0];
    assert_eq!(q.path, "/v1/messages?beta=true");
    assert_eq!(q.header("x-api-key"), Some("key-PRIMARY"));
    assert_eq!(q.header("anthropic-beta"), Some("claude-code-20250219"));
    let q = &openai.requests()[0];
    assert_eq!(q.path, "/v1/chat/completions");
    assert_eq!(q.header("authorization"), Some("Bearer key-SECONDARY"));
    assert_eq!(q.header("x-api-key"), None);
    assert_eq!(q.header("anthropic-beta"), None);
    let body = q.json();
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(body["stream"], true);
}

/// OpenAI answers 429; Anthropic's answer reaches the Messages client byte for byte, and
/// Anthropic got the client's body with only `model` replaced.
pub(crate) fn doors_messages_429_fails_over_to_anthropic_passthrough<R: Runtime>() {
    let openai = MockUpstream::start(vec![openai_error(429)]);
    let claude = MockUpstream::start(vec![Reply::json(200, messages_json_body())]);
    let gw = start::<R>(
        &pair("openai/gpt-4o", OPENAI, "anthropic/claude-b", ANTHROPIC),
        &[&openai, &claude],
    );
    let body = messages_request("openai/gpt-4o", false);
    let r = post(gw.addr, "/v1/messages", &anthropic_headers(), &body);
    assert_status(&r, 200);
    assert_eq!(r.text(), messages_json_body());
    assert_header(&r, "x-switchback-model", "anthropic/claude-b");
    let q = &claude.requests()[0];
    assert_eq!(q.path, "/v1/messages");
    assert_eq!(q.text(), body.replace("openai/gpt-4o", "claude-b"));
    assert_eq!(q.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(q.header("x-api-key"), Some("key-SECONDARY"));
}

/// A Messages client's tools reach an OpenAI target as functions, and its tool call comes
/// back as a `tool_use` block with `stop_reason: tool_use`.
pub(crate) fn doors_messages_tool_use_through_openai<R: Runtime>() {
    let openai = MockUpstream::start(vec![chat_tool_call_json()]);
    let gw = start::<R>(
        &format!("{HEAD}{}", entry("openai/gpt-4o", "PRIMARY", OPENAI)),
        &[&openai],
    );
    let body = json!({"model": "openai/gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "any"}});
    let r = post(gw.addr, "/v1/messages", &[], &body.to_string());
    assert_status(&r, 200);
    let v = r.json();
    assert_eq!(v["type"], "message", "{v}");
    assert_eq!(v["stop_reason"], "tool_use", "{v}");
    let call = v["content"]
        .as_array()
        .and_then(|c| c.iter().find(|b| b["type"] == "tool_use"))
        .expect("tool_use");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"], json!({"city": "Paris"}));
    let sent = openai.requests()[0].json();
    assert_eq!(
        sent["tools"][0]["function"]["name"], "get_weather",
        "{sent}"
    );
    assert_eq!(sent["tool_choice"], "required", "{sent}");
}

/// Codex's case: a `responses: true` provider answers 429, the Chat fallback's stream
/// reaches the Responses client as Responses events.
pub(crate) fn doors_responses_429_fails_over_to_chat_stream<R: Runtime>() {
    let primary = MockUpstream::start(vec![openai_error(429)]);
    let chat = MockUpstream::start(vec![sse(&chat_events())]);
    let gw = start::<R>(
        &pair("openai/gpt-5", RESPONSES, "mistral/devstral", OPENAI),
        &[&primary, &chat],
    );
    let r = post_stream(
        gw.addr,
        "/v1/responses",
        &[],
        &responses_request("openai/gpt-5", true),
    );
    assert_status(&r, 200);
    assert!(r.complete);
    let evs = events(&r);
    assert_eq!(responses_stream_text(&evs), TEXT, "{}", r.text());
    let last = evs.last().expect("events");
    assert_eq!(last.0.as_deref(), Some("response.completed"));
    assert_eq!(last.1["response"]["status"], "completed");
    assert_eq!(last.1["response"]["output"][0]["content"][0]["text"], TEXT);
    assert_eq!(primary.requests()[0].path, "/v1/responses");
    assert_eq!(
        primary.requests()[0].text(),
        responses_request("openai/gpt-5", true).replace("openai/gpt-5", "gpt-5")
    );
    let q = &chat.requests()[0];
    assert_eq!(q.path, "/v1/chat/completions");
    assert_eq!(q.json()["messages"][0]["role"], "system");
}

/// A Responses client failing over from OpenAI Chat to Anthropic, not streaming.
pub(crate) fn doors_responses_chat_429_fails_over_to_anthropic<R: Runtime>() {
    let openai = MockUpstream::start(vec![openai_error(429)]);
    let claude = MockUpstream::start(vec![Reply::json(200, messages_json_body())]);
    let gw = start::<R>(
        &pair("openai/gpt-4o", OPENAI, "anthropic/claude-b", ANTHROPIC),
        &[&openai, &claude],
    );
    let r = post(
        gw.addr,
        "/v1/responses",
        &[],
        &responses_request("openai/gpt-4o", false),
    );
    assert_status(&r, 200);
    let v = r.json();
    assert_eq!(v["object"], "response", "{v}");
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["output"][0]["content"][0]["text"], TEXT, "{v}");
    assert_eq!(v["model"], "anthropic/claude-b");
    assert_eq!(openai.requests()[0].path, "/v1/chat/completions");
    let sent = claude.requests()[0].json();
    assert_eq!(sent["system"], "Be brief.", "{sent}");
    assert_eq!(sent["max_tokens"], 100, "{sent}");
}

/// A same-API stream is relayed as the upstream's exact bytes, for Messages and Responses.
pub(crate) fn doors_same_api_streams_are_relayed_byte_for_byte<R: Runtime>() {
    let claude = MockUpstream::start(vec![sse(&messages_events())]);
    let resp = MockUpstream::start(vec![sse(&responses_events())]);
    let yaml = format!(
        "{HEAD}{}{}",
        entry("anthropic/claude-a", "PRIMARY", ANTHROPIC),
        entry("openai/gpt-5", "SECONDARY", RESPONSES)
    );
    let gw = start::<R>(&yaml, &[&claude, &resp]);
    let r = post_stream(
        gw.addr,
        "/v1/messages",
        &[],
        &messages_request("anthropic/claude-a", true),
    );
    assert_eq!(r.text(), messages_events().concat());
    let r = post_stream(
        gw.addr,
        "/v1/responses",
        &[],
        &responses_request("openai/gpt-5", true),
    );
    assert_eq!(r.text(), responses_events().concat());
}

/// Embeddings fail over to their fallback model like chat, never streamed.
pub(crate) fn doors_embeddings_429_fails_over<R: Runtime>() {
    let embedding = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5]}],"model":"e","usage":{"prompt_tokens":2,"total_tokens":2}}"#;
    let primary = MockUpstream::start(vec![openai_error(429)]);
    let fallback = MockUpstream::start(vec![Reply::json(200, embedding)]);
    let yaml = format!(
        "{HEAD}{}{}",
        entry("openai/text-embedding-3-small", "PRIMARY", "    default: true\n    retry_policy:\n      fallback_models: [together_ai/m2-bert]\n      default_max_attempts: 1\n"),
        entry("together_ai/m2-bert", "SECONDARY", "")
    );
    let gw = start::<R>(&yaml, &[&primary, &fallback]);
    let body =
        r#"{"model":"openai/text-embedding-3-small","input":"Hi","encoding_format":"float"}"#;
    let r = post(
        gw.addr,
        "/v1/embeddings",
        &[("Authorization", "Bearer client")],
        body,
    );
    assert_status(&r, 200);
    assert_eq!(r.text(), embedding);
    assert_header(&r, "x-switchback-model", "together_ai/m2-bert");
    assert_eq!(primary.requests()[0].path, "/v1/embeddings");
    let q = &fallback.requests()[0];
    assert_eq!(q.path, "/v1/embeddings");
    assert_eq!(
        q.text(),
        body.replace("openai/text-embedding-3-small", "m2-bert")
    );
    assert_eq!(q.header("authorization"), Some("Bearer key-SECONDARY"));
}

/// count_tokens goes to Anthropic; an OpenAI model's count is estimated here.
pub(crate) fn doors_count_tokens<R: Runtime>() {
    let claude = MockUpstream::start(vec![Reply::json(200, r#"{"input_tokens":17}"#)]);
    let openai = MockUpstream::start(vec![openai_error(500)]);
    let gw = start::<R>(
        &pair("anthropic/claude-a", ANTHROPIC, "openai/gpt-4o", OPENAI),
        &[&claude, &openai],
    );
    let body = |model: &str| {
        json!({"model": model, "messages": [{"role": "user", "content": "Count these words please"}]}).to_string()
    };
    let r = post(
        gw.addr,
        "/v1/messages/count_tokens?beta=true",
        &anthropic_headers(),
        &body("anthropic/claude-a"),
    );
    assert_status(&r, 200);
    assert_eq!(r.json(), json!({"input_tokens": 17}));
    assert_eq!(
        claude.requests()[0].path,
        "/v1/messages/count_tokens?beta=true"
    );
    let r = post(
        gw.addr,
        "/v1/messages/count_tokens",
        &[],
        &body("openai/gpt-4o"),
    );
    assert_status(&r, 200);
    assert_header(&r, "x-switchback-token-count", "estimated");
    assert!(
        r.json()["input_tokens"].as_u64().is_some_and(|n| n > 8),
        "{}",
        r.text()
    );
    assert_eq!(openai.calls(), 0);
}

/// Before commit a cut fails over invisibly; the client sees one well-formed stream of the
/// fallback's only, for a Messages and a Responses client.
pub(crate) fn doors_cut_before_commit_fails_over_invisibly<R: Runtime>() {
    let held = messages_events()[..3].to_vec();
    let claude = MockUpstream::start(vec![sse(&held).ending(Ending::Cut)]);
    let openai = MockUpstream::start(vec![sse(&chat_events())]);
    let gw = start::<R>(
        &pair("anthropic/claude-a", ANTHROPIC, "openai/gpt-4o", OPENAI),
        &[&claude, &openai],
    );
    let r = post_stream(
        gw.addr,
        "/v1/messages",
        &[],
        &messages_request("anthropic/claude-a", true),
    );
    assert!(r.complete);
    let evs = events(&r);
    assert_eq!(messages_stream_text(&evs), TEXT);
    assert_eq!(
        evs.iter()
            .filter(|e| e.0.as_deref() == Some("message_start"))
            .count(),
        1,
        "{evs:?}"
    );
    assert_header(&r, "x-switchback-model", "openai/gpt-4o");

    let r = post_stream(
        gw.addr,
        "/v1/responses",
        &[],
        &responses_request("anthropic/claude-a", true),
    );
    assert!(r.complete);
    let evs = events(&r);
    assert_eq!(responses_stream_text(&evs), TEXT, "{}", r.text());
    assert_eq!(
        evs.iter()
            .filter(|e| e.0.as_deref() == Some("response.created"))
            .count(),
        1
    );
}

/// After commit a cut ends the stream with the API's in-band error and no completion event.
pub(crate) fn doors_cut_after_commit_ends_with_the_apis_error<R: Runtime>() {
    let claude = MockUpstream::start(vec![sse(&messages_events()[..4]).ending(Ending::Cut)]);
    let openai = MockUpstream::start(vec![sse(&chat_events())]);
    let gw = start::<R>(
        &pair("anthropic/claude-a", ANTHROPIC, "openai/gpt-4o", OPENAI),
        &[&claude, &openai],
    );
    let r = post_stream(
        gw.addr,
        "/v1/messages",
        &[],
        &messages_request("anthropic/claude-a", true),
    );
    let evs = events(&r);
    assert_eq!(messages_stream_text(&evs), "Hello");
    let (name, data) = evs.last().expect("events");
    assert_eq!(name.as_deref(), Some("error"), "{evs:?}");
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["type"], "api_error");
    assert!(!r.text().contains("message_stop"));

    let r = post_stream(
        gw.addr,
        "/v1/responses",
        &[],
        &responses_request("anthropic/claude-a", true),
    );
    let evs = events(&r);
    let (name, data) = evs.last().expect("events");
    assert_eq!(name.as_deref(), Some("response.failed"), "{evs:?}");
    assert_eq!(data["response"]["status"], "failed");
    assert!(data["response"]["error"]["message"].is_string(), "{data}");
    responses_stream_text(&evs);
    assert!(!r.text().contains("response.completed"));
    assert_eq!(openai.calls(), 0, "no retry after commit");
}

/// Exhaustion, unknown models, wrong methods and unknown Anthropic paths, each in the
/// client API's shape; Claude Code's `HEAD /` warm-up is answered.
pub(crate) fn doors_error_shapes<R: Runtime>() {
    let claude = MockUpstream::start(vec![anthropic_error(529, "overloaded_error")]);
    let openai = MockUpstream::start(vec![openai_error(429)]);
    let gw = start::<R>(
        &pair("anthropic/claude-a", ANTHROPIC, "openai/gpt-4o", OPENAI),
        &[&claude, &openai],
    );
    let r = post(
        gw.addr,
        "/v1/messages",
        &[],
        &messages_request("anthropic/claude-a", true),
    );
    assert_status(&r, 429);
    assert_header(&r, "x-should-retry", "false");
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
    assert_eq!(v["error"]["code"], "retry_exhausted", "{v}");
    let attempts: Vec<&Value> = v["error"]["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .collect();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["error_type"], "http_529");

    let r = post(
        gw.addr,
        "/v1/responses",
        &[],
        &responses_request("anthropic/claude-a", false),
    );
    assert_status(&r, 429);
    assert_eq!(r.json()["error"]["type"], "retry_exhausted");

    let r = request(gw.addr, "GET", "/v1/messages", &[], b"");
    assert_status(&r, 405);
    assert_eq!(r.json()["type"], "error");
    let r = request(
        gw.addr,
        "POST",
        "/v1/messages/batches",
        &[("Content-Type", "application/json")],
        b"{}",
    );
    assert_status(&r, 404);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
    let r = post(gw.addr, "/v1/messages", &[], "{\"model\": ");
    assert_status(&r, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    let r: Response = request(gw.addr, "HEAD", "/", &[], b"");
    assert_status(&r, 200);
}
