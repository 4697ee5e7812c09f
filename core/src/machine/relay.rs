//! The SSE relay of one streaming attempt (spec §6, §9): frames upstream bytes into events
//! with their bytes as received ([`RelayFramer`]), turns each into the client's events
//! ([`StreamTranslator`]: the upstream's own bytes when it speaks the client's API, the
//! client's grammar otherwise), and holds what comes before the commit point.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::apis::{ClientEvent, RelayFramer, StreamEnd, StreamTranslator};
use crate::sse::SseError;

/// The largest single SSE event accepted from an upstream.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// The most bytes of events held before the commit point.
pub const MAX_HELD_BYTES: usize = 1024 * 1024;

/// What the relay hands the machine next.
#[derive(Debug, Clone, PartialEq)]
pub enum Relayed {
    /// A client event and its meaning for the commit rule.
    Event(ClientEvent),
    /// An upstream event passed [`MAX_EVENT_BYTES`]: the stream has failed, and nothing
    /// more of it is read.
    TooLarge,
}

/// Frames and translates one attempt's stream and keeps the events held before commit.
/// One relay per attempt: a failover starts a new one, so held events of a failed attempt
/// are discarded, never spliced.
#[derive(Debug)]
pub struct StreamRelay {
    framer: RelayFramer,
    translator: StreamTranslator,
    ready: VecDeque<Relayed>,
    held: BytesMut,
    /// An oversized event was reported: nothing more is read.
    failed: bool,
}

impl StreamRelay {
    /// A relay whose events `translator` turns into the client's.
    pub fn new(translator: StreamTranslator) -> Self {
        StreamRelay {
            framer: RelayFramer::new(MAX_EVENT_BYTES),
            translator,
            ready: VecDeque::new(),
            held: BytesMut::new(),
            failed: false,
        }
    }

    /// Feeds upstream body bytes (ignored once the stream has failed).
    pub fn push(&mut self, data: &[u8]) {
        if !self.failed {
            self.framer.push(data);
        }
    }

    /// The next client event, if one is ready. Upstream events are translated one at a
    /// time, as the machine asks for them.
    pub fn next(&mut self) -> Option<Relayed> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(r);
            }
            if self.failed {
                return None;
            }
            match self.framer.next_event()? {
                Ok(framed) => {
                    let events = self.translator.push_framed(&framed);
                    self.ready.extend(events.into_iter().map(Relayed::Event));
                }
                Err(SseError::EventTooLarge { .. }) => {
                    self.failed = true;
                    self.framer.finish();
                    return Some(Relayed::TooLarge);
                }
            }
        }
    }

    /// The upstream ended cleanly: `true` when the answer is complete, and the events that
    /// close it for the client are queued for [`next`](Self::next); `false` when it was cut
    /// short. An incomplete trailing event is discarded (WHATWG).
    pub fn end(&mut self) -> bool {
        self.framer.finish();
        match self.translator.end() {
            StreamEnd::Complete(events) => {
                self.ready.extend(events.into_iter().map(Relayed::Event));
                true
            }
            StreamEnd::Truncated => false,
        }
    }

    /// The event that ends this committed stream after its upstream failed, in the
    /// client's shape (no completion event follows).
    pub fn terminal_error(&mut self, message: &str, code: &str) -> Bytes {
        self.translator.terminal_error(message, code)
    }

    /// Whether the stream carried part of an answer ([`StreamTranslator::has_answer`]).
    pub fn has_answer(&self) -> bool {
        self.translator.has_answer()
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

    /// Bytes this relay holds: what is being framed, events not yet taken, and the events
    /// held for commit.
    pub fn buffered_bytes(&self) -> usize {
        let ready: usize = self
            .ready
            .iter()
            .map(|r| match r {
                Relayed::Event(e) => e.bytes.len(),
                Relayed::TooLarge => 0,
            })
            .sum();
        self.framer.buffered_bytes() + ready + self.held.len()
    }

    /// Takes the held events (for the commit flush).
    pub fn take_held(&mut self) -> Bytes {
        self.held.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apis::{ClientApi, EventKind, UpstreamApi};

    fn chat_relay() -> StreamRelay {
        StreamRelay::new(StreamTranslator::relay(
            ClientApi::ChatCompletions,
            "openai/gpt-4o",
        ))
    }

    fn kinds(r: &mut StreamRelay) -> Vec<EventKind> {
        std::iter::from_fn(|| r.next())
            .map(|x| match x {
                Relayed::Event(e) => e.kind,
                Relayed::TooLarge => EventKind::Dropped {
                    reason: "too large".into(),
                },
            })
            .collect()
    }

    #[test]
    fn a_chat_relay_keeps_the_upstreams_bytes_and_tags_the_commit_point() {
        let mut r = chat_relay();
        let role =
            "data:{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\r\n\r\n";
        let text = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n";
        r.push(role.as_bytes());
        r.push(text.as_bytes());
        r.push(b"data: [DONE]\n\n");
        let all: Vec<Relayed> = std::iter::from_fn(|| r.next()).collect();
        let Relayed::Event(first) = &all[0] else {
            panic!("{all:?}")
        };
        assert_eq!(first.kind, EventKind::Held);
        assert_eq!(
            first.bytes,
            role.as_bytes(),
            "the upstream's bytes, unchanged"
        );
        assert!(matches!(&all[1], Relayed::Event(e) if e.kind == EventKind::Content));
        assert!(matches!(&all[2], Relayed::Event(e) if e.kind == EventKind::Done));
        assert!(r.has_answer());
    }

    #[test]
    fn an_anthropic_stream_is_translated_for_a_chat_client() {
        let mut r = StreamRelay::new(StreamTranslator::translating(
            UpstreamApi::Messages,
            ClientApi::ChatCompletions,
            "anthropic/claude",
            false,
            Default::default(),
        ));
        r.push(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":3}}}\n\n");
        r.push(b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
        r.push(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n");
        let k = kinds(&mut r);
        assert!(k.contains(&EventKind::Content), "{k:?}");
        assert!(!k.contains(&EventKind::Done), "{k:?}");
        assert!(!r.end(), "no stop reason: cut short");
    }

    #[test]
    fn a_clean_end_after_a_finish_reason_supplies_the_done_event() {
        let mut r = chat_relay();
        r.push(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n");
        assert_eq!(kinds(&mut r), vec![EventKind::Content]);
        assert!(r.end());
        assert_eq!(kinds(&mut r), vec![EventKind::Done]);
    }

    #[test]
    fn an_oversized_event_fails_the_stream_and_stops_reading() {
        let mut r = chat_relay();
        r.push(b"data: {\"choices\":[]}\n\ndata: ");
        r.push(&vec![b'x'; MAX_EVENT_BYTES + 8192]);
        assert!(matches!(r.next(), Some(Relayed::Event(_))));
        assert_eq!(r.next(), Some(Relayed::TooLarge));
        r.push(b"\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"late\"}}]}\n\n");
        assert_eq!(r.next(), None);
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn done_alone_is_no_answer() {
        let mut r = chat_relay();
        r.push(b"data: {\"id\":1}\n\ndata: [DONE]\n\n");
        assert_eq!(kinds(&mut r), vec![EventKind::Held, EventKind::Done]);
        assert!(!r.has_answer());
    }
}
