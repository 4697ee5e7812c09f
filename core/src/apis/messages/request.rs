//! Anthropic Messages (and count_tokens) request body → the internal [`Request`].

use serde_json::Value;

use super::super::json::{
    invalid, non_null, opt_f64, parse_object, str_of, type_of, unsupported, Obj,
};
use super::super::model::{
    Message, OutputFormat, Part, ReasoningOrigin, Request, Role, Source, Tool, ToolChoice,
    ToolOutput,
};
use super::super::TranslateError;

/// Content block types dropped when translating: results of tools that only Anthropic runs
/// (server tools), which another API cannot replay.
pub const DROPPED_BLOCK_TYPES: &[&str] = &[
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "mcp_tool_use",
    "mcp_tool_result",
    "container_upload",
];

/// Decodes an Anthropic Messages request (or a count_tokens request, which has the same
/// shape without `max_tokens`) for translation to another API (`target` names it in error
/// messages). See `docs/apis.md` for every field's rule.
///
/// Kept: `system` (string or text blocks, with their `cache_control`), `messages` (roles
/// `user`, `assistant`, and the mid-conversation `system` role of the
/// `mid-conversation-system` beta, in place), content blocks `text`, `image`, `document`,
/// `tool_use`, `tool_result`, `thinking`, `redacted_thinking`, custom `tools` (`name`,
/// `description`, `input_schema`), `tool_choice` (and `disable_parallel_tool_use`),
/// `max_tokens`, `stop_sequences`, `temperature`, `top_p`, `top_k`, `stream`,
/// `metadata.user_id`, `output_config.format`. Dropped: Anthropic-defined and server tools,
/// server-tool blocks, `thinking`, `output_config.effort`, `context_management`,
/// `cache_control`, `service_tier`, `container`, `inference_geo`, `mcp_servers`. Rejected:
/// `max_tokens: 0` (cache pre-warming means nothing elsewhere), unknown block types.
pub fn decode(body: &[u8], target: &str) -> Result<Request, TranslateError> {
    let req = parse_object(body)?;
    let mut messages = Vec::new();
    match non_null(&req, "system") {
        None => {}
        Some(Value::String(s)) => messages.push(Message {
            role: Role::System,
            parts: vec![text_part(s, None)],
        }),
        Some(Value::Array(blocks)) => {
            // One system message per block: encoders that need a string join messages with
            // a blank line, so separate blocks never run together.
            for b in blocks {
                if type_of(b) != Some("text") {
                    return Err(invalid("`system` blocks must be text blocks"));
                }
                messages.push(Message {
                    role: Role::System,
                    parts: vec![text_block(b)?],
                });
            }
        }
        Some(_) => {
            return Err(invalid(
                "`system` must be a string or an array of text blocks",
            ))
        }
    }
    let list = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`messages` must be an array"))?;
    for msg in list {
        let role = match str_of(msg, "role") {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("system") => Role::System,
            Some(other) => return Err(invalid(format!("unknown message role `{other}`"))),
            None => return Err(invalid("every message needs a string `role`")),
        };
        messages.push(Message {
            role,
            parts: blocks(msg.get("content"), target)?,
        });
    }
    let max_tokens = match non_null(&req, "max_tokens") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(0) => {
                return Err(unsupported(format!(
                    "`max_tokens: 0` (prompt cache pre-warming) is not supported by this model's provider ({target})"
                )))
            }
            Some(n) if n <= u64::from(u32::MAX) => Some(n),
            _ => return Err(invalid("`max_tokens` must be a positive integer")),
        },
    };
    let mut out = Request {
        messages,
        max_tokens,
        temperature: opt_f64(&req, "temperature")?,
        top_p: opt_f64(&req, "top_p")?,
        top_k: non_null(&req, "top_k").and_then(Value::as_u64),
        stop: stop_sequences(&req)?,
        stream: req.get("stream").and_then(Value::as_bool) == Some(true),
        user: req
            .get("metadata")
            .and_then(|m| str_of(m, "user_id"))
            .map(str::to_owned),
        format: output_format(&req)?,
        ..Request::default()
    };
    tools(&req, &mut out)?;
    Ok(out)
}

fn text_part(text: &str, cache: Option<&Value>) -> Part {
    Part::Text {
        text: text.to_owned(),
        cache: cache.filter(|c| !c.is_null()).cloned(),
    }
}

fn text_block(b: &Value) -> Result<Part, TranslateError> {
    let text = str_of(b, "text").ok_or_else(|| invalid("a `text` block needs a string `text`"))?;
    Ok(text_part(text, b.get("cache_control")))
}

fn stop_sequences(req: &Obj) -> Result<Vec<String>, TranslateError> {
    match non_null(req, "stop_sequences") {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("`stop_sequences` must be an array of strings")),
        Some(_) => Err(invalid("`stop_sequences` must be an array of strings")),
    }
}

fn output_format(req: &Obj) -> Result<Option<OutputFormat>, TranslateError> {
    let Some(format) = req
        .get("output_config")
        .and_then(|c| c.get("format"))
        .filter(|f| !f.is_null())
    else {
        return Ok(None);
    };
    match type_of(format) {
        Some("json_schema") => Ok(Some(OutputFormat::JsonSchema {
            name: None,
            schema: format
                .get("schema")
                .filter(|s| s.is_object())
                .cloned()
                .ok_or_else(|| invalid("`output_config.format.schema` must be an object"))?,
            strict: None,
            description: None,
        })),
        _ => Err(invalid("`output_config.format.type` must be `json_schema`")),
    }
}

fn source(b: &Value, what: &str) -> Result<Source, TranslateError> {
    let s = b
        .get("source")
        .ok_or_else(|| invalid(format!("an `{what}` block needs a `source`")))?;
    Ok(match type_of(s) {
        Some("base64") => Source::Base64 {
            media_type: str_of(s, "media_type").unwrap_or_default().to_owned(),
            data: str_of(s, "data").unwrap_or_default().to_owned(),
        },
        Some("url") => Source::Url(str_of(s, "url").unwrap_or_default().to_owned()),
        Some("text") => Source::Text(str_of(s, "data").unwrap_or_default().to_owned()),
        Some("file") => Source::FileId(str_of(s, "file_id").unwrap_or_default().to_owned()),
        _ => {
            return Err(unsupported(format!(
                "`{what}` sources of this type are not supported for this model"
            )))
        }
    })
}

fn blocks(content: Option<&Value>, target: &str) -> Result<Vec<Part>, TranslateError> {
    let list = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![text_part(s, None)]),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(invalid(
                "message `content` must be a string or an array of content blocks",
            ))
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for b in list {
        match type_of(b) {
            Some("text") => out.push(text_block(b)?),
            Some("image") => out.push(Part::Image {
                source: source(b, "image")?,
            }),
            Some("document") => out.push(Part::Document {
                source: source(b, "document")?,
                filename: str_of(b, "title").map(str::to_owned),
            }),
            Some("tool_use") => out.push(Part::ToolCall {
                id: str_of(b, "id")
                    .ok_or_else(|| invalid("every `tool_use` block needs a string `id`"))?
                    .to_owned(),
                name: str_of(b, "name")
                    .ok_or_else(|| invalid("every `tool_use` block needs a string `name`"))?
                    .to_owned(),
                arguments: b.get("input").cloned().unwrap_or(Value::Object(Default::default())).to_string(),
            }),
            Some("tool_result") => {
                let id = str_of(b, "tool_use_id").ok_or_else(|| {
                    invalid("every `tool_result` block needs a string `tool_use_id`")
                })?;
                let output = match b.get("content") {
                    None | Some(Value::Null) => ToolOutput::Text(String::new()),
                    Some(Value::String(s)) => ToolOutput::Text(s.clone()),
                    inner => ToolOutput::Parts(blocks(inner, target)?),
                };
                out.push(Part::ToolResult {
                    call_id: id.to_owned(),
                    output,
                    is_error: b.get("is_error").and_then(Value::as_bool) == Some(true),
                });
            }
            Some(kind @ ("thinking" | "redacted_thinking")) => {
                let redacted = kind == "redacted_thinking";
                let token = if redacted { "data" } else { "signature" };
                out.push(Part::Thinking {
                    text: str_of(b, "thinking").unwrap_or_default().to_owned(),
                    signature: str_of(b, token).map(str::to_owned),
                    redacted,
                    origin: ReasoningOrigin::Anthropic,
                    item_id: None,
                });
            }
            Some(kind) if DROPPED_BLOCK_TYPES.contains(&kind) => {}
            Some(kind) => {
                return Err(unsupported(format!(
                    "content blocks of type `{kind}` are not supported for this model's provider ({target})"
                )))
            }
            None => return Err(invalid("every content block needs a string `type`")),
        }
    }
    Ok(out)
}

/// Custom tools (no `type`, or `custom`) are kept; Anthropic-defined tools (`bash_*`,
/// `text_editor_*`, `computer_*`, ...) and server tools (`web_search_*`, `code_execution_*`,
/// ...) are dropped: their schemas and their execution exist only at Anthropic.
fn tools(req: &Obj, out: &mut Request) -> Result<(), TranslateError> {
    let tools = match non_null(req, "tools") {
        None => return Ok(()),
        Some(Value::Array(t)) => t,
        Some(_) => return Err(invalid("`tools` must be an array")),
    };
    for t in tools {
        if !matches!(type_of(t), None | Some("custom")) {
            continue;
        }
        let name = str_of(t, "name").ok_or_else(|| invalid("every tool needs a string `name`"))?;
        let schema = match t.get("input_schema") {
            Some(s @ Value::Object(_)) => Some(s.clone()),
            None | Some(Value::Null) => None,
            Some(_) => return Err(invalid("tool `input_schema` must be an object")),
        };
        out.tools.push(Tool {
            name: name.to_owned(),
            description: str_of(t, "description").map(str::to_owned),
            parameters: schema,
            strict: t.get("strict").and_then(Value::as_bool),
        });
    }
    if out.tools.is_empty() {
        return Ok(());
    }
    if let Some(choice) = non_null(req, "tool_choice") {
        out.tool_choice = match type_of(choice) {
            Some("auto") => Some(ToolChoice::Auto),
            Some("any") => Some(ToolChoice::Required),
            Some("none") => Some(ToolChoice::None),
            Some("tool") => {
                let name = str_of(choice, "name")
                    .ok_or_else(|| invalid("`tool_choice` of type `tool` needs a `name`"))?;
                out.tools
                    .iter()
                    .any(|t| t.name == name)
                    .then(|| ToolChoice::Tool(name.to_owned()))
            }
            _ => {
                return Err(invalid(
                    "`tool_choice.type` must be `auto`, `any`, `tool` or `none`",
                ))
            }
        };
        if choice
            .get("disable_parallel_tool_use")
            .and_then(Value::as_bool)
            == Some(true)
        {
            out.parallel_tool_calls = Some(false);
        }
    }
    Ok(())
}
