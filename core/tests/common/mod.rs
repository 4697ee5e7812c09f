//! Helpers shared by the core's integration tests.
#![allow(dead_code)]

use std::time::Instant;

/// The origin of a test's virtual time. The one real clock reading in the core's
/// tests: after it, time moves only when a test advances it.
#[allow(clippy::disallowed_methods)]
pub fn epoch() -> Instant {
    Instant::now()
}

use switchback_core::config::load_str;
use switchback_core::sim::Simulation;

/// A simulation of a config written inline (no environment variables).
pub fn sim(yaml: &str) -> Simulation {
    let loaded = load_str(yaml, &|_| None).unwrap_or_else(|e| panic!("test config: {e}"));
    Simulation::new(loaded.config, epoch())
}

/// The seed suite's OpenAI-shaped success body.
pub const SUCCESS: &str = r#"{"id":"chatcmpl-test-001","object":"chat.completion","created":1700000000,"model":"mock-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from mock provider!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#;

/// The seed suite's error body for `status`.
pub fn error_body(status: u16, message: &str) -> String {
    format!(r#"{{"error":{{"message":"{message}","type":"server_error","code":"{status}"}}}}"#)
}

/// The seed suite's chat request.
pub const CHAT: &str =
    r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"Hello"}]}"#;

/// A two-provider config (openai primary with `policy`, anthropic secondary), in the
/// seed templates' shape. `policy` is YAML indented for the `retry_policy:` key, or "".
pub fn two_providers(policy: &str) -> String {
    format!(
        "version: v0.3.0\nlisteners:\n  - type: model\n    name: l\n    port: 12000\nmodel_providers:\n  - model: openai/gpt-4o\n    base_url: http://127.0.0.1:1\n    access_key: k1\n    default: true\n{policy}\n  - model: anthropic/claude-3-5-sonnet\n    provider_interface: openai\n    base_url: http://127.0.0.1:2\n    access_key: k2\n"
    )
}

/// `text` with every line indented by `n` spaces.
pub fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("{pad}{l}\n"))
        .collect()
}

/// A `retry_policy:` block (unindented) with `lines` (unindented YAML) under it.
pub fn retry_policy(lines: &str) -> String {
    if lines.trim().is_empty() {
        return "retry_policy: {}\n".to_owned();
    }
    format!("retry_policy:\n{}", indent(lines, 2))
}

/// One `model_providers` entry for `model` on a fake base URL, OpenAI interface, key
/// `k<n>`, plus `extra` (unindented YAML lines of the entry, e.g. a `retry_policy`).
pub fn provider(model: &str, n: usize, extra: &str) -> String {
    format!(
        "  - model: {model}\n    base_url: http://127.0.0.1:{}\n    provider_interface: openai\n    access_key: k{n}\n{}",
        1000 + n,
        indent(extra, 4)
    )
}

/// A whole config: one listener (with `timeout` when given) and `providers`.
pub fn config(timeout: Option<&str>, providers: &[String]) -> String {
    let mut out = String::from(
        "version: v0.3.0\nlisteners:\n  - type: model\n    name: l\n    port: 12000\n",
    );
    if let Some(t) = timeout {
        out.push_str(&format!("    timeout: \"{t}\"\n"));
    }
    out.push_str("model_providers:\n");
    for p in providers {
        out.push_str(p);
    }
    out
}

/// A chat request body for `model`.
pub fn chat_body(model: &str, stream: bool) -> String {
    if stream {
        format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"Hello"}}],"stream":true}}"#
        )
    } else {
        format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"Hello"}}]}}"#)
    }
}

/// An OpenAI stream chunk with `delta` (JSON text) and an optional finish reason, from `id`.
pub fn chunk(id: &str, delta: &str, finish: Option<&str>) -> String {
    let finish = finish.map_or("null".to_owned(), |f| format!("\"{f}\""));
    format!(
        "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
    )
}

/// A complete OpenAI stream from `id`: role-only chunk, two content chunks, a finish
/// chunk and `[DONE]`.
pub fn full_stream(id: &str) -> Vec<String> {
    vec![
        chunk(id, r#"{"role":"assistant","content":""}"#, None),
        chunk(id, r#"{"content":"Hello"}"#, None),
        chunk(id, r#"{"content":" there"}"#, None),
        chunk(id, "{}", Some("stop")),
        "data: [DONE]\n\n".to_owned(),
    ]
}

/// How many `Send` actions a trace holds.
pub fn sends(trace: &[(Instant, switchback_core::machine::Action)]) -> usize {
    trace
        .iter()
        .filter(|(_, a)| matches!(a, switchback_core::machine::Action::Send { .. }))
        .count()
}
