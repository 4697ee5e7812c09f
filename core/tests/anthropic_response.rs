//! Fixture tests for Anthropic message → OpenAI `chat.completion` translation.

use std::path::PathBuf;

use serde_json::{json, Value};
use switchback_core::anthropic::{translate_response, TranslateError};

const MODEL: &str = "anthropic/claude-sonnet-4-5";

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/anthropic/response")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

/// Translates `<name>.anthropic.json` and compares with `<name>.openai.json`.
fn check(name: &str) {
    let input = fixture(&format!("{name}.anthropic.json"));
    let expected = parse(&fixture(&format!("{name}.openai.json")));
    let out = translate_response(&input, MODEL).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(parse(&out), expected, "{name}");
}

#[test]
fn text_blocks_are_concatenated_and_thinking_dropped() {
    check("text");
}

#[test]
fn tool_use_becomes_tool_calls() {
    check("tool_use");
}

#[test]
fn tool_use_only_has_null_content() {
    check("tool_use_only");
}

#[test]
fn max_tokens_stop_is_length() {
    check("max_tokens");
}

#[test]
fn cache_tokens_count_as_prompt_tokens() {
    check("cache_usage");
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("something_new", "stop"),
    ] {
        let body = json!({"id":"msg_x","type":"message","role":"assistant","content":[],"stop_reason":stop,"usage":{"input_tokens":1,"output_tokens":1}});
        let out = translate_response(body.to_string().as_bytes(), MODEL).expect("translates");
        assert_eq!(parse(&out)["choices"][0]["finish_reason"], finish, "{stop}");
    }
}

#[test]
fn malformed_bodies_are_errors() {
    assert_eq!(
        translate_response(b"<html>", MODEL),
        Err(TranslateError::InvalidJson)
    );
    for body in [
        &br#"[]"#[..],
        br#"{"content":"text"}"#,
        br#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#,
    ] {
        assert!(
            matches!(
                translate_response(body, MODEL),
                Err(TranslateError::InvalidResponse(_))
            ),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn missing_fields_get_defaults() {
    let out = translate_response(br#"{"content":[{"type":"text","text":"hi"}]}"#, MODEL)
        .expect("translates");
    let v = parse(&out);
    assert_eq!(v["id"], "chatcmpl-anthropic");
    assert_eq!(v["choices"][0]["message"]["content"], "hi");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["total_tokens"], 0);
}
