//! OpenAI `tools`, `tool_choice` and `parallel_tool_calls` → Anthropic `tools` and
//! `tool_choice`.

use serde_json::{json, Map, Value};

use super::request::{invalid, non_null, unsupported};
use super::TranslateError;

/// Adds Anthropic `tools` and `tool_choice` to `out` from the OpenAI request `req`.
///
/// - Each `{"type":"function","function":{name, description, parameters}}` becomes
///   `{name, description, input_schema}`; a tool without `parameters` gets an empty object
///   schema (Anthropic requires one); `strict` is dropped; other tool types are rejected.
/// - `tool_choice`: `auto` → `{"type":"auto"}`, `required` → `{"type":"any"}`, `none` →
///   `{"type":"none"}`, a named function → `{"type":"tool","name":..}`.
/// - `parallel_tool_calls: false` sets `disable_parallel_tool_use: true` on the tool choice
///   (`auto` when none was given), except on `none`, which does not take it.
/// - Without tools (absent or empty), `tool_choice` and `parallel_tool_calls` are dropped.
pub(super) fn translate_tools(
    req: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
    let tools = match non_null(req, "tools") {
        None => return Ok(()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(invalid("`tools` must be an array")),
    };
    let mut translated = Vec::with_capacity(tools.len());
    for tool in tools {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(unsupported(
                "only tools of type `function` are supported for this model",
            ));
        }
        let f = tool
            .get("function")
            .ok_or_else(|| invalid("every tool needs a `function`"))?;
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("every tool needs a string `function.name`"))?;
        let mut t = Map::new();
        t.insert("name".into(), Value::String(name.to_owned()));
        if let Some(Value::String(d)) = f.get("description") {
            t.insert("description".into(), Value::String(d.clone()));
        }
        let schema = match f.get("parameters") {
            Some(p @ Value::Object(_)) => p.clone(),
            None | Some(Value::Null) => json!({ "type": "object", "properties": {} }),
            Some(_) => return Err(invalid("tool `function.parameters` must be an object")),
        };
        t.insert("input_schema".into(), schema);
        translated.push(Value::Object(t));
    }
    if translated.is_empty() {
        return Ok(());
    }
    out.insert("tools".into(), Value::Array(translated));

    let mut choice = match non_null(req, "tool_choice") {
        None => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => json!({ "type": "auto" }),
            "required" => json!({ "type": "any" }),
            "none" => json!({ "type": "none" }),
            _ => {
                return Err(invalid(
                    "`tool_choice` must be `auto`, `required`, `none` or a function",
                ))
            }
        }),
        Some(obj) => {
            let name = obj
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| obj.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(|| {
                    invalid("`tool_choice` must be `auto`, `required`, `none` or a function")
                })?;
            Some(json!({ "type": "tool", "name": name }))
        }
    };
    if req.get("parallel_tool_calls").and_then(Value::as_bool) == Some(false) {
        let c = choice.get_or_insert_with(|| json!({ "type": "auto" }));
        if let Some(obj) = c.as_object_mut() {
            if obj.get("type").and_then(Value::as_str) != Some("none") {
                obj.insert("disable_parallel_tool_use".into(), Value::Bool(true));
            }
        }
    }
    if let Some(c) = choice {
        out.insert("tool_choice".into(), c);
    }
    Ok(())
}
