//! Responses request body → the internal [`Request`].

use serde_json::Value;

use super::super::json::{
    invalid, is_http_url, non_null, opt_f64, parse_data_url, parse_object, str_of, token_limit,
    type_of, unsupported, Obj,
};
use super::super::model::{
    Message, OutputFormat, Part, ReasoningOrigin, Request, Role, Source, Tool, ToolChoice,
    ToolOutput,
};
use super::super::TranslateError;
use super::ToolNames;

/// A decoded Responses request: the request and the names of its flattened namespaced tools.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub request: Request,
    pub names: ToolNames,
}

/// Input item types dropped when translating: tools that only OpenAI runs (or that the
/// other APIs cannot express), their calls and their outputs.
pub const DROPPED_ITEM_TYPES: &[&str] = &[
    "web_search_call",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "code_interpreter_call",
    "image_generation_call",
    "local_shell_call",
    "local_shell_call_output",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "tool_search_call",
    "tool_search_output",
    "additional_tools",
    "compaction",
];

/// Decodes a Responses request for translation to another API (`target` names it in error
/// messages). See `docs/apis.md` for every field's rule. Rejected: `previous_response_id`,
/// `conversation` and `item_reference` items (they need the provider's stored state),
/// `background: true`, `prompt` templates, audio input.
pub fn decode(body: &[u8], target: &str) -> Result<Decoded, TranslateError> {
    let req = parse_object(body)?;
    reject_stateful(&req, target)?;
    let mut names = ToolNames::default();
    let mut messages = Vec::new();
    if let Some(instructions) = non_null(&req, "instructions") {
        let text = instructions
            .as_str()
            .ok_or_else(|| invalid("`instructions` must be a string"))?;
        messages.push(Message {
            role: Role::System,
            parts: vec![text_part(text)],
        });
    }
    match non_null(&req, "input") {
        None => {}
        Some(Value::String(s)) => messages.push(Message {
            role: Role::User,
            parts: vec![text_part(s)],
        }),
        Some(Value::Array(items)) => {
            for item in items {
                if let Some(m) = item_message(item, &mut names, target)? {
                    push_merged(&mut messages, m);
                }
            }
        }
        Some(_) => return Err(invalid("`input` must be a string or an array of items")),
    }
    let mut out = Request {
        messages,
        max_tokens: non_null(&req, "max_output_tokens")
            .map(|v| token_limit(v, "`max_output_tokens`"))
            .transpose()?,
        temperature: opt_f64(&req, "temperature")?,
        top_p: opt_f64(&req, "top_p")?,
        stream: req.get("stream").and_then(Value::as_bool) == Some(true),
        user: req
            .get("user")
            .or_else(|| req.get("safety_identifier"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        format: text_format(&req)?,
        parallel_tool_calls: req.get("parallel_tool_calls").and_then(Value::as_bool),
        ..Request::default()
    };
    tools(&req, &mut out, &mut names)?;
    Ok(Decoded {
        request: out,
        names,
    })
}

fn reject_stateful(req: &Obj, target: &str) -> Result<(), TranslateError> {
    let stateful = |what: &str| {
        unsupported(format!(
            "{what} needs the conversation state stored by the provider that created it; this gateway is stateless and this model's provider ({target}) does not serve the Responses API, so send the whole conversation in `input`"
        ))
    };
    if non_null(req, "previous_response_id").is_some() {
        return Err(stateful("`previous_response_id`"));
    }
    if non_null(req, "conversation").is_some() {
        return Err(stateful("`conversation`"));
    }
    if req.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(unsupported(format!(
            "`background` responses are not supported for this model's provider ({target})"
        )));
    }
    if non_null(req, "prompt").is_some() {
        return Err(unsupported(format!(
            "reusable `prompt` templates are stored by OpenAI and cannot be used with this model's provider ({target})"
        )));
    }
    Ok(())
}

fn text_part(text: &str) -> Part {
    Part::Text {
        text: text.to_owned(),
        cache: None,
    }
}

/// Merges consecutive assistant items (a message and its function calls are one Chat or
/// Messages turn) and consecutive function call outputs.
fn push_merged(messages: &mut Vec<Message>, m: Message) {
    let only_results = |m: &Message| m.parts.iter().all(|p| matches!(p, Part::ToolResult { .. }));
    if let Some(last) = messages.last_mut() {
        let both_assistant = last.role == Role::Assistant && m.role == Role::Assistant;
        let both_results = last.role == Role::User
            && m.role == Role::User
            && only_results(last)
            && only_results(&m);
        if both_assistant || both_results {
            last.parts.extend(m.parts);
            return;
        }
    }
    messages.push(m);
}

fn item_message(
    item: &Value,
    names: &mut ToolNames,
    target: &str,
) -> Result<Option<Message>, TranslateError> {
    let kind = type_of(item);
    if kind.is_none() || kind == Some("message") {
        let role = match str_of(item, "role") {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("system") => Role::System,
            Some("developer") => Role::Developer,
            Some(other) => return Err(invalid(format!("unknown message role `{other}`"))),
            None => return Err(invalid("every input item needs a `type` or a `role`")),
        };
        return Ok(Some(Message {
            role,
            parts: content_parts(item.get("content"), target)?,
        }));
    }
    let call_name = |item: &Value, names: &mut ToolNames| -> String {
        let name = str_of(item, "name").unwrap_or_default();
        match str_of(item, "namespace").filter(|ns| !ns.is_empty()) {
            Some(ns) => names.flatten(ns, name),
            None => name.to_owned(),
        }
    };
    Ok(match kind.unwrap_or_default() {
        "function_call" => {
            let id = str_of(item, "call_id")
                .ok_or_else(|| invalid("every `function_call` item needs a string `call_id`"))?;
            Some(Message {
                role: Role::Assistant,
                parts: vec![Part::ToolCall {
                    id: id.to_owned(),
                    name: call_name(item, names),
                    arguments: str_of(item, "arguments").unwrap_or_default().to_owned(),
                }],
            })
        }
        "function_call_output" => {
            let id = str_of(item, "call_id").ok_or_else(|| {
                invalid("every `function_call_output` item needs a string `call_id`")
            })?;
            let output = match item.get("output") {
                Some(Value::String(s)) => ToolOutput::Text(s.clone()),
                Some(Value::Array(_)) => {
                    ToolOutput::Parts(content_parts(item.get("output"), target)?)
                }
                None | Some(Value::Null) => ToolOutput::Text(String::new()),
                Some(_) => {
                    return Err(invalid(
                        "`function_call_output.output` must be a string or an array of parts",
                    ))
                }
            };
            Some(Message {
                role: Role::User,
                parts: vec![Part::ToolResult {
                    call_id: id.to_owned(),
                    output,
                    is_error: false,
                }],
            })
        }
        "reasoning" => {
            let summary: Vec<&str> = item
                .get("summary")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| str_of(s, "text"))
                .collect();
            Some(Message {
                role: Role::Assistant,
                parts: vec![Part::Thinking {
                    text: summary.join("\n\n"),
                    signature: str_of(item, "encrypted_content").map(str::to_owned),
                    redacted: false,
                    origin: ReasoningOrigin::OpenAi,
                    item_id: str_of(item, "id").map(str::to_owned),
                }],
            })
        }
        "item_reference" => {
            return Err(unsupported(
                "`item_reference` input items need the conversation state stored by OpenAI; send the items themselves",
            ))
        }
        other if DROPPED_ITEM_TYPES.contains(&other) => None,
        other => return Err(unsupported(format!("input items of type `{other}` are not supported for this model's provider ({target})"))),
    })
}

fn content_parts(content: Option<&Value>, target: &str) -> Result<Vec<Part>, TranslateError> {
    let parts = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![text_part(s)]),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(invalid(
                "message `content` must be a string or an array of parts",
            ))
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match type_of(part) {
            Some("input_text" | "output_text" | "text") => {
                let text = str_of(part, "text")
                    .ok_or_else(|| invalid("a text part needs a string `text`"))?;
                if !text.is_empty() {
                    out.push(text_part(text));
                }
            }
            Some("refusal") => {
                let text = str_of(part, "refusal")
                    .ok_or_else(|| invalid("a `refusal` part needs a string `refusal`"))?;
                out.push(Part::Refusal(text.to_owned()));
            }
            Some("input_image") => out.push(Part::Image {
                source: image_source(part)?,
            }),
            Some("input_file") => out.push(file(part)?),
            Some("input_audio") => {
                return Err(unsupported(format!(
                    "audio input is not supported by this model's provider ({target})"
                )))
            }
            Some(other) => {
                return Err(unsupported(format!(
                    "content parts of type `{other}` are not supported for this model's provider ({target})"
                )))
            }
            None => return Err(invalid("every content part needs a string `type`")),
        }
    }
    Ok(out)
}

fn image_source(part: &Value) -> Result<Source, TranslateError> {
    if let Some(url) = str_of(part, "image_url") {
        if let Some((media_type, data)) = parse_data_url(url) {
            return Ok(Source::Base64 {
                media_type: media_type.to_owned(),
                data: data.to_owned(),
            });
        }
        if is_http_url(url) {
            return Ok(Source::Url(url.to_owned()));
        }
        return Err(invalid(
            "image URLs must be http(s) URLs or base64 `data:` URLs",
        ));
    }
    match str_of(part, "file_id") {
        Some(id) => Ok(Source::FileId(id.to_owned())),
        None => Err(invalid(
            "an `input_image` part needs `image_url` or `file_id`",
        )),
    }
}

fn file(part: &Value) -> Result<Part, TranslateError> {
    let filename = str_of(part, "filename").map(str::to_owned);
    let source = if let Some(data) = str_of(part, "file_data") {
        match parse_data_url(data) {
            Some((media_type, data)) => Source::Base64 {
                media_type: media_type.to_owned(),
                data: data.to_owned(),
            },
            None => {
                return Err(invalid(
                    "`input_file.file_data` must be a base64 `data:` URL",
                ))
            }
        }
    } else if let Some(url) = str_of(part, "file_url").filter(|u| is_http_url(u)) {
        Source::Url(url.to_owned())
    } else if let Some(id) = str_of(part, "file_id") {
        Source::FileId(id.to_owned())
    } else {
        return Err(invalid(
            "an `input_file` part needs `file_data`, `file_url` or `file_id`",
        ));
    };
    Ok(Part::Document { source, filename })
}

fn text_format(req: &Obj) -> Result<Option<OutputFormat>, TranslateError> {
    let Some(format) = req.get("text").and_then(|t| t.get("format")) else {
        return Ok(None);
    };
    match type_of(format) {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(OutputFormat::JsonObject)),
        Some("json_schema") => Ok(Some(OutputFormat::JsonSchema {
            name: str_of(format, "name").map(str::to_owned),
            schema: format
                .get("schema")
                .filter(|s| s.is_object())
                .cloned()
                .ok_or_else(|| invalid("`text.format.schema` must be an object"))?,
            strict: format.get("strict").and_then(Value::as_bool),
            description: str_of(format, "description").map(str::to_owned),
        })),
        Some(other) => Err(invalid(format!("unknown `text.format.type` `{other}`"))),
    }
}

fn function_tool(t: &Value, name: String) -> Result<Tool, TranslateError> {
    let parameters = match t.get("parameters") {
        Some(p @ Value::Object(_)) => Some(p.clone()),
        None | Some(Value::Null) => None,
        Some(_) => return Err(invalid("tool `parameters` must be an object")),
    };
    Ok(Tool {
        name,
        description: str_of(t, "description").map(str::to_owned),
        parameters,
        strict: t.get("strict").and_then(Value::as_bool),
    })
}

/// Function tools are kept; the function tools of a `namespace` are flattened
/// (`namespace__name`); every other tool type (`web_search`, `file_search`, `custom`, `mcp`,
/// ...) is dropped: only OpenAI runs it or the other APIs cannot express it.
fn tools(req: &Obj, out: &mut Request, names: &mut ToolNames) -> Result<(), TranslateError> {
    let tools = match non_null(req, "tools") {
        None => return Ok(()),
        Some(Value::Array(t)) => t,
        Some(_) => return Err(invalid("`tools` must be an array")),
    };
    for t in tools {
        match type_of(t) {
            Some("function") => {
                let name = str_of(t, "name")
                    .ok_or_else(|| invalid("every function tool needs a string `name`"))?;
                out.tools.push(function_tool(t, name.to_owned())?);
            }
            Some("namespace") => {
                let ns = str_of(t, "name")
                    .ok_or_else(|| invalid("every namespace tool needs a string `name`"))?;
                for inner in t
                    .get("tools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if type_of(inner) != Some("function") {
                        continue;
                    }
                    let name = str_of(inner, "name")
                        .ok_or_else(|| invalid("every function tool needs a string `name`"))?;
                    let flat = names.flatten(ns, name);
                    out.tools.push(function_tool(inner, flat)?);
                }
            }
            _ => {}
        }
    }
    if out.tools.is_empty() {
        out.parallel_tool_calls = None;
        return Ok(());
    }
    out.tool_choice = tool_choice(req.get("tool_choice"), out, names);
    Ok(())
}

fn tool_choice(
    choice: Option<&Value>,
    out: &mut Request,
    names: &mut ToolNames,
) -> Option<ToolChoice> {
    let known = |out: &Request, name: &str| out.tools.iter().any(|t| t.name == name);
    let function_name = |v: &Value, names: &mut ToolNames| {
        let name = str_of(v, "name").unwrap_or_default();
        match str_of(v, "namespace") {
            Some(ns) => names.flatten(ns, name),
            None => name.to_owned(),
        }
    };
    match choice? {
        Value::String(s) => match s.as_str() {
            "auto" => Some(ToolChoice::Auto),
            "required" => Some(ToolChoice::Required),
            "none" => Some(ToolChoice::None),
            _ => None,
        },
        obj => match type_of(obj) {
            Some("function") => {
                let name = function_name(obj, names);
                known(out, &name).then_some(ToolChoice::Tool(name))
            }
            Some("allowed_tools") => {
                let allowed: Vec<String> = obj
                    .get("tools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|t| type_of(t) == Some("function"))
                    .map(|t| function_name(t, names))
                    .collect();
                out.tools.retain(|t| allowed.contains(&t.name));
                match str_of(obj, "mode") {
                    Some("required") => Some(ToolChoice::Required),
                    _ => Some(ToolChoice::Auto),
                }
            }
            _ => None,
        },
    }
}
