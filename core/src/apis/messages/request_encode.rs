//! The internal [`Request`] → an Anthropic Messages request body.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::super::json::{invalid, to_bytes, unsupported};
use super::super::model::{
    Message, OutputFormat, Part, ReasoningOrigin, Request, Role, Source, ToolChoice, ToolOutput,
};
use super::super::{Target, TranslateError};

/// Encodes `req` for an Anthropic-interface target.
///
/// - System and developer messages, wherever they are, become the top-level `system`: a
///   string (each message's parts concatenated, messages joined by a blank line), or text
///   blocks when any part carries `cache_control`.
/// - Consecutive messages of one role are merged (Anthropic requires alternation); within a
///   user turn `tool_result` blocks come first; a turn left with one plain text block is sent
///   as string content; empty text is dropped (Anthropic rejects empty text blocks).
/// - Tool call arguments must be a JSON object (empty means `{}`); anything else is rejected,
///   since guessing would change the call's meaning.
/// - `max_tokens`: the request's, else `target.default_max_tokens` (Anthropic requires one);
///   capped at `target.max_output_tokens` when set.
/// - `temperature` outside Anthropic's 0..=1 is rejected ([`temperature`]).
/// - Reasoning from another API (OpenAI encrypted reasoning) is dropped: Anthropic cannot
///   verify it.
pub fn encode(req: &Request, target: &Target<'_>) -> Result<Bytes, TranslateError> {
    let mut out = Map::new();
    out.insert("model".into(), Value::String(target.model_id.to_owned()));
    if let Some(system) = system(&req.messages) {
        out.insert("system".into(), system);
    }
    out.insert("messages".into(), Value::Array(messages(&req.messages)?));
    let max_tokens = req
        .max_tokens
        .unwrap_or_else(|| u64::from(target.default_max_tokens));
    out.insert(
        "max_tokens".into(),
        json!(target.cap_max_tokens(max_tokens)),
    );
    if !req.stop.is_empty() {
        out.insert("stop_sequences".into(), json!(req.stop));
    }
    if let Some(t) = req.temperature {
        out.insert("temperature".into(), json!(temperature(t)?));
    }
    if let Some(p) = req.top_p {
        out.insert("top_p".into(), json!(p));
    }
    if let Some(k) = req.top_k {
        out.insert("top_k".into(), json!(k));
    }
    if req.stream {
        out.insert("stream".into(), Value::Bool(true));
    }
    if let Some(user) = &req.user {
        out.insert("metadata".into(), json!({ "user_id": user }));
    }
    if let Some(OutputFormat::JsonSchema { schema, .. }) = &req.format {
        out.insert(
            "output_config".into(),
            json!({ "format": { "type": "json_schema", "schema": schema } }),
        );
    }
    tools(req, &mut out);
    Ok(to_bytes(&Value::Object(out)))
}

fn system(messages: &[Message]) -> Option<Value> {
    let systems: Vec<&Message> = messages
        .iter()
        .filter(|m| matches!(m.role, Role::System | Role::Developer))
        .collect();
    let texts = |m: &&Message| -> Vec<(String, Option<Value>)> {
        m.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text, cache } => Some((text.clone(), cache.clone())),
                _ => None,
            })
            .collect()
    };
    let cached = systems
        .iter()
        .flat_map(texts)
        .any(|(_, cache)| cache.is_some());
    if cached {
        let blocks: Vec<Value> = systems
            .iter()
            .flat_map(texts)
            .filter(|(t, _)| !t.is_empty())
            .map(|(t, cache)| text_block(&t, cache.as_ref()))
            .collect();
        return (!blocks.is_empty()).then_some(Value::Array(blocks));
    }
    let joined = systems
        .iter()
        .map(|m| texts(m).into_iter().map(|(t, _)| t).collect::<String>())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    (!joined.is_empty()).then_some(Value::String(joined))
}

fn text_block(text: &str, cache: Option<&Value>) -> Value {
    let mut b = json!({ "type": "text", "text": text });
    if let (Some(c), Some(obj)) = (cache, b.as_object_mut()) {
        obj.insert("cache_control".into(), c.clone());
    }
    b
}

fn messages(messages: &[Message]) -> Result<Vec<Value>, TranslateError> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in messages {
        let role = match m.role {
            Role::System | Role::Developer => continue,
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let mut blocks = Vec::with_capacity(m.parts.len());
        for part in &m.parts {
            if let Some(b) = block(part)? {
                blocks.push(b);
            }
        }
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, prev)) if *last == role => prev.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    Ok(turns
        .into_iter()
        .map(|(role, mut blocks)| {
            if role == "user" {
                let (mut results, rest): (Vec<Value>, Vec<Value>) = blocks
                    .into_iter()
                    .partition(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"));
                results.extend(rest);
                blocks = results;
            }
            json!({ "role": role, "content": compact(blocks) })
        })
        .collect())
}

/// A single plain text block becomes string content.
fn compact(blocks: Vec<Value>) -> Value {
    if let [Value::Object(b)] = blocks.as_slice() {
        if b.len() == 2 && b.get("type").and_then(Value::as_str) == Some("text") {
            if let Some(Value::String(text)) = b.get("text") {
                return Value::String(text.clone());
            }
        }
    }
    Value::Array(blocks)
}

fn source(source: &Source, what: &str) -> Result<Value, TranslateError> {
    Ok(match source {
        Source::Url(url) => json!({ "type": "url", "url": url }),
        Source::Base64 { media_type, data } => {
            json!({ "type": "base64", "media_type": media_type, "data": data })
        }
        Source::Text(text) => json!({ "type": "text", "media_type": "text/plain", "data": text }),
        Source::FileId(_) => {
            return Err(unsupported(format!(
                "{what} given by file id cannot be sent to this model's provider (Anthropic); send the data inline"
            )))
        }
    })
}

fn block(part: &Part) -> Result<Option<Value>, TranslateError> {
    Ok(Some(match part {
        Part::Text { text, cache } => {
            if text.is_empty() {
                return Ok(None);
            }
            text_block(text, cache.as_ref())
        }
        Part::Refusal(text) => {
            if text.is_empty() {
                return Ok(None);
            }
            text_block(text, None)
        }
        Part::Image { source: s } => {
            if matches!(s, Source::Text(_)) {
                return Err(invalid("an image cannot have a text source"));
            }
            json!({ "type": "image", "source": source(s, "an image")? })
        }
        Part::Document {
            source: s,
            filename,
        } => {
            let mut b = json!({ "type": "document", "source": source(s, "a document")? });
            if let (Some(name), Some(obj)) = (filename, b.as_object_mut()) {
                obj.insert("title".into(), Value::String(name.clone()));
            }
            b
        }
        Part::ToolCall {
            id,
            name,
            arguments,
        } => {
            json!({ "type": "tool_use", "id": id, "name": name, "input": tool_input(id, arguments)? })
        }
        Part::ToolResult {
            call_id,
            output,
            is_error,
        } => {
            let content = match output {
                ToolOutput::Text(s) => Value::String(s.clone()),
                ToolOutput::Parts(parts) => {
                    let mut blocks = Vec::with_capacity(parts.len());
                    for p in parts {
                        if let Some(b) = block(p)? {
                            blocks.push(b);
                        }
                    }
                    Value::Array(blocks)
                }
            };
            let mut b =
                json!({ "type": "tool_result", "tool_use_id": call_id, "content": content });
            if let (true, Some(obj)) = (*is_error, b.as_object_mut()) {
                obj.insert("is_error".into(), Value::Bool(true));
            }
            b
        }
        Part::Thinking {
            text,
            signature,
            redacted,
            origin,
            ..
        } => {
            if *origin != ReasoningOrigin::Anthropic {
                return Ok(None);
            }
            let signature = signature.clone().unwrap_or_default();
            if *redacted {
                json!({ "type": "redacted_thinking", "data": signature })
            } else {
                json!({ "type": "thinking", "thinking": text, "signature": signature })
            }
        }
    }))
}

/// `t` when it is within Anthropic's range, 0..=1; otherwise the request is rejected
/// naming `temperature`. OpenAI's range is 0..=2, and no value of Anthropic's samples like
/// 1.5 does: sending 1 instead would answer with another sampling than the client asked for.
pub(crate) fn temperature(t: f64) -> Result<f64, TranslateError> {
    if (0.0..=1.0).contains(&t) {
        Ok(t)
    } else {
        Err(unsupported(format!(
            "`temperature` {t} is outside 0..=1, the range of this model's provider (Anthropic)"
        )))
    }
}

/// A tool call's `arguments` text as Anthropic's `input` object.
pub(crate) fn tool_input(id: &str, arguments: &str) -> Result<Value, TranslateError> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(obj @ Value::Object(_)) => Ok(obj),
        _ => Err(invalid(format!(
            "the arguments of tool call `{id}` must be a JSON object"
        ))),
    }
}

/// `tools` and `tool_choice`. Without tools, `tool_choice` and `parallel_tool_calls` are
/// dropped. `parallel_tool_calls: false` sets `disable_parallel_tool_use` on the choice
/// (`auto` when none was given), except on `none`, which does not take it.
fn tools(req: &Request, out: &mut Map<String, Value>) {
    if req.tools.is_empty() {
        return;
    }
    let tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| {
            let mut o = Map::new();
            o.insert("name".into(), Value::String(t.name.clone()));
            if let Some(d) = &t.description {
                o.insert("description".into(), Value::String(d.clone()));
            }
            let schema = t
                .parameters
                .clone()
                .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
            o.insert("input_schema".into(), schema);
            Value::Object(o)
        })
        .collect();
    out.insert("tools".into(), Value::Array(tools));
    let mut choice = req.tool_choice.as_ref().map(|c| match c {
        ToolChoice::Auto => json!({ "type": "auto" }),
        ToolChoice::Required => json!({ "type": "any" }),
        ToolChoice::None => json!({ "type": "none" }),
        ToolChoice::Tool(name) => json!({ "type": "tool", "name": name }),
    });
    if req.parallel_tool_calls == Some(false) && req.tool_choice != Some(ToolChoice::None) {
        let c = choice.get_or_insert_with(|| json!({ "type": "auto" }));
        if let Some(obj) = c.as_object_mut() {
            obj.insert("disable_parallel_tool_use".into(), Value::Bool(true));
        }
    }
    if let Some(c) = choice {
        out.insert("tool_choice".into(), c);
    }
}
