//! Provider scenarios over real loopback sockets on each runtime: cross-protocol failover
//! between OpenAI and Anthropic upstreams (the Anthropic mocks answer in the Messages
//! format, JSON and SSE, as Anthropic's documentation shows), Anthropic errors in OpenAI's
//! shape, and HTTPS upstreams trusted through `SWITCHBACK_CA_FILE`.
//!
//! The runtimes read `SWITCHBACK_CA_FILE` when they start, and the variable is
//! process-wide: every scenario here starts its gateway through [`gateway`], which makes
//! this binary's one test CA, writes it to a PEM file and sets the variable before the
//! first gateway starts.

#![cfg_attr(
    not(any(feature = "smol", feature = "tokio")),
    allow(dead_code, unused_imports)
)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::ServerConfig;
use serde_json::{json, Value};
use switchback_tests::client::{post_chat, Response, Streaming};
use switchback_tests::fixtures::{
    error_body, stream_content, stream_events, success_body, STREAM_TEXT, SUCCESS_CONTENT,
};
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::{MockUpstream, Recorded, Reply};
use switchback_tests::scenarios;
use switchback_tests::table::{
    assert_header, assert_status, error_of, indent, ms, start, Gw, HEAD,
};
use switchback_tests::tls::TestCa;

scenarios! {
    openai_429_fails_over_to_anthropic,
    openai_429_fails_over_to_anthropic_streaming_with_tool_calls,
    anthropic_529_fails_over_to_openai_with_the_clients_body,
    anthropic_400_reaches_the_client_in_openai_shape,
    anthropic_stream_error_before_content_fails_over_to_openai,
    anthropic_stream_error_after_content_ends_the_stream_with_an_error,
    https_upstreams_trusted_through_ca_file,
    https_untrusted_certificates_are_refused,
}

// ---------------------------------------------------------------------------------
// Fixtures: Anthropic's documented shapes (shared with core's translation tests)
// ---------------------------------------------------------------------------------

/// A Messages response: a thinking block, then two text blocks.
const MESSAGE_TEXT: &str =
    include_str!("../../core/tests/fixtures/anthropic/response/text.anthropic.json");
/// The text of [`MESSAGE_TEXT`].
const MESSAGE_TEXT_CONTENT: &str = "Hi! My name is Claude. How can I help?";
/// A Messages stream: thinking, text, a `ping`, two `tool_use` blocks whose input arrives
/// as `input_json_delta` fragments, `message_delta` with usage, `message_stop`.
const STREAM_TOOL_CALL: &str =
    include_str!("../../core/tests/fixtures/anthropic/stream/tool_call.sse");
const OVERLOADED: &str =
    include_str!("../../core/tests/fixtures/anthropic/error/overloaded.anthropic.json");
/// A Messages stream with an `error` event after some text.
const STREAM_ERROR_MID: &str =
    include_str!("../../core/tests/fixtures/anthropic/stream/error_mid_stream.sse");
const INVALID_REQUEST: &str =
    include_str!("../../core/tests/fixtures/anthropic/error/invalid_request.anthropic.json");

const OPENAI: &str = "openai/gpt-4o";
const CLAUDE: &str = "anthropic/claude-sonnet-4-5";

// ---------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------

/// This binary's certificates: a CA trusted through `SWITCHBACK_CA_FILE`, and server
/// configurations for HTTPS mocks.
struct Pki {
    /// Signed by the trusted CA, for `localhost` and `127.0.0.1`.
    trusted: Arc<ServerConfig>,
    /// Signed by a CA the gateway does not trust, for `localhost`.
    unknown_ca: Arc<ServerConfig>,
    /// Signed by the trusted CA, but only for `other.invalid`.
    wrong_name: Arc<ServerConfig>,
}

/// Makes the certificates once per binary and sets `SWITCHBACK_CA_FILE` before any
/// gateway of this binary starts.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = TestCa::new("switchback e2e test CA");
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "switchback-e2e-providers-ca-{}.pem",
            std::process::id()
        ));
        ca.write_pem(&path);
        std::env::set_var("SWITCHBACK_CA_FILE", &path);
        let stranger = TestCa::new("a CA nobody trusts");
        Pki {
            trusted: ca.server_config(&["localhost", "127.0.0.1"]),
            unknown_ca: stranger.server_config(&["localhost"]),
            wrong_name: ca.server_config(&["other.invalid"]),
        }
    })
}

/// Starts a gateway for `yaml` (see [`start`]) once the CA file is in place.
fn gateway<R: Runtime>(yaml: &str, mocks: &[&MockUpstream]) -> Gw {
    pki();
    start::<R>(yaml, mocks)
}

/// One provider entry at `base_url` (may name `${PRIMARY}` etc.), with `policy` as the
/// body of its `retry_policy`.
fn entry(model: &str, base_url: &str, default: bool, policy: Option<&str>) -> String {
    let key = model.split('/').next().unwrap_or(model);
    let mut y = format!(
        "  - model: {model}\n    base_url: {base_url}\n    access_key: key-{key}\n    timeouts: {{first_token: 2s, idle: 2s}}\n"
    );
    if default {
        y.push_str("    default: true\n");
    }
    if let Some(p) = policy {
        y.push_str("    retry_policy:\n");
        y.push_str(&indent(p, 6));
    }
    y
}

/// Fail over to another provider once, for the codes the defaults cover.
const FAILOVER: &str = "default_strategy: different_provider\ndefault_max_attempts: 1\n";

/// `first` (default, with [`FAILOVER`]) on `${PRIMARY}`, `second` on `${SECONDARY}`.
fn failover_pair(first: &str, second: &str) -> String {
    format!(
        "{HEAD}{}{}",
        entry(first, "http://127.0.0.1:${PRIMARY}", true, Some(FAILOVER)),
        entry(second, "http://127.0.0.1:${SECONDARY}", false, None)
    )
}

/// An SSE reply from Anthropic's raw event text, every event written in two halves (so
/// the gateway reassembles events across reads).
fn anthropic_sse(text: &str) -> Reply {
    let mut reply = Reply::sse(&[] as &[&str], Duration::ZERO);
    for event in text.split_inclusive("\n\n") {
        let (a, b) = event.as_bytes().split_at(event.len() / 2);
        reply = reply.chunk(ms(2), a).chunk(ms(2), b);
    }
    reply
}

/// Checks the request an Anthropic mock received: Messages path and credentials, no
/// OpenAI credentials. Returns the body.
fn assert_anthropic_request(q: &Recorded) -> Value {
    assert_eq!(q.method, "POST");
    assert_eq!(q.path, "/v1/messages");
    assert_eq!(
        q.header("x-api-key"),
        Some("key-anthropic"),
        "{:?}",
        q.headers
    );
    assert_eq!(
        q.header("anthropic-version"),
        Some("2023-06-01"),
        "{:?}",
        q.headers
    );
    assert_eq!(q.header("authorization"), None, "{:?}", q.headers);
    assert!(
        q.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{:?}",
        q.headers
    );
    let body = q.json();
    assert!(body.is_object(), "not JSON: {}", q.text());
    assert_eq!(body["model"], "claude-sonnet-4-5", "{body}");
    assert!(
        body["max_tokens"].as_u64().is_some_and(|n| n > 0),
        "max_tokens is required by Anthropic: {body}"
    );
    body
}

/// The JSON chunks of a clean OpenAI stream (every `data:` before the one `[DONE]`,
/// which must come last).
fn stream_chunks(r: &Response) -> Vec<Value> {
    assert_status(r, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream")),
        "content-type: {:?}",
        r.header("content-type")
    );
    assert!(r.complete, "the stream did not end cleanly: {}", r.text());
    let data = r.sse_data();
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "events: {data:?}"
    );
    assert_eq!(
        data.iter().filter(|d| *d == "[DONE]").count(),
        1,
        "{data:?}"
    );
    data[..data.len() - 1]
        .iter()
        .map(|d| {
            serde_json::from_str(d).unwrap_or_else(|e| panic!("a data line is not JSON ({e}): {d}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Cross-protocol failover
// ---------------------------------------------------------------------------------

/// OpenAI answers 429; the Anthropic fallback's Messages answer reaches the client as a
/// `chat.completion`, and the fallback got a Messages request.
fn openai_429_fails_over_to_anthropic<R: Runtime>() {
    let openai = MockUpstream::start(vec![Reply::json(429, error_body(429, "Rate limited"))]);
    let claude = MockUpstream::start(vec![Reply::json(200, MESSAGE_TEXT)]);
    let gw = gateway::<R>(&failover_pair(OPENAI, CLAUDE), &[&openai, &claude]);
    let r = post_chat(
        gw.addr,
        r#"{"model": "openai/gpt-4o", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "temperature": 0.2}"#,
    );
    assert_status(&r, 200);
    assert_header(&r, "x-switchback-model", CLAUDE);
    assert_header(&r, "x-switchback-attempts", "2");
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    let v = r.json();
    assert_eq!(v["object"], "chat.completion", "{v}");
    assert_eq!(v["id"], "chatcmpl-msg_013Zva2CMHLNnXjNJJKqJ2EF", "{v}");
    assert_eq!(v["model"], CLAUDE, "{v}");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant", "{v}");
    assert_eq!(
        v["choices"][0]["message"]["content"], MESSAGE_TEXT_CONTENT,
        "{v}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    assert_eq!(v["usage"]["prompt_tokens"], 2095, "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 503, "{v}");
    assert_eq!(v["usage"]["total_tokens"], 2598, "{v}");

    assert_eq!(openai.calls(), 1);
    let q = &openai.requests()[0];
    assert_eq!(q.path, "/v1/chat/completions");
    assert_eq!(q.header("authorization"), Some("Bearer key-openai"));
    assert_eq!(claude.calls(), 1);
    let sent = assert_anthropic_request(&claude.requests()[0]);
    assert_eq!(sent["system"], "Be brief.", "{sent}");
    let messages = sent["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{sent}");
    assert_eq!(messages[0]["role"], "user", "{sent}");
    assert!(
        !sent.to_string().contains("\"role\":\"system\""),
        "the system message stays in the messages: {sent}"
    );
    assert_eq!(sent["temperature"], 0.2, "{sent}");
}

/// The same, streaming: Anthropic's SSE (with `ping`, thinking, text and two tool calls
/// whose arguments arrive in fragments) reaches the client as `chat.completion.chunk`s,
/// the tool calls as `delta.tool_calls`, a usage chunk before `[DONE]`.
fn openai_429_fails_over_to_anthropic_streaming_with_tool_calls<R: Runtime>() {
    let openai = MockUpstream::start(vec![Reply::json(429, error_body(429, "Rate limited"))]);
    let claude = MockUpstream::start(vec![anthropic_sse(STREAM_TOOL_CALL)]);
    let gw = gateway::<R>(&failover_pair(OPENAI, CLAUDE), &[&openai, &claude]);
    let body = json!({
        "model": OPENAI,
        "messages": [{"role": "user", "content": "Weather in San Francisco?"}],
        "stream": true,
        "stream_options": {"include_usage": true},
        "tools": [{
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": {
                    "type": "object",
                    "properties": {"location": {"type": "string"}},
                    "required": ["location"],
                },
            },
        }, {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object"}},
        }],
    })
    .to_string();
    let r = Streaming::chat(gw.addr, &body).finish();
    assert_header(&r, "x-switchback-model", CLAUDE);
    let chunks = stream_chunks(&r);
    let all = format!("{chunks:#?}");
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
        assert_eq!(c["id"], "chatcmpl-msg_014p7gG3wDgGV9EUtLvnow3U", "{c}");
        assert_eq!(c["model"], CLAUDE, "{c}");
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["role"], "assistant",
        "{all}"
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Checking the weather.", "{all}");
    assert!(
        !all.contains("I should call the tool") && !all.contains("EqQBCgIYAhIM"),
        "thinking leaked: {all}"
    );

    // Tool calls: OpenAI indexes 0 and 1, the id and name first, then the arguments.
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    let of = |index: u64| calls.iter().filter(move |t| t["index"] == index);
    let first = |index: u64, key: &str| {
        of(index)
            .find_map(|t| t["function"][key].as_str().or(t[key].as_str()))
            .map(str::to_owned)
    };
    assert_eq!(
        of(0).find_map(|t| t["id"].as_str()),
        Some("toolu_01T1x1fJ34qAmk2tNTrN7Up6"),
        "{all}"
    );
    assert_eq!(first(0, "name").as_deref(), Some("get_weather"), "{all}");
    assert_eq!(first(1, "name").as_deref(), Some("get_time"), "{all}");
    assert!(
        of(0).all(|t| t["type"].is_null() || t["type"] == "function"),
        "{all}"
    );
    let args = |index: u64| -> String {
        of(index)
            .filter_map(|t| t["function"]["arguments"].as_str())
            .collect()
    };
    let weather: Value = serde_json::from_str(&args(0))
        .unwrap_or_else(|e| panic!("arguments {:?} are not JSON ({e}): {all}", args(0)));
    assert_eq!(weather, json!({"location": "San Francisco, CA"}));
    let time: Value = serde_json::from_str(&args(1))
        .unwrap_or_else(|e| panic!("arguments {:?} are not JSON ({e}): {all}", args(1)));
    assert_eq!(time, json!({}));
    assert!(
        of(0)
            .filter(|t| t["function"]["arguments"].is_string())
            .count()
            >= 2,
        "the argument fragments were not streamed: {all}"
    );

    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("tool_calls")], "{all}");

    // include_usage: the last chunk has no choices and the totals.
    let last = chunks.last().expect("chunks");
    assert_eq!(last["choices"], json!([]), "{all}");
    assert_eq!(last["usage"]["prompt_tokens"], 572, "{last}");
    assert_eq!(last["usage"]["completion_tokens"], 89, "{last}");
    assert_eq!(last["usage"]["total_tokens"], 661, "{last}");
    assert_eq!(
        last["usage"]["prompt_tokens_details"]["cached_tokens"], 100,
        "{last}"
    );

    let sent = assert_anthropic_request(&claude.requests()[0]);
    assert_eq!(sent["stream"], true, "{sent}");
    assert!(sent.get("stream_options").is_none(), "{sent}");
    assert_eq!(sent["tools"][0]["name"], "get_weather", "{sent}");
    assert_eq!(
        sent["tools"][0]["input_schema"]["required"],
        json!(["location"]),
        "{sent}"
    );
    assert_eq!(sent["tools"][1]["name"], "get_time", "{sent}");
    assert_eq!(openai.calls(), 1);
}

/// Anthropic answers 529 `overloaded_error` (retriable by default); the OpenAI fallback
/// gets the client's bytes with only the model replaced.
fn anthropic_529_fails_over_to_openai_with_the_clients_body<R: Runtime>() {
    let claude = MockUpstream::start(vec![Reply::json(529, OVERLOADED)]);
    let openai = MockUpstream::start(vec![Reply::json(200, success_body())]);
    let gw = gateway::<R>(&failover_pair(CLAUDE, OPENAI), &[&claude, &openai]);
    let body = r#"{"model":  "anthropic/claude-sonnet-4-5" , "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
  "temperature": 0.70, "x_vendor_field": {"keep": [1, 2.50, "z"]}, "seed": 7}"#;
    let r = post_chat(gw.addr, body);
    assert_status(&r, 200);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        SUCCESS_CONTENT,
        "{}",
        r.text()
    );
    assert_header(&r, "x-switchback-model", OPENAI);
    assert_header(&r, "x-switchback-attempts", "2");

    assert_eq!(claude.calls(), 1);
    assert_anthropic_request(&claude.requests()[0]);
    assert_eq!(openai.calls(), 1);
    let q = &openai.requests()[0];
    assert_eq!(q.path, "/v1/chat/completions");
    assert_eq!(q.header("authorization"), Some("Bearer key-openai"));
    assert_eq!(q.header("x-api-key"), None);
    assert_eq!(q.header("anthropic-version"), None);
    assert_eq!(
        q.text(),
        body.replace("\"anthropic/claude-sonnet-4-5\"", "\"gpt-4o\""),
        "the OpenAI upstream must get the client's bytes with only the model replaced"
    );
}

/// An Anthropic-only config: Anthropic's 400 reaches the client as a 400 in OpenAI's
/// error shape, without a retry.
fn anthropic_400_reaches_the_client_in_openai_shape<R: Runtime>() {
    let claude = MockUpstream::start(vec![Reply::json(400, INVALID_REQUEST)]);
    let yaml = format!(
        "{HEAD}{}",
        entry(CLAUDE, "http://127.0.0.1:${PRIMARY}", true, None)
    );
    let gw = gateway::<R>(&yaml, &[&claude]);
    let r = post_chat(
        gw.addr,
        r#"{"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]}"#,
    );
    assert_status(&r, 400);
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    let e = error_of(&r);
    assert_eq!(e["type"], "invalid_request_error", "{e}");
    assert_eq!(e["code"], "invalid_request_error", "{e}");
    assert_eq!(
        e["message"],
        "messages.1.content.0.image.source.base64.data: Image does not match the provided media type image/png",
        "{e}"
    );
    assert!(
        r.json().get("type").is_none(),
        "Anthropic's envelope reached the client: {}",
        r.text()
    );
    assert_eq!(claude.calls(), 1);
    assert_anthropic_request(&claude.requests()[0]);
}

/// An Anthropic stream whose `error` event (`overloaded_error`) comes before any content
/// is a failed attempt: the OpenAI fallback's stream reaches the client, and nothing of
/// the failed one does.
fn anthropic_stream_error_before_content_fails_over_to_openai<R: Runtime>() {
    let failing = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_x\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n\
event: ping\ndata: {\"type\": \"ping\"}\n\n\
event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";
    let claude = MockUpstream::start(vec![anthropic_sse(failing)]);
    let openai = MockUpstream::start(vec![Reply::sse(&stream_events(), ms(5))]);
    let gw = gateway::<R>(&failover_pair(CLAUDE, OPENAI), &[&claude, &openai]);
    let body = r#"{"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}], "stream": true}"#;
    let r = Streaming::chat(gw.addr, body).finish();
    assert_header(&r, "x-switchback-model", OPENAI);
    let chunks = stream_chunks(&r);
    assert_eq!(stream_content(&r.sse_data()), STREAM_TEXT);
    assert!(
        !r.text().contains("verloaded") && !r.text().contains("msg_x"),
        "the failed attempt reached the client: {}",
        r.text()
    );
    let roles = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["role"] == "assistant")
        .count();
    assert_eq!(roles, 1, "{chunks:?}");
    assert_eq!(claude.calls(), 1);
    assert_eq!(
        assert_anthropic_request(&claude.requests()[0])["stream"],
        true
    );
    assert_eq!(openai.calls(), 1);
    assert_eq!(
        openai.requests()[0].text(),
        body.replace("anthropic/claude-sonnet-4-5", "gpt-4o")
    );
}

/// After content reached the client, an Anthropic `error` event ends the stream with an
/// error event in OpenAI's shape and no `[DONE]`; nothing fails over.
fn anthropic_stream_error_after_content_ends_the_stream_with_an_error<R: Runtime>() {
    let claude = MockUpstream::start(vec![anthropic_sse(STREAM_ERROR_MID)]);
    let openai = MockUpstream::start(vec![Reply::sse(&stream_events(), ms(5))]);
    let gw = gateway::<R>(&failover_pair(CLAUDE, OPENAI), &[&claude, &openai]);
    let r = Streaming::chat(
        gw.addr,
        r#"{"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}], "stream": true}"#,
    )
    .finish();
    assert_status(&r, 200);
    let data = r.sse_data();
    assert_eq!(stream_content(&data), "Partial", "{data:?}");
    assert!(
        !data.iter().any(|d| d == "[DONE]"),
        "a failed stream must not end with [DONE]: {data:?}"
    );
    let last: Value = data
        .last()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    assert_eq!(last["error"]["message"], "Overloaded", "{data:?}");
    assert_eq!(last["error"]["type"], "overloaded_error", "{data:?}");
    assert_eq!(openai.calls(), 0, "a committed stream failed over");
}

// ---------------------------------------------------------------------------------
// HTTPS upstreams
// ---------------------------------------------------------------------------------

/// HTTPS upstreams with certificates of the CA in `SWITCHBACK_CA_FILE` work, by name
/// (`localhost`) and by IP address, for OpenAI and Anthropic, and TLS connections are
/// kept alive.
fn https_upstreams_trusted_through_ca_file<R: Runtime>() {
    let pki = pki();
    let openai = MockUpstream::start_tls(
        vec![Reply::json(200, success_body())],
        Arc::clone(&pki.trusted),
    );
    let claude = MockUpstream::start_tls(
        vec![Reply::json(200, MESSAGE_TEXT)],
        Arc::clone(&pki.trusted),
    );
    let yaml = format!(
        "{HEAD}{}{}",
        entry(OPENAI, "https://localhost:${PRIMARY}", true, None),
        entry(CLAUDE, "https://127.0.0.1:${SECONDARY}", false, None)
    );
    let gw = gateway::<R>(&yaml, &[&openai, &claude]);
    for _ in 0..2 {
        let r = post_chat(
            gw.addr,
            r#"{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}"#,
        );
        assert_status(&r, 200);
        assert_eq!(
            r.json()["choices"][0]["message"]["content"],
            SUCCESS_CONTENT
        );
    }
    assert_eq!(openai.calls(), 2);
    assert_eq!(
        openai.connections().len(),
        1,
        "the TLS connection was not reused: {:?}",
        openai.connections()
    );
    assert_eq!(
        openai.requests()[0].header("authorization"),
        Some("Bearer key-openai")
    );

    let r = post_chat(
        gw.addr,
        r#"{"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]}"#,
    );
    assert_status(&r, 200);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        MESSAGE_TEXT_CONTENT,
        "{}",
        r.text()
    );
    assert_anthropic_request(&claude.requests()[0]);
}

/// A certificate from a CA the gateway does not trust, or for another name, fails the
/// handshake: no request reaches the upstream and the client gets a gateway error.
fn https_untrusted_certificates_are_refused<R: Runtime>() {
    let pki = pki();
    let stranger = MockUpstream::start_tls(
        vec![Reply::json(200, success_body())],
        Arc::clone(&pki.unknown_ca),
    );
    let misnamed = MockUpstream::start_tls(
        vec![Reply::json(200, MESSAGE_TEXT)],
        Arc::clone(&pki.wrong_name),
    );
    let yaml = format!(
        "{HEAD}{}{}",
        entry(OPENAI, "https://localhost:${PRIMARY}", true, None),
        entry(CLAUDE, "https://localhost:${SECONDARY}", false, None)
    );
    let gw = gateway::<R>(&yaml, &[&stranger, &misnamed]);
    for model in [OPENAI, CLAUDE] {
        let r = post_chat(
            gw.addr,
            &format!(
                r#"{{"model": "{model}", "messages": [{{"role": "user", "content": "Hi"}}]}}"#
            ),
        );
        assert_status(&r, 502);
        let e = error_of(&r);
        assert_eq!(e["error_type"], "connect_error", "{model}: {e}");
        assert_header(&r, "x-should-retry", "false");
    }
    assert_eq!(
        stranger.calls(),
        0,
        "a request went to an untrusted upstream"
    );
    assert_eq!(misnamed.calls(), 0, "a request went to a misnamed upstream");
    assert!(
        !stranger.connections().is_empty() && !misnamed.connections().is_empty(),
        "the gateway never tried"
    );
}
