//! Anthropic error bodies: reading them, building them, turning them into OpenAI's shape,
//! and spend-limit detection.

use bytes::Bytes;
use serde_json::{json, Value};

/// Longest excerpt of a non-JSON upstream body quoted in a wrapped error message.
const MAX_EXCERPT_CHARS: usize = 512;

/// Lower-case phrases in an Anthropic error message that mean a spend, usage or credit limit is
/// reached: retrying the same provider cannot succeed until someone changes the account.
/// Anthropic's wordings include "You have reached your specified API usage limits", "Your
/// credit balance is too low to access the Anthropic API" and spend-limit messages.
pub const SPEND_LIMIT_PHRASES: &[&str] = &[
    "spend limit",
    "spending limit",
    "usage limit",
    "credit balance is too low",
];

/// The Anthropic error type Anthropic uses for an HTTP status, for bodies that do not say.
fn type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// The inner `error` object of an Anthropic (or OpenAI-shaped) error body.
fn error_object(body: &Value) -> Option<&Value> {
    body.get("error").filter(|e| e.is_object())
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX_EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// What an error body says: its type and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The error type (`rate_limit_error`, `overloaded_error`, `server_error`, ...).
    pub kind: String,
    pub message: String,
}

/// Reads an error body of any shape (Anthropic's `{"type":"error","error":{...}}`, OpenAI's
/// `{"error":{...}}`, `{"error":"text"}`, or not JSON at all). A body without a type gets the
/// type Anthropic uses for `status` (`api_error` for unknown statuses, including `0` for
/// in-stream errors); a body without a message is quoted (at most 512 characters). Never fails.
pub fn read_error(status: u16, body: &[u8]) -> ErrorInfo {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let inner = parsed.as_ref().and_then(error_object);
    let kind = inner
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| type_for_status(status))
        .to_owned();
    let message = inner
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|b| b.get("error"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| {
            let text = excerpt(body);
            match (status, text.is_empty()) {
                (0, true) => "the upstream stream reported an error".to_owned(),
                (0, false) => format!("the upstream stream reported an error: {text}"),
                (s, true) => format!("the upstream returned HTTP {s}"),
                (s, false) => format!("the upstream returned HTTP {s}: {text}"),
            }
        });
    ErrorInfo { kind, message }
}

/// Anthropic error body (any status) → OpenAI error body
/// `{"error":{"message","type","code","param":null}}`.
///
/// Anthropic's error `type` (`rate_limit_error`, `overloaded_error`, ...) is kept as both `type`
/// and `code`, so `error_codes` in a retry policy can use Anthropic's names. The type and
/// message are read by [`read_error`]. Never fails.
pub fn translate_error(status: u16, anthropic_body: &[u8]) -> Bytes {
    let info = read_error(status, anthropic_body);
    openai_error_json(&info.kind, &info.message)
}

/// `{"error":{"message","type":kind,"code":kind,"param":null}}`.
pub(crate) fn openai_error_json(kind: &str, message: &str) -> Bytes {
    let out = json!({
        "error": { "message": message, "type": kind, "code": kind, "param": null },
    });
    Bytes::from(out.to_string())
}

/// The Anthropic error type for an HTTP status (what Anthropic itself uses).
pub fn anthropic_type_for_status(status: u16) -> &'static str {
    type_for_status(status)
}

/// True when an Anthropic error body says a spend, usage or credit limit is reached (not a
/// transient rate limit), so retrying the same provider is pointless.
///
/// Matches `error.details.error_code == "enforced_spend_limit_reached"`, an error `type` of
/// `billing_error`, or an error message containing one of [`SPEND_LIMIT_PHRASES`]
/// (case-insensitive). A non-JSON body is searched for the phrases as text.
pub fn is_spend_limit(body: &[u8]) -> bool {
    let has_phrase = |text: &str| {
        let lower = text.to_lowercase();
        SPEND_LIMIT_PHRASES.iter().any(|p| lower.contains(p))
    };
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
        return has_phrase(&String::from_utf8_lossy(body));
    };
    let Some(inner) = error_object(&parsed) else {
        return false;
    };
    let code = inner
        .get("details")
        .and_then(|d| d.get("error_code"))
        .and_then(Value::as_str);
    if code == Some("enforced_spend_limit_reached") {
        return true;
    }
    if inner.get("type").and_then(Value::as_str) == Some("billing_error") {
        return true;
    }
    inner
        .get("message")
        .and_then(Value::as_str)
        .is_some_and(has_phrase)
}
