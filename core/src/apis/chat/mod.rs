//! OpenAI Chat Completions: request, response and stream, to and from the internal model.

pub mod request;
pub mod request_encode;
pub mod response;
mod stream_decode;
mod stream_encode;
pub(crate) mod stream_meaning;

pub use request::decode as decode_request;
pub use request_encode::{encode as encode_request, tool_call_id};
pub use response::{decode as decode_response, encode as encode_response};
pub use stream_decode::StreamDecoder;
pub(crate) use stream_encode::terminal_error;
pub use stream_encode::StreamEncoder;

use serde_json::{json, Value};

use super::json::u64_of;
use super::model::{StopReason, Usage, UsageUpdate};

/// Chat `finish_reason` → the internal stop reason (`None` for absent or unknown ones).
pub fn finish_reason_from(name: Option<&str>) -> Option<StopReason> {
    Some(match name? {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::Refusal,
        _ => return None,
    })
}

/// The internal stop reason → Chat `finish_reason`: end turn, stop sequence, pause and
/// unknown → `stop`; max tokens and a full context window → `length`; tool use →
/// `tool_calls`; refusal → `content_filter`.
pub fn finish_reason_name(stop: Option<StopReason>) -> &'static str {
    match stop {
        Some(StopReason::MaxTokens | StopReason::ContextWindowExceeded) => "length",
        Some(StopReason::ToolUse) => "tool_calls",
        Some(StopReason::Refusal) => "content_filter",
        _ => "stop",
    }
}

/// The fields a Chat `usage` object carries. `prompt_tokens` includes cached tokens, so the
/// uncached input is `prompt_tokens - cached_tokens`.
pub fn usage_update(usage: &Value) -> UsageUpdate {
    let prompt = u64_of(usage, "prompt_tokens");
    let cached = usage
        .get("prompt_tokens_details")
        .and_then(|d| u64_of(d, "cached_tokens"));
    UsageUpdate {
        input: prompt.map(|p| p.saturating_sub(cached.unwrap_or(0))),
        cache_read: cached.or(prompt.map(|_| 0)),
        cache_write: prompt.map(|_| 0),
        output: u64_of(usage, "completion_tokens"),
        reasoning: usage
            .get("completion_tokens_details")
            .and_then(|d| u64_of(d, "reasoning_tokens")),
    }
}

/// A Chat `usage` object: `prompt_tokens` counts every input token (cache reads and writes
/// included); `prompt_tokens_details.cached_tokens` is added when cache reads are reported,
/// `completion_tokens_details.reasoning_tokens` when reasoning tokens are.
pub fn usage_json(usage: &Usage) -> Value {
    let prompt = usage.total_input();
    let mut out = json!({
        "prompt_tokens": prompt,
        "completion_tokens": usage.output,
        "total_tokens": prompt.saturating_add(usage.output),
    });
    if let Some(obj) = out.as_object_mut() {
        if usage.cache_read > 0 {
            obj.insert(
                "prompt_tokens_details".into(),
                json!({ "cached_tokens": usage.cache_read }),
            );
        }
        if let Some(r) = usage.reasoning {
            obj.insert(
                "completion_tokens_details".into(),
                json!({ "reasoning_tokens": r }),
            );
        }
    }
    out
}
