//! What a Responses event means when it is relayed unchanged to a Responses client.

use std::borrow::Cow;

use serde::Deserialize;

use crate::sse::SseEvent;

/// The meaning of one event of a relayed Responses stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponsesKind {
    /// `response.completed` or `response.incomplete`: the last event of a finished response.
    Done,
    /// `response.failed` or `error`.
    Error,
    /// An output-text, refusal, function-call-arguments or custom-tool-input delta.
    Content,
    Other,
    NotJson,
}

/// One classified event: its kind, and what a later `response.failed` must repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponsesMeaning {
    pub kind: ResponsesKind,
    pub sequence_number: Option<u64>,
    /// The response id, from the events that carry the response.
    pub response_id: Option<String>,
}

#[derive(Deserialize)]
struct EventView<'a> {
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    sequence_number: Option<u64>,
    #[serde(default, borrow)]
    response: Option<ResponseView<'a>>,
}

#[derive(Deserialize)]
struct ResponseView<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
}

/// Whether a Responses event type carries content for the commit rule (spec §9).
pub(crate) fn is_content(kind: &str) -> bool {
    matches!(
        kind,
        "response.output_text.delta"
            | "response.refusal.delta"
            | "response.function_call_arguments.delta"
            | "response.custom_tool_call_input.delta"
    )
}

/// Classifies one event, parsing its data once into a borrowed view. The type is the
/// `event:` name, or the data's `type`.
pub(crate) fn classify(event: &SseEvent) -> ResponsesMeaning {
    let named = event.event.as_deref().filter(|n| *n != "message");
    let plain = |kind| ResponsesMeaning {
        kind,
        sequence_number: None,
        response_id: None,
    };
    let view = match serde_json::from_str::<EventView<'_>>(&event.data) {
        Ok(v) => v,
        Err(_) if matches!(named, Some("error" | "response.failed")) => {
            return plain(ResponsesKind::Error)
        }
        Err(_) if serde_json::from_str::<serde::de::IgnoredAny>(&event.data).is_ok() => {
            return plain(ResponsesKind::Other)
        }
        Err(_) => return plain(ResponsesKind::NotJson),
    };
    let kind = match named.or(view.kind.as_deref()) {
        Some("error" | "response.failed") => ResponsesKind::Error,
        Some("response.completed" | "response.incomplete") => ResponsesKind::Done,
        Some(k) if is_content(k) => ResponsesKind::Content,
        _ => ResponsesKind::Other,
    };
    ResponsesMeaning {
        kind,
        sequence_number: view.sequence_number,
        response_id: view.response.and_then(|r| r.id).map(Cow::into_owned),
    }
}
