//! Stream translation for every client API × upstream API: each output stream is checked
//! against its API's event grammar and accumulated the way the official SDKs accumulate it,
//! and every event's commit tag is checked.

mod apis_support;

use apis_support::*;
use bytes::Bytes;
use serde_json::{json, Value};
use switchback_core::apis::{
    ApiRequest, ClientApi, ClientEvent, EventKind, StreamEnd, StreamTranslator, Target, UpstreamApi,
};
use switchback_core::sse::SseEvent;

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
