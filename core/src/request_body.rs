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
//! - The whole body must be JSON syntax, nested at most 128 levels deep (serde_json's own
//!   limit); values the gateway does not read are checked, not decoded, so a string there
//!   with a lone surrogate escape (`"\ud800"`) is forwarded as the client wrote it, as
//!   Python's and JavaScript's parsers accept it.

use std::ops::Range;

use std::borrow::Cow;

use bytes::Bytes;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

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

/// What a JSON value is, for messages, from its raw text.
fn kind_of(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

const BOOLEAN: &str = "a boolean (true or false)";

/// `v` as an optional boolean: absent or `null` is `None`.
fn optional_bool(
    v: Option<&RawValue>,
    field: &'static str,
) -> Result<Option<bool>, RequestBodyError> {
    match v.map(RawValue::get) {
        None | Some("null") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(RequestBodyError::WrongType {
            field,
            expected: BOOLEAN,
            found: v.map_or("null", kind_of),
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
///
/// One pass over the body: the whole document is validated, and only the top-level values
/// the gateway reads are looked at (borrowed, as raw JSON text); nothing else is decoded.
pub fn inspect_shape(body: &[u8], shape: BodyShape) -> Result<ChatRequestInfo, RequestBodyError> {
    let top = match serde_json::from_slice::<Top<'_>>(body) {
        Ok(_) if nesting_depth_exceeds(body, MAX_NESTING) => return Err(full_parse_error(body)),
        Ok(top) => top,
        Err(e) if e.is_data() => return Err(RequestBodyError::NotAnObject),
        Err(e) => return Err(invalid_json(&e)),
    };
    if let Some(key) = top.duplicate {
        return Err(RequestBodyError::DuplicateKey(key));
    }
    let model_raw = top.model.ok_or(RequestBodyError::MissingModel)?;
    if !model_raw.get().starts_with('"') {
        return Err(RequestBodyError::ModelNotString);
    }
    // A string that does not decode (a lone surrogate escape) is reported where it is.
    let model: String =
        serde_json::from_str(model_raw.get()).map_err(|_| full_parse_error(body))?;
    let model_span = span_of(body, model_raw);
    let first = |v: Option<&RawValue>| v.and_then(|v| v.get().as_bytes().first().copied());
    match (shape, first(top.messages), top.input) {
        (BodyShape::Messages, None, _) => return Err(RequestBodyError::MissingMessages),
        (BodyShape::Messages, Some(b'['), _) => {}
        (BodyShape::Messages, Some(_), _) => return Err(RequestBodyError::MessagesNotArray),
        (BodyShape::RequiredInput, _, None) => return Err(RequestBodyError::MissingField("input")),
        (BodyShape::OptionalInput, _, None) => {}
        (_, _, Some(input)) if matches!(first(Some(input)), Some(b'"' | b'[')) => {}
        (_, _, Some(other)) => {
            return Err(RequestBodyError::WrongType {
                field: "input",
                expected: "a string or an array",
                found: kind_of(other),
            })
        }
    }
    let stream = optional_bool(top.stream, "stream")?.unwrap_or(false);
    let include_usage = match top.stream_options {
        None => false,
        Some(raw) if raw.get() == "null" => false,
        Some(raw) if raw.get().starts_with('{') => {
            let options: StreamOptions<'_> =
                serde_json::from_str(raw.get()).map_err(|_| RequestBodyError::WrongType {
                    field: "stream_options",
                    expected: "an object",
                    found: kind_of(raw),
                })?;
            optional_bool(options.include_usage, "stream_options.include_usage")?.unwrap_or(false)
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

/// The deepest nesting of arrays and objects accepted, as serde_json's own recursion limit.
const MAX_NESTING: usize = 128;

fn invalid_json(e: &serde_json::Error) -> RequestBodyError {
    RequestBodyError::InvalidJson {
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    }
}

/// The error a full decoding of `body` reports (its message names the position), for the
/// rare bodies the one-pass inspection finds wrong only where it does not decode.
fn full_parse_error(body: &[u8]) -> RequestBodyError {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Err(e) => invalid_json(&e),
        Ok(_) => RequestBodyError::InvalidJson {
            message: "the body does not decode as JSON".to_owned(),
            line: 0,
            column: 0,
        },
    }
}

/// Whether arrays and objects nest deeper than `limit` anywhere in `body` (strings skipped).
/// Values the gateway does not read are skipped without decoding, which has no depth limit
/// of its own; a body no upstream parser would accept must not be forwarded.
fn nesting_depth_exceeds(body: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Where `raw`, a value borrowed from `body`, lies in it.
fn span_of(body: &[u8], raw: &RawValue) -> Range<usize> {
    let start = (raw.get().as_ptr() as usize).saturating_sub(body.as_ptr() as usize);
    let start = start.min(body.len());
    start..(start + raw.get().len()).min(body.len())
}

/// The top-level members the gateway reads, as raw JSON text borrowed from the body, and the
/// first of them that appeared twice.
#[derive(Default)]
struct Top<'a> {
    model: Option<&'a RawValue>,
    messages: Option<&'a RawValue>,
    input: Option<&'a RawValue>,
    stream: Option<&'a RawValue>,
    stream_options: Option<&'a RawValue>,
    duplicate: Option<&'static str>,
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
                let mut top = Top::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    // Keys are compared decoded: `"mod\u0065l"` is `model`.
                    let (slot, name) = match key.as_ref() {
                        "model" => (&mut top.model, "model"),
                        "messages" => (&mut top.messages, "messages"),
                        "stream" => (&mut top.stream, "stream"),
                        "stream_options" => (&mut top.stream_options, "stream_options"),
                        "input" => {
                            top.input = Some(map.next_value()?);
                            continue;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    let value: &'de RawValue = map.next_value()?;
                    if slot.is_some() {
                        // Keep reading: a syntax error later in the body comes first.
                        top.duplicate.get_or_insert(name);
                    } else {
                        *slot = Some(value);
                    }
                }
                Ok(top)
            }
        }
        d.deserialize_map(V)
    }
}

/// `stream_options`, as far as the gateway reads it.
#[derive(Deserialize)]
struct StreamOptions<'a> {
    #[serde(default, borrow)]
    include_usage: Option<&'a RawValue>,
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

#[cfg(test)]
#[path = "request_body_tests.rs"]
mod tests;
