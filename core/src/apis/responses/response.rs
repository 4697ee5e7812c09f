//! Responses `response` objects ↔ the internal [`Response`].

use bytes::Bytes;
use serde_json::{json, Value};

use super::super::json::{bad_response, parse_response_object, str_of, to_bytes, type_of};
use super::super::model::{Part, ReasoningOrigin, Response, Usage};
use super::super::TranslateError;
use super::{
    response_id, response_object, status_for, stop_from, usage_json, usage_update, ToolNames,
};

/// The id given to an answer whose upstream (a Responses server) sent none.
pub const FALLBACK_ID: &str = "responses";

/// Decodes a Responses `response` object: `message` items (output text and refusals),
/// `function_call` items and `reasoning` items (OpenAI-origin, with their encrypted
/// content); other items (built-in tool calls) are dropped. A `failed` response or one with an
/// `error` is [`TranslateError::InvalidResponse`].
pub fn decode(body: &[u8]) -> Result<Response, TranslateError> {
    let obj = parse_response_object(body)?;
    let status = obj.get("status").and_then(Value::as_str);
    if status == Some("failed") || obj.get("error").is_some_and(|e| !e.is_null()) {
        return Err(bad_response("the response failed"));
    }
    let items = match obj.get("output") {
        Some(Value::Array(items)) => items.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return Err(bad_response("`output` is not an array")),
    };
    let mut parts = Vec::new();
    let mut called = false;
    for item in items {
        match type_of(item) {
            Some("message") => {
                for c in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    match type_of(c) {
                        Some("output_text") => parts.push(Part::Text {
                            text: str_of(c, "text").unwrap_or_default().to_owned(),
                            cache: None,
                        }),
                        Some("refusal") => parts.push(Part::Refusal(
                            str_of(c, "refusal").unwrap_or_default().to_owned(),
                        )),
                        _ => {}
                    }
                }
            }
            Some("function_call") => {
                called = true;
                parts.push(Part::ToolCall {
                    id: str_of(item, "call_id").unwrap_or_default().to_owned(),
                    name: str_of(item, "name").unwrap_or_default().to_owned(),
                    arguments: str_of(item, "arguments").unwrap_or_default().to_owned(),
                });
            }
            Some("reasoning") => {
                let summary: Vec<&str> = item
                    .get("summary")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|s| str_of(s, "text"))
                    .collect();
                parts.push(Part::Thinking {
                    text: summary.join("\n\n"),
                    signature: str_of(item, "encrypted_content").map(str::to_owned),
                    redacted: false,
                    origin: ReasoningOrigin::OpenAi,
                    item_id: str_of(item, "id").map(str::to_owned),
                });
            }
            _ => {}
        }
    }
    let mut usage = Usage::default();
    if let Some(u) = obj.get("usage").filter(|u| u.is_object()) {
        usage.apply(&usage_update(u));
    }
    let reason = obj
        .get("incomplete_details")
        .and_then(|d| str_of(d, "reason"));
    Ok(Response {
        id: obj
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(FALLBACK_ID)
            .to_owned(),
        parts,
        stop: Some(stop_from(status, reason, called)),
        stop_sequence: None,
        usage,
    })
}

/// A `function_call` item; a flattened namespaced name gets its `namespace` and plain
/// `name` back.
pub(crate) fn function_call_item(
    item_id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
    names: &ToolNames,
) -> Value {
    let mut item = json!({
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    });
    if let (Some((ns, plain)), Some(obj)) = (names.restore(name), item.as_object_mut()) {
        obj.insert("namespace".into(), json!(ns));
        obj.insert("name".into(), json!(plain));
    }
    item
}

/// Encodes `resp` as a Responses `response` object reported as `model`.
///
/// Consecutive text and refusal parts become one assistant `message` item (`output_text`
/// and `refusal` content); each tool call a `function_call` item (namespaced names restored
/// from `names`); OpenAI-origin reasoning a `reasoning` item; other reasoning is dropped.
/// A length stop is `status: incomplete` with `incomplete_details.reason:
/// max_output_tokens`; a refusal stop, `content_filter`. `created_at` is 0.
pub fn encode(resp: &Response, model: &str, names: &ToolNames) -> Bytes {
    let id = response_id(&resp.id);
    let mut output: Vec<Value> = Vec::new();
    let mut content: Vec<Value> = Vec::new();
    let flush = |content: &mut Vec<Value>, output: &mut Vec<Value>| {
        if !content.is_empty() {
            output.push(json!({
                "id": format!("msg_{}_{}", id, output.len()),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": std::mem::take(content),
            }));
        }
    };
    for part in &resp.parts {
        match part {
            Part::Text { text, .. } => {
                content.push(json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] }));
            }
            Part::Refusal(text) => content.push(json!({ "type": "refusal", "refusal": text })),
            Part::ToolCall {
                id: call_id,
                name,
                arguments,
            } => {
                flush(&mut content, &mut output);
                let item_id = format!("fc_{}_{}", id, output.len());
                output.push(function_call_item(
                    &item_id,
                    call_id,
                    name,
                    arguments,
                    "completed",
                    names,
                ));
            }
            Part::Thinking {
                text,
                signature,
                origin: ReasoningOrigin::OpenAi,
                item_id,
                ..
            } => {
                flush(&mut content, &mut output);
                let mut item = json!({
                    "id": item_id.clone().unwrap_or_else(|| format!("rs_{}_{}", id, output.len())),
                    "type": "reasoning",
                    "summary": if text.is_empty() { json!([]) } else { json!([{ "type": "summary_text", "text": text }]) },
                });
                if let (Some(sig), Some(obj)) = (signature, item.as_object_mut()) {
                    obj.insert("encrypted_content".into(), json!(sig));
                }
                output.push(item);
            }
            _ => {}
        }
    }
    flush(&mut content, &mut output);
    let (status, details) = status_for(resp.stop);
    let mut out = response_object(&id, model, status);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("output".into(), Value::Array(output));
        obj.insert("incomplete_details".into(), details);
        obj.insert("usage".into(), usage_json(&resp.usage));
    }
    to_bytes(&out)
}
