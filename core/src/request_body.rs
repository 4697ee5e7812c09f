//! The client's Chat Completions request body: what the gateway reads from it and the one edit
//! it makes (spec §2, §5).
//!
//! [`inspect`] validates the body and finds the byte range of the top-level `model` value;
//! [`rewrite_model`] swaps that value for a target's model id and leaves every other byte as the
//! client sent it (field order, unknown fields, number spellings, whitespace).
//!
//! Decisions where the spec is silent:
//! - A top-level key written with escapes (`"mod\u0065l"`) is the `model` key: keys are compared
//!   after JSON decoding, as serde_json and upstream parsers do.
//! - Duplicate top-level `model`, `messages`, `stream` or `stream_options` keys are rejected
//!   ([`RequestBodyError::DuplicateKey`]): parsers disagree on which copy wins, so forwarding
//!   such a body could route on one model while the upstream reads another.
//! - The fields the gateway reads must have the types OpenAI documents, or the request is
//!   a 400 naming the field ([`RequestBodyError::WrongType`]): `stream` a boolean,
//!   `stream_options` an object, `stream_options.include_usage` a boolean. `null` counts as
//!   absent for all three (OpenAI's schema marks them nullable). A request the gateway
//!   would otherwise misread (`"stream": "true"` forwarded as non-streaming) never leaves
//!   it. Fields the gateway does not read are left for the upstream to judge.

use std::ops::Range;

use bytes::Bytes;
use serde_json::Value;

/// What the gateway needs to know about a chat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequestInfo {
    /// The requested model, decoded (e.g. `openai/gpt-4o` or an alias).
    pub model: String,
    /// `"stream": true`.
    pub stream: bool,
    /// `"stream_options": {"include_usage": true}`.
    pub include_usage: bool,
    /// Byte range of the top-level `model` value token in the original body, quotes included.
    pub model_span: Range<usize>,
}

/// Why a body is not an acceptable chat request; each is a 400 for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestBodyError {
    /// The body is not valid JSON; `message` is serde_json's, which names the position.
    #[error("invalid JSON: {message}")]
    InvalidJson {
        /// serde_json's description of the problem, including line and column.
        message: String,
        /// 1-based line of the problem (0 if unknown).
        line: usize,
        /// 1-based column of the problem (0 if unknown).
        column: usize,
    },
    /// The body is valid JSON but not an object.
    #[error("request body must be a JSON object")]
    NotAnObject,
    /// A key the gateway reads appears more than once at the top level.
    #[error("duplicate top-level key `{0}`")]
    DuplicateKey(&'static str),
    /// There is no top-level `model`.
    #[error("missing required parameter: `model`")]
    MissingModel,
    /// `model` is not a string.
    #[error("`model` must be a string")]
    ModelNotString,
    /// There is no top-level `messages`.
    #[error("missing required parameter: `messages`")]
    MissingMessages,
    /// `messages` is not an array.
    #[error("`messages` must be an array")]
    MessagesNotArray,
    /// A field the API requires is missing (`input` for embeddings).
    #[error("missing required parameter: `{0}`")]
    MissingField(&'static str),
    /// A field the gateway reads has the wrong JSON type.
    #[error("`{field}` must be {expected}, not {found}")]
    WrongType {
        /// The field, as a dotted path (`stream_options.include_usage`).
        field: &'static str,
        /// What it must be, e.g. `a boolean (true or false)`.
        expected: &'static str,
        /// What it is, e.g. `a string`.
        found: &'static str,
    },
}

impl RequestBodyError {
    /// The request field the error is about, for the error body's `param`.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            RequestBodyError::InvalidJson { .. } | RequestBodyError::NotAnObject => None,
            RequestBodyError::DuplicateKey(key) => Some(key),
            RequestBodyError::MissingModel | RequestBodyError::ModelNotString => Some("model"),
            RequestBodyError::MissingMessages | RequestBodyError::MessagesNotArray => {
                Some("messages")
            }
            RequestBodyError::MissingField(field) | RequestBodyError::WrongType { field, .. } => {
                Some(field)
            }
        }
    }
}

/// What a JSON value is, for messages.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const BOOLEAN: &str = "a boolean (true or false)";

/// `v` as an optional boolean: absent or `null` is `None`.
fn optional_bool(v: Option<&Value>, field: &'static str) -> Result<Option<bool>, RequestBodyError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(RequestBodyError::WrongType {
            field,
            expected: BOOLEAN,
            found: kind_of(other),
        }),
    }
}

/// What a body must hold besides a string `model`, per client API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyShape {
    /// An array `messages` (Chat Completions, Anthropic Messages and count_tokens).
    Messages,
    /// `input` as a string or an array, when present (Responses).
    OptionalInput,
    /// `input` as a string or an array (Embeddings).
    RequiredInput,
}

/// Top-level keys that may appear at most once.
const SINGLE_KEYS: [&str; 4] = ["model", "messages", "stream", "stream_options"];

/// Validates a chat request body and reads what routing needs from it.
///
/// Call it once per client request, before any upstream call, on the complete body (already
/// bounded by the body size limit). Promises: never panics; on `Ok`, the body is valid JSON,
/// an object with a string `model` and an array `messages`, and `model_span` is the exact range
/// to hand to [`rewrite_model`]. Errors are checked in the order of [`RequestBodyError`]'s
/// variants.
pub fn inspect(body: &[u8]) -> Result<ChatRequestInfo, RequestBodyError> {
    inspect_shape(body, BodyShape::Messages)
}

/// [`inspect`] for any client API: the same checks and the same `model_span`, with the
/// API's own required field (`shape`) instead of `messages`.
pub fn inspect_shape(body: &[u8], shape: BodyShape) -> Result<ChatRequestInfo, RequestBodyError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| RequestBodyError::InvalidJson {
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    })?;
    let Value::Object(map) = value else {
        return Err(RequestBodyError::NotAnObject);
    };
    let members = top_level_members(body).ok_or_else(|| RequestBodyError::InvalidJson {
        message: "unexpected structure".to_owned(),
        line: 0,
        column: 0,
    })?;
    let mut model_span = None;
    let mut counts = [0usize; SINGLE_KEYS.len()];
    for member in &members {
        let Some(index) = SINGLE_KEYS
            .iter()
            .position(|k| key_equals(body.get(member.key.clone()).unwrap_or(&[]), k))
        else {
            continue;
        };
        counts[index] += 1;
        if counts[index] > 1 {
            return Err(RequestBodyError::DuplicateKey(SINGLE_KEYS[index]));
        }
        if index == 0 {
            model_span = Some(member.value.clone());
        }
    }
    let model = match map.get("model") {
        None => return Err(RequestBodyError::MissingModel),
        Some(Value::String(model)) => model.clone(),
        Some(_) => return Err(RequestBodyError::ModelNotString),
    };
    match (shape, map.get("messages"), map.get("input")) {
        (BodyShape::Messages, None, _) => return Err(RequestBodyError::MissingMessages),
        (BodyShape::Messages, Some(Value::Array(_)), _) => {}
        (BodyShape::Messages, Some(_), _) => return Err(RequestBodyError::MessagesNotArray),
        (BodyShape::RequiredInput, _, None) => return Err(RequestBodyError::MissingField("input")),
        (BodyShape::OptionalInput, _, None) => {}
        (_, _, Some(Value::String(_) | Value::Array(_))) => {}
        (_, _, Some(other)) => {
            return Err(RequestBodyError::WrongType {
                field: "input",
                expected: "a string or an array",
                found: kind_of(other),
            })
        }
    }
    let model_span = model_span.ok_or(RequestBodyError::MissingModel)?;
    let stream = optional_bool(map.get("stream"), "stream")?.unwrap_or(false);
    let include_usage = match map.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) => {
            optional_bool(options.get("include_usage"), "stream_options.include_usage")?
                .unwrap_or(false)
        }
        Some(other) => {
            return Err(RequestBodyError::WrongType {
                field: "stream_options",
                expected: "an object",
                found: kind_of(other),
            })
        }
    };
    Ok(ChatRequestInfo {
        model,
        stream,
        include_usage,
        model_span,
    })
}

/// Returns `body` with the bytes in `span` replaced by `model_id` as a JSON string.
///
/// Call it once per target with the `model_span` that [`inspect`] returned for this same body;
/// the result is the exact bytes to send upstream. Every byte outside `span` is copied
/// unchanged. `model_id` is escaped as JSON needs (quotes, backslashes, control characters), so
/// any string is safe. Never panics: a span that does not fit `body` (a caller bug) is clamped
/// to it.
pub fn rewrite_model(body: &[u8], span: &Range<usize>, model_id: &str) -> Bytes {
    let start = span.start.min(body.len());
    let end = span.end.clamp(start, body.len());
    let mut out = Vec::with_capacity(body.len() - (end - start) + model_id.len() + 2);
    out.extend_from_slice(&body[..start]);
    push_json_string(&mut out, model_id);
    out.extend_from_slice(&body[end..]);
    Bytes::from(out)
}

/// Appends `s` as a JSON string literal.
fn push_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x00..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// One top-level member: the key token (quotes included) and the value token.
#[derive(Debug)]
struct Member {
    key: Range<usize>,
    value: Range<usize>,
}

/// Whether a key token (with quotes) decodes to `want`.
fn key_equals(token: &[u8], want: &str) -> bool {
    let inner = token.get(1..token.len().saturating_sub(1)).unwrap_or(&[]);
    if !inner.contains(&b'\\') {
        return inner == want.as_bytes();
    }
    serde_json::from_slice::<String>(token).is_ok_and(|k| k == want)
}

/// Lists the members of the top-level object of `body`, which serde_json has already accepted
/// as a JSON object. `None` if the bytes do not have that shape (never expected).
fn top_level_members(body: &[u8]) -> Option<Vec<Member>> {
    let mut members = Vec::new();
    let mut pos = skip_ws(body, 0);
    if body.get(pos) != Some(&b'{') {
        return None;
    }
    pos = skip_ws(body, pos + 1);
    if body.get(pos) == Some(&b'}') {
        return Some(members);
    }
    loop {
        if body.get(pos) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(body, pos)?;
        let key = pos..key_end;
        pos = skip_ws(body, key_end);
        if body.get(pos) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(body, pos + 1);
        let value_end = skip_value(body, value_start)?;
        members.push(Member {
            key,
            value: value_start..value_end,
        });
        pos = skip_ws(body, value_end);
        match body.get(pos) {
            Some(b',') => pos = skip_ws(body, pos + 1),
            Some(b'}') => return Some(members),
            _ => return None,
        }
    }
}

fn skip_ws(body: &[u8], mut pos: usize) -> usize {
    while matches!(body.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        pos += 1;
    }
    pos
}

/// `pos` is at an opening quote; returns the index just past the closing quote.
fn skip_string(body: &[u8], pos: usize) -> Option<usize> {
    let mut i = pos + 1;
    loop {
        match body.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// `pos` is at the first byte of a value; returns the index just past it.
fn skip_value(body: &[u8], pos: usize) -> Option<usize> {
    match body.get(pos)? {
        b'"' => skip_string(body, pos),
        b'{' | b'[' => {
            // Brackets balance in valid JSON, so a depth count suffices; strings are skipped
            // whole so brackets inside them do not count.
            let mut depth = 0usize;
            let mut i = pos;
            loop {
                match body.get(i)? {
                    b'"' => {
                        i = skip_string(body, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = pos;
            while let Some(b) = body.get(i) {
                if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                i += 1;
            }
            (i > pos).then_some(i)
        }
    }
}

#[cfg(test)]
#[path = "request_body_tests.rs"]
mod tests;
