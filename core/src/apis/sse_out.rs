//! What a stream translator hands the machine: client SSE events, each tagged with what it
//! means for the commit rule (spec §6, §9).

use bytes::Bytes;

/// What one client event means for the relay, in the client API's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// Not content (a role chunk, `message_start`, `ping`, `response.created`, a block start
    /// or stop, a finish reason, usage): hold it before the commit point, forward it after.
    Held,
    /// Content (Chat: a content, tool-call or refusal delta; Messages: a
    /// `content_block_delta`; Responses: an output-text, function-call-arguments or refusal
    /// delta): the first one is the commit point.
    Content,
    /// The stream is complete; these bytes end it (`[DONE]`, `message_stop`,
    /// `response.completed`). Commit if not yet committed, forward, finish successfully.
    Done,
    /// The upstream reported an error in-band. Before commit: a failed attempt, `detail` is
    /// the upstream's event data (for the exhaustion body's `last_error`), the bytes are not
    /// sent. After commit: forward the bytes (the client-shaped terminal error) and end the
    /// stream without a completion marker.
    Error { detail: String },
    /// Dropped (data that is not JSON, an event too large): log `reason`, send nothing.
    Dropped { reason: String },
}

/// One event for the client: the bytes to write and what they mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientEvent {
    /// A complete SSE event (`event:` and `data:` lines and the blank line); empty for
    /// [`EventKind::Dropped`].
    pub bytes: Bytes,
    pub kind: EventKind,
}

impl ClientEvent {
    /// A dropped event.
    pub(crate) fn dropped(reason: impl Into<String>) -> Self {
        ClientEvent {
            bytes: Bytes::new(),
            kind: EventKind::Dropped {
                reason: reason.into(),
            },
        }
    }
}

/// An event an encoder made, before framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Emitted {
    /// The `event:` name (Messages and Responses name every event; Chat names none).
    pub name: Option<&'static str>,
    pub data: String,
    pub kind: EventKind,
}

impl Emitted {
    pub(crate) fn new(name: Option<&'static str>, data: String, kind: EventKind) -> Self {
        Emitted { name, data, kind }
    }

    /// Frames it as an SSE event.
    pub(crate) fn into_client_event(self) -> ClientEvent {
        ClientEvent {
            bytes: frame(self.name, &self.data),
            kind: self.kind,
        }
    }
}

/// `event: <name>\n` (when named), `data: <data>\n` per line, and the blank line.
pub(crate) fn frame(name: Option<&str>, data: &str) -> Bytes {
    crate::sse::SseEvent {
        event: name.map(str::to_owned),
        data: data.to_owned(),
        id: None,
        retry: None,
    }
    .to_bytes()
}
