//! No input panics a translator: arbitrary JSON, arbitrary bytes and arbitrary SSE event
//! sequences through every request, response, error and stream translation of every client
//! API × upstream API pair.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use switchback_core::apis::{
    count_tokens, errors, route, ApiRequest, ClientApi, EventKind, StreamTranslator, Target,
    UpstreamApi,
};
use switchback_core::sse::{SseEvent, SseFramer};

const CLIENTS: [ClientApi; 5] = [
    ClientApi::ChatCompletions,
    ClientApi::Messages,
    ClientApi::CountTokens,
    ClientApi::Responses,
    ClientApi::Embeddings,
];
const UPSTREAMS: [UpstreamApi; 5] = [
    UpstreamApi::ChatCompletions,
    UpstreamApi::Messages,
    UpstreamApi::Responses,
    UpstreamApi::Embeddings,
    UpstreamApi::CountTokens,
];

/// Keys and strings that steer arbitrary JSON into the translators' interesting paths.
const WORDS: &[&str] = &[
    "model",
    "messages",
    "input",
    "instructions",
    "role",
    "content",
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "type",
    "text",
    "input_text",
    "output_text",
    "refusal",
    "image",
    "image_url",
    "input_image",
    "input_file",
    "file",
    "file_data",
    "document",
    "source",
    "base64",
    "url",
    "data",
    "media_type",
    "data:image/png;base64,AAAA",
    "https://x/y.png",
    "tool_use",
    "tool_result",
    "tool_use_id",
    "tool_calls",
    "tool_call_id",
    "function",
    "function_call",
    "function_call_output",
    "call_id",
    "namespace",
    "arguments",
    "output",
    "id",
    "name",
    "{\"a\":1}",
    "[1",
    "",
    "tools",
    "parameters",
    "input_schema",
    "tool_choice",
    "auto",
    "any",
    "required",
    "none",
    "allowed_tools",
    "parallel_tool_calls",
    "max_tokens",
    "max_output_tokens",
    "stop",
    "stop_sequences",
    "temperature",
    "stream",
    "thinking",
    "signature",
    "redacted_thinking",
    "reasoning",
    "summary",
    "encrypted_content",
    "text",
    "format",
    "json_schema",
    "schema",
    "response_format",
    "output_config",
    "previous_response_id",
    "metadata",
    "user_id",
    "choices",
    "delta",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "status",
    "incomplete",
    "incomplete_details",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
    "text_delta",
    "input_json_delta",
    "partial_json",
    "content_block",
    "index",
    "stop_reason",
    "response.created",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.refusal.delta",
    "response.function_call_arguments.delta",
    "response.output_item.done",
    "response.content_part.done",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "output_index",
    "content_index",
    "item",
    "part",
    "sequence_number",
    "response",
    "[DONE]",
    "message",
    "cache_control",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(WORDS).prop_map(str::to_owned),
        1 => ".{0,10}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (0u64..70_000).prop_map(|n| json!(n)),
        (-3.0f64..3.0).prop_map(|f| json!(f)),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 80, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..7)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A body that is usually JSON shaped like a request, sometimes anything.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (json_value(), json_value(), json_value()).prop_map(|(messages, input, extra)| {
            let mut obj = json!({"model": "m", "messages": messages, "input": input});
            if let (Some(o), Value::Object(more)) = (obj.as_object_mut(), extra) {
                o.extend(more.into_iter().filter(|(k, _)| k != "model"));
            }
            obj.to_string().into_bytes()
        }),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..80),
    ]
}

fn event() -> impl Strategy<Value = SseEvent> {
    (proptest::option::of(word()), json_value(), json_value(), any::<u8>(), word()).prop_map(
        |(name, a, b, pick, kind)| {
            let data = match pick % 4 {
                0 => a.to_string(),
                1 => json!({"type": kind, "index": 0, "output_index": 0, "content_index": 0,
                            "delta": a, "content_block": b, "item": b, "part": a,
                            "choices": [{"delta": a, "finish_reason": b}], "usage": b}).to_string(),
                2 => json!({"type": kind, "delta": {"type": "text_delta", "text": kind, "partial_json": kind,
                            "stop_reason": b}, "index": pick % 3, "output_index": pick % 3,
                            "item": {"type": "function_call", "call_id": kind, "name": kind}}).to_string(),
                _ => "[DONE]".to_owned(),
            };
            SseEvent { event: name, data, id: None, retry: None }
        },
    )
}

/// Every emitted event frames back into one event whose data is JSON or `[DONE]`.
fn check_event_bytes(bytes: &Bytes) -> Result<(), TestCaseError> {
    let mut f = SseFramer::new(usize::MAX);
    f.push(bytes);
    let ev = f.next_event();
    prop_assert!(f.next_event().is_none());
    let ev = ev.expect("one event").expect("framed");
    prop_assert!(
        ev.data == "[DONE]" || serde_json::from_str::<Value>(&ev.data).is_ok(),
        "{}",
        ev.data
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn requests_never_panic_and_encode_json(b in body()) {
        for api in CLIENTS {
            let Ok(req) = ApiRequest::inspect(api, Bytes::from(b.clone())) else { continue };
            let _ = req.request();
            for upstream in UPSTREAMS {
                if let Ok(out) = req.upstream_body(upstream, &Target::new("x")) {
                    prop_assert!(serde_json::from_slice::<Value>(&out).is_ok());
                }
            }
        }
    }

    #[test]
    fn responses_and_errors_never_panic(b in body(), status in any::<u16>()) {
        let raw = Bytes::from(b);
        for api in CLIENTS {
            let req = ApiRequest::inspect(api, Bytes::from_static(br#"{"model":"m","messages":[],"input":"x"}"#))
                .expect("valid");
            for upstream in UPSTREAMS {
                let t = req.translation(upstream, "p/m");
                if let Ok(out) = t.success_body(raw.clone()) {
                    if !t.is_passthrough() {
                        prop_assert!(serde_json::from_slice::<Value>(&out).is_ok());
                    }
                }
                let _ = t.error_for_rules(status, &raw);
                let _ = t.error_for_client(status, raw.clone());
            }
            let shaped = errors::reshape(api, status, &raw);
            if api.anthropic_errors() && serde_json::from_slice::<Value>(&raw).map(|v| v["type"] != "error").unwrap_or(true) {
                let v: Value = serde_json::from_slice(&shaped).expect("JSON");
                prop_assert_eq!(&v["type"], "error");
                prop_assert!(v["error"]["message"].is_string());
            }
        }
        let _ = count_tokens::local_response(&raw);
    }

    #[test]
    fn streams_never_panic_and_stop_after_the_end(events in prop::collection::vec(event(), 0..30), usage in any::<bool>()) {
        let clients = [ClientApi::ChatCompletions, ClientApi::Messages, ClientApi::Responses];
        let upstreams = [UpstreamApi::ChatCompletions, UpstreamApi::Messages, UpstreamApi::Responses];
        for client in clients {
            let mut translators = vec![StreamTranslator::relay(client, "p/m")];
            for upstream in upstreams {
                translators.push(StreamTranslator::translating(upstream, client, "p/m", usage, Default::default()));
            }
            for mut t in translators {
                let mut ended = false;
                for e in &events {
                    for out in t.push(e) {
                        prop_assert!(!ended, "nothing after Done or Error");
                        match out.kind {
                            EventKind::Dropped { .. } => prop_assert!(out.bytes.is_empty()),
                            EventKind::Done | EventKind::Error { .. } => { ended = true; check_event_bytes(&out.bytes)?; }
                            _ => check_event_bytes(&out.bytes)?,
                        }
                    }
                }
                let _ = t.end();
                check_event_bytes(&t.terminal_error("cut", "stream_truncated"))?;
            }
        }
    }

    #[test]
    fn raw_bytes_through_the_framer_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for client in [ClientApi::ChatCompletions, ClientApi::Messages, ClientApi::Responses] {
            for upstream in [UpstreamApi::ChatCompletions, UpstreamApi::Messages, UpstreamApi::Responses] {
                let mut t = StreamTranslator::translating(upstream, client, "p/m", true, Default::default());
                let mut f = SseFramer::new(1 << 16);
                f.push(&bytes);
                while let Some(Ok(e)) = f.next_event() {
                    let _ = t.push(&e);
                }
            }
        }
    }

    #[test]
    fn paths_never_panic(path in ".{0,40}", query in proptest::option::of(".{0,20}")) {
        for client in CLIENTS {
            for upstream in UPSTREAMS {
                let p = route::upstream_path(&path, upstream, client, query.as_deref());
                prop_assert!(p.contains(upstream.endpoint()));
            }
        }
    }
}
