//! The SSE relay of one streaming attempt (spec §6): frames upstream bytes into events,
//! holds what comes before the commit point, and says what each event means.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::anthropic::{StreamTranslator, Translated};
use crate::sse::{self, SseError, SseEvent, SseFramer};

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
    /// Dropped: data that is not JSON.
    Dropped(String),
    /// An event passed [`MAX_EVENT_BYTES`]: the stream has failed, and nothing more of
    /// it is read.
    TooLarge,
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
    /// A well-formed chunk (a JSON object with a `choices` list) was seen: without one,
    /// a stream is no answer at all, even if it ends with `[DONE]`.
    pub chunk_seen: bool,
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
            chunk_seen: false,
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
                Err(SseError::EventTooLarge { .. }) => return Some(Meaning::TooLarge),
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
        let is_error_event = event.event.as_deref() == Some("error");
        let chunk = match serde_json::from_str::<ChunkView<'_>>(&event.data) {
            Ok(chunk) => chunk,
            // Valid JSON of another shape is relayed as it is; only non-JSON is dropped.
            Err(_) if !is_error_event && is_json(&event.data) => return Meaning::Other(encoded),
            Err(e) if !is_error_event => {
                return Meaning::Dropped(format!("event data is not JSON: {e}"));
            }
            Err(_) => {
                return Meaning::Error {
                    data: event.data.clone(),
                    encoded,
                }
            }
        };
        if is_error_event || chunk.error.is_some() {
            return Meaning::Error {
                data: event.data.clone(),
                encoded,
            };
        }
        self.chunk_seen |= chunk.choices.is_some();
        let mut content = false;
        for choice in chunk.choices.iter().flatten() {
            self.finish_seen |= choice.finish_reason.is_some();
            content |= choice.delta.as_ref().is_some_and(DeltaView::has_content);
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

    /// Bytes this relay holds: the event being framed and the events held for commit.
    pub fn buffered_bytes(&self) -> usize {
        self.framer.buffered_bytes() + self.held.len()
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

/// The parts of a chat completion chunk the relay looks at, borrowed from the event's
/// data: parsing into this is much cheaper than building a `serde_json::Value`.
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
    /// Whether the delta carries content: non-empty text, a tool call, a legacy function
    /// call, or a refusal.
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
            || self.function_call.is_some()
    }
}

/// Whether `data` is well-formed JSON of any shape.
fn is_json(data: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(data).is_ok()
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

    #[test]
    fn only_real_content_commits() {
        let m = meanings(concat!(
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[ ]}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"refusal\":\"no\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":null,\"function_call\":{\"name\":\"f\"}}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        ));
        assert!(
            matches!(m[0], Meaning::Other(_)),
            "an empty tool_calls list"
        );
        assert!(matches!(m[1], Meaning::Content(_)));
        assert!(matches!(m[2], Meaning::Content(_)));
        assert!(matches!(m[3], Meaning::Other(_)));
    }

    #[test]
    fn other_json_shapes_are_relayed_not_dropped() {
        let m = meanings("data: 42\n\ndata: {\"choices\":{\"odd\":true}}\n\ndata: [1,2]\n\n");
        assert!(m.iter().all(|m| matches!(m, Meaning::Other(_))), "{m:?}");
    }

    #[test]
    fn only_a_chunk_with_choices_counts_as_a_chunk() {
        let mut r = StreamRelay::new();
        r.push(b"data: not json\n\ndata: 42\n\ndata: {\"id\":\"x\"}\n\ndata: {\"choices\":{}}\n\n");
        while r.next().is_some() {}
        assert!(!r.chunk_seen);
        r.push(b"data: {\"choices\":[]}\n\n");
        assert!(matches!(r.next(), Some(Meaning::Other(_))));
        assert!(
            r.chunk_seen,
            "an empty choices list is a well-formed (usage) chunk"
        );
    }

    #[test]
    fn an_oversized_event_fails_the_stream_and_stops_reading() {
        let mut r = StreamRelay::new();
        r.push(b"data: {\"choices\":[]}\n\ndata: ");
        r.push(&vec![b'x'; MAX_EVENT_BYTES + 1]);
        assert!(matches!(r.next(), Some(Meaning::Other(_))));
        assert_eq!(r.next(), Some(Meaning::TooLarge));
        r.push(b"\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"late\"}}]}\n\n");
        assert_eq!(r.next(), None);
        assert_eq!(r.buffered_bytes(), 0);
    }
}
