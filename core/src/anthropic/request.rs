//! OpenAI chat request → Anthropic Messages request.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::tools::translate_tools;
use super::TranslateError;

/// OpenAI chat request body → Anthropic Messages request body for `model_id` (the part after the
/// provider prefix). `max_tokens` is required by Anthropic: the client's `max_completion_tokens`
/// or `max_tokens` (in that order), else `default_max_tokens`.
///
/// Translated: `messages`, `max_tokens`/`max_completion_tokens`, `temperature`, `top_p`, `stop`,
/// `stream`, `tools`, `tool_choice`, `parallel_tool_calls: false`, `user`. Everything else is
/// dropped or rejected as listed in [`DROPPED_FIELDS`](super::DROPPED_FIELDS).
///
/// Decisions:
/// - `system` and `developer` messages, wherever they appear, are hoisted into the top-level
///   `system` string: the text parts of one message are concatenated, messages are joined with a
///   blank line (`\n\n`).
/// - Consecutive messages of the same Anthropic role are merged into one message (Anthropic
///   requires alternation); `tool` messages become `tool_result` blocks of a `user` message, and
///   within a user message `tool_result` blocks are placed before other content, as Anthropic
///   requires. A message left with a single plain text block is sent with string content.
/// - Empty text parts are dropped (Anthropic rejects empty text blocks).
/// - Tool call `arguments` that are empty become `{}`; arguments that are not a JSON object are
///   rejected (Anthropic's `input` must be an object, and guessing would change the meaning).
/// - `temperature` above 1 is clamped to 1 (OpenAI allows 0..=2, Anthropic 0..=1).
/// - Image parts: `https://`/`http://` URLs become `url` sources, `data:<type>;base64,<data>`
///   URLs become `base64` sources; `detail` is dropped. `file` parts with `file_data` as a base64
///   data URL become `document` blocks; file ids are rejected. Audio parts are rejected.
/// - Unknown message fields (`name`, ...) are dropped.
pub fn translate_request(
    openai_body: &[u8],
    model_id: &str,
    default_max_tokens: u32,
) -> Result<Bytes, TranslateError> {
    let body: Value =
        serde_json::from_slice(openai_body).map_err(|_| TranslateError::InvalidJson)?;
    let Value::Object(req) = body else {
        return Err(TranslateError::InvalidJson);
    };
    reject_unsupported(&req)?;

    let mut out = Map::new();
    out.insert("model".into(), Value::String(model_id.to_owned()));

    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`messages` must be an array"))?;
    let (system, messages) = translate_messages(messages)?;
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system));
    }
    out.insert("messages".into(), Value::Array(messages));
    out.insert(
        "max_tokens".into(),
        json!(max_tokens(&req, default_max_tokens)?),
    );

    if let Some(stop) = non_null(&req, "stop") {
        let seqs = match stop {
            Value::String(s) => vec![Value::String(s.clone())],
            Value::Array(items) if items.iter().all(Value::is_string) => items.clone(),
            _ => return Err(invalid("`stop` must be a string or an array of strings")),
        };
        if !seqs.is_empty() {
            out.insert("stop_sequences".into(), Value::Array(seqs));
        }
    }
    if let Some(t) = non_null(&req, "temperature") {
        let t = t
            .as_f64()
            .ok_or_else(|| invalid("`temperature` must be a number"))?;
        out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(p) = non_null(&req, "top_p") {
        if !p.is_number() {
            return Err(invalid("`top_p` must be a number"));
        }
        out.insert("top_p".into(), p.clone());
    }
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
    }
    if let Some(Value::String(user)) = req.get("user") {
        out.insert("metadata".into(), json!({ "user_id": user }));
    }
    translate_tools(&req, &mut out)?;

    serde_json::to_vec(&Value::Object(out))
        .map(Bytes::from)
        .map_err(|_| invalid("the request could not be encoded"))
}

pub(super) fn invalid(msg: &str) -> TranslateError {
    TranslateError::InvalidRequest(msg.to_owned())
}

pub(super) fn unsupported(msg: &str) -> TranslateError {
    TranslateError::Unsupported(msg.to_owned())
}

/// `req[key]` unless absent or `null`.
pub(super) fn non_null<'a>(req: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    req.get(key).filter(|v| !v.is_null())
}

fn reject_unsupported(req: &Map<String, Value>) -> Result<(), TranslateError> {
    if let Some(n) = non_null(req, "n") {
        match n.as_u64() {
            Some(1) => {}
            Some(0) | None => return Err(invalid("`n` must be a positive integer")),
            Some(_) => {
                return Err(unsupported(
                    "`n` greater than 1 is not supported by this model's provider (Anthropic)",
                ))
            }
        }
    }
    if req.get("logprobs").and_then(Value::as_bool) == Some(true) {
        return Err(unsupported(
            "`logprobs` is not supported by this model's provider (Anthropic)",
        ));
    }
    if non_null(req, "audio").is_some() {
        return Err(unsupported(
            "audio output is not supported by this model's provider (Anthropic)",
        ));
    }
    if let Some(m) = non_null(req, "modalities") {
        let text_only = m
            .as_array()
            .is_some_and(|a| a.iter().all(|x| x.as_str() == Some("text")));
        if !text_only {
            return Err(unsupported(
                "only the `text` modality is supported by this model's provider (Anthropic)",
            ));
        }
    }
    if non_null(req, "functions").is_some() || non_null(req, "function_call").is_some() {
        return Err(unsupported(
            "the legacy `functions`/`function_call` fields are not supported for this model; use `tools` and `tool_choice`",
        ));
    }
    Ok(())
}

fn max_tokens(req: &Map<String, Value>, default: u32) -> Result<u64, TranslateError> {
    let given = non_null(req, "max_completion_tokens").or_else(|| non_null(req, "max_tokens"));
    match given {
        None => Ok(u64::from(default)),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && n <= u64::from(u32::MAX) => Ok(n),
            _ => Err(invalid(
                "`max_tokens`/`max_completion_tokens` must be a positive integer",
            )),
        },
    }
}

/// Returns the `system` text and the Anthropic `messages`.
fn translate_messages(messages: &[Value]) -> Result<(String, Vec<Value>), TranslateError> {
    let mut system: Vec<String> = Vec::new();
    // (role, content blocks), merged as we go.
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for msg in messages {
        let role = msg
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("every message needs a string `role`"))?;
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.push(system_text(msg.get("content"))?);
                continue;
            }
            "user" => ("user", user_blocks(msg.get("content"))?),
            "assistant" => ("assistant", assistant_blocks(msg)?),
            "tool" => ("user", vec![tool_result(msg)?]),
            "function" => return Err(unsupported(
                "`function` role messages are not supported for this model; use `tool` messages",
            )),
            other => return Err(invalid(&format!("unknown message role `{other}`"))),
        };
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    let messages = out
        .into_iter()
        .map(|(role, mut blocks)| {
            if role == "user" {
                // Anthropic wants tool results first in a user turn; keep each group's order.
                let (mut results, rest): (Vec<Value>, Vec<Value>) = blocks
                    .into_iter()
                    .partition(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"));
                results.extend(rest);
                blocks = results;
            }
            json!({ "role": role, "content": compact(blocks) })
        })
        .collect();
    let system = system
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    Ok((system, messages))
}

/// A single plain text block becomes string content.
fn compact(mut blocks: Vec<Value>) -> Value {
    if blocks.len() == 1 {
        if let Some(Value::Object(b)) = blocks.first() {
            if b.len() == 2 && b.get("type").and_then(Value::as_str) == Some("text") {
                if let Some(Value::String(text)) = b.get("text") {
                    return Value::String(text.clone());
                }
            }
        }
    }
    Value::Array(std::mem::take(&mut blocks))
}

fn text_block(text: &str) -> Value {
    json!({ "type": "text", "text": text })
}

/// The text of a system/developer message: a string or text parts, concatenated.
fn system_text(content: Option<&Value>) -> Result<String, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => text.push_str(part_text(part)?),
                    _ => return Err(invalid("system messages may only contain text parts")),
                }
            }
            Ok(text)
        }
        Some(_) => Err(invalid(
            "message `content` must be a string or an array of parts",
        )),
    }
}

fn part_text(part: &Value) -> Result<&str, TranslateError> {
    part.get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("a `text` part needs a string `text`"))
}

fn user_blocks(content: Option<&Value>) -> Result<Vec<Value>, TranslateError> {
    let parts = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![text_block(s)]),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(invalid(
                "message `content` must be a string or an array of parts",
            ))
        }
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = part_text(part)?;
                if !text.is_empty() {
                    blocks.push(text_block(text));
                }
            }
            Some("image_url") => blocks.push(image_block(part)?),
            Some("file") => blocks.push(file_block(part)?),
            Some("input_audio") => {
                return Err(unsupported(
                    "audio input is not supported by this model's provider (Anthropic)",
                ))
            }
            Some(other) => {
                return Err(unsupported(&format!(
                    "content parts of type `{other}` are not supported for this model"
                )))
            }
            None => return Err(invalid("every content part needs a string `type`")),
        }
    }
    Ok(blocks)
}

/// Splits `data:<media type>;base64,<data>`.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    (!media_type.is_empty()).then_some((media_type, data))
}

fn image_block(part: &Value) -> Result<Value, TranslateError> {
    let url = part
        .get("image_url")
        .and_then(|i| i.get("url").or(Some(i)))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("an `image_url` part needs `image_url.url`"))?;
    if let Some((media_type, data)) = parse_data_url(url) {
        return Ok(json!({
            "type": "image",
            "source": { "type": "base64", "media_type": media_type, "data": data },
        }));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({ "type": "image", "source": { "type": "url", "url": url } }));
    }
    Err(invalid(
        "image URLs must be http(s) URLs or base64 `data:` URLs",
    ))
}

fn file_block(part: &Value) -> Result<Value, TranslateError> {
    let file = part.get("file");
    let data = file
        .and_then(|f| f.get("file_data"))
        .and_then(Value::as_str);
    match data.and_then(parse_data_url) {
        Some((media_type, data)) => Ok(json!({
            "type": "document",
            "source": { "type": "base64", "media_type": media_type, "data": data },
        })),
        None => Err(unsupported(
            "`file` parts are supported for this model only with `file_data` as a base64 data URL",
        )),
    }
}

fn assistant_blocks(msg: &Value) -> Result<Vec<Value>, TranslateError> {
    let mut blocks = Vec::new();
    match msg.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            if !s.is_empty() {
                blocks.push(text_block(s));
            }
        }
        Some(Value::Array(parts)) => {
            for part in parts {
                let text = match part.get("type").and_then(Value::as_str) {
                    Some("text") => part_text(part)?,
                    Some("refusal") => part
                        .get("refusal")
                        .and_then(Value::as_str)
                        .ok_or_else(|| invalid("a `refusal` part needs a string `refusal`"))?,
                    _ => {
                        return Err(invalid(
                            "assistant messages may only contain text and refusal parts",
                        ))
                    }
                };
                if !text.is_empty() {
                    blocks.push(text_block(text));
                }
            }
        }
        Some(_) => {
            return Err(invalid(
                "message `content` must be a string or an array of parts",
            ))
        }
    }
    if non_null_field(msg, "function_call") {
        return Err(unsupported(
            "legacy assistant `function_call` is not supported for this model; use `tool_calls`",
        ));
    }
    match msg.get("tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(calls)) => {
            for call in calls {
                blocks.push(tool_use(call)?);
            }
        }
        Some(_) => return Err(invalid("`tool_calls` must be an array")),
    }
    Ok(blocks)
}

fn non_null_field(v: &Value, key: &str) -> bool {
    v.get(key).is_some_and(|x| !x.is_null())
}

fn tool_use(call: &Value) -> Result<Value, TranslateError> {
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("every tool call needs a string `id`"))?;
    let function = call
        .get("function")
        .ok_or_else(|| invalid("every tool call needs a `function`"))?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("every tool call needs a string `function.name`"))?;
    let input = match function.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(args)) if args.trim().is_empty() => json!({}),
        Some(Value::String(args)) => match serde_json::from_str::<Value>(args) {
            Ok(obj @ Value::Object(_)) => obj,
            _ => {
                return Err(invalid(&format!(
                    "the arguments of tool call `{id}` must be a JSON object"
                )))
            }
        },
        Some(obj @ Value::Object(_)) => obj.clone(),
        Some(_) => return Err(invalid("tool call `function.arguments` must be a string")),
    };
    Ok(json!({ "type": "tool_use", "id": id, "name": name, "input": input }))
}

fn tool_result(msg: &Value) -> Result<Value, TranslateError> {
    let id = msg
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("`tool` messages need a string `tool_call_id`"))?;
    let content = match msg.get("content") {
        None | Some(Value::Null) => Value::String(String::new()),
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let text = part_text(part)?;
                        if !text.is_empty() {
                            blocks.push(text_block(text));
                        }
                    }
                    _ => return Err(invalid("`tool` messages may only contain text parts")),
                }
            }
            Value::Array(blocks)
        }
        Some(_) => {
            return Err(invalid(
                "message `content` must be a string or an array of parts",
            ))
        }
    };
    Ok(json!({ "type": "tool_result", "tool_use_id": id, "content": content }))
}
