//! Errors in each client API's shape (spec §9).
//!
//! The gateway builds its own errors (400, 404, 413, the §4.8 exhaustion body, transport
//! errors) in OpenAI's shape, `{"error":{"message","type","code",...}}`; [`reshape`] turns
//! such a body into the client API's shape at the point it leaves for the client. Chat,
//! Responses and Embeddings clients get it unchanged; Messages and count_tokens clients get
//! Anthropic's shape, `{"type":"error","error":{"type","message",...}}`, with every other
//! field of the OpenAI error object (`code`, `param`, `total_attempts`, `attempts`,
//! `last_error`, ...) riding along in the same `error` object.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::messages::{anthropic_type_for_status, read_error};
use super::ClientApi;
use crate::response::ClientResponse;

/// Anthropic's error types; an OpenAI error `type` with one of these names is kept as is.
pub const ANTHROPIC_ERROR_TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "timeout_error",
    "overloaded_error",
    "api_error",
    "billing_error",
];

/// The Anthropic error type for an error of `status` whose OpenAI `type` is `openai_type`:
/// the type Anthropic uses for the status (400 `invalid_request_error`, 404
/// `not_found_error`, 429 `rate_limit_error`, 529 `overloaded_error`, ...); for statuses
/// Anthropic has no specific type for, the OpenAI type when Anthropic has one of that name,
/// else `api_error`.
pub fn anthropic_type(status: u16, openai_type: Option<&str>) -> &'static str {
    let by_status = anthropic_type_for_status(status);
    if by_status != "api_error" {
        return by_status;
    }
    openai_type
        .and_then(|t| ANTHROPIC_ERROR_TYPES.iter().find(|k| **k == t))
        .copied()
        .unwrap_or(by_status)
}

/// A gateway-made error body (OpenAI's shape) in `client`'s shape. A body that is not an
/// OpenAI error object is wrapped as one first (its text as the message). Never fails.
pub fn reshape(client: ClientApi, status: u16, openai_body: &[u8]) -> Bytes {
    if !client.anthropic_errors() {
        return Bytes::copy_from_slice(openai_body);
    }
    anthropic_error_from_any(status, openai_body)
}

/// [`reshape`] applied to a whole response (status and headers kept).
pub fn reshape_response(client: ClientApi, mut response: ClientResponse) -> ClientResponse {
    if client.anthropic_errors() {
        response.body = reshape(client, response.status.as_u16(), &response.body);
    }
    response
}

/// Any error body (OpenAI's shape, Anthropic's, or not JSON) → Anthropic's shape. The type
/// follows [`anthropic_type`]; the message is the body's (or the body's text, quoted); the
/// other fields of an OpenAI error object are kept beside them.
pub fn anthropic_error_from_any(status: u16, body: &[u8]) -> Bytes {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if parsed
        .as_ref()
        .and_then(|v| v.get("type"))
        .and_then(Value::as_str)
        == Some("error")
    {
        return Bytes::copy_from_slice(body);
    }
    let info = read_error(status, body);
    let openai_type = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str);
    let mut error = Map::new();
    error.insert("type".into(), json!(anthropic_type(status, openai_type)));
    error.insert("message".into(), json!(info.message));
    if let Some(Value::Object(fields)) = parsed.as_ref().and_then(|v| v.get("error")) {
        for (k, v) in fields {
            if k != "type" && k != "message" {
                error.insert(k.clone(), v.clone());
            }
        }
        if let (Some(t), false) = (openai_type, error.contains_key("code")) {
            error.insert("code".into(), json!(t));
        }
    }
    Bytes::from(json!({ "type": "error", "error": error }).to_string())
}
