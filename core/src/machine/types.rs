//! What goes into the [`RetryMachine`](super::RetryMachine) and what comes out.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::gateway::ProviderId;
use crate::recovery::RecoverySummary;
use crate::response::ClientResponse;
use crate::upstream::{ExchangeEvent, UpstreamHttpRequest};

/// Names one upstream attempt of one request. Events for an attempt the machine has
/// abandoned are ignored, so a runtime may deliver late events without harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttemptId(pub u32);

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt-{}", self.0)
    }
}

/// Why the transport failed, as a runtime observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// Connection could not be established (refused, DNS, unreachable).
    Connect(String),
    /// The connect (TCP + TLS) did not finish within the timeout the `Send` gave.
    ConnectTimeout,
    /// TLS handshake or certificate failure.
    Tls(String),
    /// The connection failed after it was established (reset, broken pipe).
    Io(String),
    /// The response could not be parsed or was cut short (from the HTTP codec).
    Protocol(String),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Connect(d) => write!(f, "connect failed: {d}"),
            TransportError::ConnectTimeout => f.write_str("connect timed out"),
            TransportError::Tls(d) => write!(f, "TLS failed: {d}"),
            TransportError::Io(d) => write!(f, "connection failed: {d}"),
            TransportError::Protocol(d) => write!(f, "malformed response: {d}"),
        }
    }
}

/// An input to [`RetryMachine::handle`](super::RetryMachine::handle).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Begin: choose the first target. Send exactly once, first.
    Start,
    /// The upstream's response head (final status; 1xx are not reported).
    UpstreamHead {
        attempt: AttemptId,
        status: u16,
        headers: HeaderMap,
    },
    /// Response body bytes, de-chunked, in order, in any split.
    UpstreamData { attempt: AttemptId, data: Bytes },
    /// The response body ended with correct framing.
    UpstreamEnd { attempt: AttemptId },
    /// The attempt failed below HTTP.
    UpstreamFailed {
        attempt: AttemptId,
        error: TransportError,
    },
    /// A wake-up: `now` reached (or passed) the last `poll_timeout`. Early or repeated
    /// wake-ups are harmless.
    Timer,
    /// The client went away: cancel everything.
    ClientGone,
    /// The gateway is stopping and the drain timeout has passed: end the request now. A
    /// committed stream ends with the terminal error event (never a silent cut); a request
    /// with no response yet is answered 503.
    Shutdown,
}

/// An output, drained with [`RetryMachine::poll_action`](super::RetryMachine::poll_action).
#[derive(Debug, Clone)]
pub enum Action {
    /// Start an upstream attempt. `connect_timeout` bounds connecting (TCP + TLS); the
    /// machine owns every other timeout. (Targets of the built-in mock provider never
    /// produce a `Send`: the machine answers them itself, on its own timer.)
    Send {
        attempt: AttemptId,
        target: ProviderId,
        model: String,
        connect_timeout: Duration,
        request: UpstreamHttpRequest,
    },
    /// Abandon an attempt: close its connection (it must not be reused).
    Cancel { attempt: AttemptId },
    /// Send this whole response to the client.
    Respond(ClientResponse),
    /// Start a streamed response to the client: write the head now.
    StartStream {
        status: StatusCode,
        headers: HeaderMap,
    },
    /// Write these body bytes of the streamed response to the client, now.
    Forward(Bytes),
    /// The request is over: end the client response (for a stream, end its body) and drop
    /// any attempt still open. Always the last action, exactly once.
    Finish(Summary),
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete answer was delivered.
    Success,
    /// An upstream error was passed through, or a gateway-made error was sent.
    Failed,
    /// A stream that had committed was ended with an error event.
    StreamAborted,
    /// The client went away.
    Cancelled,
}

/// What the runtime may log about a finished request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub outcome: Outcome,
    /// The status of the response head the client got (0 when none was sent, e.g. a
    /// client that left before any answer).
    pub status: u16,
    /// Upstream attempts made.
    pub attempts: u32,
    /// The model that answered, or the last one tried.
    pub model: Option<String>,
    /// The target the request was routed to (whose policy governed it).
    pub primary: ProviderId,
    /// The target that answered, or the last one tried.
    pub target: Option<ProviderId>,
    /// Every attempt, in order, the last one included.
    pub records: Vec<super::AttemptRecord>,
    /// What stream recovery did (spec §12), when a committed stream failed and the
    /// primary's policy has `stream_recovery`; its `Display` is the log line's value.
    pub recovery: Option<RecoverySummary>,
}

impl Event {
    /// The machine event for what the shared upstream codec reported on `attempt`'s
    /// exchange. Runtimes feed every [`ExchangeEvent`] through this, so both translate
    /// the wire identically.
    pub fn from_exchange(attempt: AttemptId, event: ExchangeEvent) -> Event {
        match event {
            ExchangeEvent::Head { status, headers } => Event::UpstreamHead {
                attempt,
                status: status.as_u16(),
                headers,
            },
            ExchangeEvent::Body(data) => Event::UpstreamData { attempt, data },
            ExchangeEvent::End { .. } => Event::UpstreamEnd { attempt },
            ExchangeEvent::Failed(error) => Event::UpstreamFailed {
                attempt,
                error: TransportError::Protocol(error.to_string()),
            },
        }
    }
}
