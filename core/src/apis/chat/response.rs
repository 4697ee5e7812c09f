//! `chat.completion` bodies ↔ the internal [`Response`].

use bytes::Bytes;
use serde_json::{json, Value};

use super::super::json::{bad_response, parse_response_object, str_of, to_bytes};
use super::super::model::{Part, Response, Usage};
use super::super::TranslateError;
use super::{finish_reason_from, finish_reason_name, usage_json, usage_update};

/// The id given to an answer whose upstream (an OpenAI Chat server) sent none.
pub const FALLBACK_ID: &str = "openai";

/// Decodes a `chat.completion` body: the first choice's `content` (text), `refusal` and
/// `tool_calls`, its `finish_reason`, and `usage`. Provider extensions such as
/// `reasoning_content` are dropped. Fails with [`TranslateError::InvalidJson`] for a body that
/// is not JSON and [`TranslateError::InvalidResponse`] for JSON that is not a completion.
pub fn decode(body: &[u8]) -> Result<Response, TranslateError> {
    let obj = parse_response_object(body)?;
    if obj.get("error").is_some_and(|e| !e.is_null()) {
        return Err(bad_response("the body is an error, not a completion"));
    }
    let choice = obj
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| bad_response("`choices` is missing or empty"))?;
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut parts = Vec::new();
    if let Some(text) = str_of(message, "content").filter(|t| !t.is_empty()) {
        parts.push(Part::Text {
            text: text.to_owned(),
            cache: None,
        });
    }
    if let Some(refusal) = str_of(message, "refusal").filter(|t| !t.is_empty()) {
        parts.push(Part::Refusal(refusal.to_owned()));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function").unwrap_or(&Value::Null);
        let arguments = match function.get("arguments") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        parts.push(Part::ToolCall {
            id: str_of(call, "id").unwrap_or_default().to_owned(),
            name: str_of(function, "name").unwrap_or_default().to_owned(),
            arguments,
        });
    }
    let mut usage = Usage::default();
    if let Some(u) = obj.get("usage").filter(|u| u.is_object()) {
        usage.apply(&usage_update(u));
    }
    Ok(Response {
        id: obj
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(FALLBACK_ID)
            .to_owned(),
        parts,
        stop: finish_reason_from(choice.get("finish_reason").and_then(Value::as_str)),
        stop_sequence: None,
        usage,
    })
}

/// The Chat completion id for an answer id: `chatcmpl-` + the id, unless it has that prefix.
pub fn completion_id(id: &str) -> String {
    if id.starts_with("chatcmpl-") {
        id.to_owned()
    } else {
        format!("chatcmpl-{id}")
    }
}

/// Encodes `resp` as a `chat.completion` body reported as `model`.
///
/// Text parts are concatenated into `message.content` (`null` when there is no text but
/// there are tool calls, as OpenAI does); refusals become `message.refusal`; tool calls
/// `message.tool_calls`; reasoning is dropped (Chat has no field for it). `created` is 0:
/// the core reads no clock.
pub fn encode(resp: &Response, model: &str) -> Bytes {
    let mut text = String::new();
    let mut refusal = String::new();
    let mut tool_calls = Vec::new();
    for part in &resp.parts {
        match part {
            Part::Text { text: t, .. } => text.push_str(t),
            Part::Refusal(r) => refusal.push_str(r),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => tool_calls.push(json!({
                "id": id,
                "type": "function",
                "function": { "name": name, "arguments": arguments },
            })),
            _ => {}
        }
    }
    let content = if text.is_empty() && (!tool_calls.is_empty() || !refusal.is_empty()) {
        Value::Null
    } else {
        Value::String(text)
    };
    let mut message = json!({ "role": "assistant", "content": content });
    if let Some(obj) = message.as_object_mut() {
        if !refusal.is_empty() {
            obj.insert("refusal".into(), Value::String(refusal));
        }
        if !tool_calls.is_empty() {
            obj.insert("tool_calls".into(), Value::Array(tool_calls));
        }
    }
    let out = json!({
        "id": completion_id(&resp.id),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason_name(resp.stop),
        }],
        "usage": usage_json(&resp.usage),
    });
    to_bytes(&out)
}
