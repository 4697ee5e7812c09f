//! Anthropic message bodies ↔ the internal [`Response`].

use bytes::Bytes;
use serde_json::{json, Value};

use super::super::json::{bad_response, parse_response_object, str_of, to_bytes, type_of};
use super::super::model::{Part, ReasoningOrigin, Response, Usage};
use super::super::TranslateError;
use super::request_encode::tool_input;
use super::{stop_reason_from, stop_reason_name, usage_json, usage_update};

/// The id given to an answer whose upstream (Anthropic) sent none.
pub const FALLBACK_ID: &str = "anthropic";

/// Decodes an Anthropic Messages response body.
///
/// `text` blocks → text parts; `tool_use` → tool calls (`arguments` is the JSON text of
/// `input`); `thinking` and `redacted_thinking` → Anthropic-origin reasoning; server-tool and
/// other blocks are dropped. Fails with [`TranslateError::InvalidJson`] for a body that is not
/// JSON and [`TranslateError::InvalidResponse`] for JSON that is not a message.
pub fn decode(body: &[u8]) -> Result<Response, TranslateError> {
    let obj = parse_response_object(body)?;
    if obj.get("type").and_then(Value::as_str) == Some("error") {
        return Err(bad_response("the body is an error, not a message"));
    }
    let blocks = match obj.get("content") {
        Some(Value::Array(blocks)) => blocks.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return Err(bad_response("`content` is not an array")),
    };
    let mut parts = Vec::with_capacity(blocks.len());
    for block in blocks {
        match type_of(block) {
            Some("text") => {
                if let Some(t) = str_of(block, "text") {
                    parts.push(Part::Text {
                        text: t.to_owned(),
                        cache: None,
                    });
                }
            }
            Some("tool_use") => parts.push(Part::ToolCall {
                id: str_of(block, "id").unwrap_or_default().to_owned(),
                name: str_of(block, "name").unwrap_or_default().to_owned(),
                arguments: block
                    .get("input")
                    .cloned()
                    .unwrap_or_else(|| json!({}))
                    .to_string(),
            }),
            Some(kind @ ("thinking" | "redacted_thinking")) => {
                let redacted = kind == "redacted_thinking";
                let token = if redacted { "data" } else { "signature" };
                parts.push(Part::Thinking {
                    text: str_of(block, "thinking").unwrap_or_default().to_owned(),
                    signature: str_of(block, token).map(str::to_owned),
                    redacted,
                    origin: ReasoningOrigin::Anthropic,
                    item_id: None,
                });
            }
            _ => {}
        }
    }
    let mut usage = Usage::default();
    if let Some(u) = obj.get("usage") {
        usage.apply(&usage_update(u));
    }
    Ok(Response {
        id: str_of_obj(&obj, "id").unwrap_or(FALLBACK_ID).to_owned(),
        parts,
        stop: stop_reason_from(obj.get("stop_reason").and_then(Value::as_str)),
        stop_sequence: str_of_obj(&obj, "stop_sequence").map(str::to_owned),
        usage,
    })
}

fn str_of_obj<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The Anthropic message id for an answer id: `msg_` + the id, unless it has that prefix.
pub fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else {
        format!("msg_{id}")
    }
}

/// Encodes `resp` as an Anthropic Messages response body reported as `model`.
///
/// Text and refusal parts become `text` blocks, tool calls `tool_use` blocks (whose
/// arguments must be a JSON object: anything else makes the answer unusable,
/// [`TranslateError::InvalidResponse`]), Anthropic-origin reasoning `thinking` blocks; other
/// reasoning is dropped.
pub fn encode(resp: &Response, model: &str) -> Result<Bytes, TranslateError> {
    let mut content = Vec::with_capacity(resp.parts.len());
    for part in &resp.parts {
        match part {
            Part::Text { text, .. } | Part::Refusal(text) if !text.is_empty() => {
                content.push(json!({ "type": "text", "text": text }));
            }
            Part::ToolCall {
                id,
                name,
                arguments,
            } => {
                let input = tool_input(id, arguments).map_err(|_| {
                    bad_response(format!(
                        "the arguments of tool call `{id}` are not a JSON object"
                    ))
                })?;
                content.push(json!({ "type": "tool_use", "id": id, "name": name, "input": input }));
            }
            Part::Thinking {
                text,
                signature,
                redacted,
                origin: ReasoningOrigin::Anthropic,
                ..
            } => content.push(if *redacted {
                json!({ "type": "redacted_thinking", "data": signature.clone().unwrap_or_default() })
            } else {
                json!({ "type": "thinking", "thinking": text, "signature": signature.clone().unwrap_or_default() })
            }),
            _ => {}
        }
    }
    let out = json!({
        "id": message_id(&resp.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason_name(resp.stop),
        "stop_sequence": resp.stop_sequence,
        "usage": usage_json(&resp.usage),
    });
    Ok(to_bytes(&out))
}
