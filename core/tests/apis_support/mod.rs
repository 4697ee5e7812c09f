//! Helpers shared by the stream tests: framing, running a translator, and accumulating each
//! client API's stream the way its official SDK does, checking the API's grammar on the way.
#![allow(dead_code)]

use serde_json::{json, Value};
use switchback_core::apis::{ClientApi, ClientEvent, EventKind, StreamTranslator, UpstreamApi};
use switchback_core::sse::{SseEvent, SseFramer};

pub fn fixture(path: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Frames SSE bytes fed `chunk` bytes at a time.
pub fn frame(bytes: &[u8], chunk: usize) -> Vec<SseEvent> {
    let mut framer = SseFramer::new(1 << 20);
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        framer.push(piece);
        while let Some(ev) = framer.next_event() {
            out.push(ev.expect("within limits"));
        }
    }
    framer.finish();
    out
}

/// The client events for an upstream SSE fixture, through a fresh translator.
pub fn run(t: &mut StreamTranslator, sse: &[u8], chunk: usize) -> Vec<ClientEvent> {
    frame(sse, chunk).iter().flat_map(|e| t.push(e)).collect()
}

pub fn translator(
    client: ClientApi,
    upstream: UpstreamApi,
    include_usage: bool,
) -> StreamTranslator {
    StreamTranslator::translating(
        upstream,
        client,
        "p/model",
        include_usage,
        Default::default(),
    )
}

/// (event name, data as JSON or a string) of a client event's bytes.
pub fn parsed(e: &ClientEvent) -> (Option<String>, Value) {
    let evs = frame(&e.bytes, usize::MAX);
    assert_eq!(evs.len(), 1, "one SSE event per ClientEvent: {:?}", e.bytes);
    let ev = &evs[0];
    let data = serde_json::from_str(&ev.data).unwrap_or_else(|_| Value::String(ev.data.clone()));
    (ev.event.clone(), data)
}

/// The index of the first content event, checking every earlier event is held.
pub fn commit_index(events: &[ClientEvent]) -> usize {
    let i = events
        .iter()
        .position(|e| e.kind == EventKind::Content)
        .expect("a content event");
    assert!(
        events[..i].iter().all(|e| e.kind == EventKind::Held),
        "{events:?}"
    );
    i
}

/// Accumulates a Messages stream as the anthropic SDK does, checking the grammar.
pub fn accumulate_messages(events: &[ClientEvent]) -> Value {
    let mut message = Value::Null;
    let mut open: Vec<u64> = Vec::new();
    let mut partial: Vec<String> = Vec::new();
    let mut stopped = false;
    for e in events
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Dropped { .. }))
    {
        let (name, data) = parsed(e);
        let name = name.expect("Messages events are named");
        assert_eq!(data["type"], name.as_str(), "event name matches data type");
        assert!(!stopped, "nothing after message_stop");
        match name.as_str() {
            "message_start" => {
                assert!(message.is_null(), "one message_start");
                message = data["message"].clone();
            }
            "ping" => {}
            "content_block_start" => {
                assert!(
                    open.is_empty(),
                    "one block at a time, as Anthropic streams them"
                );
                let i = data["index"].as_u64().expect("index");
                assert_eq!(
                    i as usize,
                    message["content"].as_array().expect("content").len()
                );
                message["content"]
                    .as_array_mut()
                    .expect("content")
                    .push(data["content_block"].clone());
                partial.push(String::new());
                open.push(i);
            }
            "content_block_delta" => {
                let i = data["index"].as_u64().expect("index");
                assert!(open.contains(&i), "delta for an open block");
                let block = &mut message["content"][i as usize];
                let d = &data["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => {
                        let t = format!(
                            "{}{}",
                            block["text"].as_str().unwrap_or(""),
                            d["text"].as_str().expect("text")
                        );
                        block["text"] = json!(t);
                    }
                    Some("input_json_delta") => {
                        partial[i as usize].push_str(d["partial_json"].as_str().expect("json"))
                    }
                    other => panic!("unexpected delta {other:?}"),
                }
            }
            "content_block_stop" => {
                let i = data["index"].as_u64().expect("index");
                open.retain(|x| *x != i);
                if !partial[i as usize].is_empty() {
                    message["content"][i as usize]["input"] =
                        serde_json::from_str(&partial[i as usize]).expect("tool input JSON");
                }
            }
            "message_delta" => {
                assert!(open.is_empty(), "blocks stopped before message_delta");
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                message["usage"] = data["usage"].clone();
            }
            "message_stop" => {
                assert_eq!(e.kind, EventKind::Done);
                stopped = true;
            }
            "error" => {
                assert!(matches!(e.kind, EventKind::Error { .. }));
                message["error"] = data["error"].clone();
                stopped = true;
            }
            other => panic!("unknown Messages event {other}"),
        }
    }
    message
}

/// Accumulates a Responses stream as the openai SDK does, checking sequence numbers and that
/// the final response repeats what the deltas built.
pub fn accumulate_responses(events: &[ClientEvent]) -> Value {
    let mut output: Vec<Value> = Vec::new();
    let mut last = Value::Null;
    let events: Vec<&ClientEvent> = events
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Dropped { .. }))
        .collect();
    for (n, e) in events.iter().enumerate() {
        let (name, data) = parsed(e);
        let name = name.expect("Responses events are named");
        assert_eq!(data["type"], name.as_str());
        assert_eq!(
            data["sequence_number"], n as u64,
            "sequence numbers count from 0"
        );
        match name.as_str() {
            "response.created" | "response.in_progress" => {
                assert_eq!(data["response"]["status"], "in_progress");
            }
            "response.output_item.added" => {
                assert_eq!(data["output_index"], output.len() as u64);
                output.push(data["item"].clone());
            }
            "response.content_part.added" => {
                let i = data["output_index"].as_u64().expect("index") as usize;
                output[i]["content"]
                    .as_array_mut()
                    .expect("content")
                    .push(data["part"].clone());
            }
            "response.output_text.delta" => {
                let i = data["output_index"].as_u64().expect("index") as usize;
                assert_eq!(data["item_id"], output[i]["id"]);
                let part = &mut output[i]["content"][0];
                part["text"] = json!(format!(
                    "{}{}",
                    part["text"].as_str().unwrap_or(""),
                    data["delta"].as_str().expect("delta")
                ));
            }
            "response.function_call_arguments.delta" => {
                let i = data["output_index"].as_u64().expect("index") as usize;
                assert_eq!(data["item_id"], output[i]["id"]);
                let item = &mut output[i];
                item["arguments"] = json!(format!(
                    "{}{}",
                    item["arguments"].as_str().unwrap_or(""),
                    data["delta"].as_str().expect("delta")
                ));
            }
            "response.output_text.done" => {
                let i = data["output_index"].as_u64().expect("index") as usize;
                assert_eq!(data["text"], output[i]["content"][0]["text"]);
            }
            "response.function_call_arguments.done" => {
                let i = data["output_index"].as_u64().expect("index") as usize;
                assert_eq!(data["arguments"], output[i]["arguments"]);
            }
            "response.content_part.done" => {}
            "response.output_item.done" => {
                let i = data["output_index"].as_u64().expect("index") as usize;
                output[i] = data["item"].clone();
            }
            "response.completed" | "response.incomplete" => {
                assert_eq!(e.kind, EventKind::Done);
                assert_eq!(
                    data["response"]["output"],
                    Value::Array(output.clone()),
                    "final output repeats the deltas"
                );
                last = data["response"].clone();
            }
            "response.failed" => {
                assert!(matches!(e.kind, EventKind::Error { .. }));
                last = data["response"].clone();
            }
            other => panic!("unexpected Responses event {other}"),
        }
    }
    last
}

/// Accumulates a Chat stream (content, tool calls by index, finish reason, usage).
pub fn accumulate_chat(events: &[ClientEvent]) -> Value {
    let mut out = json!({"content": "", "tool_calls": [], "roles": 0, "done": false});
    for e in events
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Dropped { .. }))
    {
        let (name, data) = parsed(e);
        assert!(name.is_none(), "Chat events are unnamed");
        if data == json!("[DONE]") {
            assert_eq!(e.kind, EventKind::Done);
            out["done"] = json!(true);
            continue;
        }
        if let Some(u) = data.get("usage").filter(|u| !u.is_null()) {
            out["usage"] = u.clone();
        }
        let Some(choice) = data["choices"].get(0) else {
            continue;
        };
        let delta = &choice["delta"];
        if delta.get("role").is_some() {
            out["roles"] = json!(out["roles"].as_u64().unwrap_or(0) + 1);
        }
        if let Some(t) = delta["content"].as_str() {
            out["content"] = json!(format!("{}{t}", out["content"].as_str().unwrap_or("")));
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let i = call["index"].as_u64().expect("index") as usize;
            let calls = out["tool_calls"].as_array_mut().expect("calls");
            if i == calls.len() {
                calls.push(
                    json!({"id": call["id"], "name": call["function"]["name"], "arguments": ""}),
                );
            }
            let args = format!(
                "{}{}",
                calls[i]["arguments"].as_str().unwrap_or(""),
                call["function"]["arguments"].as_str().unwrap_or("")
            );
            calls[i]["arguments"] = json!(args);
        }
        if !choice["finish_reason"].is_null() {
            out["finish_reason"] = choice["finish_reason"].clone();
        }
    }
    out
}
