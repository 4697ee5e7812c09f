//! Fixture tests for Anthropic error bodies → OpenAI error bodies, and spend-limit detection.

use std::path::PathBuf;

use serde_json::{json, Value};
use switchback_core::anthropic::{is_spend_limit, translate_error};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/anthropic/error")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

fn check(status: u16, name: &str) {
    let out = translate_error(status, &fixture(&format!("{name}.anthropic.json")));
    let expected = parse(&fixture(&format!("{name}.openai.json")));
    assert_eq!(parse(&out), expected, "{name}");
}

#[test]
fn rate_limit_keeps_type_as_code() {
    check(429, "rate_limit");
}

#[test]
fn overloaded_529_keeps_type_as_code() {
    check(529, "overloaded");
}

#[test]
fn invalid_request() {
    check(400, "invalid_request");
}

#[test]
fn non_json_body_is_wrapped() {
    let out = parse(&translate_error(
        502,
        b"<html><body>502 Bad Gateway</body></html>",
    ));
    assert_eq!(
        out,
        json!({"error": {
            "message": "the upstream returned HTTP 502: <html><body>502 Bad Gateway</body></html>",
            "type": "api_error", "code": "api_error", "param": null,
        }})
    );
}

#[test]
fn empty_body_gets_type_from_status() {
    let out = parse(&translate_error(529, b""));
    assert_eq!(out["error"]["type"], "overloaded_error");
    assert_eq!(out["error"]["code"], "overloaded_error");
    assert_eq!(out["error"]["message"], "the upstream returned HTTP 529");
    let out = parse(&translate_error(401, b"{}"));
    assert_eq!(out["error"]["type"], "authentication_error");
}

#[test]
fn long_non_json_body_is_truncated() {
    let body = "é".repeat(5000);
    let out = parse(&translate_error(500, body.as_bytes()));
    let message = out["error"]["message"].as_str().expect("message");
    assert!(message.chars().count() < 600, "{}", message.len());
}

#[test]
fn invalid_utf8_body_is_wrapped() {
    let out = parse(&translate_error(500, &[0xff, 0xfe, b'x']));
    assert_eq!(out["error"]["type"], "api_error");
}

#[test]
fn spend_limit_bodies_are_detected() {
    for name in ["spend_limit", "usage_limit", "credit_balance"] {
        assert!(
            is_spend_limit(&fixture(&format!("{name}.anthropic.json"))),
            "{name}"
        );
    }
    assert!(is_spend_limit(
        br#"{"type":"error","error":{"type":"billing_error","message":"Payment required."}}"#
    ));
    assert!(is_spend_limit(b"Spend limit reached for this workspace"));
}

#[test]
fn transient_errors_are_not_spend_limits() {
    for name in ["rate_limit", "overloaded", "invalid_request"] {
        assert!(
            !is_spend_limit(&fixture(&format!("{name}.anthropic.json"))),
            "{name}"
        );
    }
    assert!(!is_spend_limit(b""));
    assert!(!is_spend_limit(b"rate limited"));
    assert!(!is_spend_limit(br#"{"message":"usage limit"}"#));
}
