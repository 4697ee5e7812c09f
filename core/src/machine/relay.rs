//! The SSE relay of one streaming attempt (spec §6): frames upstream bytes into events,
//! holds what comes before the commit point, and says what each event means.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use crate::anthropic::{StreamTranslator, Translated};
use crate::sse::{self, SseEvent, SseFramer};

/// The largest single SSE event accepted from an upstream.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// The most bytes of events held before the commit point.
pub const MAX_HELD_BYTES: usize = 1024 * 1024;

/// What one upstream event means for the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Meaning {
    /// `data: [DONE]`.
    Done,
    /// An in-band error (`{"error": ...}` data, or `event: error`); carries the encoded event.
    Error { data: String, encoded: Bytes },
    /// A chunk with content (text, tool call, refusal): the commit point.
    Content(Bytes),
    /// Any other well-formed chunk (role-only, usage, finish).
    Other(Bytes),
    /// Dropped: data that is not JSON, or an oversize event.
    Dropped(String),
}

/// Frames one attempt's stream and keeps the events held before commit. For an
/// Anthropic-interface upstream, each event is first translated into OpenAI chunks.
#[derive(Debug)]
pub struct StreamRelay {
    framer: SseFramer,
    translator: Option<StreamTranslator>,
    translated: VecDeque<Meaning>,
    held: BytesMut,
    /// A chunk with a `finish_reason` was seen: an end without `[DONE]` is clean.
    pub finish_seen: bool,
}

impl StreamRelay {
    /// A relay for an OpenAI-format stream.
    pub fn new() -> Self {
        StreamRelay {
            framer: SseFramer::new(MAX_EVENT_BYTES),
            translator: None,
            translated: VecDeque::new(),
            held: BytesMut::new(),
            finish_seen: false,
        }
    }

    /// A relay that translates an Anthropic Messages stream into OpenAI chunks.
    pub fn translating(translator: StreamTranslator) -> Self {
        StreamRelay {
            translator: Some(translator),
            ..Self::new()
        }
    }

    /// Feeds upstream body bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.framer.push(data);
    }

    /// The next complete event's meaning, if one is framed.
    pub fn next(&mut self) -> Option<Meaning> {
        loop {
            if let Some(m) = self.translated.pop_front() {
                return Some(m);
            }
            let event = match self.framer.next_event()? {
                Ok(ev) => ev,
                Err(e) => return Some(Meaning::Dropped(e.to_string())),
            };
            let Some(translator) = &mut self.translator else {
                return Some(self.interpret(&event));
            };
            for t in translator.push(&event) {
                let meaning = match t {
                    Translated::Chunk(json) => self.interpret(&SseEvent::data(json)),
                    Translated::Done => Meaning::Done,
                    Translated::Error(json) => Meaning::Error {
                        encoded: SseEvent::data(json.clone()).to_bytes(),
                        data: json,
                    },
                };
                self.translated.push_back(meaning);
            }
        }
    }

    fn interpret(&mut self, event: &SseEvent) -> Meaning {
        if sse::is_done(event) {
            return Meaning::Done;
        }
        let encoded = event.to_bytes();
        let json: Value = match serde_json::from_str(&event.data) {
            Ok(v) => v,
            Err(e) => {
                if event.event.as_deref() == Some("error") {
                    return Meaning::Error {
                        data: event.data.clone(),
                        encoded,
                    };
                }
                return Meaning::Dropped(format!("event data is not JSON: {e}"));
            }
        };
        if event.event.as_deref() == Some("error") || json.get("error").is_some() {
            return Meaning::Error {
                data: event.data.clone(),
                encoded,
            };
        }
        let choices = json.get("choices").and_then(Value::as_array);
        let mut content = false;
        for choice in choices.into_iter().flatten() {
            if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
                self.finish_seen = true;
            }
            if let Some(delta) = choice.get("delta") {
                content |= has_content(delta);
            }
        }
        if content {
            Meaning::Content(encoded)
        } else {
            Meaning::Other(encoded)
        }
    }

    /// Holds an event until commit. Returns false when the held bytes would pass
    /// [`MAX_HELD_BYTES`].
    pub fn hold(&mut self, encoded: &[u8]) -> bool {
        if self.held.len() + encoded.len() > MAX_HELD_BYTES {
            return false;
        }
        self.held.extend_from_slice(encoded);
        true
    }

    /// Takes the held events (for the commit flush).
    pub fn take_held(&mut self) -> Bytes {
        self.held.split().freeze()
    }
}

impl Default for StreamRelay {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a chunk's `delta` carries content: non-empty text, a tool call, a legacy
/// function call, or a refusal.
fn has_content(delta: &Value) -> bool {
    let non_empty_str = |k: &str| {
        delta
            .get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    non_empty_str("content")
        || non_empty_str("refusal")
        || delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        || delta.get("function_call").is_some_and(|f| !f.is_null())
}

/// The terminal error event sent after commit when the upstream fails (spec §6).
pub fn terminal_error_event(message: &str, code: &str) -> Bytes {
    let v =
        serde_json::json!({"error": {"message": message, "type": "upstream_error", "code": code}});
    Bytes::from(format!("data: {v}\n\n"))
}

/// `data: [DONE]` as relayed to the client.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn meanings(input: &str) -> Vec<Meaning> {
        let mut r = StreamRelay::new();
        r.push(input.as_bytes());
        std::iter::from_fn(|| r.next()).collect()
    }

    #[test]
    fn role_only_is_not_content_but_text_is() {
        let m = meanings(concat!(
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}\n\n",
            "data: [DONE]\n\n"
        ));
        assert!(matches!(m[0], Meaning::Other(_)));
        assert!(matches!(m[1], Meaning::Content(_)));
        assert!(matches!(m[2], Meaning::Content(_)));
        assert_eq!(m[3], Meaning::Done);
    }

    #[test]
    fn errors_and_garbage_are_recognised() {
        let m = meanings("data: {\"error\":{\"message\":\"boom\"}}\n\ndata: not json\n\nevent: error\ndata: oops\n\n");
        assert!(matches!(m[0], Meaning::Error { .. }));
        assert!(matches!(m[1], Meaning::Dropped(_)));
        assert!(matches!(m[2], Meaning::Error { .. }));
    }

    #[test]
    fn finish_reason_is_noticed() {
        let mut r = StreamRelay::new();
        r.push(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
        assert!(matches!(r.next(), Some(Meaning::Other(_))));
        assert!(r.finish_seen);
    }
}
