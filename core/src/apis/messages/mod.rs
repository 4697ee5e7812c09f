//! Anthropic Messages: request, response and stream, to and from the internal model.

pub mod error;
pub mod request;
pub mod request_encode;
pub mod response;
mod stream_decode;
mod stream_encode;
pub(crate) mod stream_meaning;

pub use error::anthropic_type_for_status;
pub use error::{is_spend_limit, read_error, translate_error, ErrorInfo, SPEND_LIMIT_PHRASES};
pub use request::decode as decode_request;
pub use request_encode::encode as encode_request;
pub use response::{decode as decode_response, encode as encode_response};
pub use stream_decode::StreamDecoder;
pub(crate) use stream_encode::terminal_error;
pub use stream_encode::StreamEncoder;

use serde_json::{json, Value};

use super::json::u64_of;
use super::model::{StopReason, Usage, UsageUpdate};

/// Anthropic `stop_reason` → the internal stop reason (`None` for absent or unknown ones).
pub fn stop_reason_from(name: Option<&str>) -> Option<StopReason> {
    Some(match name? {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "pause_turn" => StopReason::PauseTurn,
        "refusal" => StopReason::Refusal,
        "model_context_window_exceeded" => StopReason::ContextWindowExceeded,
        _ => return None,
    })
}

/// The internal stop reason → Anthropic `stop_reason` (`end_turn` when unknown).
pub fn stop_reason_name(stop: Option<StopReason>) -> &'static str {
    match stop {
        None | Some(StopReason::EndTurn) => "end_turn",
        Some(StopReason::MaxTokens) => "max_tokens",
        Some(StopReason::StopSequence) => "stop_sequence",
        Some(StopReason::ToolUse) => "tool_use",
        Some(StopReason::PauseTurn) => "pause_turn",
        Some(StopReason::Refusal) => "refusal",
        Some(StopReason::ContextWindowExceeded) => "model_context_window_exceeded",
    }
}

/// The fields an Anthropic `usage` object carries.
pub fn usage_update(usage: &Value) -> UsageUpdate {
    UsageUpdate {
        input: u64_of(usage, "input_tokens"),
        cache_read: u64_of(usage, "cache_read_input_tokens"),
        cache_write: u64_of(usage, "cache_creation_input_tokens"),
        output: u64_of(usage, "output_tokens"),
        reasoning: usage
            .get("output_tokens_details")
            .and_then(|d| u64_of(d, "thinking_tokens")),
    }
}

/// An Anthropic `usage` object; `output_tokens_details.thinking_tokens` when reasoning
/// tokens are known.
pub fn usage_json(usage: &Usage) -> Value {
    let mut out = json!({
        "input_tokens": usage.input,
        "cache_creation_input_tokens": usage.cache_write,
        "cache_read_input_tokens": usage.cache_read,
        "output_tokens": usage.output,
    });
    if let (Some(r), Some(obj)) = (usage.reasoning, out.as_object_mut()) {
        obj.insert(
            "output_tokens_details".into(),
            json!({ "thinking_tokens": r }),
        );
    }
    out
}
