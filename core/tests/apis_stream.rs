//! Stream translation for every client API × upstream API: each output stream is checked
//! against its API's event grammar and accumulated the way the official SDKs accumulate it,
//! and every event's commit tag is checked.

use bytes::Bytes;
use serde_json::{json, Value};
use switchback_core::apis::{
    ApiRequest, ClientApi, ClientEvent, EventKind, StreamEnd, StreamTranslator, Target, UpstreamApi,
};
use switchback_core::sse::{SseEvent, SseFramer};

fn fixture(path: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Frames SSE bytes fed `chunk` bytes at a time.
fn frame(bytes: &[u8], chunk: usize) -> Vec<SseEvent> {
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
fn run(t: &mut StreamTranslator, sse: &[u8], chunk: usize) -> Vec<ClientEvent> {
    frame(sse, chunk).iter().flat_map(|e| t.push(e)).collect()
}

fn translator(client: ClientApi, upstream: UpstreamApi, include_usage: bool) -> StreamTranslator {
    StreamTranslator::translating(
        upstream,
        client,
        "p/model",
        include_usage,
        Default::default(),
    )
}

/// (event name, data as JSON or a string) of a client event's bytes.
fn parsed(e: &ClientEvent) -> (Option<String>, Value) {
    let evs = frame(&e.bytes, usize::MAX);
    assert_eq!(evs.len(), 1, "one SSE event per ClientEvent: {:?}", e.bytes);
    let ev = &evs[0];
    let data = serde_json::from_str(&ev.data).unwrap_or_else(|_| Value::String(ev.data.clone()));
    (ev.event.clone(), data)
}

/// The index of the first content event, checking every earlier event is held.
fn commit_index(events: &[ClientEvent]) -> usize {
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
fn accumulate_messages(events: &[ClientEvent]) -> Value {
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
fn accumulate_responses(events: &[ClientEvent]) -> Value {
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
fn accumulate_chat(events: &[ClientEvent]) -> Value {
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

#[test]
fn chat_stream_to_messages_client() {
    let sse = fixture("apis/chat/tool_call.sse");
    for chunk in [usize::MAX, 7, 1] {
        let events = run(
            &mut translator(ClientApi::Messages, UpstreamApi::ChatCompletions, false),
            &sse,
            chunk,
        );
        let i = commit_index(&events);
        assert_eq!(parsed(&events[i]).0.as_deref(), Some("content_block_delta"));
        let m = accumulate_messages(&events);
        assert_eq!(
            m,
            json!({
                "id": "msg_chatcmpl-123", "type": "message", "role": "assistant", "model": "p/model",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "name": "get_weather", "input": {"location": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 16, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4, "output_tokens": 10},
            }),
            "split every {chunk}"
        );
        assert_eq!(parsed(&events[1]).0.as_deref(), Some("ping"));
    }
}

#[test]
fn chat_stream_to_responses_client() {
    let sse = fixture("apis/chat/tool_call.sse");
    let events = run(
        &mut translator(ClientApi::Responses, UpstreamApi::ChatCompletions, false),
        &sse,
        13,
    );
    let i = commit_index(&events);
    assert_eq!(
        parsed(&events[i]).0.as_deref(),
        Some("response.output_text.delta")
    );
    let r = accumulate_responses(&events);
    assert_eq!(r["status"], "completed");
    assert_eq!(r["id"], "resp_chatcmpl-123");
    assert_eq!(r["output"][0]["content"][0]["text"], "Let me check.");
    assert_eq!(r["output"][1]["type"], "function_call");
    assert_eq!(r["output"][1]["arguments"], "{\"location\":\"Paris\"}");
    assert_eq!(r["output"][2]["name"], "get_time");
    assert_eq!(
        r["usage"],
        json!({"input_tokens": 20, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": 10,
               "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 30})
    );
}

#[test]
fn anthropic_stream_to_responses_client_drops_thinking() {
    let sse = fixture("anthropic/stream/tool_call.sse");
    let events = run(
        &mut translator(ClientApi::Responses, UpstreamApi::Messages, false),
        &sse,
        5,
    );
    commit_index(&events);
    let r = accumulate_responses(&events);
    assert_eq!(r["id"], "resp_msg_014p7gG3wDgGV9EUtLvnow3U");
    let types: Vec<&str> = r["output"]
        .as_array()
        .expect("output")
        .iter()
        .map(|i| i["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, ["message", "function_call", "function_call"]);
    assert_eq!(
        r["output"][1]["arguments"],
        "{\"location\": \"San Francisco, CA\"}"
    );
    assert_eq!(r["usage"]["input_tokens"], 572);
    assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 100);
    assert!(!String::from_utf8_lossy(
        &events
            .iter()
            .flat_map(|e| e.bytes.to_vec())
            .collect::<Vec<u8>>()
    )
    .contains("EqQBCgIYAhIM"));
}

#[test]
fn responses_stream_to_chat_and_messages_clients() {
    let sse = fixture("apis/responses/function_call.sse");
    let events = run(
        &mut translator(ClientApi::ChatCompletions, UpstreamApi::Responses, true),
        &sse,
        11,
    );
    commit_index(&events);
    let c = accumulate_chat(&events);
    assert_eq!(c["roles"], 1, "one role chunk");
    assert_eq!(c["content"], "Hi there.");
    assert_eq!(
        c["tool_calls"],
        json!([{"id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}])
    );
    assert_eq!(c["finish_reason"], "tool_calls");
    assert_eq!(c["usage"]["prompt_tokens"], 37);
    assert_eq!(c["usage"]["prompt_tokens_details"]["cached_tokens"], 5);
    assert_eq!(
        c["usage"]["completion_tokens_details"]["reasoning_tokens"],
        4
    );
    assert_eq!(c["done"], true);

    let events = run(
        &mut translator(ClientApi::Messages, UpstreamApi::Responses, false),
        &sse,
        3,
    );
    let m = accumulate_messages(&events);
    assert_eq!(
        m["content"][0],
        json!({"type": "text", "text": "Hi there."}),
        "reasoning dropped: {m}"
    );
    assert_eq!(m["content"][1]["input"], json!({"city": "Paris"}));
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(m["usage"]["cache_read_input_tokens"], 5);
    assert_eq!(m["usage"]["input_tokens"], 32);
}

#[test]
fn relays_keep_each_upstream_event_and_tag_its_meaning() {
    let cases = [
        (
            ClientApi::ChatCompletions,
            "apis/chat/tool_call.sse",
            1usize,
            EventKind::Done,
        ),
        (
            ClientApi::Messages,
            "anthropic/stream/tool_call.sse",
            2,
            EventKind::Done,
        ),
        (
            ClientApi::Responses,
            "apis/responses/function_call.sse",
            7,
            EventKind::Done,
        ),
    ];
    for (api, file, first_content, last) in cases {
        let sse = fixture(file);
        let upstream = frame(&sse, usize::MAX);
        let mut t = StreamTranslator::relay(api, "p/m");
        let events: Vec<ClientEvent> = upstream.iter().flat_map(|e| t.push(e)).collect();
        assert_eq!(
            events.len(),
            upstream.len(),
            "{api:?}: one client event per upstream event"
        );
        for (e, u) in events.iter().zip(&upstream) {
            assert_eq!(e.bytes, u.to_bytes(), "{api:?}: bytes relayed as framed");
        }
        assert_eq!(commit_index(&events), first_content, "{api:?}");
        assert_eq!(events.last().map(|e| e.kind.clone()), Some(last), "{api:?}");
        assert!(t.is_finished());
    }
}

#[test]
fn errors_mid_stream_take_the_clients_shape() {
    let sse = b"data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"Part\"}}]}\n\ndata: {\"error\":{\"message\":\"upstream overloaded\",\"type\":\"server_error\"}}\n\ndata: [DONE]\n\n";
    let m = run(
        &mut translator(ClientApi::Messages, UpstreamApi::ChatCompletions, false),
        sse,
        9,
    );
    let last = m.last().expect("events");
    assert!(
        matches!(&last.kind, EventKind::Error { detail } if detail.contains("upstream overloaded"))
    );
    let (name, data) = parsed(last);
    assert_eq!(name.as_deref(), Some("error"));
    assert_eq!(
        data,
        json!({"type": "error", "error": {"type": "server_error", "message": "upstream overloaded"}})
    );

    let r = run(
        &mut translator(ClientApi::Responses, UpstreamApi::ChatCompletions, false),
        sse,
        9,
    );
    let (name, data) = parsed(r.last().expect("events"));
    assert_eq!(name.as_deref(), Some("response.failed"));
    assert_eq!(data["response"]["status"], "failed");
    assert_eq!(data["response"]["error"]["message"], "upstream overloaded");
    accumulate_responses(&r);

    let anthropic = fixture("anthropic/stream/error_mid_stream.sse");
    let r = run(
        &mut translator(ClientApi::Responses, UpstreamApi::Messages, false),
        &anthropic,
        4,
    );
    let (_, data) = parsed(r.last().expect("events"));
    assert_eq!(data["response"]["error"]["code"], "overloaded_error");
    assert!(
        !r.iter().any(|e| e.kind == EventKind::Done),
        "nothing after the error"
    );
}

#[test]
fn an_error_before_content_is_an_error_event_not_content() {
    for client in [
        ClientApi::ChatCompletions,
        ClientApi::Messages,
        ClientApi::Responses,
    ] {
        let mut t = translator(client, UpstreamApi::Messages, false);
        let sse = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        let events = run(&mut t, sse, 1);
        assert!(
            events.iter().all(|e| e.kind != EventKind::Content),
            "{client:?}"
        );
        assert!(
            matches!(
                events.last().map(|e| &e.kind),
                Some(EventKind::Error { .. })
            ),
            "{client:?}"
        );
    }
}

#[test]
fn clean_ends_without_the_terminal_event() {
    let finished = b"data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"id\":\"c\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    let cut = b"data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n";
    for client in [
        ClientApi::ChatCompletions,
        ClientApi::Messages,
        ClientApi::Responses,
    ] {
        let mut t = if client == ClientApi::ChatCompletions {
            StreamTranslator::relay(client, "p/m")
        } else {
            translator(client, UpstreamApi::ChatCompletions, false)
        };
        let mut events = run(&mut t, finished, 5);
        let StreamEnd::Complete(rest) = t.end() else {
            panic!("{client:?}: complete")
        };
        assert_eq!(
            rest.last().map(|e| e.kind.clone()),
            Some(EventKind::Done),
            "{client:?}"
        );
        events.extend(rest);
        match client {
            ClientApi::Messages => {
                assert_eq!(accumulate_messages(&events)["content"][0]["text"], "Hi")
            }
            ClientApi::Responses => {
                assert_eq!(accumulate_responses(&events)["status"], "completed")
            }
            _ => assert_eq!(accumulate_chat(&events)["done"], true),
        }
        let mut t = translator(client, UpstreamApi::ChatCompletions, false);
        run(&mut t, cut, 5);
        assert_eq!(t.end(), StreamEnd::Truncated, "{client:?}");
    }
    // A finish reason in the last content chunk counts too.
    let mut t = StreamTranslator::relay(ClientApi::ChatCompletions, "p/m");
    run(
        &mut t,
        b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n",
        64,
    );
    assert!(matches!(t.end(), StreamEnd::Complete(_)));
    // A relayed Responses stream is complete only with its response.completed.
    let mut t = StreamTranslator::relay(ClientApi::Responses, "p/m");
    let sse = fixture("apis/responses/function_call.sse");
    let all = frame(&sse, usize::MAX);
    for e in &all[..all.len() - 1] {
        t.push(e);
    }
    assert_eq!(t.end(), StreamEnd::Truncated);
}

#[test]
fn terminal_errors_after_commit_per_client() {
    let sse = fixture("apis/responses/function_call.sse");
    let all = frame(&sse, usize::MAX);
    let mut t = StreamTranslator::relay(ClientApi::Responses, "openai/gpt-4.1");
    for e in &all[..8] {
        t.push(e);
    }
    let bytes = t.terminal_error(
        "The upstream stream stalled for 30000 ms; the answer is incomplete.",
        "stream_timeout",
    );
    let evs = frame(&bytes, usize::MAX);
    let data: Value = serde_json::from_str(&evs[0].data).expect("json");
    assert_eq!(evs[0].event.as_deref(), Some("response.failed"));
    assert_eq!(
        data["sequence_number"], 8,
        "continues the upstream's numbering"
    );
    assert_eq!(data["response"]["id"], "resp_abc");
    assert_eq!(data["response"]["error"]["code"], "stream_timeout");

    let mut t = StreamTranslator::relay(ClientApi::Messages, "p/m");
    let evs = frame(&t.terminal_error("cut", "stream_interrupted"), usize::MAX);
    assert_eq!(evs[0].event.as_deref(), Some("error"));
    let data: Value = serde_json::from_str(&evs[0].data).expect("json");
    assert_eq!(data["error"]["type"], "api_error");
    assert_eq!(data["error"]["code"], "stream_interrupted");

    let mut t = StreamTranslator::relay(ClientApi::ChatCompletions, "p/m");
    let evs = frame(&t.terminal_error("cut", "stream_truncated"), usize::MAX);
    assert_eq!(evs[0].event, None);
    assert_eq!(
        serde_json::from_str::<Value>(&evs[0].data).expect("json"),
        json!({"error": {"message": "cut", "type": "upstream_error", "code": "stream_truncated"}})
    );
    assert!(t.is_finished());
    assert!(
        t.push(&SseEvent::data("[DONE]")).is_empty(),
        "nothing after the terminal error"
    );

    let mut t = translator(ClientApi::Responses, UpstreamApi::ChatCompletions, false);
    let n = run(
        &mut t,
        b"data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        64,
    )
    .len();
    let evs = frame(&t.terminal_error("cut", "stream_truncated"), usize::MAX);
    let data: Value = serde_json::from_str(&evs[0].data).expect("json");
    assert_eq!(data["sequence_number"], n as u64);
}

#[test]
fn malformed_events_are_dropped_not_relayed() {
    for client in [
        ClientApi::ChatCompletions,
        ClientApi::Messages,
        ClientApi::Responses,
    ] {
        let mut relay = StreamTranslator::relay(client, "p/m");
        let out = relay.push(&SseEvent::data("{not json"));
        assert!(
            matches!(
                out.as_slice(),
                [ClientEvent {
                    kind: EventKind::Dropped { .. },
                    ..
                }]
            ),
            "{client:?}"
        );
        for upstream in [
            UpstreamApi::ChatCompletions,
            UpstreamApi::Messages,
            UpstreamApi::Responses,
        ] {
            let mut t = translator(client, upstream, false);
            let out = t.push(&SseEvent::data("{not json"));
            assert!(
                out.iter()
                    .all(|e| matches!(e.kind, EventKind::Dropped { .. })),
                "{client:?} {upstream:?}"
            );
        }
    }
}

#[test]
fn include_usage_is_honoured_for_chat_clients_of_translated_streams() {
    let sse = fixture("apis/responses/function_call.sse");
    let without = run(
        &mut translator(ClientApi::ChatCompletions, UpstreamApi::Responses, false),
        &sse,
        64,
    );
    assert!(accumulate_chat(&without).get("usage").is_none());
    let with = run(
        &mut translator(ClientApi::ChatCompletions, UpstreamApi::Responses, true),
        &sse,
        64,
    );
    assert_eq!(accumulate_chat(&with)["usage"]["total_tokens"], 48);
}

#[test]
fn the_facade_builds_the_right_stream_for_each_pair() {
    let body = Bytes::from_static(br#"{"model":"m","stream":true,"max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#);
    let req = ApiRequest::inspect(ClientApi::Messages, body).expect("valid");
    assert!(req.info().stream);
    let up = req
        .upstream_body(UpstreamApi::ChatCompletions, &Target::new("gpt-4o"))
        .expect("chat");
    let up: Value = serde_json::from_slice(&up).expect("json");
    assert_eq!(
        up["stream_options"]["include_usage"], true,
        "usage is asked for"
    );
    let mut t = req
        .translation(UpstreamApi::ChatCompletions, "openai/gpt-4o")
        .stream();
    let events = run(&mut t, &fixture("apis/chat/tool_call.sse"), 64);
    assert_eq!(accumulate_messages(&events)["model"], "openai/gpt-4o");
    let mut t = req
        .translation(UpstreamApi::Messages, "anthropic/c")
        .stream();
    let events = run(&mut t, &fixture("anthropic/stream/tool_call.sse"), 64);
    assert_eq!(
        commit_index(&events),
        2,
        "relayed: the first content_block_delta commits"
    );
}

/// One step of a generated Chat stream.
#[derive(Debug, Clone)]
enum Step {
    Text(String),
    Call { index: u64, with_id: bool },
    Finish(&'static str),
    Usage(u64),
}

fn chat_steps() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
    use proptest::prelude::*;
    let step = prop_oneof![
        3 => "[a-z ]{1,6}".prop_map(Step::Text),
        3 => (0u64..3, any::<bool>()).prop_map(|(index, with_id)| Step::Call { index, with_id }),
        1 => proptest::sample::select(&["stop", "length", "tool_calls", "content_filter"][..]).prop_map(Step::Finish),
        1 => (0u64..1000).prop_map(Step::Usage),
    ];
    proptest::collection::vec(step, 0..25)
}

/// The Chat SSE for the steps; each call's arguments are `{"n":<index>}` split in two halves
/// sent by its first two deltas, then `[DONE]` (when `done`).
fn chat_sse(steps: &[Step], done: bool) -> Vec<u8> {
    let mut out = String::new();
    let mut sent: Vec<(u64, usize)> = Vec::new();
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-p", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    for s in steps {
        match s {
            Step::Text(t) => out.push_str(&chunk(json!({"content": t}), Value::Null)),
            Step::Call { index, with_id } => {
                let args = format!("{{\"n\":{index}}}");
                let (a, b) = args.split_at(3);
                let n = sent.iter().filter(|(i, _)| i == index).count();
                let mut call = json!({"index": index, "function": {"arguments": if n == 0 { a } else if n == 1 { b } else { "" }}});
                if n == 0 {
                    call["function"]["name"] = json!(format!("f{index}"));
                    if *with_id {
                        call["id"] = json!(format!("call_{index}"));
                    }
                }
                sent.push((*index, n));
                out.push_str(&chunk(json!({"tool_calls": [call]}), Value::Null));
            }
            Step::Finish(r) => out.push_str(&chunk(json!({}), json!(r))),
            Step::Usage(n) => out.push_str(&format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-p", "choices": [], "usage": {"prompt_tokens": n, "completion_tokens": 1, "total_tokens": n + 1}})
            )),
        }
    }
    if done {
        out.push_str("data: [DONE]\n\n");
    }
    out.into_bytes()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Whatever a Chat upstream streams, a Messages client gets Anthropic's grammar (one block
    /// at a time, deltas only for open blocks, `message_delta` after the blocks, nothing
    /// after `message_stop`) and a Responses client gets numbered events whose final response
    /// repeats what the deltas built.
    #[test]
    fn translated_streams_keep_each_clients_grammar(steps in chat_steps(), done in proptest::prelude::any::<bool>()) {
        let sse = chat_sse(&steps, done);
        let m = run(&mut translator(ClientApi::Messages, UpstreamApi::ChatCompletions, false), &sse, 17);
        accumulate_messages_lenient(&m);
        let r = run(&mut translator(ClientApi::Responses, UpstreamApi::ChatCompletions, false), &sse, 17);
        accumulate_responses(&r);
        let c = run(&mut translator(ClientApi::ChatCompletions, UpstreamApi::Messages, true),
            &run(&mut translator(ClientApi::Messages, UpstreamApi::ChatCompletions, false), &sse, 64)
                .iter().flat_map(|e| e.bytes.to_vec()).collect::<Vec<u8>>(), 5);
        let c = accumulate_chat(&c);
        proptest::prop_assert!(c["roles"].as_u64().unwrap_or(0) <= 1, "at most one role chunk");
    }
}

/// [`accumulate_messages`] without requiring tool inputs to be complete JSON (a generated
/// call may be cut by a later one).
fn accumulate_messages_lenient(events: &[ClientEvent]) {
    let filtered: Vec<ClientEvent> = events
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Dropped { .. }))
        .cloned()
        .map(|mut e| {
            let (name, mut data) = parsed(&e);
            if name.as_deref() == Some("content_block_delta")
                && data["delta"]["type"] == "input_json_delta"
            {
                // Keep the grammar check, not the JSON one.
                data["delta"] = json!({"type": "text_delta", "text": ""});
                e.bytes = Bytes::from(format!("event: content_block_delta\ndata: {data}\n\n"));
            }
            e
        })
        .collect();
    accumulate_messages(&filtered);
}
