//! Chat Completions request body → the internal [`Request`].

use serde_json::Value;

use super::super::json::{
    invalid, is_http_url, non_null, opt_f64, parse_data_url, parse_object, str_of, token_limit,
    type_of, unsupported, Obj,
};
use super::super::model::{
    Message, OutputFormat, Part, Request, Role, Source, Tool, ToolChoice, ToolOutput,
};
use super::super::TranslateError;

/// Decodes a Chat Completions request for translation to another API. `target` names that
/// API's provider in error messages ("Anthropic", "an OpenAI Responses endpoint").
///
/// Kept: `messages` (every role, in order), `max_completion_tokens` (preferred) or
/// `max_tokens`, `temperature`, `top_p`, `stop`, `stream`, `tools` (`function` only),
/// `tool_choice`, `parallel_tool_calls`, `user`, `response_format` (`json_object` and
/// `json_schema`). Rejected ([`TranslateError::Unsupported`]): `n` above 1, `logprobs: true`,
/// `audio`, modalities other than text, the legacy `functions`/`function_call`, `function`
/// role messages, audio parts, non-`function` tools. Everything else is dropped
/// ([`DROPPED_FIELDS`](crate::anthropic::DROPPED_FIELDS) for Anthropic targets).
pub fn decode(body: &[u8], target: &str) -> Result<Request, TranslateError> {
    let req = parse_object(body)?;
    reject_unsupported(&req, target)?;
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`messages` must be an array"))?;
    let mut out = Request {
        messages: decode_messages(messages, target)?,
        max_tokens: max_tokens(&req)?,
        temperature: opt_f64(&req, "temperature")?,
        top_p: opt_f64(&req, "top_p")?,
        stop: stop(&req)?,
        stream: req.get("stream").and_then(Value::as_bool) == Some(true),
        user: str_of_obj(&req, "user"),
        format: response_format(&req)?,
        ..Request::default()
    };
    decode_tools(&req, &mut out, target)?;
    Ok(out)
}

fn str_of_obj(req: &Obj, key: &str) -> Option<String> {
    req.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn reject_unsupported(req: &Obj, target: &str) -> Result<(), TranslateError> {
    if let Some(n) = non_null(req, "n") {
        match n.as_u64() {
            Some(1) => {}
            Some(0) | None => return Err(invalid("`n` must be a positive integer")),
            Some(_) => {
                return Err(unsupported(format!(
                    "`n` greater than 1 is not supported by this model's provider ({target})"
                )))
            }
        }
    }
    if req.get("logprobs").and_then(Value::as_bool) == Some(true) {
        return Err(unsupported(format!(
            "`logprobs` is not supported by this model's provider ({target})"
        )));
    }
    if non_null(req, "audio").is_some() {
        return Err(unsupported(format!(
            "audio output is not supported by this model's provider ({target})"
        )));
    }
    if let Some(m) = non_null(req, "modalities") {
        let text_only = m
            .as_array()
            .is_some_and(|a| a.iter().all(|x| x.as_str() == Some("text")));
        if !text_only {
            return Err(unsupported(format!(
                "only the `text` modality is supported by this model's provider ({target})"
            )));
        }
    }
    if non_null(req, "functions").is_some() || non_null(req, "function_call").is_some() {
        return Err(unsupported(
            "the legacy `functions`/`function_call` fields are not supported for this model; use `tools` and `tool_choice`",
        ));
    }
    Ok(())
}

fn max_tokens(req: &Obj) -> Result<Option<u64>, TranslateError> {
    let given = non_null(req, "max_completion_tokens").or_else(|| non_null(req, "max_tokens"));
    given
        .map(|v| token_limit(v, "`max_tokens`/`max_completion_tokens`"))
        .transpose()
}

fn stop(req: &Obj) -> Result<Vec<String>, TranslateError> {
    match non_null(req, "stop") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("`stop` must be a string or an array of strings")),
        Some(_) => Err(invalid("`stop` must be a string or an array of strings")),
    }
}

fn response_format(req: &Obj) -> Result<Option<OutputFormat>, TranslateError> {
    let Some(rf) = non_null(req, "response_format") else {
        return Ok(None);
    };
    match type_of(rf) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(OutputFormat::JsonObject)),
        Some("json_schema") => {
            let js = rf
                .get("json_schema")
                .ok_or_else(|| invalid("`response_format.json_schema` is required"))?;
            let schema = js
                .get("schema")
                .filter(|s| s.is_object())
                .cloned()
                .ok_or_else(|| invalid("`response_format.json_schema.schema` must be an object"))?;
            Ok(Some(OutputFormat::JsonSchema {
                name: str_of(js, "name").map(str::to_owned),
                schema,
                strict: js.get("strict").and_then(Value::as_bool),
                description: str_of(js, "description").map(str::to_owned),
            }))
        }
        _ => Err(invalid(
            "`response_format.type` must be `text`, `json_object` or `json_schema`",
        )),
    }
}

fn decode_messages(messages: &[Value], target: &str) -> Result<Vec<Message>, TranslateError> {
    let mut out = Vec::with_capacity(messages.len());
    for msg in messages {
        let role =
            str_of(msg, "role").ok_or_else(|| invalid("every message needs a string `role`"))?;
        let message = match role {
            "system" => Message {
                role: Role::System,
                parts: text_only(
                    msg.get("content"),
                    "system messages may only contain text parts",
                )?,
            },
            "developer" => Message {
                role: Role::Developer,
                parts: text_only(
                    msg.get("content"),
                    "system messages may only contain text parts",
                )?,
            },
            "user" => Message {
                role: Role::User,
                parts: user_parts(msg.get("content"), target)?,
            },
            "assistant" => Message {
                role: Role::Assistant,
                parts: assistant_parts(msg)?,
            },
            "tool" => Message {
                role: Role::User,
                parts: vec![tool_result(msg)?],
            },
            "function" => return Err(unsupported(
                "`function` role messages are not supported for this model; use `tool` messages",
            )),
            other => return Err(invalid(format!("unknown message role `{other}`"))),
        };
        out.push(message);
    }
    Ok(out)
}

fn text_part(text: &str) -> Part {
    Part::Text {
        text: text.to_owned(),
        cache: None,
    }
}

fn part_text(part: &Value) -> Result<&str, TranslateError> {
    str_of(part, "text").ok_or_else(|| invalid("a `text` part needs a string `text`"))
}

fn content_parts(content: Option<&Value>) -> Result<Option<&Vec<Value>>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(parts)) => Ok(Some(parts)),
        Some(_) => Err(invalid(
            "message `content` must be a string or an array of parts",
        )),
    }
}

/// System, developer and tool content: a string or text parts. Parts are kept one by one
/// (a system message's parts are joined without a separator by encoders that need a string).
fn text_only(content: Option<&Value>, not_text: &str) -> Result<Vec<Part>, TranslateError> {
    if let Some(Value::String(s)) = content {
        return Ok(vec![text_part(s)]);
    }
    let Some(parts) = content_parts(content)? else {
        return Ok(Vec::new());
    };
    parts
        .iter()
        .map(|part| match type_of(part) {
            Some("text") => part_text(part).map(text_part),
            _ => Err(invalid(not_text)),
        })
        .collect()
}

fn user_parts(content: Option<&Value>, target: &str) -> Result<Vec<Part>, TranslateError> {
    if let Some(Value::String(s)) = content {
        return Ok(if s.is_empty() {
            Vec::new()
        } else {
            vec![text_part(s)]
        });
    }
    let Some(parts) = content_parts(content)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match type_of(part) {
            Some("text") => {
                let text = part_text(part)?;
                if !text.is_empty() {
                    out.push(text_part(text));
                }
            }
            Some("image_url") => out.push(image(part)?),
            Some("file") => out.push(file(part)?),
            Some("input_audio") => {
                return Err(unsupported(format!(
                    "audio input is not supported by this model's provider ({target})"
                )))
            }
            Some(other) => {
                return Err(unsupported(format!(
                    "content parts of type `{other}` are not supported for this model"
                )))
            }
            None => return Err(invalid("every content part needs a string `type`")),
        }
    }
    Ok(out)
}

fn image(part: &Value) -> Result<Part, TranslateError> {
    let url = part
        .get("image_url")
        .and_then(|i| i.get("url").or(Some(i)))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("an `image_url` part needs `image_url.url`"))?;
    let source = match parse_data_url(url) {
        Some((media_type, data)) => Source::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        },
        None if is_http_url(url) => Source::Url(url.to_owned()),
        None => {
            return Err(invalid(
                "image URLs must be http(s) URLs or base64 `data:` URLs",
            ))
        }
    };
    Ok(Part::Image { source })
}

fn file(part: &Value) -> Result<Part, TranslateError> {
    let file = part.get("file");
    let data = file.and_then(|f| str_of(f, "file_data"));
    match data.and_then(parse_data_url) {
        Some((media_type, data)) => Ok(Part::Document {
            source: Source::Base64 {
                media_type: media_type.to_owned(),
                data: data.to_owned(),
            },
            filename: file.and_then(|f| str_of(f, "filename")).map(str::to_owned),
        }),
        None => Err(unsupported(
            "`file` parts are supported for this model only with `file_data` as a base64 data URL",
        )),
    }
}

fn assistant_parts(msg: &Value) -> Result<Vec<Part>, TranslateError> {
    let mut out = Vec::new();
    match msg.get("content") {
        Some(Value::String(s)) => {
            if !s.is_empty() {
                out.push(text_part(s));
            }
        }
        content => {
            for part in content_parts(content)?.into_iter().flatten() {
                let text = match type_of(part) {
                    Some("text") => part_text(part)?,
                    Some("refusal") => str_of(part, "refusal")
                        .ok_or_else(|| invalid("a `refusal` part needs a string `refusal`"))?,
                    _ => {
                        return Err(invalid(
                            "assistant messages may only contain text and refusal parts",
                        ))
                    }
                };
                if !text.is_empty() {
                    out.push(text_part(text));
                }
            }
        }
    }
    if msg.get("function_call").is_some_and(|v| !v.is_null()) {
        return Err(unsupported(
            "legacy assistant `function_call` is not supported for this model; use `tool_calls`",
        ));
    }
    match msg.get("tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(calls)) => {
            for call in calls {
                out.push(tool_call(call)?);
            }
        }
        Some(_) => return Err(invalid("`tool_calls` must be an array")),
    }
    Ok(out)
}

fn tool_call(call: &Value) -> Result<Part, TranslateError> {
    let id = str_of(call, "id").ok_or_else(|| invalid("every tool call needs a string `id`"))?;
    let function = call
        .get("function")
        .ok_or_else(|| invalid("every tool call needs a `function`"))?;
    let name = str_of(function, "name")
        .ok_or_else(|| invalid("every tool call needs a string `function.name`"))?;
    let arguments = match function.get("arguments") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(args)) => args.clone(),
        Some(obj @ Value::Object(_)) => obj.to_string(),
        Some(_) => return Err(invalid("tool call `function.arguments` must be a string")),
    };
    Ok(Part::ToolCall {
        id: id.to_owned(),
        name: name.to_owned(),
        arguments,
    })
}

fn tool_result(msg: &Value) -> Result<Part, TranslateError> {
    let id = str_of(msg, "tool_call_id")
        .ok_or_else(|| invalid("`tool` messages need a string `tool_call_id`"))?;
    let output = match msg.get("content") {
        None | Some(Value::Null) => ToolOutput::Text(String::new()),
        Some(Value::String(s)) => ToolOutput::Text(s.clone()),
        content => {
            let parts = text_only(content, "`tool` messages may only contain text parts")?;
            let parts = parts
                .into_iter()
                .filter(|p| !matches!(p, Part::Text { text, .. } if text.is_empty()))
                .collect();
            ToolOutput::Parts(parts)
        }
    };
    Ok(Part::ToolResult {
        call_id: id.to_owned(),
        output,
        is_error: false,
    })
}

fn decode_tools(req: &Obj, out: &mut Request, target: &str) -> Result<(), TranslateError> {
    let tools = match non_null(req, "tools") {
        None => return Ok(()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(invalid("`tools` must be an array")),
    };
    for tool in tools {
        if type_of(tool) != Some("function") {
            return Err(unsupported(format!(
                "only tools of type `function` are supported for this model's provider ({target})"
            )));
        }
        let f = tool
            .get("function")
            .ok_or_else(|| invalid("every tool needs a `function`"))?;
        let name = str_of(f, "name")
            .ok_or_else(|| invalid("every tool needs a string `function.name`"))?;
        let parameters = match f.get("parameters") {
            Some(p @ Value::Object(_)) => Some(p.clone()),
            None | Some(Value::Null) => None,
            Some(_) => return Err(invalid("tool `function.parameters` must be an object")),
        };
        out.tools.push(Tool {
            name: name.to_owned(),
            description: str_of(f, "description").map(str::to_owned),
            parameters,
            strict: f.get("strict").and_then(Value::as_bool),
        });
    }
    if out.tools.is_empty() {
        return Ok(());
    }
    out.tool_choice = match non_null(req, "tool_choice") {
        None => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            "none" => ToolChoice::None,
            _ => {
                return Err(invalid(
                    "`tool_choice` must be `auto`, `required`, `none` or a function",
                ))
            }
        }),
        Some(obj) => {
            let name = obj
                .get("function")
                .and_then(|f| str_of(f, "name"))
                .filter(|_| type_of(obj) == Some("function"))
                .ok_or_else(|| {
                    invalid("`tool_choice` must be `auto`, `required`, `none` or a function")
                })?;
            Some(ToolChoice::Tool(name.to_owned()))
        }
    };
    out.parallel_tool_calls = req.get("parallel_tool_calls").and_then(Value::as_bool);
    Ok(())
}
