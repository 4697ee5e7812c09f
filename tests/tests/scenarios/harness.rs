//! Harness: the config snippets, scripted replies and assertions the scenarios share.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use switchback_tests::client::{Response, Streaming};
use switchback_tests::fixtures::*;
use switchback_tests::mock_upstream::{Framing, Reply};
use switchback_tests::table::{assert_header, assert_status, error_of, indent, HEAD};

/// Per-attempt timeouts for scenarios that do not test them (a stuck gateway still
/// fails fast).
pub(crate) const NORMAL: &str = "{first_token: 2s, idle: 2s}";
/// Per-attempt timeouts for scenarios that do.
pub(crate) const SHORT: &str = "{first_token: 300ms, idle: 300ms}";

/// The seed's retry policy of IT-1, IT-3, IT-12, IT-13: 429 fails over, twice.
pub(crate) const RETRY_429: &str = "default_strategy: different_provider
default_max_attempts: 2
on_status_codes:
  - codes: [429]
    strategy: different_provider
    max_attempts: 2
";

/// One provider entry. `policy` is the body of its `retry_policy` (unindented).
pub(crate) fn provider(
    model: &str,
    port_var: &str,
    timeouts: &str,
    policy: Option<&str>,
) -> String {
    let mut y = format!(
        "  - model: {model}\n    base_url: http://127.0.0.1:${{{port_var}}}\n    access_key: key-{port_var}\n    timeouts: {timeouts}\n"
    );
    if model.starts_with("anthropic/") {
        // The mocks speak the OpenAI wire format.
        y.push_str("    provider_interface: openai\n");
    }
    if model == "openai/gpt-4o" {
        y.push_str("    default: true\n");
    }
    if let Some(p) = policy {
        y.push_str("    retry_policy:\n");
        y.push_str(&indent(p, 6));
    }
    y
}

/// The seed's two-provider layout: `openai/gpt-4o` (default, with `policy`) on
/// `${PRIMARY}` and `anthropic/claude-3-5-sonnet` on `${SECONDARY}`, both with `timeouts`.
pub(crate) fn pair(policy: Option<&str>, timeouts: &str) -> String {
    pair_with(policy, timeouts, timeouts)
}

/// [`pair`] with the primary's and the secondary's own timeouts: a scenario whose
/// primary misbehaves gives it [`SHORT`] and the healthy secondary [`NORMAL`], so a
/// loaded machine never turns the expected answer into a timeout.
pub(crate) fn pair_with(policy: Option<&str>, primary: &str, secondary: &str) -> String {
    format!(
        "{HEAD}{}{}",
        provider("openai/gpt-4o", "PRIMARY", primary, policy),
        provider("anthropic/claude-3-5-sonnet", "SECONDARY", secondary, None)
    )
}

/// Timeouts for a scenario that waits on something else (a hung upstream, a block):
/// far past any bound the scenario asserts.
pub(crate) const LONG: &str = "{first_token: 30s, idle: 30s}";

/// A JSON reply framed like the seed's Python mocks (HTTP/1.0, close-delimited).
pub(crate) fn seed_json(status: u16, body: &str) -> Reply {
    Reply::json(status, body).framing(Framing::Http10)
}

pub(crate) fn seed_429() -> Reply {
    seed_json(429, &error_body(429, "Rate limit exceeded"))
}

pub(crate) fn seed_ok() -> Reply {
    seed_json(200, &success_body())
}

pub(crate) fn ok() -> Reply {
    Reply::json(200, success_body())
}

pub(crate) fn too_many() -> Reply {
    Reply::json(429, error_body(429, "Rate limit exceeded"))
}

pub(crate) fn stream_ok() -> Reply {
    Reply::sse(&stream_events(), Duration::from_millis(10))
}

pub(crate) fn assert_success_content(r: &Response) {
    assert_status(r, 200);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        SUCCESS_CONTENT,
        "body: {}",
        r.text()
    );
}

pub(crate) fn assert_exhausted(r: &Response, status: u16, attempts: usize) -> Value {
    assert_status(r, status);
    let e = error_of(r);
    assert_eq!(e["type"], "retry_exhausted", "{e}");
    assert_eq!(e["code"], "retry_exhausted", "{e}");
    assert_eq!(e["message"], "All retry attempts exhausted", "{e}");
    assert_eq!(e["total_attempts"], attempts, "{e}");
    assert_eq!(
        e["attempts"].as_array().map(Vec::len),
        Some(attempts),
        "{e}"
    );
    assert_eq!(e["retry_budget_exhausted"], false, "{e}");
    assert_header(r, "x-should-retry", "false");
    e
}

pub(crate) fn stream(addr: SocketAddr) -> Response {
    let s = Streaming::chat(addr, &stream_request());
    s.finish()
}

/// A stream that ended cleanly with exactly the text `text`, one role, and `[DONE]` last.
pub(crate) fn assert_clean_stream(r: &Response, text: &str) {
    assert_status(r, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream")),
        "content-type: {:?}",
        r.header("content-type")
    );
    assert!(
        r.complete,
        "the stream body did not end cleanly: {}",
        r.text()
    );
    let data = r.sse_data();
    assert_eq!(stream_content(&data), text, "events: {data:?}");
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "events: {data:?}"
    );
    assert_eq!(
        data.iter().filter(|d| d.as_str() == "[DONE]").count(),
        1,
        "events: {data:?}"
    );
    assert!(
        !data.iter().any(|d| d.contains("\"error\"")),
        "an error event in a clean stream: {data:?}"
    );
    let roles = data
        .iter()
        .filter(|d| d.contains("\"role\":\"assistant\""))
        .count();
    assert_eq!(roles, 1, "one stream, one role chunk: {data:?}");
}

/// A committed stream that ended with a terminal error event and no `[DONE]`.
pub(crate) fn assert_aborted_stream(r: &Response, text_before: &str) -> Value {
    assert_status(r, 200);
    let data = r.sse_data();
    assert_eq!(stream_content(&data), text_before, "events: {data:?}");
    assert!(
        !data.iter().any(|d| d == "[DONE]"),
        "a failed stream must not end with [DONE]: {data:?}"
    );
    let last: Value = data
        .last()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    assert!(
        last["error"]["message"].is_string(),
        "the last event is not an error event: {data:?}"
    );
    last["error"].clone()
}
