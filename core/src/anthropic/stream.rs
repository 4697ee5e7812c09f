//! Anthropic SSE events → OpenAI `chat.completion.chunk`s, one event at a time, through the
//! shared model ([`messages::StreamDecoder`] then [`chat::StreamEncoder`]).

use crate::apis::{chat, messages, EventKind};
use crate::sse::SseEvent;

/// What one upstream event becomes for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Translated {
    /// An OpenAI `chat.completion.chunk` JSON (to be sent as `data: <json>\n\n`).
    Chunk(String),
    /// The stream is complete: send `data: [DONE]`.
    Done,
    /// An in-band error (Anthropic `error` event), as an OpenAI error JSON `{"error":{...}}`.
    Error(String),
}

/// Incremental Anthropic SSE → OpenAI chunk translation for one stream.
///
/// The rules are [`messages::StreamDecoder`]'s and [`chat::StreamEncoder`]'s: a role chunk
/// at `message_start`, content and tool-call chunks for text and `input_json_delta`s, a
/// finish chunk at `message_delta`, the usage chunk (with `include_usage`) and
/// [`Translated::Done`] at `message_stop`, [`Translated::Error`] for an `error` event (even
/// when its data is not JSON). `ping`, block stops, thinking, unknown types and malformed
/// data give nothing (malformed data is logged). After `Done` or `Error`, every event gives
/// nothing.
#[derive(Debug, Clone)]
pub struct StreamTranslator {
    decoder: messages::StreamDecoder,
    encoder: chat::StreamEncoder,
}

impl StreamTranslator {
    /// A translator for one stream, reporting `model` in every chunk.
    pub fn new(model: &str, include_usage: bool) -> Self {
        StreamTranslator {
            decoder: messages::StreamDecoder::new(),
            encoder: chat::StreamEncoder::new(
                model,
                include_usage,
                messages::response::FALLBACK_ID,
            ),
        }
    }

    /// Translates one upstream event (by its `event:` name, or the `type` in its data) into zero
    /// or more OpenAI events.
    pub fn push(&mut self, event: &SseEvent) -> Vec<Translated> {
        let mut events = Vec::new();
        if let Some(why) = self.decoder.push(event, &mut events) {
            tracing::warn!("dropping an upstream stream event: {why}");
        }
        let mut emitted = Vec::new();
        for ev in &events {
            self.encoder.push(ev, &mut emitted);
        }
        emitted
            .into_iter()
            .map(|e| match e.kind {
                EventKind::Done => Translated::Done,
                EventKind::Error { .. } => Translated::Error(e.data),
                _ => Translated::Chunk(e.data),
            })
            .collect()
    }
}
