//! `anthropic`: the Anthropic translators of `core/src/anthropic/` (request, response, error
//! and stream) over arbitrary bytes.
//!
//! Invariants: no panic; every body a translator produces is JSON (an object); the stream
//! translator's chunks and errors are JSON objects, nothing follows its `Done` or `Error`.
//! The inbound-API translators (`core/src/apis/`) get their own target, `translators`.

use switchback_core::anthropic::{
    translate_error, translate_request, translate_response, StreamTranslator, Translated,
};
use switchback_core::sse::SseFramer;

/// The first byte chooses the translator; the rest is its input.
pub fn check(data: &[u8]) {
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            if let Ok(body) = translate_request(input, "claude-3-5-sonnet", 4096) {
                assert_object(&body, "a translated request");
            }
        }
        1 => {
            if let Ok(body) = translate_response(input, "anthropic/claude-3-5-sonnet") {
                assert_object(&body, "a translated response");
            }
        }
        2 => assert_object(
            &translate_error(u16::from(which), input),
            "a translated error",
        ),
        _ => stream(input, which & 0x10 != 0),
    }
}

/// `input` as an Anthropic SSE stream, framed and translated event by event.
fn stream(input: &[u8], include_usage: bool) {
    let mut framer = SseFramer::new(64 * 1024);
    let mut translator = StreamTranslator::new("anthropic/claude-3-5-sonnet", include_usage);
    let mut over = false;
    framer.push(input);
    framer.finish();
    while let Some(event) = framer.next_event() {
        let Ok(event) = event else { continue };
        for out in translator.push(&event) {
            assert!(!over, "a translated event after the end: {out:?}");
            match out {
                Translated::Chunk(json) => assert_object(json.as_bytes(), "a chunk"),
                Translated::Error(json) => {
                    assert_object(json.as_bytes(), "an error event");
                    over = true;
                }
                Translated::Done => over = true,
            }
        }
    }
}

fn assert_object(body: &[u8], what: &str) {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what} is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    });
    assert!(value.is_object(), "{what} is not a JSON object: {value}");
}
