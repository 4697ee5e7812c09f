//! Fixture tests for Anthropic SSE → OpenAI `chat.completion.chunk` translation.

use std::path::PathBuf;

use serde_json::{json, Value};
use switchback_core::anthropic::{StreamTranslator, Translated};
use switchback_core::sse::{SseEvent, SseFramer};

const MODEL: &str = "anthropic/claude-sonnet-4-5";

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/anthropic/stream")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Frames an SSE byte stream, fed `chunk` bytes at a time.
fn events(sse: &[u8], chunk: usize) -> Vec<SseEvent> {
    let mut framer = SseFramer::new(1 << 20);
    let mut out = Vec::new();
    for piece in sse.chunks(chunk) {
        framer.push(piece);
        while let Some(ev) = framer.next_event() {
            out.push(ev.expect("event within the size limit"));
        }
    }
    framer.finish();
    while let Some(ev) = framer.next_event() {
        out.push(ev.expect("event within the size limit"));
    }
    out
}

/// The translated events as values comparable with an `.expected.json` fixture:
/// `{"chunk": <json>}`, `{"error": <json>}` or `"done"`.
fn translate(events: &[SseEvent], include_usage: bool) -> Vec<Value> {
    let mut translator = StreamTranslator::new(MODEL, include_usage);
    let mut out = Vec::new();
    for ev in events {
        for t in translator.push(ev) {
            out.push(match t {
                Translated::Chunk(s) => {
                    json!({ "chunk": serde_json::from_str::<Value>(&s).expect("chunk JSON") })
                }
                Translated::Error(s) => {
                    json!({ "error": serde_json::from_str::<Value>(&s).expect("error JSON") })
                }
                Translated::Done => json!("done"),
            });
        }
    }
    out
}

fn check(sse: &str, expected: &str, include_usage: bool) {
    let sse = fixture(sse);
    let expected: Value =
        serde_json::from_slice(&fixture(expected)).expect("expected fixture is JSON");
    let Value::Array(expected) = expected else {
        panic!("expected fixture must be an array");
    };
    for chunk in [sse.len().max(1), 7, 1] {
        let got = translate(&events(&sse, chunk), include_usage);
        assert_eq!(got, expected, "split every {chunk} bytes");
    }
}

#[test]
fn plain_text_with_pings() {
    check("plain_text.sse", "plain_text.expected.json", false);
}

#[test]
fn plain_text_with_usage() {
    check("plain_text.sse", "plain_text_usage.expected.json", true);
}

#[test]
fn tool_calls_with_split_input_json() {
    check("tool_call.sse", "tool_call.expected.json", true);
}

#[test]
fn error_event_mid_stream() {
    check(
        "error_mid_stream.sse",
        "error_mid_stream.expected.json",
        false,
    );
}

fn ev(event: Option<&str>, data: &str) -> SseEvent {
    SseEvent {
        event: event.map(str::to_owned),
        data: data.to_owned(),
        id: None,
        retry: None,
    }
}

#[test]
fn event_type_is_taken_from_data_without_event_name() {
    let mut t = StreamTranslator::new(MODEL, false);
    let out = t.push(&ev(
        None,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}"#,
    ));
    assert_eq!(out.len(), 1);
    let Translated::Chunk(chunk) = &out[0] else {
        panic!("expected a chunk, got {out:?}");
    };
    let chunk: Value = serde_json::from_str(chunk).expect("JSON");
    assert_eq!(chunk["choices"][0]["delta"]["content"], "hi");
    assert_eq!(chunk["id"], "chatcmpl-anthropic");
}

#[test]
fn malformed_and_unknown_events_yield_nothing() {
    let mut t = StreamTranslator::new(MODEL, true);
    for e in [
        ev(Some("content_block_delta"), "{not json"),
        ev(Some("message_start"), "[1]"),
        ev(Some("brand_new_event"), r#"{"type":"brand_new_event"}"#),
        ev(Some("ping"), r#"{"type":"ping"}"#),
        ev(
            Some("content_block_stop"),
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        ev(None, "[DONE]"),
        ev(
            Some("content_block_delta"),
            r#"{"type":"content_block_delta","index":9,"delta":{"type":"input_json_delta","partial_json":"{"}}"#,
        ),
    ] {
        assert_eq!(t.push(&e), Vec::new(), "{e:?}");
    }
}

#[test]
fn error_event_with_malformed_data_is_still_an_error() {
    let mut t = StreamTranslator::new(MODEL, false);
    let out = t.push(&ev(Some("error"), "upstream exploded"));
    let [Translated::Error(body)] = out.as_slice() else {
        panic!("expected one error, got {out:?}");
    };
    let body: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(body["error"]["type"], "api_error");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("upstream exploded")));
}

#[test]
fn nothing_after_done() {
    let mut t = StreamTranslator::new(MODEL, false);
    assert_eq!(
        t.push(&ev(Some("message_stop"), r#"{"type":"message_stop"}"#)),
        vec![Translated::Done]
    );
    assert!(t
        .push(&ev(
            Some("content_block_delta"),
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"late"}}"#
        ))
        .is_empty());
    assert!(t
        .push(&ev(Some("message_stop"), r#"{"type":"message_stop"}"#))
        .is_empty());
}
