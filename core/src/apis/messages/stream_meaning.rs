//! What an Anthropic Messages event means when it is relayed unchanged to a Messages client.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::sse::SseEvent;

/// The meaning of one event of a relayed Messages stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessagesMeaning {
    /// `message_stop`.
    Done,
    /// `event: error` (whatever its data).
    Error,
    /// A `content_block_delta`: the commit point.
    Content,
    /// Any other well-formed JSON; `finish` for a `message_delta` with a stop reason.
    Other {
        finish: bool,
    },
    NotJson,
}

#[derive(Deserialize)]
struct EventView<'a> {
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    delta: Option<DeltaView<'a>>,
}

#[derive(Deserialize)]
struct DeltaView<'a> {
    #[serde(default, borrow)]
    stop_reason: Option<&'a RawValue>,
}

/// Classifies one event, parsing its data once into a borrowed view. The type is the
/// `event:` name, or the data's `type`.
pub(crate) fn classify(event: &SseEvent) -> MessagesMeaning {
    let named = event.event.as_deref().filter(|n| *n != "message");
    if named == Some("error") {
        return MessagesMeaning::Error;
    }
    let view = match serde_json::from_str::<EventView<'_>>(&event.data) {
        Ok(v) => v,
        Err(_) if serde_json::from_str::<serde::de::IgnoredAny>(&event.data).is_ok() => {
            return MessagesMeaning::Other { finish: false }
        }
        Err(_) => return MessagesMeaning::NotJson,
    };
    match named.or(view.kind.as_deref()) {
        Some("error") => MessagesMeaning::Error,
        Some("content_block_delta") => MessagesMeaning::Content,
        Some("message_stop") => MessagesMeaning::Done,
        Some("message_delta") => MessagesMeaning::Other {
            finish: view
                .delta
                .and_then(|d| d.stop_reason)
                .is_some_and(|r| r.get() != "null"),
        },
        _ => MessagesMeaning::Other { finish: false },
    }
}
