//! The stream half of the facade: upstream SSE events in, client SSE events out, each
//! tagged with its meaning for the commit rule in the client API's terms (spec §6, §9).

use bytes::Bytes;

use super::chat::stream_meaning::{self as chat_meaning, ChatMeaning};
use super::messages::stream_meaning::{self as messages_meaning, MessagesMeaning};
use super::model::StreamEvent;
use super::responses::stream_meaning::{self as responses_meaning, ResponsesKind};
use super::responses::ToolNames;
use super::sse_out::{frame, ClientEvent, Emitted, EventKind};
use super::sse_raw::FramedEvent;
use super::{chat, messages, responses, ClientApi, UpstreamApi};
use crate::sse::SseEvent;

/// How an upstream stream that ended cleanly (good framing, no error) ends for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The answer is complete: send these events (possibly none, when the upstream's own
    /// terminal event was already relayed), the last one tagged [`EventKind::Done`] if any.
    Complete(Vec<ClientEvent>),
    /// The answer was cut short: before commit a failed attempt, after commit the terminal
    /// error ([`StreamTranslator::terminal_error`]).
    Truncated,
}

#[derive(Debug, Clone)]
enum Decoder {
    Chat(chat::StreamDecoder),
    Messages(messages::StreamDecoder),
    Responses(responses::StreamDecoder),
}

#[derive(Debug, Clone)]
enum Encoder {
    Chat(chat::StreamEncoder),
    Messages(messages::StreamEncoder),
    Responses(responses::StreamEncoder),
}

impl Encoder {
    fn push(&mut self, event: &StreamEvent, out: &mut Vec<Emitted>) {
        match self {
            Encoder::Chat(e) => e.push(event, out),
            Encoder::Messages(e) => e.push(event, out),
            Encoder::Responses(e) => e.push(event, out),
        }
    }

    fn terminal_error(&mut self, message: &str, code: &str) -> Emitted {
        match self {
            Encoder::Chat(e) => e.terminal_error(message, code),
            Encoder::Messages(e) => e.terminal_error(message, code),
            Encoder::Responses(e) => e.terminal_error(message, code),
        }
    }
}

#[derive(Debug, Clone)]
struct Translating {
    decoder: Decoder,
    encoder: Encoder,
}

#[derive(Debug, Clone)]
enum Mode {
    /// The upstream speaks the client's API: events are relayed as they came, only
    /// classified.
    Relay {
        api: ClientApi,
        model: String,
        finish_seen: bool,
        /// Responses: the next sequence number and the response id, for `response.failed`.
        next_seq: u64,
        response_id: Option<String>,
    },
    Translate(Box<Translating>),
}

/// Turns one attempt's upstream SSE events into the client's events.
///
/// Feed it every framed upstream event with [`push`](Self::push) and act on each returned
/// event's [`EventKind`]; call [`end`](Self::end) when the upstream ends cleanly, and
/// [`terminal_error`](Self::terminal_error) for the event that ends a committed stream
/// whose upstream failed. One translator per attempt: a failover starts a new one (held
/// events of the failed attempt are discarded, never spliced).
///
/// Relaying (the upstream speaks the client's API), every event's bytes are the upstream's
/// own when it was framed by a [`RelayFramer`](super::RelayFramer) ([`push_framed`](Self::push_framed)), and its
/// data is parsed once, into a borrowed view, for its meaning. Translating, events are decoded into [`StreamEvent`]s and encoded in the
/// client's grammar. After the stream ended (`Done` or `Error` returned), every further
/// event yields nothing. Never panics.
#[derive(Debug, Clone)]
pub struct StreamTranslator {
    mode: Mode,
    finished: bool,
    /// Part of an answer came (see [`has_answer`](Self::has_answer)).
    answered: bool,
}

impl StreamTranslator {
    /// A relay for an upstream that speaks `api`, the client's own (Chat, Messages or
    /// Responses). `model` is what the client is told in a terminal `response.failed`.
    pub fn relay(api: ClientApi, model: &str) -> Self {
        StreamTranslator {
            mode: Mode::Relay {
                api,
                model: model.to_owned(),
                finish_seen: false,
                next_seq: 0,
                response_id: None,
            },
            finished: false,
            answered: false,
        }
    }

    /// A translator from `upstream`'s stream to `client`'s, reporting `model` (the
    /// client-facing `provider/model`). `include_usage` is the Chat client's
    /// `stream_options.include_usage`; `names` restores a Responses client's namespaced tools.
    /// A pair that needs no translation gets a relay.
    pub fn translating(
        upstream: UpstreamApi,
        client: ClientApi,
        model: &str,
        include_usage: bool,
        names: ToolNames,
    ) -> Self {
        let (decoder, fallback) = match upstream {
            UpstreamApi::Messages | UpstreamApi::CountTokens => (
                Decoder::Messages(messages::StreamDecoder::new()),
                messages::response::FALLBACK_ID,
            ),
            UpstreamApi::Responses => (
                Decoder::Responses(responses::StreamDecoder::new()),
                responses::response::FALLBACK_ID,
            ),
            UpstreamApi::ChatCompletions | UpstreamApi::Embeddings => (
                Decoder::Chat(chat::StreamDecoder::new()),
                chat::response::FALLBACK_ID,
            ),
        };
        let same = matches!(
            (upstream, client),
            (UpstreamApi::ChatCompletions, ClientApi::ChatCompletions)
                | (UpstreamApi::Messages, ClientApi::Messages)
                | (UpstreamApi::Responses, ClientApi::Responses)
        );
        if same {
            return Self::relay(client, model);
        }
        let encoder = match client {
            ClientApi::Messages | ClientApi::CountTokens => {
                Encoder::Messages(messages::StreamEncoder::new(model, fallback))
            }
            ClientApi::Responses => {
                Encoder::Responses(responses::StreamEncoder::new(model, fallback, names))
            }
            ClientApi::ChatCompletions | ClientApi::Embeddings => {
                Encoder::Chat(chat::StreamEncoder::new(model, include_usage, fallback))
            }
        };
        StreamTranslator {
            mode: Mode::Translate(Box::new(Translating { decoder, encoder })),
            finished: false,
            answered: false,
        }
    }

    /// Whether the stream has ended (a `Done` or `Error` event was returned).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether the stream has carried part of an answer: relaying Chat, a chunk (an object
    /// with a `choices` list); relaying Messages or Responses, an event of well-formed JSON;
    /// translating, any event the upstream's decoder understood. A stream that is complete
    /// without one (`data: [DONE]` alone) is no answer: the machine fails the attempt.
    pub fn has_answer(&self) -> bool {
        self.answered
    }

    /// The client events for one upstream event framed by a [`RelayFramer`](super::RelayFramer), in order.
    /// Relaying, the event's bytes are forwarded exactly as the upstream sent them.
    pub fn push_framed(&mut self, framed: &FramedEvent) -> Vec<ClientEvent> {
        self.push_with(&framed.event, || framed.raw.clone())
    }

    /// The client events for one upstream event, in order. Relaying, the event is re-framed
    /// canonically ([`SseEvent::to_bytes`]); use [`push_framed`](Self::push_framed) to
    /// forward the upstream's own bytes.
    pub fn push(&mut self, event: &SseEvent) -> Vec<ClientEvent> {
        self.push_with(event, || event.to_bytes())
    }

    fn push_with(&mut self, event: &SseEvent, bytes: impl FnOnce() -> Bytes) -> Vec<ClientEvent> {
        if self.finished {
            return Vec::new();
        }
        let out = match &mut self.mode {
            Mode::Relay { .. } => vec![self.relay_event(event, bytes)],
            Mode::Translate(t) => {
                let out = translate(t, event);
                self.answered |= out
                    .iter()
                    .any(|e| matches!(e.kind, EventKind::Held | EventKind::Content));
                out
            }
        };
        self.finished |= out
            .iter()
            .any(|e| matches!(e.kind, EventKind::Done | EventKind::Error { .. }));
        out
    }

    fn relay_event(&mut self, event: &SseEvent, bytes: impl FnOnce() -> Bytes) -> ClientEvent {
        let Mode::Relay {
            api,
            finish_seen,
            next_seq,
            response_id,
            ..
        } = &mut self.mode
        else {
            return ClientEvent::dropped("not a relay");
        };
        let kind = match api {
            ClientApi::Messages | ClientApi::CountTokens => match messages_meaning::classify(event)
            {
                MessagesMeaning::Done => EventKind::Done,
                MessagesMeaning::Error => EventKind::Error {
                    detail: event.data.clone(),
                },
                MessagesMeaning::Content => {
                    self.answered = true;
                    EventKind::Content
                }
                MessagesMeaning::Other { finish } => {
                    *finish_seen |= finish;
                    self.answered = true;
                    EventKind::Held
                }
                MessagesMeaning::NotJson => {
                    return ClientEvent::dropped("event data is not JSON");
                }
            },
            ClientApi::Responses => {
                let m = responses_meaning::classify(event);
                if let Some(seq) = m.sequence_number {
                    *next_seq = (*next_seq).max(seq.saturating_add(1));
                }
                if m.response_id.is_some() {
                    *response_id = m.response_id;
                }
                match m.kind {
                    ResponsesKind::Done => EventKind::Done,
                    ResponsesKind::Error => EventKind::Error {
                        detail: event.data.clone(),
                    },
                    ResponsesKind::Content => {
                        self.answered = true;
                        EventKind::Content
                    }
                    ResponsesKind::Other => {
                        self.answered = true;
                        EventKind::Held
                    }
                    ResponsesKind::NotJson => {
                        return ClientEvent::dropped("event data is not JSON");
                    }
                }
            }
            ClientApi::ChatCompletions | ClientApi::Embeddings => {
                match chat_meaning::classify(event) {
                    ChatMeaning::Done => EventKind::Done,
                    ChatMeaning::Error => EventKind::Error {
                        detail: event.data.clone(),
                    },
                    ChatMeaning::Content { finish } => {
                        *finish_seen |= finish;
                        self.answered = true;
                        EventKind::Content
                    }
                    ChatMeaning::Other { finish, chunk } => {
                        *finish_seen |= finish;
                        self.answered |= chunk;
                        EventKind::Held
                    }
                    ChatMeaning::NotJson => return ClientEvent::dropped("event data is not JSON"),
                }
            }
        };
        ClientEvent {
            bytes: bytes(),
            kind,
        }
    }

    /// The upstream ended cleanly (good framing, no error event). Relaying Chat or Messages,
    /// the answer is complete when a finish reason (stop reason) was seen, and the missing
    /// `[DONE]` (`message_stop`) is supplied; a Responses stream is complete only if its
    /// `response.completed` came. Translating, the upstream API's rule applies and the
    /// client's closing events are returned.
    pub fn end(&mut self) -> StreamEnd {
        if self.finished {
            return StreamEnd::Complete(Vec::new());
        }
        self.finished = true;
        match &mut self.mode {
            Mode::Relay {
                api, finish_seen, ..
            } => match (api, *finish_seen) {
                (ClientApi::ChatCompletions, true) => StreamEnd::Complete(vec![ClientEvent {
                    bytes: frame(None, "[DONE]"),
                    kind: EventKind::Done,
                }]),
                (ClientApi::Messages, true) => StreamEnd::Complete(vec![ClientEvent {
                    bytes: frame(Some("message_stop"), r#"{"type":"message_stop"}"#),
                    kind: EventKind::Done,
                }]),
                _ => StreamEnd::Truncated,
            },
            Mode::Translate(t) => {
                let mut events = Vec::new();
                let complete = match &mut t.decoder {
                    Decoder::Chat(d) => d.end(&mut events),
                    Decoder::Messages(d) => d.end(&mut events),
                    Decoder::Responses(d) => d.end(&mut events),
                };
                if !complete {
                    return StreamEnd::Truncated;
                }
                let mut emitted = Vec::new();
                for ev in &events {
                    t.encoder.push(ev, &mut emitted);
                }
                StreamEnd::Complete(
                    emitted
                        .into_iter()
                        .map(Emitted::into_client_event)
                        .collect(),
                )
            }
        }
    }

    /// The event that ends a committed stream whose upstream failed (cut, stall, deadline),
    /// in the client's shape: Chat `data: {"error":{...}}` (and no `[DONE]`), Messages
    /// `event: error`, Responses `response.failed` (next sequence number, same response id).
    /// `message` is for people, `code` names the reason (`stream_timeout`, ...).
    pub fn terminal_error(&mut self, message: &str, code: &str) -> Bytes {
        self.finished = true;
        let emitted = match &mut self.mode {
            Mode::Relay {
                api,
                model,
                next_seq,
                response_id,
                ..
            } => match api {
                ClientApi::Messages | ClientApi::CountTokens => {
                    messages::terminal_error(message, code)
                }
                ClientApi::Responses => {
                    let id = response_id
                        .clone()
                        .unwrap_or_else(|| "resp_switchback".to_owned());
                    let e = responses::terminal_failed(*next_seq, &id, model, message, code);
                    *next_seq += 1;
                    e
                }
                ClientApi::ChatCompletions | ClientApi::Embeddings => {
                    chat::terminal_error(message, code)
                }
            },
            Mode::Translate(t) => t.encoder.terminal_error(message, code),
        };
        emitted.into_client_event().bytes
    }
}

fn translate(t: &mut Translating, event: &SseEvent) -> Vec<ClientEvent> {
    let mut events = Vec::new();
    let dropped = match &mut t.decoder {
        Decoder::Chat(d) => d.push(event, &mut events),
        Decoder::Messages(d) => d.push(event, &mut events),
        Decoder::Responses(d) => d.push(event, &mut events),
    };
    let mut emitted = Vec::new();
    for ev in &events {
        t.encoder.push(ev, &mut emitted);
    }
    let mut out: Vec<ClientEvent> = emitted
        .into_iter()
        .map(Emitted::into_client_event)
        .collect();
    if let Some(reason) = dropped {
        out.push(ClientEvent::dropped(reason));
    }
    out
}
