//! OpenAI Responses (stateless): request, response and stream, to and from the internal
//! model.

pub mod request;
pub mod request_encode;
pub mod response;
mod stream_decode;
mod stream_encode;
pub(crate) mod stream_meaning;

pub use request::{decode as decode_request, Decoded};
pub use request_encode::encode as encode_request;
pub use response::{decode as decode_response, encode as encode_response};
pub use stream_decode::StreamDecoder;
pub(crate) use stream_encode::terminal_failed;
pub use stream_encode::StreamEncoder;

use serde_json::{json, Value};

use super::json::u64_of;
use super::model::{StopReason, Usage, UsageUpdate};

/// The separator between a namespace and a tool name when namespaced tools are flattened for
/// an API without namespaces (`crm` + `lookup` → `crm__lookup`), as Codex itself flattens
/// them.
pub const NAMESPACE_SEPARATOR: &str = "__";

/// The flattened names of a request's namespaced tools, to restore `namespace` and `name`
/// on the calls that come back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNames {
    /// (flattened name, namespace, name).
    entries: Vec<(String, String, String)>,
}

impl ToolNames {
    /// Flattens `namespace` + `name` (underscores around the separator trimmed) and
    /// remembers the split.
    pub fn flatten(&mut self, namespace: &str, name: &str) -> String {
        let flat = format!(
            "{}{NAMESPACE_SEPARATOR}{}",
            namespace.trim_end_matches('_'),
            name.trim_start_matches('_')
        );
        if !self.entries.iter().any(|(f, _, _)| *f == flat) {
            self.entries
                .push((flat.clone(), namespace.to_owned(), name.to_owned()));
        }
        flat
    }

    /// The namespace and name a flattened tool name stands for (`None`: it is not one).
    pub fn restore(&self, flat: &str) -> Option<(&str, &str)> {
        self.entries
            .iter()
            .find(|(f, _, _)| f == flat)
            .map(|(_, ns, n)| (ns.as_str(), n.as_str()))
    }

    /// Whether no tool was flattened.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The fields a Responses `usage` object carries. `input_tokens` includes cached tokens.
pub fn usage_update(usage: &Value) -> UsageUpdate {
    let input = u64_of(usage, "input_tokens");
    let cached = usage
        .get("input_tokens_details")
        .and_then(|d| u64_of(d, "cached_tokens"));
    UsageUpdate {
        input: input.map(|i| i.saturating_sub(cached.unwrap_or(0))),
        cache_read: cached.or(input.map(|_| 0)),
        cache_write: input.map(|_| 0),
        output: u64_of(usage, "output_tokens"),
        reasoning: usage
            .get("output_tokens_details")
            .and_then(|d| u64_of(d, "reasoning_tokens")),
    }
}

/// A Responses `usage` object.
pub fn usage_json(usage: &Usage) -> Value {
    let input = usage.total_input();
    json!({
        "input_tokens": input,
        "input_tokens_details": { "cached_tokens": usage.cache_read },
        "output_tokens": usage.output,
        "output_tokens_details": { "reasoning_tokens": usage.reasoning.unwrap_or(0) },
        "total_tokens": input.saturating_add(usage.output),
    })
}

/// The response `status` and `incomplete_details` for a stop reason: a length or content
/// filter stop is `incomplete` (reason `max_output_tokens` or `content_filter`), anything else
/// `completed`.
pub fn status_for(stop: Option<StopReason>) -> (&'static str, Value) {
    match stop {
        Some(StopReason::MaxTokens | StopReason::ContextWindowExceeded) => {
            ("incomplete", json!({ "reason": "max_output_tokens" }))
        }
        Some(StopReason::Refusal) => ("incomplete", json!({ "reason": "content_filter" })),
        _ => ("completed", Value::Null),
    }
}

/// The stop reason a finished response implies: its `incomplete_details.reason`, else tool
/// use when it called a function, else the end of the turn.
pub fn stop_from(status: Option<&str>, reason: Option<&str>, called: bool) -> StopReason {
    match (status, reason) {
        (Some("incomplete"), Some("content_filter")) => StopReason::Refusal,
        (Some("incomplete"), _) => StopReason::MaxTokens,
        _ if called => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

/// The Responses id for an answer id: `resp_` + the id, unless it has that prefix.
pub fn response_id(id: &str) -> String {
    if id.starts_with("resp_") {
        id.to_owned()
    } else {
        format!("resp_{id}")
    }
}

/// The skeleton of a response object with the fields the SDKs read; the caller adds
/// `output`, `usage` and the status details.
pub(crate) fn response_object(id: &str, model: &str, status: &str) -> Value {
    json!({
        "id": id,
        "object": "response",
        "created_at": 0,
        "status": status,
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "model": model,
        "output": [],
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": null,
        "store": false,
        "temperature": null,
        "text": { "format": { "type": "text" } },
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "truncation": "disabled",
        "usage": null,
        "metadata": {},
    })
}
