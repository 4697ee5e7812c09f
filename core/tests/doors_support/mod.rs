//! Helpers for the client-API doors in simulation: one scripted answer per upstream API
//! (JSON and SSE), one request per client API, and reading what a client saw in its own
//! API (streams checked against the API's grammar by the SDK-style accumulators).
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use switchback_core::apis::{ClientApi, ClientEvent, EventKind};
use switchback_core::sim::{Ending, FakeReply, SimResponse, Simulation};
use switchback_core::sse::SseFramer;

use crate::apis_support::{accumulate_chat, accumulate_messages, accumulate_responses};

/// What an upstream speaks, as the fake upstreams answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaks {
    /// OpenAI Chat Completions.
    Chat,
    /// Anthropic Messages.
    Messages,
    /// OpenAI Responses (`responses: true`).
    Responses,
}

pub const SPEAKS: [Speaks; 3] = [Speaks::Chat, Speaks::Messages, Speaks::Responses];
pub const CLIENTS: [ClientApi; 3] = [
    ClientApi::ChatCompletions,
    ClientApi::Messages,
    ClientApi::Responses,
];

impl Speaks {
    /// The text every answer of this upstream carries.
    pub fn text(self) -> &'static str {
        match self {
            Speaks::Chat => "Hello from chat",
            Speaks::Messages => "Hello from claude",
            Speaks::Responses => "Hello from responses",
        }
    }

    /// The path a request to this upstream goes to (base URLs without a path).
    pub fn path(self) -> &'static str {
        match self {
            Speaks::Chat => "/v1/chat/completions",
            Speaks::Messages => "/v1/messages",
            Speaks::Responses => "/v1/responses",
        }
    }

    /// The YAML lines (indented for an entry) that make an entry speak this.
    pub fn entry_lines(self) -> &'static str {
        match self {
            Speaks::Chat => "    provider_interface: openai\n",
            Speaks::Messages => "    provider_interface: anthropic\n",
            Speaks::Responses => "    provider_interface: openai\n    responses: true\n",
        }
    }

    /// A whole successful answer.
    pub fn json(self) -> FakeReply {
        FakeReply::json(200, &self.json_body())
    }

    pub fn json_body(self) -> String {
        let t = self.text();
        match self {
            Speaks::Chat => json!({"id": "c1", "object": "chat.completion", "created": 0, "model": "up",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}),
            Speaks::Messages => json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "up",
                "content": [{"type": "text", "text": t}], "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 5, "output_tokens": 3}}),
            Speaks::Responses => json!({"id": "resp_1", "object": "response", "status": "completed", "model": "up",
                "output": [{"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": t, "annotations": []}]}],
                "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}}),
        }
        .to_string()
    }

    /// The events of a whole streamed answer, each a complete SSE event.
    pub fn events(self) -> Vec<String> {
        let t = self.text();
        let (first, rest) = t.split_at(5);
        let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        match self {
            Speaks::Chat => {
                let chunk = |delta: Value, finish: Value| {
                    format!(
                        "data: {}\n\n",
                        json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
                    )
                };
                vec![
                    chunk(json!({"role": "assistant", "content": ""}), Value::Null),
                    chunk(json!({"content": first}), Value::Null),
                    chunk(json!({"content": rest}), Value::Null),
                    chunk(json!({}), json!("stop")),
                    "data: [DONE]\n\n".to_owned(),
                ]
            }
            Speaks::Messages => vec![
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
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": first}}),
                ),
                ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": rest}}),
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
            ],
            Speaks::Responses => {
                let item = |text: &str, status: &str| {
                    json!({"id": "msg_1", "type": "message", "status": status, "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]})
                };
                let response = |status: &str, output: Value| json!({"id": "resp_1", "object": "response", "status": status, "model": "up", "output": output});
                let mut completed = response("completed", json!([item(t, "completed")]));
                completed["usage"] =
                    json!({"input_tokens": 5, "output_tokens": 3, "total_tokens": 8});
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
                        json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
                        "item": {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}}),
                    ),
                    ev(
                        "response.content_part.added",
                        json!({"type": "response.content_part.added", "sequence_number": 3, "output_index": 0, "item_id": "msg_1", "content_index": 0,
                        "part": {"type": "output_text", "text": "", "annotations": []}}),
                    ),
                    ev(
                        "response.output_text.delta",
                        json!({"type": "response.output_text.delta", "sequence_number": 4, "output_index": 0, "item_id": "msg_1", "content_index": 0, "delta": first}),
                    ),
                    ev(
                        "response.output_text.delta",
                        json!({"type": "response.output_text.delta", "sequence_number": 5, "output_index": 0, "item_id": "msg_1", "content_index": 0, "delta": rest}),
                    ),
                    ev(
                        "response.output_text.done",
                        json!({"type": "response.output_text.done", "sequence_number": 6, "output_index": 0, "item_id": "msg_1", "content_index": 0, "text": t}),
                    ),
                    ev(
                        "response.content_part.done",
                        json!({"type": "response.content_part.done", "sequence_number": 7, "output_index": 0, "item_id": "msg_1", "content_index": 0,
                        "part": {"type": "output_text", "text": t, "annotations": []}}),
                    ),
                    ev(
                        "response.output_item.done",
                        json!({"type": "response.output_item.done", "sequence_number": 8, "output_index": 0, "item": item(t, "completed")}),
                    ),
                    ev(
                        "response.completed",
                        json!({"type": "response.completed", "sequence_number": 9, "response": completed}),
                    ),
                ]
            }
        }
    }

    /// A whole streamed answer.
    pub fn sse(self) -> FakeReply {
        sse(&self.events(), Ending::End)
    }

    /// The stream cut (connection reset) after its first `n` events.
    pub fn cut_after(self, n: usize) -> FakeReply {
        sse(&self.events()[..n], Ending::Cut)
    }

    /// How many of [`events`](Self::events) come before the first content event.
    pub fn held_events(self) -> usize {
        match self {
            Speaks::Chat => 1,
            Speaks::Messages => 3,
            Speaks::Responses => 4,
        }
    }

    /// This upstream's error reply for `status`, in its own shape.
    pub fn error(self, status: u16) -> FakeReply {
        FakeReply::json(status, &self.error_body(status))
    }

    pub fn error_body(self, status: u16) -> String {
        match self {
            Speaks::Messages => {
                let kind = match status {
                    429 => "rate_limit_error",
                    529 => "overloaded_error",
                    400 => "invalid_request_error",
                    _ => "api_error",
                };
                json!({"type": "error", "error": {"type": kind, "message": format!("upstream says {status}")}})
            }
            _ => json!({"error": {"message": format!("upstream says {status}"), "type": "server_error", "code": format!("e{status}")}}),
        }
        .to_string()
    }
}

/// An SSE reply of `events`, 5 ms apart.
pub fn sse(events: &[String], ending: Ending) -> FakeReply {
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    FakeReply::sse(&refs, Duration::from_millis(5), ending)
}

/// A minimal request of `api` for `model`.
pub fn request(api: ClientApi, model: &str, stream: bool) -> String {
    match api {
        ClientApi::ChatCompletions => json!({"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": stream}),
        ClientApi::Messages => json!({"model": model, "max_tokens": 100, "system": "Be brief.", "messages": [{"role": "user", "content": "Hi"}], "stream": stream}),
        ClientApi::Responses => json!({"model": model, "instructions": "Be brief.", "input": "Hi", "stream": stream}),
        ClientApi::CountTokens => json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]}),
        ClientApi::Embeddings => json!({"model": model, "input": "Hi"}),
    }
    .to_string()
}

/// Posts a request of `api` to its door.
pub fn post(s: &mut Simulation, api: ClientApi, body: &str) -> SimResponse {
    s.post(api.path(), &[("content-type", "application/json")], body)
        .expect("simulation")
}

/// The SSE events of a streamed body, each tagged with what its name says (completion
/// events `Done`, error events `Error`), as the accumulators expect.
pub fn client_events(body: &Bytes) -> Vec<ClientEvent> {
    let mut framer = SseFramer::new(1 << 22);
    framer.push(body);
    framer.finish();
    let mut out = Vec::new();
    while let Some(ev) = framer.next_event() {
        let ev = ev.expect("within limits");
        let kind = match (ev.event.as_deref(), ev.data.as_str()) {
            (_, "[DONE]")
            | (Some("message_stop" | "response.completed" | "response.incomplete"), _) => {
                EventKind::Done
            }
            (Some("error" | "response.failed"), _) => EventKind::Error {
                detail: ev.data.clone(),
            },
            (None, d) if d.contains("\"error\"") => EventKind::Error {
                detail: ev.data.clone(),
            },
            _ => EventKind::Held,
        };
        out.push(ClientEvent {
            bytes: ev.to_bytes(),
            kind,
        });
    }
    out
}

/// The answer a client of `api` saw, accumulated as its SDK would (streams checked against
/// the API's grammar): `(text, complete)`. `complete` is false for a stream that ended with
/// the API's in-band error instead of its completion event.
pub fn answer(api: ClientApi, r: &SimResponse) -> (String, bool) {
    let v = r.json();
    let body = String::from_utf8_lossy(&r.body).into_owned();
    if !r.streamed {
        let text = match api {
            ClientApi::ChatCompletions => v["choices"][0]["message"]["content"]
                .as_str()
                .map(str::to_owned),
            ClientApi::Messages => {
                assert_eq!(v["type"], "message", "{body}");
                Some(texts(&v["content"]))
            }
            _ => {
                assert_eq!(v["object"], "response", "{body}");
                Some(
                    v["output"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|item| texts(&item["content"]))
                        .collect(),
                )
            }
        };
        return (
            text.unwrap_or_else(|| panic!("no answer text: {body}")),
            true,
        );
    }
    let events = client_events(&r.body);
    match api {
        ClientApi::ChatCompletions => {
            let acc = accumulate_chat(&events);
            let done = acc["done"] == true;
            assert_eq!(acc["roles"], 1, "one role chunk: {body}");
            (acc["content"].as_str().unwrap_or("").to_owned(), done)
        }
        ClientApi::Messages => {
            let m = accumulate_messages(&events);
            let last = events.last().map(|e| e.kind.clone());
            (texts(&m["content"]), last == Some(EventKind::Done))
        }
        _ => {
            let last = events.last().map(|e| e.kind.clone());
            let resp = accumulate_responses(&events);
            let complete = last == Some(EventKind::Done);
            let text = if complete {
                resp["output"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|item| texts(&item["content"]))
                    .collect()
            } else {
                // A failed response repeats no output: the text is what the deltas carried.
                let mut framer = SseFramer::new(1 << 22);
                framer.push(&r.body);
                std::iter::from_fn(|| framer.next_event())
                    .flatten()
                    .filter(|e| e.event.as_deref() == Some("response.output_text.delta"))
                    .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
                    .filter_map(|d| d["delta"].as_str().map(str::to_owned))
                    .collect()
            };
            (text, complete)
        }
    }
}

/// The text of every text-bearing part of a content list (`text` or `output_text`).
fn texts(content: &Value) -> String {
    content
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| matches!(p["type"].as_str(), Some("text" | "output_text")))
        .filter_map(|p| p["text"].as_str())
        .collect()
}

/// The error object a client of `api` got in a whole error response: OpenAI's `error` for
/// OpenAI APIs, Anthropic's (checked to be `{"type":"error","error":{...}}`) for Messages.
pub fn error_object(api: ClientApi, r: &SimResponse) -> Value {
    let v = r.json();
    if api.anthropic_errors() {
        assert_eq!(v["type"], "error", "not Anthropic's error shape: {v}");
    }
    assert!(v["error"].is_object(), "no error object: {v}");
    v["error"].clone()
}

/// The primary of each interface, and the status it fails with.
pub fn primary(speaks: Speaks) -> (&'static str, u16) {
    match speaks {
        Speaks::Chat => ("openai/gpt-4o", 429),
        Speaks::Messages => ("anthropic/claude-a", 529),
        Speaks::Responses => ("openrouter/resp-a", 429),
    }
}

/// A fallback of each interface (prefixes differ from every primary's).
pub fn fallback(speaks: Speaks) -> &'static str {
    match speaks {
        Speaks::Chat => "vllm/chat-b",
        Speaks::Messages => "claudeproxy/claude-b",
        Speaks::Responses => "respproxy/resp-b",
    }
}

/// What an upstream of `speaks` is asked to speak for a `client` request: a `responses:
/// true` provider answers Responses clients in Responses, everyone else in Chat.
pub fn used(client: ClientApi, speaks: Speaks) -> Speaks {
    match (speaks, client) {
        (Speaks::Responses, ClientApi::Responses) => Speaks::Responses,
        (Speaks::Responses, _) => Speaks::Chat,
        (other, _) => other,
    }
}

pub fn entry(model: &str, speaks: Speaks, port: u16, primary: bool) -> String {
    let mut y = format!(
        "  - model: {model}\n    base_url: http://127.0.0.1:{port}\n    access_key: key-{port}\n{}",
        speaks.entry_lines()
    );
    if primary {
        y.push_str("    default: true\n    retry_policy:\n      default_strategy: different_provider\n      default_max_attempts: 1\n");
    }
    y
}

pub fn pair_config(first: Speaks, second: Speaks) -> String {
    format!(
        "version: v0.3.0\nmodel_providers:\n{}{}",
        entry(primary(first).0, first, 1001, true),
        entry(fallback(second), second, 1002, false)
    )
}
