//! Fixture tests for OpenAI chat request → Anthropic Messages request translation.

use std::path::PathBuf;

use serde_json::Value;
use switchback_core::anthropic::{translate_request, TranslateError, DEFAULT_MAX_TOKENS};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/anthropic/request")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

/// Translates `<name>.openai.json` and compares with `<name>.anthropic.json`.
fn check(name: &str) {
    let input = fixture(&format!("{name}.openai.json"));
    let expected = json(&fixture(&format!("{name}.anthropic.json")));
    let out = translate_request(&input, "claude-sonnet-4-5", DEFAULT_MAX_TOKENS)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(json(&out), expected, "{name}");
}

fn reject(name: &str) -> TranslateError {
    let input = fixture(&format!("{name}.openai.json"));
    match translate_request(&input, "claude-sonnet-4-5", DEFAULT_MAX_TOKENS) {
        Ok(out) => panic!(
            "{name}: expected an error, got {}",
            String::from_utf8_lossy(&out)
        ),
        Err(e) => e,
    }
}

#[test]
fn system_and_multi_turn_with_dropped_fields() {
    check("system_multi_turn");
}

#[test]
fn images_by_url_and_base64() {
    check("images");
}

#[test]
fn tools_with_auto_choice_and_no_parallel_calls() {
    check("tools_auto");
}

#[test]
fn tool_choice_required_becomes_any() {
    check("tool_choice_required");
}

#[test]
fn tool_choice_none_ignores_parallel_flag() {
    check("tool_choice_none");
}

#[test]
fn tool_choice_function_becomes_tool() {
    check("tool_choice_function");
}

#[test]
fn tool_calls_and_merged_tool_results() {
    check("tool_results");
}

#[test]
fn stop_string_becomes_one_sequence() {
    check("stop_string");
}

#[test]
fn stop_array_is_kept() {
    check("stop_array");
}

#[test]
fn missing_max_tokens_uses_default_and_same_role_messages_merge() {
    check("default_max_tokens");
}

#[test]
fn default_max_tokens_argument_is_used() {
    let out = translate_request(
        br#"{"messages":[{"role":"user","content":"Hi"}]}"#,
        "claude-haiku-4-5",
        1000,
    )
    .expect("translates");
    assert_eq!(json(&out)["max_tokens"], 1000);
}

#[test]
fn max_completion_tokens_wins_over_max_tokens() {
    let out = translate_request(
        br#"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":10,"max_completion_tokens":20}"#,
        "m",
        DEFAULT_MAX_TOKENS,
    )
    .expect("translates");
    assert_eq!(json(&out)["max_tokens"], 20);
}

#[test]
fn n_above_one_is_unsupported() {
    let err = reject("n_two");
    assert!(matches!(err, TranslateError::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("`n`"), "{err}");
}

#[test]
fn temperature_outside_anthropics_range_is_rejected_not_clamped() {
    for t in ["1.5", "2", "-0.1"] {
        let body = format!(r#"{{"messages":[{{"role":"user","content":"x"}}],"temperature":{t}}}"#);
        let err = translate_request(body.as_bytes(), "claude-sonnet-4-5", DEFAULT_MAX_TOKENS)
            .expect_err(t);
        assert!(
            matches!(err, TranslateError::Unsupported(_)),
            "{t}: {err:?}"
        );
        assert!(err.to_string().contains("`temperature`"), "{err}");
    }
    for t in ["0", "0.7", "1"] {
        let body = format!(r#"{{"messages":[{{"role":"user","content":"x"}}],"temperature":{t}}}"#);
        let out =
            translate_request(body.as_bytes(), "claude-sonnet-4-5", DEFAULT_MAX_TOKENS).expect(t);
        let want: f64 = t.parse().expect("number");
        assert_eq!(json(&out)["temperature"], want, "{t} is sent as it is");
    }
}

#[test]
fn logprobs_true_is_unsupported() {
    let err = reject("logprobs");
    assert!(matches!(err, TranslateError::Unsupported(_)), "{err:?}");
}

#[test]
fn unparsable_tool_arguments_are_rejected() {
    let err = reject("bad_tool_arguments");
    assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    assert!(err.to_string().contains("call_1"), "{err}");
}

#[test]
fn malformed_bodies_are_errors() {
    for body in [&b"not json"[..], b"[1,2]", b"{}", br#"{"messages":"hi"}"#] {
        assert!(
            translate_request(body, "m", 1).is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(
        translate_request(b"nope", "m", 1),
        Err(TranslateError::InvalidJson)
    );
}

#[test]
fn other_rejections() {
    let cases: &[&[u8]] = &[
        br#"{"messages":[{"role":"user","content":"x"}],"audio":{"voice":"alloy"}}"#,
        br#"{"messages":[{"role":"user","content":"x"}],"modalities":["text","audio"]}"#,
        br#"{"messages":[{"role":"user","content":"x"}],"functions":[{"name":"f"}]}"#,
        br#"{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"","format":"wav"}}]}]}"#,
        br#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}"#,
        br#"{"messages":[{"role":"wizard","content":"x"}]}"#,
        br#"{"messages":[{"role":"tool","content":"x"}]}"#,
        br#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search"}]}"#,
        br#"{"messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
        br#"{"messages":[{"role":"user","content":"x"}],"n":0}"#,
        br#"{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
    ];
    for body in cases {
        assert!(
            translate_request(body, "m", 1).is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn pdf_file_part_becomes_document() {
    let out = translate_request(
        br#"{"messages":[{"role":"user","content":[{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0="}},{"type":"text","text":"Summarise"}]}]}"#,
        "m",
        1,
    )
    .expect("translates");
    assert_eq!(
        json(&out)["messages"][0]["content"][0],
        serde_json::json!({"type":"document","title":"a.pdf","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}),
        "the file's name is the document's title"
    );
}

#[test]
fn dropped_fields_table_is_documented() {
    use switchback_core::anthropic::DROPPED_FIELDS;
    for field in [
        "n",
        "logprobs",
        "presence_penalty",
        "response_format",
        "stream_options",
        "seed",
    ] {
        assert!(DROPPED_FIELDS.iter().any(|(f, _)| *f == field), "{field}");
    }
}
