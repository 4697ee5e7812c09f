//! The wire of the client-API doors: upstream answers of each API (JSON, SSE, errors), the
//! requests of each client API, and reading SSE events by name.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use switchback_tests::client::{request, request_bytes, Response, Streaming};
use switchback_tests::mock_upstream::Reply;

/// Text every fixture answer carries, split where the first delta ends.
pub(crate) const TEXT: &str = "Hello from upstream";
const FIRST: &str = "Hello";
const REST: &str = " from upstream";

fn ev(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A Chat Completions answer calling `get_weather`.
pub(crate) fn chat_tool_call_json() -> Reply {
    Reply::json(
        200,
        json!({"id": "c2", "object": "chat.completion", "created": 0, "model": "up",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
        .to_string(),
    )
}

fn chat_chunk(delta: Value, finish: Value) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    )
}

/// A Chat Completions stream.
pub(crate) fn chat_events() -> Vec<String> {
    vec![
        chat_chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chat_chunk(json!({"content": FIRST}), Value::Null),
        chat_chunk(json!({"content": REST}), Value::Null),
        chat_chunk(json!({}), json!("stop")),
        "data: [DONE]\n\n".to_owned(),
    ]
}

/// An Anthropic message.
pub(crate) fn messages_json_body() -> String {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "up",
        "content": [{"type": "text", "text": TEXT}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 5, "output_tokens": 3}})
    .to_string()
}

/// An Anthropic stream (`ping` included); the first content event is the fourth.
pub(crate) fn messages_events() -> Vec<String> {
    vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "up", "stop_reason": null, "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ev("ping", json!({"type": "ping"})),
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": FIRST}}),
        ),
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": REST}}),
        ),
        ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        ev(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 3}}),
        ),
        ev("message_stop", json!({"type": "message_stop"})),
    ]
}

/// An Anthropic error of `kind` with `status`.
pub(crate) fn anthropic_error(status: u16, kind: &str) -> Reply {
    Reply::json(
        status,
        json!({"type": "error", "error": {"type": kind, "message": format!("upstream {kind}")}})
            .to_string(),
    )
}

/// An OpenAI error with `status`.
pub(crate) fn openai_error(status: u16) -> Reply {
    Reply::json(
        status,
        json!({"error": {"message": format!("upstream says {status}"), "type": "server_error", "code": status.to_string()}}).to_string(),
    )
}

/// A Responses stream; the first content event is the fifth.
pub(crate) fn responses_events() -> Vec<String> {
    let item = |status: &str, content: Value| json!({"id": "msg_1", "type": "message", "status": status, "role": "assistant", "content": content});
    let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": []});
    let response = |status: &str, output: Value| json!({"id": "resp_1", "object": "response", "status": status, "model": "up", "output": output});
    let text_event = |n: u64, kind: &str, extra: (&str, Value)| {
        let mut d = json!({"type": kind, "sequence_number": n, "output_index": 0, "item_id": "msg_1", "content_index": 0});
        d[extra.0] = extra.1;
        ev(kind, d)
    };
    vec![
        ev(
            "response.created",
            json!({"type": "response.created", "sequence_number": 0, "response": response("in_progress", json!([]))}),
        ),
        ev(
            "response.in_progress",
            json!({"type": "response.in_progress", "sequence_number": 1, "response": response("in_progress", json!([]))}),
        ),
        ev(
            "response.output_item.added",
            json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0, "item": item("in_progress", json!([]))}),
        ),
        text_event(3, "response.content_part.added", ("part", part(""))),
        text_event(4, "response.output_text.delta", ("delta", json!(FIRST))),
        text_event(5, "response.output_text.delta", ("delta", json!(REST))),
        text_event(6, "response.output_text.done", ("text", json!(TEXT))),
        text_event(7, "response.content_part.done", ("part", part(TEXT))),
        ev(
            "response.output_item.done",
            json!({"type": "response.output_item.done", "sequence_number": 8, "output_index": 0, "item": item("completed", json!([part(TEXT)]))}),
        ),
        ev(
            "response.completed",
            json!({"type": "response.completed", "sequence_number": 9, "response": response("completed", json!([item("completed", json!([part(TEXT)]))]))}),
        ),
    ]
}

/// An SSE reply of `events`.
pub(crate) fn sse(events: &[String]) -> Reply {
    Reply::sse(events, Duration::from_millis(5))
}

/// Posts `body` to `path` and reads the whole response.
pub(crate) fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    request(addr, "POST", path, &h, body.as_bytes())
}

/// Posts a streaming `body` to `path` and reads the stream to its end.
pub(crate) fn post_stream(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    let raw = request_bytes("POST", path, &h, body.as_bytes());
    let mut s = Streaming::send(addr, &raw).expect("send the request");
    s.read_head().expect("read the response head");
    s.finish()
}

/// The SSE events of a body: `(event name, data as JSON, or as a string)`.
pub(crate) fn events(r: &Response) -> Vec<(Option<String>, Value)> {
    r.text()
        .replace("\r\n", "\n")
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(|n| n.trim().to_owned());
            let data: String = e
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect::<Vec<_>>()
                .join("\n");
            let value = serde_json::from_str(&data).unwrap_or(Value::String(data));
            (name, value)
        })
        .collect()
}

/// The text of an Anthropic stream's `text_delta`s, checking its event grammar: named
/// events matching their `type`, `message_start` first, one block open at a time.
pub(crate) fn messages_stream_text(evs: &[(Option<String>, Value)]) -> String {
    assert_eq!(
        evs.first().and_then(|e| e.0.as_deref()),
        Some("message_start"),
        "{evs:?}"
    );
    let mut open = false;
    let mut text = String::new();
    for (name, data) in evs {
        let name = name
            .as_deref()
            .unwrap_or_else(|| panic!("an unnamed event: {data}"));
        assert_eq!(data["type"], name, "{data}");
        match name {
            "content_block_start" => {
                assert!(!open, "{evs:?}");
                open = true;
            }
            "content_block_stop" => open = false,
            "content_block_delta" => {
                assert!(open, "{evs:?}");
                text.push_str(data["delta"]["text"].as_str().unwrap_or(""));
            }
            _ => {}
        }
    }
    text
}

/// The text of a Responses stream's `output_text` deltas, checking its sequence numbers.
pub(crate) fn responses_stream_text(evs: &[(Option<String>, Value)]) -> String {
    let mut text = String::new();
    for (n, (name, data)) in evs.iter().enumerate() {
        let name = name
            .as_deref()
            .unwrap_or_else(|| panic!("an unnamed event: {data}"));
        assert_eq!(data["type"], name, "{data}");
        assert_eq!(data["sequence_number"], n as u64, "{evs:?}");
        if name == "response.output_text.delta" {
            text.push_str(data["delta"].as_str().unwrap_or(""));
        }
    }
    text
}

/// A Messages request for `model`.
pub(crate) fn messages_request(model: &str, stream: bool) -> String {
    json!({"model": model, "max_tokens": 256, "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Hi"}], "stream": stream, "metadata": {"user_id": "u1"}})
    .to_string()
}

/// A Responses request for `model`.
pub(crate) fn responses_request(model: &str, stream: bool) -> String {
    json!({"model": model, "instructions": "Be brief.", "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
        "stream": stream, "store": false, "max_output_tokens": 100})
    .to_string()
}
