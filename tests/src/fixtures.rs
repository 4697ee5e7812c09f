//! Request and response bodies the scenarios share (the seed suite's, where it has them).

use serde_json::json;

/// The seed's `SUCCESS_RESPONSE`.
pub fn success_body() -> String {
    json!({
        "id": "chatcmpl-test-001",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "mock-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Hello from mock provider!"},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    })
    .to_string()
}

/// The content of [`success_body`].
pub const SUCCESS_CONTENT: &str = "Hello from mock provider!";

/// The seed's `make_error_response(status, message)`.
pub fn error_body(status: u16, message: &str) -> String {
    json!({"error": {"message": message, "type": "server_error", "code": status.to_string()}})
        .to_string()
}

/// An OpenAI error body with a given `code` (e.g. `context_length_exceeded`).
pub fn coded_error_body(message: &str, kind: &str, code: &str) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

/// The seed's `CHAT_REQUEST_BODY`.
pub fn chat_request() -> String {
    r#"{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}"#.to_owned()
}

/// The same with `"stream": true`.
pub fn stream_request() -> String {
    r#"{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hello"}], "stream": true}"#
        .to_owned()
}

/// One SSE chunk event with a delta and finish reason.
pub fn chunk_event(delta: serde_json::Value, finish: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-stream-001",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "mock-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    format!("data: {chunk}\n\n")
}

/// A role-only chunk (held before the commit point).
pub fn role_event() -> String {
    chunk_event(json!({"role": "assistant"}), None)
}

/// A content chunk (the commit point).
pub fn content_event(text: &str) -> String {
    chunk_event(json!({ "content": text }), None)
}

/// The final chunk with `finish_reason: stop`.
pub fn finish_event() -> String {
    chunk_event(json!({}), Some("stop"))
}

/// `data: [DONE]`.
pub const DONE_EVENT: &str = "data: [DONE]\n\n";

/// The seed's `STREAMING_SUCCESS_CHUNKS`: "Hello", " from", " stream!", stop, [DONE].
pub fn stream_events() -> Vec<String> {
    vec![
        chunk_event(json!({"role": "assistant", "content": "Hello"}), None),
        content_event(" from"),
        content_event(" stream!"),
        finish_event(),
        DONE_EVENT.to_owned(),
    ]
}

/// The text of [`stream_events`].
pub const STREAM_TEXT: &str = "Hello from stream!";

/// An in-band SSE error event.
pub fn error_event(message: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"error": {"message": message, "type": "server_error", "code": "overloaded"}})
    )
}

/// The concatenated `delta.content` of the JSON `data:` payloads (ignores the rest).
pub fn stream_content(data: &[String]) -> String {
    data.iter()
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}
