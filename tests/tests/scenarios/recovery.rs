//! Stream recovery (spec §12) over loopback: a stream cut or stalled after commit reaches
//! the client as one complete answer when a candidate accepts the continuation, and as the
//! in-band error naming every failure when none does. Chat, Messages and Responses clients,
//! OpenAI-interface and Anthropic-interface targets.

use serde_json::{json, Value};
use switchback_tests::fixtures::*;
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::{Ending, MockUpstream, Reply};
use switchback_tests::table::{assert_status, ms, start, HEAD};

use crate::doors_wire::{events, messages_stream_text, post_stream, responses_stream_text};
use crate::harness::{assert_aborted_stream, assert_clean_stream, stream};

/// `n` numbered words from `from`, each with its trailing space.
fn words(from: usize, n: usize) -> Vec<String> {
    (from..from + n).map(|i| format!("w{i} ")).collect()
}

/// One provider entry on `${port_var}` with `lines` (indented by 4) after its timeouts.
fn entry(model: &str, port_var: &str, lines: &str) -> String {
    format!(
        "  - model: {model}\n    base_url: http://127.0.0.1:${{{port_var}}}\n    access_key: key-{port_var}\n    timeouts: {{first_token: 2s, idle: 1s}}\n{lines}"
    )
}

/// The primary's retry policy: fail over once to `fallback`, and recover streams.
fn policy(fallback: &str) -> String {
    format!(
        "    default: true\n    retry_policy:\n      fallback_models: [{fallback}]\n      default_max_attempts: 1\n      stream_recovery: {{max_continuations: 2}}\n"
    )
}

const ANTHROPIC: &str = "    provider_interface: anthropic\n";
const OPENAI: &str = "    provider_interface: openai\n";
const PREFILL: &str = "    continuation: assistant_prefill\n";

/// A Chat Completions stream of `pieces`: the role chunk, one chunk per piece, and (when
/// `complete`) the finish chunk and `[DONE]`.
fn chat_stream(pieces: &[String], complete: bool) -> Vec<String> {
    let mut evs = vec![role_event()];
    evs.extend(pieces.iter().map(|p| content_event(p)));
    if complete {
        evs.push(finish_event());
        evs.push(DONE_EVENT.to_owned());
    }
    evs
}

fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// An Anthropic Messages stream of `pieces` in one text block, complete or not.
fn anthropic_stream(id: &str, pieces: &[String], complete: bool) -> Vec<String> {
    let mut evs = vec![
        anthropic_event(
            "message_start",
            json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "content": [], "model": "up", "stop_reason": null, "usage": {"input_tokens": 9, "output_tokens": 1}}}),
        ),
        anthropic_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    for p in pieces {
        evs.push(anthropic_event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
        ));
    }
    if complete {
        evs.push(anthropic_event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        evs.push(anthropic_event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 7}}),
        ));
        evs.push(anthropic_event(
            "message_stop",
            json!({"type": "message_stop"}),
        ));
    }
    evs
}

fn sse(events: &[String]) -> Reply {
    Reply::sse(events, ms(2))
}

/// The 400 of a model that does not accept a prefill (Anthropic's words).
fn prefill_rejected() -> Reply {
    Reply::json(
        400,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "Prefilling assistant messages is not supported for this model."}}).to_string(),
    )
}

/// The last message of a request body.
fn last_message(body: &Value) -> Value {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or(Value::Null)
}

/// The `switchback` field of the stream's events (exactly one carries it).
fn switchback_field(evs: &[(Option<String>, Value)]) -> Value {
    let found: Vec<&Value> = evs
        .iter()
        .filter_map(|(_, d)| d.get("switchback"))
        .collect();
    assert_eq!(found.len(), 1, "one switchback field: {evs:?}");
    found[0].clone()
}

/// Chat client, OpenAI primary with `assistant_prefill`: the connection is cut after 40 of
/// 60 words; the same model continues, and the client reads all 60 words in one stream.
pub(crate) fn recovery_cut_after_40_words_same_model<R: Runtime>() {
    let first = words(1, 40);
    let rest = words(41, 20);
    let primary = MockUpstream::start(vec![
        sse(&chat_stream(&first, false)).ending(Ending::Cut),
        sse(&chat_stream(&rest, true)),
    ]);
    let fallback = MockUpstream::start(vec![prefill_rejected()]);
    let yaml = format!(
        "{HEAD}{}{}",
        entry(
            "openai/gpt-4o",
            "PRIMARY",
            &format!("{PREFILL}{}", policy("anthropic/claude-b"))
        ),
        entry("anthropic/claude-b", "SECONDARY", ANTHROPIC)
    );
    let gw = start::<R>(&yaml, &[&primary, &fallback]);
    let r = stream(gw.addr);
    assert_clean_stream(&r, &words(1, 60).concat());
    let evs = events(&r);
    let sb = switchback_field(&evs);
    assert_eq!(sb["continuations"], 1, "{sb}");
    assert_eq!(sb["models"], json!(["openai/gpt-4o"]), "{sb}");
    let ids: Vec<&str> = evs.iter().filter_map(|(_, d)| d["id"].as_str()).collect();
    assert!(ids.iter().all(|id| *id == "chatcmpl-stream-001"), "{ids:?}");

    assert_eq!((primary.calls(), fallback.calls()), (2, 0));
    let q = &primary.requests()[1];
    assert_eq!(q.path, "/v1/chat/completions");
    assert_eq!(q.header("authorization"), Some("Bearer key-PRIMARY"));
    let body = q.json();
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["messages"][0],
        json!({"role": "user", "content": "Hello"})
    );
    assert_eq!(
        last_message(&body),
        json!({"role": "assistant", "content": first.concat()})
    );

    // The recovery is counted, and so are both attempts.
    let text = scrape_until(
        gw.addr,
        r#"switchback_stream_recoveries_total{model="openai/gpt-4o",outcome="completed"} 1"#,
    );
    assert_has_lines(
        &text,
        &[
            r#"switchback_upstream_attempts_total{provider="openai/gpt-4o",error_type="stream_aborted"} 1"#,
            r#"switchback_upstream_attempts_total{provider="openai/gpt-4o",error_type="ok"} 1"#,
            r#"switchback_requests_total{api="chat_completions",model="openai/gpt-4o",status_class="2xx",outcome="success"} 1"#,
        ],
    );
}

/// Every one of `lines` is a whole line of the scrape `text`.
fn assert_has_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.lines().any(|l| l == *line), "{line} in:\n{text}");
    }
}

/// `GET /metrics` until a line reads `line` (the counters are written as the request
/// finishes, just after its last bytes), or 10 s pass; the last scrape's text.
fn scrape_until(addr: std::net::SocketAddr, line: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = switchback_tests::client::get(addr, "/metrics").text();
        if text.lines().any(|l| l == line) || std::time::Instant::now() > deadline {
            assert_has_lines(&text, &[line]);
            return text;
        }
        std::thread::sleep(ms(20));
    }
}

/// Messages client, Anthropic primary that cannot continue (`continuation: none`): it
/// stalls after 20 words; the OpenAI-interface fallback continues with Mistral's prefix,
/// and the client reads one Anthropic stream.
pub(crate) fn recovery_stall_continued_by_the_fallback<R: Runtime>() {
    let first = words(1, 20);
    let rest = words(21, 5);
    let primary = MockUpstream::start(vec![
        sse(&anthropic_stream("msg_1", &first, false)).ending(Ending::Stall)
    ]);
    let fallback = MockUpstream::start(vec![sse(&chat_stream(&rest, true))]);
    let yaml = format!(
        "{HEAD}{}{}",
        entry(
            "anthropic/claude-a",
            "PRIMARY",
            &format!(
                "{ANTHROPIC}    continuation: none\n{}",
                policy("mistral/mistral-large")
            )
        ),
        entry(
            "mistral/mistral-large",
            "SECONDARY",
            &format!("{OPENAI}    continuation: mistral_prefix\n")
        )
    );
    let gw = start::<R>(&yaml, &[&primary, &fallback]);
    let body = json!({"model": "anthropic/claude-a", "max_tokens": 256, "messages": [{"role": "user", "content": "Count."}], "stream": true}).to_string();
    let r = post_stream(
        gw.addr,
        "/v1/messages",
        &[("anthropic-version", "2023-06-01")],
        &body,
    );
    assert_status(&r, 200);
    assert!(r.complete, "{}", r.text());
    let evs = events(&r);
    assert_eq!(
        messages_stream_text(&evs),
        words(1, 25).concat(),
        "{}",
        r.text()
    );
    let starts = evs
        .iter()
        .filter(|e| e.0.as_deref() == Some("message_start"))
        .count();
    assert_eq!(starts, 1, "one message_start");
    assert_eq!(
        evs.last().and_then(|e| e.0.as_deref()),
        Some("message_stop")
    );
    let sb = switchback_field(&evs);
    assert_eq!(sb["models"], json!(["mistral/mistral-large"]), "{sb}");
    assert_eq!(sb["failures"][0]["error_type"], "timeout_1000ms", "{sb}");
    assert!(
        r.elapsed() >= ms(1000),
        "the stall was waited for: {:?}",
        r.elapsed()
    );

    assert_eq!((primary.calls(), fallback.calls()), (1, 1));
    assert!(
        primary.wait_closed_by_peer(0, ms(10_000)),
        "the stalled connection was closed"
    );
    let q = &fallback.requests()[0];
    assert_eq!(q.path, "/v1/chat/completions");
    assert_eq!(q.header("authorization"), Some("Bearer key-SECONDARY"));
    assert_eq!(q.header("anthropic-version"), None);
    assert_eq!(
        last_message(&q.json()),
        json!({"role": "assistant", "content": first.concat(), "prefix": true})
    );
}

/// Responses client: the primary answers 429, the Anthropic fallback streams and is cut;
/// asked first (it was streaming), the fallback rejects the prefill with a 400, and the
/// primary continues. The client reads one Responses stream, sequence numbers unbroken.
pub(crate) fn recovery_fallback_rejects_prefill_primary_accepts<R: Runtime>() {
    let first = words(1, 12);
    let rest = words(13, 6);
    let primary = MockUpstream::start(vec![
        Reply::json(429, error_body(429, "Rate limit exceeded")),
        sse(&chat_stream(&rest, true)),
    ]);
    let fallback = MockUpstream::start(vec![
        sse(&anthropic_stream("msg_1", &first, false)).ending(Ending::Cut),
        prefill_rejected(),
    ]);
    let yaml = format!(
        "{HEAD}{}{}",
        entry(
            "openai/gpt-4o",
            "PRIMARY",
            &format!("{PREFILL}{}", policy("anthropic/claude-b"))
        ),
        entry("anthropic/claude-b", "SECONDARY", ANTHROPIC)
    );
    let gw = start::<R>(&yaml, &[&primary, &fallback]);
    let body = json!({"model": "openai/gpt-4o", "input": "Count.", "stream": true}).to_string();
    let r = post_stream(gw.addr, "/v1/responses", &[], &body);
    assert_status(&r, 200);
    assert!(r.complete, "{}", r.text());
    let evs = events(&r);
    assert_eq!(
        responses_stream_text(&evs),
        words(1, 18).concat(),
        "{}",
        r.text()
    );
    let last = &evs.last().expect("events").1;
    assert_eq!(last["type"], "response.completed", "{last}");
    let sb = switchback_field(&evs);
    assert_eq!(
        sb["models"],
        json!(["anthropic/claude-b", "openai/gpt-4o"]),
        "{sb}"
    );
    assert_eq!(sb["failures"][1]["error_type"], "http_400", "{sb}");

    assert_eq!((primary.calls(), fallback.calls()), (2, 2));
    let rejected = fallback.requests()[1].json();
    assert_eq!(fallback.requests()[1].path, "/v1/messages");
    assert_eq!(
        last_message(&rejected),
        json!({"role": "assistant", "content": first.concat().trim_end()})
    );
    assert_eq!(
        last_message(&primary.requests()[1].json()),
        json!({"role": "assistant", "content": first.concat()})
    );
}

/// Chat client: the stream is cut and every candidate rejects the continuation; the
/// stream ends with the in-band error naming each failure, and no `[DONE]`.
pub(crate) fn recovery_every_candidate_rejects<R: Runtime>() {
    let first = words(1, 5);
    let primary = MockUpstream::start(vec![
        sse(&chat_stream(&first, false)).ending(Ending::Cut),
        Reply::json(
            400,
            json!({"error": {"message": "assistant prefill is not supported", "type": "invalid_request_error"}}).to_string(),
        ),
    ]);
    let fallback = MockUpstream::start(vec![prefill_rejected()]);
    let yaml = format!(
        "{HEAD}{}{}",
        entry(
            "openai/gpt-4o",
            "PRIMARY",
            &format!("{PREFILL}{}", policy("anthropic/claude-b"))
        ),
        entry("anthropic/claude-b", "SECONDARY", ANTHROPIC)
    );
    let gw = start::<R>(&yaml, &[&primary, &fallback]);
    let r = stream(gw.addr);
    let e = assert_aborted_stream(&r, &first.concat());
    assert!(r.complete, "the response body ends properly");
    let message = e["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("2 continuation(s) failed")
            && message.contains("openai/gpt-4o (assistant_prefill): http_400 (assistant prefill is not supported)")
            && message.contains("anthropic/claude-b (native): http_400 (Prefilling assistant messages is not supported for this model.)"),
        "{message}"
    );
    assert!(!r.text().contains("key-"), "no credentials in the stream");
    assert_eq!((primary.calls(), fallback.calls()), (2, 1));
    let text = scrape_until(
        gw.addr,
        r#"switchback_stream_recoveries_total{model="openai/gpt-4o",outcome="failed"} 1"#,
    );
    // A request that fails is counted under the last model tried.
    assert_has_lines(
        &text,
        &[
            r#"switchback_requests_total{api="chat_completions",model="anthropic/claude-b",status_class="2xx",outcome="stream_aborted"} 1"#,
        ],
    );
}

/// Chat client of an Anthropic primary: the stream is cut, and the same model continues
/// natively (a final assistant turn, its trailing space removed, on `/v1/messages`).
pub(crate) fn recovery_openai_client_anthropic_primary_native<R: Runtime>() {
    let first = words(1, 8);
    let rest = words(9, 4);
    let primary = MockUpstream::start(vec![
        sse(&anthropic_stream("msg_1", &first, false)).ending(Ending::Cut),
        sse(&anthropic_stream("msg_2", &rest, true)),
    ]);
    let yaml = format!(
        "{HEAD}{}",
        entry(
            "anthropic/claude-a",
            "PRIMARY",
            &format!(
                "{ANTHROPIC}    default: true\n    retry_policy:\n      stream_recovery: {{}}\n"
            )
        ),
    );
    let gw = start::<R>(&yaml, &[&primary]);
    let body = r#"{"model": "anthropic/claude-a", "messages": [{"role": "user", "content": "Count."}], "stream": true}"#;
    let s = switchback_tests::client::Streaming::chat(gw.addr, body);
    let r = s.finish();
    let data = r.sse_data();
    assert!(r.complete, "{}", r.text());
    assert_eq!(stream_content(&data), words(1, 12).concat(), "{data:?}");
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let roles = data.iter().filter(|d| d.contains("\"role\"")).count();
    assert_eq!(roles, 1, "one role chunk: {data:?}");
    assert_eq!(primary.calls(), 2);
    let q = &primary.requests()[1];
    assert_eq!(q.path, "/v1/messages");
    assert_eq!(q.header("x-api-key"), Some("key-PRIMARY"));
    assert_eq!(
        q.json()["messages"],
        json!([{"role": "user", "content": "Count."}, {"role": "assistant", "content": first.concat().trim_end()}])
    );
}
