//! Dispatch over the client's stream grammar (Chat, Messages, Responses) and over the
//! decoder of a continuation's upstream stream (Chat or Messages).

use super::relayed::{Ending, Relayed};
use super::{chat, messages, responses};
use crate::apis::model::StreamEvent;
use crate::apis::{self, ClientEvent, UpstreamApi};
use crate::sse::SseEvent;

/// The client's stream grammar.
#[derive(Debug, Clone)]
pub(crate) enum Grammar {
    Chat(chat::ChatStream),
    Messages(messages::MessagesStream),
    Responses(responses::ResponsesStream),
}

impl Grammar {
    pub(crate) fn observe(&mut self, event: &SseEvent, r: &mut Relayed) {
        match self {
            Grammar::Chat(g) => g.observe(event, r),
            Grammar::Messages(g) => g.observe(event, r),
            Grammar::Responses(g) => g.observe(event, r),
        }
    }

    pub(crate) fn text(&self, text: &str) -> Vec<ClientEvent> {
        match self {
            Grammar::Chat(g) => g.text(text),
            Grammar::Messages(g) => g.text(text),
            Grammar::Responses(g) => g.text(text),
        }
    }

    pub(crate) fn complete(&self, end: &Ending<'_>) -> Vec<ClientEvent> {
        match self {
            Grammar::Chat(g) => g.complete(end),
            Grammar::Messages(g) => g.complete(end),
            Grammar::Responses(g) => g.complete(end),
        }
    }

    pub(crate) fn terminal_error(
        &self,
        message: &str,
        code: &str,
        report: &serde_json::Value,
    ) -> ClientEvent {
        match self {
            Grammar::Chat(g) => g.terminal_error(message, code, report),
            Grammar::Messages(g) => g.terminal_error(message, code, report),
            Grammar::Responses(g) => g.terminal_error(message, code, report),
        }
    }
}

/// A continuation upstream's stream decoder.
#[derive(Debug, Clone)]
pub(crate) enum Decoder {
    Chat(apis::chat::StreamDecoder),
    Messages(apis::messages::StreamDecoder),
}

impl Decoder {
    pub(crate) fn for_api(upstream: UpstreamApi) -> Decoder {
        match upstream {
            UpstreamApi::Messages | UpstreamApi::CountTokens => {
                Decoder::Messages(apis::messages::StreamDecoder::new())
            }
            _ => Decoder::Chat(apis::chat::StreamDecoder::new()),
        }
    }

    pub(crate) fn push(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        // A dropped event (data that is not JSON) neither fails nor ends a stream (spec §6).
        let _ = match self {
            Decoder::Chat(d) => d.push(event, out),
            Decoder::Messages(d) => d.push(event, out),
        };
    }

    pub(crate) fn end(&mut self, out: &mut Vec<StreamEvent>) -> bool {
        match self {
            Decoder::Chat(d) => d.end(out),
            Decoder::Messages(d) => d.end(out),
        }
    }
}
