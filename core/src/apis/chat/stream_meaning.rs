//! What a Chat Completions event means when it is relayed unchanged to a Chat client.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::sse::{self, SseEvent};

/// The meaning of one event of a relayed Chat stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChatMeaning {
    Done,
    Error,
    /// A content, tool-call or refusal delta: the commit point; `finish` when the same chunk
    /// carries a `finish_reason`.
    Content {
        finish: bool,
    },
    /// Any other well-formed JSON; `finish` when it carries a `finish_reason`, `chunk` when
    /// it is a chunk (an object with a `choices` list, possibly empty: a usage chunk).
    Other {
        finish: bool,
        chunk: bool,
    },
    /// Data that is not JSON.
    NotJson,
}

/// Classifies one event, parsing it once into a borrowed view (much cheaper than a
/// `serde_json::Value`). Valid JSON of another shape is `Other`: relayed, never dropped.
pub(crate) fn classify(event: &SseEvent) -> ChatMeaning {
    if sse::is_done(event) {
        return ChatMeaning::Done;
    }
    let is_error_event = event.event.as_deref() == Some("error");
    let chunk = match serde_json::from_str::<ChunkView<'_>>(&event.data) {
        Ok(chunk) => chunk,
        Err(_) if is_error_event => return ChatMeaning::Error,
        Err(_) if is_json(&event.data) => {
            return ChatMeaning::Other {
                finish: false,
                chunk: false,
            }
        }
        Err(_) => return ChatMeaning::NotJson,
    };
    if is_error_event || chunk.error.is_some() {
        return ChatMeaning::Error;
    }
    let mut content = false;
    let mut finish = false;
    for choice in chunk.choices.iter().flatten() {
        finish |= choice.finish_reason.is_some_and(|r| r.get() != "null");
        content |= choice.delta.as_ref().is_some_and(DeltaView::has_content);
    }
    if content {
        ChatMeaning::Content { finish }
    } else {
        ChatMeaning::Other {
            finish,
            chunk: chunk.choices.is_some(),
        }
    }
}

#[derive(Deserialize)]
struct ChunkView<'a> {
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
    #[serde(default, borrow)]
    choices: Option<Vec<ChoiceView<'a>>>,
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(default, borrow)]
    finish_reason: Option<&'a RawValue>,
    #[serde(default, borrow)]
    delta: Option<DeltaView<'a>>,
}

#[derive(Deserialize)]
struct DeltaView<'a> {
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    refusal: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tool_calls: Option<&'a RawValue>,
    #[serde(default, borrow)]
    function_call: Option<&'a RawValue>,
}

impl DeltaView<'_> {
    /// Non-empty text, a tool call, a legacy function call, or a refusal.
    fn has_content(&self) -> bool {
        let non_empty_string =
            |v: Option<&RawValue>| v.is_some_and(|v| v.get().starts_with('"') && v.get() != "\"\"");
        let non_empty_array = |v: Option<&RawValue>| {
            v.and_then(|v| v.get().strip_prefix('['))
                .is_some_and(|rest| !rest.trim_start().starts_with(']'))
        };
        non_empty_string(self.content)
            || non_empty_string(self.refusal)
            || non_empty_array(self.tool_calls)
            || self.function_call.is_some_and(|v| v.get() != "null")
    }
}

/// Whether `data` is well-formed JSON of any shape.
fn is_json(data: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(data).is_ok()
}
