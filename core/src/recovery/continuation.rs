//! The continuation request (spec §12): the body an ordinary attempt would send to the
//! target, with the text relayed so far appended as a final assistant turn in the form the
//! target's style asks for.
//!
//! The builder edits the *upstream* body, so the rest of the request is exactly what an
//! ordinary attempt sends: the client's bytes with `model` replaced when the target speaks
//! the client's API, the translation otherwise (`ApiRequest::upstream_body`). Only the
//! members named below change; every other member keeps its bytes.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::raw_object::{to_raw, RawArray, RawObject};
use crate::apis::{TranslateError, UpstreamApi};
use crate::config::Continuation;

/// A continuation body for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Built {
    pub body: Bytes,
    /// Whitespace at the end of the text that the prefill could not carry (Anthropic
    /// refuses a final assistant turn ending in whitespace); the client already has it.
    pub overlap: String,
}

/// The upstream API a continuation in `style` is sent to: Messages for `native`, Chat
/// Completions for every OpenAI-compatible style (also for providers that serve Responses:
/// the styles are Chat Completions features). `None` for [`Continuation::None`].
pub fn upstream_for(style: Continuation) -> Option<UpstreamApi> {
    match style {
        Continuation::None => None,
        Continuation::Native => Some(UpstreamApi::Messages),
        Continuation::AssistantPrefill
        | Continuation::MistralPrefix
        | Continuation::DeepseekPrefix
        | Continuation::VllmContinueFinalMessage => Some(UpstreamApi::ChatCompletions),
    }
}

/// The request path of a DeepSeek prefix completion, from the entry's ordinary Chat
/// Completions path: DeepSeek serves the feature under `/beta` instead of `/v1`
/// (`https://api.deepseek.com/beta`), so a root ending in `/v1` has it replaced, and any
/// other root (a proxy mirroring DeepSeek's paths) gets `/beta` appended.
pub fn deepseek_beta_path(chat_path: &str) -> String {
    let root = chat_path
        .strip_suffix("/chat/completions")
        .unwrap_or(chat_path);
    let root = root.strip_suffix("/v1").unwrap_or(root);
    format!("{root}/beta/chat/completions")
}

fn unsupported(what: &str) -> TranslateError {
    TranslateError::Unsupported(format!("the stream cannot be continued: {what}"))
}

/// Builds the continuation of `text` (the assistant text the client has) for a target in
/// `style`, from `base`, the body an ordinary attempt sends it (Messages-shaped for
/// `native`, Chat-shaped otherwise).
///
/// - A final assistant turn of the request that holds only text (the client's own prefill)
///   is merged with `text`: the target continues the client's prefill followed by the
///   relayed text, as one turn. Otherwise a new assistant turn is appended.
/// - `native`: the turn's text without its trailing whitespace (Anthropic refuses it; the
///   whitespace is returned as [`Built::overlap`]); `thinking` is removed, since Anthropic
///   does not accept a prefilled turn with extended thinking on.
/// - `assistant_prefill`: the turn as it is. `mistral_prefix`, `deepseek_prefix`:
///   `"prefix": true` on it. `vllm_continue_final_message`: `continue_final_message: true`
///   and `add_generation_prompt: false` at the top level.
/// - `stream: true` always.
///
/// `Err` when `style` is `none` or does not match the shape, or `base` is not a request
/// with a `messages` list.
pub(crate) fn build(base: &[u8], style: Continuation, text: &str) -> Result<Built, TranslateError> {
    let shape =
        upstream_for(style).ok_or_else(|| unsupported("the target has no continuation style"))?;
    let mut body =
        RawObject::parse(base).ok_or_else(|| unsupported("the request is not a JSON object"))?;
    let mut messages = body
        .get("messages")
        .and_then(RawArray::parse)
        .ok_or_else(|| unsupported("the request has no `messages` list"))?;
    let anthropic = shape == UpstreamApi::Messages;
    let (mut turn, prior) = match messages
        .0
        .last()
        .map(|m| text_only_turn(m.get(), anthropic))
    {
        Some(Some((turn, prior))) => {
            messages.0.pop();
            (turn, prior)
        }
        _ => (assistant_turn(), String::new()),
    };
    let full = format!("{prior}{text}");
    let (content, overlap) = if anthropic {
        let kept = full.trim_end();
        (kept.to_owned(), full[kept.len()..].to_owned())
    } else {
        (full, String::new())
    };
    if content.trim().is_empty() {
        return Err(unsupported("there is no text to continue"));
    }
    turn.insert("content".into(), Value::String(content));
    turn.remove("prefix");
    if matches!(
        style,
        Continuation::MistralPrefix | Continuation::DeepseekPrefix
    ) {
        turn.insert("prefix".into(), Value::Bool(true));
    }
    messages.0.push(to_raw(&Value::Object(turn)));
    body.set_raw("messages", messages.into_raw());
    body.set("stream", &Value::Bool(true));
    match style {
        Continuation::Native => body.remove("thinking"),
        Continuation::VllmContinueFinalMessage => {
            body.set("continue_final_message", &Value::Bool(true));
            body.set("add_generation_prompt", &Value::Bool(false));
        }
        _ => {}
    }
    Ok(Built {
        body: Bytes::from(body.to_bytes()),
        overlap,
    })
}

fn assistant_turn() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("role".into(), Value::String("assistant".into()));
    m
}

/// A final assistant turn that holds only text: the turn (without its content) and its
/// text. Chat: string content, or text parts, and no tool calls. Messages: string content
/// or text blocks.
fn text_only_turn(raw: &str, anthropic: bool) -> Option<(Map<String, Value>, String)> {
    let Ok(Value::Object(mut turn)) = serde_json::from_str::<Value>(raw) else {
        return None;
    };
    if turn.get("role").and_then(Value::as_str) != Some("assistant") {
        return None;
    }
    if !anthropic {
        let calls = |k: &str| {
            turn.get(k)
                .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
        };
        if calls("tool_calls") || calls("function_call") {
            return None;
        }
    }
    let text = match turn.remove("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for p in &parts {
                if p.get("type").and_then(Value::as_str) != Some("text") {
                    return None;
                }
                text.push_str(p.get("text").and_then(Value::as_str)?);
            }
            text
        }
        Some(_) => return None,
    };
    turn.remove("tool_calls");
    turn.remove("function_call");
    Some((turn, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(b: &Built) -> Value {
        serde_json::from_slice(&b.body).unwrap()
    }

    #[test]
    fn beta_path_replaces_v1_or_is_appended() {
        assert_eq!(
            deepseek_beta_path("/v1/chat/completions"),
            "/beta/chat/completions"
        );
        assert_eq!(
            deepseek_beta_path("/deepseek/v1/chat/completions"),
            "/deepseek/beta/chat/completions"
        );
        assert_eq!(
            deepseek_beta_path("/proxy/chat/completions"),
            "/proxy/beta/chat/completions"
        );
    }

    #[test]
    fn none_and_shapeless_bodies_are_refused() {
        assert!(build(br#"{"messages":[]}"#, Continuation::None, "x").is_err());
        assert!(build(b"[]", Continuation::AssistantPrefill, "x").is_err());
        assert!(build(br#"{"model":"m"}"#, Continuation::AssistantPrefill, "x").is_err());
        assert!(build(br#"{"messages":[]}"#, Continuation::Native, "  \n").is_err());
    }

    #[test]
    fn a_client_prefill_is_merged_not_doubled() {
        let base = br#"{"model":"m","messages":[{"role":"user","content":"json please"},{"role":"assistant","name":"bot","content":[{"type":"text","text":"{"}]}]}"#;
        let b = build(base, Continuation::AssistantPrefill, "\"a\": 1").unwrap();
        let v = json(&b);
        let msgs = v["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[1]["content"], "{\"a\": 1");
        assert_eq!(msgs[1]["name"], "bot");
    }

    #[test]
    fn a_final_tool_call_turn_is_kept_and_a_new_turn_appended() {
        let base =
            br#"{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c"}]}]}"#;
        let v = json(&build(base, Continuation::MistralPrefix, "x").unwrap());
        let msgs = v["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            msgs[1],
            serde_json::json!({"role":"assistant","content":"x","prefix":true})
        );
    }
}
