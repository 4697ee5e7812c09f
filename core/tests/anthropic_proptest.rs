//! The Anthropic translations never panic, whatever the input.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use switchback_core::anthropic::{
    is_spend_limit, translate_error, translate_request, translate_response, StreamTranslator,
};
use switchback_core::sse::SseEvent;

/// Keys and strings that steer arbitrary JSON into the translators' interesting paths.
const WORDS: &[&str] = &[
    "messages",
    "role",
    "content",
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
    "type",
    "text",
    "image_url",
    "url",
    "data:image/png;base64,AAAA",
    "data:,x",
    "https://x/y.png",
    "file",
    "file_data",
    "tool_calls",
    "tool_call_id",
    "id",
    "name",
    "arguments",
    "{\"a\":1}",
    "[1]",
    "",
    "tools",
    "parameters",
    "tool_choice",
    "auto",
    "required",
    "none",
    "parallel_tool_calls",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "temperature",
    "top_p",
    "n",
    "logprobs",
    "stream",
    "model",
    "stop_reason",
    "end_turn",
    "tool_use",
    "input",
    "usage",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "message",
    "index",
    "delta",
    "text_delta",
    "input_json_delta",
    "partial_json",
    "content_block",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "message_delta",
    "message_stop",
    "error",
    "details",
    "error_code",
    "enforced_spend_limit_reached",
    "usage limit",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(WORDS).prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-10.0f64..10.0).prop_map(|f| json!(f)),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A body that is usually JSON, sometimes raw bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn event() -> impl Strategy<Value = SseEvent> {
    (proptest::option::of(word()), body()).prop_map(|(event, data)| SseEvent {
        event,
        data: String::from_utf8_lossy(&data).into_owned(),
        id: None,
        retry: None,
    })
}

/// An event shaped like Anthropic's, with fields drawn from small sets.
fn anthropic_event() -> impl Strategy<Value = SseEvent> {
    let kinds = proptest::sample::select(
        &[
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
            "ping",
            "error",
        ][..],
    );
    let delta_kinds =
        proptest::sample::select(&["text_delta", "input_json_delta", "thinking_delta"][..]);
    let block_kinds = proptest::sample::select(&["text", "tool_use", "thinking"][..]);
    (
        kinds,
        delta_kinds,
        block_kinds,
        0u64..4,
        word(),
        any::<bool>(),
        json_value(),
    )
        .prop_map(|(kind, delta, block, index, text, named, usage)| {
            let data = json!({
                "type": kind,
                "index": index,
                "message": { "id": text, "usage": usage },
                "content_block": { "type": block, "id": text, "name": text, "text": text },
                "delta": { "type": delta, "text": text, "partial_json": text, "stop_reason": text },
                "usage": usage,
                "error": { "type": text, "message": text },
            });
            SseEvent {
                event: named.then(|| kind.to_owned()),
                data: data.to_string(),
                id: None,
                retry: None,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn translate_request_never_panics(b in body(), max in any::<u32>()) {
        let _ = translate_request(&b, "claude", max);
    }

    #[test]
    fn translate_request_never_panics_on_chat_shaped_bodies(
        messages in prop::collection::vec(json_value(), 0..6),
        extra in json_value(),
    ) {
        let mut body = json!({ "messages": messages });
        if let (Some(obj), Value::Object(more)) = (body.as_object_mut(), extra) {
            obj.extend(more.into_iter().filter(|(k, _)| k != "messages"));
        }
        if let Ok(out) = translate_request(body.to_string().as_bytes(), "claude", 4096) {
            prop_assert!(serde_json::from_slice::<Value>(&out).is_ok());
        }
    }

    #[test]
    fn translate_response_never_panics(b in body()) {
        if let Ok(out) = translate_response(&b, "anthropic/claude") {
            prop_assert!(serde_json::from_slice::<Value>(&out).is_ok());
        }
    }

    #[test]
    fn translate_error_never_panics_and_is_json(status in any::<u16>(), b in body()) {
        let out = translate_error(status, &b);
        let v: Value = serde_json::from_slice(&out).expect("always JSON");
        prop_assert!(v["error"]["message"].is_string());
        prop_assert!(v["error"]["type"].is_string());
        let _ = is_spend_limit(&b);
    }

    #[test]
    fn stream_push_never_panics(events in prop::collection::vec(event(), 0..24), usage in any::<bool>()) {
        let mut t = StreamTranslator::new("anthropic/claude", usage);
        for e in &events {
            let _ = t.push(e);
        }
    }

    #[test]
    fn stream_push_never_panics_on_anthropic_shaped_events(
        events in prop::collection::vec(anthropic_event(), 0..24),
        usage in any::<bool>(),
    ) {
        let mut t = StreamTranslator::new("anthropic/claude", usage);
        for e in &events {
            for out in t.push(e) {
                if let switchback_core::anthropic::Translated::Chunk(s)
                | switchback_core::anthropic::Translated::Error(s) = out
                {
                    prop_assert!(serde_json::from_str::<Value>(&s).is_ok());
                }
            }
        }
    }
}
