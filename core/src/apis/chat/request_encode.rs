//! The internal [`Request`] → a Chat Completions request body.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::super::json::{data_url, to_bytes, unsupported};
use super::super::model::{
    Message, OutputFormat, Part, Request, Role, Source, ToolChoice, ToolOutput,
};
use super::super::{MaxTokensField, Target, ToolCallIds, TranslateError};
use crate::config::Continuation;

/// The longest end-user id sent as `user` (OpenAI's limit for `safety_identifier`, the field
/// that replaces it); a longer one (Claude Code's `metadata.user_id` is) is dropped.
pub const MAX_USER_CHARS: usize = 64;

/// Encodes `req` for an OpenAI-compatible Chat Completions target.
///
/// - System and developer messages stay where they are, as `system` messages (the role every
///   OpenAI-compatible server accepts; OpenAI reads it as `developer` for reasoning models).
/// - Tool results become `tool` messages placed before the rest of their user turn (Chat
///   wants them right after the assistant's calls); a tool result's images, which `tool`
///   messages cannot carry, move into that user message. `is_error` has no Chat field and is
///   dropped (the result's text, which says what failed, is kept).
/// - Images: URLs as they are, inline data as `data:` URLs. Base64 documents become `file`
///   parts with `file_data`; text documents become text; documents by URL or file id are
///   rejected (Chat cannot fetch them).
/// - Reasoning of any origin is dropped: Chat cannot carry it back.
/// - The output limit goes in `target.max_tokens_field`, capped at `target.max_output_tokens`;
///   a stream asks for `stream_options.include_usage` so the final usage can be reported.
/// - Tool-call ids are rewritten for targets that accept only Mistral's 9-character ids
///   ([`tool_call_id`]).
/// - `top_k` has no Chat equivalent and is dropped; an end-user id longer than
///   [`MAX_USER_CHARS`] is dropped.
/// - A final assistant message of text (a prefill) is sent only in a form the target
///   continues ([`prefill`]); otherwise the request is rejected.
pub fn encode(req: &Request, target: &Target<'_>) -> Result<Bytes, TranslateError> {
    let mut out = Map::new();
    out.insert("model".into(), Value::String(target.model_id.to_owned()));
    let mut list = messages(&req.messages, target.tool_call_ids)?;
    let continue_final = prefill(&mut list, target.continuation)?;
    out.insert("messages".into(), Value::Array(list));
    if continue_final {
        out.insert("continue_final_message".into(), Value::Bool(true));
        out.insert("add_generation_prompt".into(), Value::Bool(false));
    }
    if let Some(n) = req.max_tokens {
        let field = match target.max_tokens_field {
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        };
        out.insert(field.into(), json!(target.cap_max_tokens(n)));
    }
    if let Some(t) = req.temperature {
        out.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        out.insert("top_p".into(), json!(p));
    }
    if !req.stop.is_empty() {
        out.insert("stop".into(), json!(req.stop));
    }
    if req.stream {
        out.insert("stream".into(), Value::Bool(true));
        out.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    if let Some(user) = req
        .user
        .as_ref()
        .filter(|u| u.chars().count() <= MAX_USER_CHARS)
    {
        out.insert("user".into(), Value::String(user.clone()));
    }
    match &req.format {
        None => {}
        Some(OutputFormat::JsonObject) => {
            out.insert("response_format".into(), json!({ "type": "json_object" }));
        }
        Some(OutputFormat::JsonSchema {
            name,
            schema,
            strict,
            description,
        }) => {
            let mut js = Map::new();
            js.insert(
                "name".into(),
                Value::String(name.clone().unwrap_or_else(|| "response".to_owned())),
            );
            js.insert("schema".into(), schema.clone());
            if let Some(s) = strict {
                js.insert("strict".into(), Value::Bool(*s));
            }
            if let Some(d) = description {
                js.insert("description".into(), Value::String(d.clone()));
            }
            out.insert(
                "response_format".into(),
                json!({ "type": "json_schema", "json_schema": js }),
            );
        }
    }
    tools(req, &mut out);
    Ok(to_bytes(&Value::Object(out)))
}

/// A final assistant message that holds text and no tool calls is a prefill: the client
/// asks for the answer to *continue* it (as Anthropic does), while a Chat model without
/// a continuation feature answers after it, a different answer. It is kept in the form the
/// target's `continuation` style continues: as it is (`assistant_prefill`), with
/// `"prefix": true` (`mistral_prefix`), or as it is with the top-level flags vLLM reads
/// (`vllm_continue_final_message`: returns `true`, the caller adds them). Any other style
/// (none, or `deepseek_prefix`, which only DeepSeek's beta path serves) is rejected.
fn prefill(messages: &mut [Value], style: Continuation) -> Result<bool, TranslateError> {
    let Some(last) = messages.last_mut() else {
        return Ok(false);
    };
    let is_prefill = last.get("role").and_then(Value::as_str) == Some("assistant")
        && last.get("tool_calls").is_none()
        && last.get("content").is_some_and(Value::is_string);
    if !is_prefill {
        return Ok(false);
    }
    match style {
        Continuation::AssistantPrefill => Ok(false),
        Continuation::VllmContinueFinalMessage => Ok(true),
        Continuation::MistralPrefix => {
            if let Some(obj) = last.as_object_mut() {
                obj.insert("prefix".into(), Value::Bool(true));
            }
            Ok(false)
        }
        Continuation::None | Continuation::Native | Continuation::DeepseekPrefix => {
            Err(unsupported(
                "a final `assistant` message (prefill) asks for it to be continued, which this model's provider (OpenAI Chat Completions) does only when its entry sets `continuation: assistant_prefill`, `mistral_prefix` or `vllm_continue_final_message`",
            ))
        }
    }
}

fn text_part(text: &str) -> Value {
    json!({ "type": "text", "text": text })
}

/// A user content part, or `None` for parts a user message does not carry.
fn user_part(part: &Part) -> Result<Option<Value>, TranslateError> {
    Ok(match part {
        Part::Text { text, .. } | Part::Refusal(text) => {
            (!text.is_empty()).then(|| text_part(text))
        }
        Part::Image { source } => Some(json!({ "type": "image_url", "image_url": { "url": image_url(source)? } })),
        Part::Document { source, filename } => match source {
            Source::Base64 { media_type, data } => {
                let mut file = json!({ "file_data": data_url(media_type, data) });
                if let (Some(name), Some(obj)) = (filename, file.as_object_mut()) {
                    obj.insert("filename".into(), Value::String(name.clone()));
                }
                Some(json!({ "type": "file", "file": file }))
            }
            Source::Text(text) => Some(text_part(text)),
            Source::Url(_) | Source::FileId(_) => {
                return Err(unsupported(
                    "documents given by URL or file id cannot be sent to this model's provider (OpenAI Chat Completions); send them inline",
                ))
            }
        },
        _ => None,
    })
}

fn image_url(source: &Source) -> Result<String, TranslateError> {
    match source {
        Source::Url(url) => Ok(url.clone()),
        Source::Base64 { media_type, data } => Ok(data_url(media_type, data)),
        Source::Text(_) | Source::FileId(_) => Err(unsupported(
            "images given by file id cannot be sent to this model's provider (OpenAI Chat Completions); send them inline",
        )),
    }
}

/// One content value: a plain string for a single text part, else the parts.
fn content(parts: Vec<Value>) -> Value {
    if let [p] = parts.as_slice() {
        if p.get("type").and_then(Value::as_str) == Some("text") {
            if let Some(t) = p.get("text") {
                return t.clone();
            }
        }
    }
    Value::Array(parts)
}

fn messages(messages: &[Message], ids: ToolCallIds) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        match m.role {
            Role::System | Role::Developer => {
                let text: String = m
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Text { text, .. } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                out.push(json!({ "role": "system", "content": text }));
            }
            Role::User => user(m, ids, &mut out)?,
            Role::Assistant => assistant(m, ids, &mut out),
        }
    }
    Ok(out)
}

fn user(m: &Message, ids: ToolCallIds, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let mut parts = Vec::new();
    for part in &m.parts {
        if let Part::ToolResult {
            call_id, output, ..
        } = part
        {
            let content = match output {
                ToolOutput::Text(s) => Value::String(s.clone()),
                ToolOutput::Parts(ps) => {
                    let mut texts = Vec::new();
                    for p in ps {
                        match p {
                            Part::Text { text, .. } => texts.push(text_part(text)),
                            other => parts.extend(user_part(other)?),
                        }
                    }
                    content(texts)
                }
            };
            let id = tool_call_id(call_id, ids);
            out.push(json!({ "role": "tool", "tool_call_id": id, "content": content }));
        } else if let Some(p) = user_part(part)? {
            parts.push(p);
        }
    }
    if !parts.is_empty() {
        out.push(json!({ "role": "user", "content": content(parts) }));
    }
    Ok(())
}

fn assistant(m: &Message, ids: ToolCallIds, out: &mut Vec<Value>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for part in &m.parts {
        match part {
            Part::Text { text: t, .. } | Part::Refusal(t) => text.push_str(t),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => calls.push(json!({
                "id": tool_call_id(id, ids),
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": if arguments.is_empty() { "{}" } else { arguments.as_str() },
                },
            })),
            _ => {}
        }
    }
    if text.is_empty() && calls.is_empty() {
        return;
    }
    let mut msg = json!({
        "role": "assistant",
        "content": if text.is_empty() { Value::Null } else { Value::String(text) },
    });
    if let (false, Some(obj)) = (calls.is_empty(), msg.as_object_mut()) {
        obj.insert("tool_calls".into(), Value::Array(calls));
    }
    out.push(msg);
}

/// A tool-call id as the target accepts it: unchanged, or (for 9-alphanumeric targets) an id
/// already of that form unchanged and any other one hashed (64-bit FNV-1a) to 9 base-62
/// characters, so a call and its result get the same new id.
pub fn tool_call_id(id: &str, ids: ToolCallIds) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    if ids == ToolCallIds::AsGiven
        || (id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return id.to_owned();
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (0..9)
        .map(|_| {
            let c = ALPHABET[(hash % 62) as usize];
            hash /= 62;
            char::from(c)
        })
        .collect()
}

fn tools(req: &Request, out: &mut Map<String, Value>) {
    if req.tools.is_empty() {
        return;
    }
    let tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| {
            let mut f = Map::new();
            f.insert("name".into(), Value::String(t.name.clone()));
            if let Some(d) = &t.description {
                f.insert("description".into(), Value::String(d.clone()));
            }
            f.insert(
                "parameters".into(),
                t.parameters
                    .clone()
                    .unwrap_or_else(|| json!({ "type": "object", "properties": {} })),
            );
            if let Some(s) = t.strict {
                f.insert("strict".into(), Value::Bool(s));
            }
            json!({ "type": "function", "function": f })
        })
        .collect();
    out.insert("tools".into(), Value::Array(tools));
    if let Some(choice) = &req.tool_choice {
        let c = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::Required => json!("required"),
            ToolChoice::None => json!("none"),
            ToolChoice::Tool(name) => json!({ "type": "function", "function": { "name": name } }),
        };
        out.insert("tool_choice".into(), c);
    }
    if let Some(p) = req.parallel_tool_calls {
        out.insert("parallel_tool_calls".into(), Value::Bool(p));
    }
}
