//! Anthropic message → OpenAI `chat.completion`.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{finish_reason, openai_id, TranslateError, Usage};

/// Anthropic Messages response body → OpenAI `chat.completion` body, reported as `model`.
///
/// - `text` blocks are concatenated into `message.content`; `tool_use` blocks become
///   `message.tool_calls` (`arguments` is the JSON text of `input`). `thinking`,
///   `redacted_thinking` and server-tool blocks are dropped.
/// - `message.content` is `null` when there is no text but there are tool calls (as OpenAI
///   does), otherwise the text (possibly empty).
/// - `id`, `created`, `model`, `finish_reason` and `usage` follow the module's
///   [decisions](super).
///
/// Fails with [`TranslateError::InvalidJson`] for a body that is not JSON and
/// [`TranslateError::InvalidResponse`] for JSON that is not an Anthropic message.
pub fn translate_response(anthropic_body: &[u8], model: &str) -> Result<Bytes, TranslateError> {
    let body: Value =
        serde_json::from_slice(anthropic_body).map_err(|_| TranslateError::InvalidJson)?;
    if !body.is_object() {
        return Err(TranslateError::InvalidResponse("not a JSON object".into()));
    }
    if body.get("type").and_then(Value::as_str) == Some("error") {
        return Err(TranslateError::InvalidResponse(
            "the body is an error, not a message".into(),
        ));
    }
    let blocks = match body.get("content") {
        Some(Value::Array(blocks)) => blocks.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => {
            return Err(TranslateError::InvalidResponse(
                "`content` is not an array".into(),
            ))
        }
    };

    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = block.get("text").and_then(Value::as_str) {
                    text.push_str(t);
                }
            }
            Some("tool_use") => {
                let id = block.get("id").and_then(Value::as_str).unwrap_or_default();
                let name = block
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": { "name": name, "arguments": input.to_string() },
                }));
            }
            _ => {}
        }
    }

    let content = if text.is_empty() && !tool_calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    let mut message = json!({ "role": "assistant", "content": content });
    if let (false, Some(obj)) = (tool_calls.is_empty(), message.as_object_mut()) {
        obj.insert("tool_calls".into(), Value::Array(tool_calls));
    }

    let mut usage = Usage::default();
    if let Some(u) = body.get("usage") {
        usage.update(u);
    }
    let out = json!({
        "id": openai_id(body.get("id").and_then(Value::as_str)),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(body.get("stop_reason").and_then(Value::as_str)),
        }],
        "usage": usage.to_openai(),
    });
    Ok(Bytes::from(out.to_string()))
}
