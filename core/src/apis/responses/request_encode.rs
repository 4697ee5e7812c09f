//! The internal [`Request`] → a Responses request body.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::super::json::{data_url, to_bytes, unsupported};
use super::super::model::{
    OutputFormat, Part, ReasoningOrigin, Request, Role, Source, ToolChoice, ToolOutput,
};
use super::super::{Target, TranslateError};

/// Encodes `req` for a target that serves the Responses API, statelessly (`store: false`).
///
/// Messages become `message` items in place (system and developer ones keep their role);
/// tool calls `function_call` items; tool results `function_call_output` items (before the
/// rest of their user turn); OpenAI-origin reasoning `reasoning` items (other reasoning is
/// dropped). Function tools are sent with an explicit `strict` (`false` unless the client
/// asked for it: Responses would otherwise assume `true` and reject schemas written for
/// other APIs). Stop sequences cannot be expressed and are rejected; `top_k` is dropped.
pub fn encode(req: &Request, target: &Target<'_>) -> Result<Bytes, TranslateError> {
    if !req.stop.is_empty() {
        return Err(unsupported(
            "stop sequences are not supported by this model's provider (OpenAI Responses)",
        ));
    }
    let mut input = Vec::new();
    for m in &req.messages {
        match m.role {
            Role::System | Role::Developer | Role::User => {
                let role = match m.role {
                    Role::System => "system",
                    Role::Developer => "developer",
                    _ => "user",
                };
                let mut content = Vec::new();
                for part in &m.parts {
                    match part {
                        Part::ToolResult {
                            call_id, output, ..
                        } => input.push(json!({
                            "type": "function_call_output",
                            "call_id": call_id,
                            "output": tool_output(output)?,
                        })),
                        other => content.extend(input_part(other)?),
                    }
                }
                if !content.is_empty() {
                    input.push(json!({ "type": "message", "role": role, "content": content }));
                }
            }
            Role::Assistant => assistant(&m.parts, &mut input),
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), Value::String(target.model_id.to_owned()));
    out.insert("input".into(), Value::Array(input));
    out.insert("store".into(), Value::Bool(false));
    if let Some(n) = req.max_tokens {
        out.insert("max_output_tokens".into(), json!(target.cap_max_tokens(n)));
    }
    if let Some(t) = req.temperature {
        out.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        out.insert("top_p".into(), json!(p));
    }
    if req.stream {
        out.insert("stream".into(), Value::Bool(true));
    }
    if let Some(user) = &req.user {
        out.insert("user".into(), Value::String(user.clone()));
    }
    match &req.format {
        None => {}
        Some(OutputFormat::JsonObject) => {
            out.insert(
                "text".into(),
                json!({ "format": { "type": "json_object" } }),
            );
        }
        Some(OutputFormat::JsonSchema {
            name,
            schema,
            strict,
            description,
        }) => {
            let mut f = Map::new();
            f.insert("type".into(), json!("json_schema"));
            f.insert(
                "name".into(),
                json!(name.clone().unwrap_or_else(|| "response".to_owned())),
            );
            f.insert("schema".into(), schema.clone());
            if let Some(s) = strict {
                f.insert("strict".into(), json!(s));
            }
            if let Some(d) = description {
                f.insert("description".into(), json!(d));
            }
            out.insert("text".into(), json!({ "format": f }));
        }
    }
    tools(req, &mut out);
    Ok(to_bytes(&Value::Object(out)))
}

fn input_part(part: &Part) -> Result<Option<Value>, TranslateError> {
    Ok(match part {
        Part::Text { text, .. } | Part::Refusal(text) => {
            (!text.is_empty()).then(|| json!({ "type": "input_text", "text": text }))
        }
        Part::Image { source } => Some(match source {
            Source::Url(url) => {
                json!({ "type": "input_image", "image_url": url, "detail": "auto" })
            }
            Source::Base64 { media_type, data } => {
                json!({ "type": "input_image", "image_url": data_url(media_type, data), "detail": "auto" })
            }
            Source::FileId(id) => json!({ "type": "input_image", "file_id": id, "detail": "auto" }),
            Source::Text(_) => return Ok(None),
        }),
        Part::Document { source, filename } => {
            let mut f = match source {
                Source::Base64 { media_type, data } => {
                    json!({ "type": "input_file", "file_data": data_url(media_type, data) })
                }
                Source::Url(url) => json!({ "type": "input_file", "file_url": url }),
                Source::FileId(id) => json!({ "type": "input_file", "file_id": id }),
                Source::Text(text) => {
                    return Ok(Some(json!({ "type": "input_text", "text": text })))
                }
            };
            if let (Some(name), Some(obj)) = (filename, f.as_object_mut()) {
                obj.insert("filename".into(), json!(name));
            }
            Some(f)
        }
        _ => None,
    })
}

fn tool_output(output: &ToolOutput) -> Result<Value, TranslateError> {
    Ok(match output {
        ToolOutput::Text(s) => Value::String(s.clone()),
        ToolOutput::Parts(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                out.extend(input_part(p)?);
            }
            Value::Array(out)
        }
    })
}

fn assistant(parts: &[Part], input: &mut Vec<Value>) {
    let mut text: Vec<Value> = Vec::new();
    let flush = |text: &mut Vec<Value>, input: &mut Vec<Value>| {
        if !text.is_empty() {
            input.push(json!({
                "type": "message",
                "role": "assistant",
                "content": std::mem::take(text),
            }));
        }
    };
    for part in parts {
        match part {
            Part::Text { text: t, .. } if !t.is_empty() => {
                text.push(json!({ "type": "output_text", "text": t, "annotations": [] }));
            }
            Part::Refusal(r) if !r.is_empty() => {
                text.push(json!({ "type": "refusal", "refusal": r }));
            }
            Part::ToolCall {
                id,
                name,
                arguments,
            } => {
                flush(&mut text, input);
                input.push(json!({
                    "type": "function_call",
                    "call_id": id,
                    "name": name,
                    "arguments": if arguments.is_empty() { "{}" } else { arguments.as_str() },
                }));
            }
            Part::Thinking {
                text: summary,
                signature,
                origin: ReasoningOrigin::OpenAi,
                item_id,
                ..
            } => {
                flush(&mut text, input);
                let mut item = json!({
                    "type": "reasoning",
                    "summary": if summary.is_empty() { json!([]) } else { json!([{ "type": "summary_text", "text": summary }]) },
                });
                if let Some(obj) = item.as_object_mut() {
                    if let Some(id) = item_id {
                        obj.insert("id".into(), json!(id));
                    }
                    if let Some(sig) = signature {
                        obj.insert("encrypted_content".into(), json!(sig));
                    }
                }
                input.push(item);
            }
            _ => {}
        }
    }
    flush(&mut text, input);
}

fn tools(req: &Request, out: &mut Map<String, Value>) {
    if req.tools.is_empty() {
        return;
    }
    let tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| {
            let mut o = Map::new();
            o.insert("type".into(), json!("function"));
            o.insert("name".into(), json!(t.name));
            if let Some(d) = &t.description {
                o.insert("description".into(), json!(d));
            }
            o.insert(
                "parameters".into(),
                t.parameters
                    .clone()
                    .unwrap_or_else(|| json!({ "type": "object", "properties": {} })),
            );
            o.insert("strict".into(), json!(t.strict.unwrap_or(false)));
            Value::Object(o)
        })
        .collect();
    out.insert("tools".into(), Value::Array(tools));
    if let Some(choice) = &req.tool_choice {
        let c = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::Required => json!("required"),
            ToolChoice::None => json!("none"),
            ToolChoice::Tool(name) => json!({ "type": "function", "name": name }),
        };
        out.insert("tool_choice".into(), c);
    }
    if let Some(p) = req.parallel_tool_calls {
        out.insert("parallel_tool_calls".into(), Value::Bool(p));
    }
}
