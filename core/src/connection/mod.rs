//! The per-connection driver (spec §8): everything between "bytes arrived from the client"
//! and "bytes to write", for one client connection, as a sans-IO state machine.
//!
//! It owns the server codec ([`crate::server`]), the gateway's routing, each request's
//! [`RetryMachine`](crate::machine::RetryMachine), the upstream attempts' codec and the rules
//! around it (`call.rs`), keep-alive, pipelining, the head, body and write timeouts, the
//! graceful drain and the request log line. A runtime only moves bytes and time:
//!
//! ```text
//! let mut conn = Connection::new(gateway, settings, now, wall, seed);
//! loop {
//!     while let Some(a) = conn.poll_upstream_action() { open / close / pool the upstream slot }
//!     write conn.poll_client_transmit() to the client   -> conn.handle_client_written(now, n)
//!     write conn.poll_upstream_transmit() upstream      -> conn.handle_upstream_written(now, n)
//!     if conn.wants_client_shutdown() { shut the client's write side -> handle_client_shutdown }
//!     if conn.is_closed() { break }
//!     wait for: client readable (if wants_client_read), upstream readable (if
//!               wants_upstream_read), a connect finishing, conn.poll_timeout(), the drain
//!     feed it: handle_client_input / _eof / _error, handle_upstream(..), handle_timeout,
//!              handle_drain
//!     if conn.has_spans() { queue conn.take_spans() for the span exporter }
//! }
//! ```
//!
//! Every `handle_*` may be called with any `now` (early or repeated timer wake-ups are
//! harmless). Memory is bounded per connection: input is read ahead at most
//! [`READ_AHEAD_BYTES`], the next pipelined request is not parsed while more than
//! [`OUTPUT_HIGH_WATER`] bytes wait to be written, and a streaming client that leaves more
//! than [`MAX_STREAM_BACKLOG`] unread, or reads nothing for the body idle timeout, is taken
//! for gone.

mod answer;
mod call;
mod clock;
mod io;
mod log;
mod meter;
mod observe;
mod output;
mod request;
mod traced;

pub use io::{ConnectionSettings, UpstreamAction, UpstreamInput};

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::body_memory::BodyReservation;
use crate::gateway::{Gateway, Surface};
use crate::metrics::MetricsShard;
use crate::reload::LiveGateway;
use crate::server::{HttpError, ReadEvent, RequestHead, RequestReader};
use answer::{Answer, Sinks};
use clock::{DateHeader, WallClock};
use output::ClientOutput;

/// Client bytes read ahead of the request being answered (pipelined requests wait here).
pub const READ_AHEAD_BYTES: usize = 64 * 1024;
/// The next pipelined request is parsed only while fewer bytes than this wait to be written.
pub const OUTPUT_HIGH_WATER: usize = 64 * 1024;
/// A streamed response whose client leaves more than this unread is ended (client gone).
pub const MAX_STREAM_BACKLOG: usize = 1024 * 1024;
/// How long a closing connection keeps reading (and dropping) what the client still sends,
/// so the last response is not lost to a TCP reset, and how much it reads at most.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;

/// A request whose body is being read.
#[derive(Debug)]
struct Incoming {
    head: RequestHead,
    started: Instant,
    last_byte: Instant,
    parts: Vec<Bytes>,
    len: usize,
    /// The body's bytes, counted in the gateway-wide body memory as they arrive.
    reservation: BodyReservation,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for a request head; the head timeout runs from `since` once nothing waits to
    /// be written.
    AwaitingHead {
        since: Instant,
    },
    ReadingBody(Box<Incoming>),
    Answering(Box<Answer>),
    /// No more requests: write what is queued, shut the write side, then drop input until
    /// the client closes or the linger time ends.
    Closing {
        linger_until: Option<Instant>,
        discarded: usize,
    },
    Closed,
}

/// One client connection, sans-IO. See the module docs for how a runtime drives it.
#[derive(Debug)]
pub struct Connection {
    gw: Arc<Gateway>,
    /// Where a newer gateway comes from on reload, and the version `gw` is of.
    live: Option<(Arc<LiveGateway>, u64)>,
    /// The listener the connection arrived on.
    surface: Surface,
    /// The worker's metrics shard (the gateway's shard 0 until a runtime sets one).
    shard: Option<Arc<MetricsShard>>,
    /// Spans of finished traced requests, until the runtime takes them.
    spans: Vec<crate::trace::SpanRecord>,
    settings: ConnectionSettings,
    clock: WallClock,
    date: DateHeader,
    rng: fastrand::Rng,
    reader: RequestReader,
    out: ClientOutput,
    actions: VecDeque<UpstreamAction>,
    phase: Phase,
    /// The drain deadline, once the gateway is stopping.
    draining: Option<Instant>,
    /// Since when queued output has waited without a byte being written.
    write_stalled_since: Option<Instant>,
}

impl Connection {
    /// A driver for a connection accepted at `now` (`wall`: the wall-clock time then; `seed`:
    /// random bits for request ids and jitter).
    pub fn new(
        gw: Arc<Gateway>,
        settings: ConnectionSettings,
        now: Instant,
        wall: SystemTime,
        seed: u64,
    ) -> Connection {
        Connection {
            gw,
            live: None,
            surface: Surface::Public,
            shard: None,
            spans: Vec::new(),
            reader: RequestReader::new(settings.limits),
            settings,
            clock: WallClock::new(now, wall),
            date: DateHeader::new(),
            rng: fastrand::Rng::with_seed(seed),
            out: ClientOutput::default(),
            actions: VecDeque::new(),
            phase: Phase::AwaitingHead { since: now },
            draining: None,
            write_stalled_since: None,
        }
    }

    // ---- client side ------------------------------------------------------------------

    /// Bytes read from the client, in any split.
    pub fn handle_client_input(&mut self, now: Instant, data: &[u8]) {
        match &mut self.phase {
            Phase::Closed => return,
            Phase::Closing { discarded, .. } => {
                *discarded += data.len();
                if *discarded > LINGER_BYTES {
                    self.phase = Phase::Closed;
                }
                return;
            }
            _ => self.reader.push(data),
        }
        self.advance(now);
    }

    /// The client closed its side. A request in progress is cancelled (the client is gone);
    /// bytes still queued for it are written before the connection closes.
    pub fn handle_client_eof(&mut self, now: Instant) {
        match &self.phase {
            Phase::Closed => {}
            Phase::AwaitingHead { .. } if !self.out.is_empty() => self.start_closing(),
            Phase::Answering(_) => self.client_gone(now),
            _ => self.phase = Phase::Closed,
        }
    }

    /// Reading from or writing to the client failed: it is gone.
    pub fn handle_client_error(&mut self, now: Instant) {
        self.client_gone(now);
    }

    /// The next bytes to write to the client.
    #[must_use]
    pub fn poll_client_transmit(&self) -> Option<&[u8]> {
        if matches!(self.phase, Phase::Closed) {
            return None;
        }
        self.out.peek()
    }

    /// `n` bytes of [`poll_client_transmit`](Self::poll_client_transmit) were written.
    pub fn handle_client_written(&mut self, now: Instant, n: usize) {
        self.out.consume(n);
        if n > 0 {
            self.write_stalled_since = (!self.out.is_empty()).then_some(now);
        }
        if self.out.is_empty() {
            if let Phase::AwaitingHead { since } = &mut self.phase {
                *since = now;
            }
        }
        self.advance(now);
    }

    /// Whether the client socket should be read now.
    #[must_use]
    pub fn wants_client_read(&self) -> bool {
        match self.phase {
            Phase::Closed => false,
            Phase::Closing { .. } => true,
            _ => self.reader.buffered() < READ_AHEAD_BYTES,
        }
    }

    /// Whether the runtime should shut down the client socket's write side now (everything
    /// was written; the connection lingers to read what the client still sends).
    #[must_use]
    pub fn wants_client_shutdown(&self) -> bool {
        matches!(
            self.phase,
            Phase::Closing {
                linger_until: None,
                ..
            }
        ) && self.out.is_empty()
    }

    /// The client socket's write side was shut down.
    pub fn handle_client_shutdown(&mut self, now: Instant) {
        if let Phase::Closing { linger_until, .. } = &mut self.phase {
            *linger_until = Some(now + LINGER);
        }
    }

    // ---- upstream side ----------------------------------------------------------------

    /// The next instruction for the upstream socket slot. Drain after every `handle_*`.
    #[must_use]
    pub fn poll_upstream_action(&mut self) -> Option<UpstreamAction> {
        self.actions.pop_front()
    }

    /// The next request bytes to write upstream.
    #[must_use]
    pub fn poll_upstream_transmit(&mut self) -> Option<&[u8]> {
        match &mut self.phase {
            Phase::Answering(a) => a.upstream_transmit(),
            _ => None,
        }
    }

    /// `n` bytes of [`poll_upstream_transmit`](Self::poll_upstream_transmit) were written.
    pub fn handle_upstream_written(&mut self, _now: Instant, n: usize) {
        if let Phase::Answering(a) = &mut self.phase {
            a.upstream_written(n);
        }
    }

    /// Whether the upstream socket should be read now.
    #[must_use]
    pub fn wants_upstream_read(&self) -> bool {
        match &self.phase {
            Phase::Answering(a) => a.wants_upstream_read(),
            _ => false,
        }
    }

    /// Something happened on the upstream socket slot.
    pub fn handle_upstream(&mut self, now: Instant, input: UpstreamInput<'_>) {
        let date = self.date.at(self.clock.wall(now)).clone();
        if let Phase::Answering(a) = &mut self.phase {
            let mut sinks = Sinks {
                out: &mut self.out,
                actions: &mut self.actions,
                date: &date,
                spans: &mut self.spans,
            };
            a.handle_upstream(now, input, &mut sinks);
        }
        self.advance(now);
    }

    // ---- time and lifecycle -----------------------------------------------------------

    /// The one instant at which the driver wants [`handle_timeout`](Self::handle_timeout).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let limits = &self.settings.limits;
        let stall = self
            .write_stalled_since
            .filter(|_| !self.out.is_empty())
            .map(|t| t + limits.body_idle_timeout);
        let own = match &self.phase {
            Phase::AwaitingHead { since } if self.out.is_empty() => {
                min_opt(Some(*since + limits.head_timeout), self.draining)
            }
            Phase::AwaitingHead { .. } => self.draining,
            Phase::ReadingBody(inc) => min_opt(
                Some(inc.last_byte + limits.body_idle_timeout),
                self.draining,
            ),
            Phase::Answering(a) => min_opt(a.poll_timeout(), self.draining),
            Phase::Closing { linger_until, .. } => *linger_until,
            Phase::Closed => return None,
        };
        min_opt(own, stall)
    }

    /// A wake-up at (or after) [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        let limits = self.settings.limits;
        if self
            .write_stalled_since
            .is_some_and(|t| !self.out.is_empty() && now >= t + limits.body_idle_timeout)
        {
            self.client_gone(now);
            return;
        }
        let drained = self.draining.is_some_and(|d| now >= d);
        if drained
            && matches!(
                self.phase,
                Phase::AwaitingHead { .. } | Phase::ReadingBody(_)
            )
        {
            self.phase = Phase::Closed;
            return;
        }
        match &mut self.phase {
            Phase::AwaitingHead { since }
                if self.out.is_empty() && now >= *since + limits.head_timeout =>
            {
                if self.reader.has_partial_head() {
                    self.refuse(now, None, HttpError::timeout("head"));
                } else {
                    self.phase = Phase::Closed;
                }
            }
            Phase::ReadingBody(inc) if now >= inc.last_byte + limits.body_idle_timeout => {
                if let Phase::ReadingBody(inc) = std::mem::replace(&mut self.phase, Phase::Closed) {
                    self.refuse(now, Some(&inc.head), HttpError::timeout("body"));
                }
            }
            Phase::Answering(_) => {
                let date = self.date.at(self.clock.wall(now)).clone();
                let shutdown = drained;
                if let Phase::Answering(a) = &mut self.phase {
                    let mut sinks = Sinks {
                        out: &mut self.out,
                        actions: &mut self.actions,
                        date: &date,
                        spans: &mut self.spans,
                    };
                    if shutdown {
                        a.shutdown(now, &mut sinks);
                    } else {
                        a.handle_timeout(now, &mut sinks);
                    }
                }
            }
            Phase::Closing {
                linger_until: Some(t),
                ..
            } if now >= *t => self.phase = Phase::Closed,
            _ => {}
        }
        self.advance(now);
    }

    /// The gateway is stopping: finish what is in flight (new requests on this connection
    /// are not read), and at `deadline` end what is left (a committed stream with the
    /// terminal error event, a pending answer with 503).
    pub fn handle_drain(&mut self, now: Instant, deadline: Instant) {
        if self.draining.is_some() {
            return;
        }
        self.draining = Some(deadline);
        match &self.phase {
            Phase::AwaitingHead { .. } if !self.reader.has_partial_head() => {
                if self.out.is_empty() {
                    self.phase = Phase::Closed;
                } else {
                    self.start_closing();
                }
            }
            _ => {}
        }
        if now >= deadline {
            self.handle_timeout(now);
        }
    }

    /// True once the connection is over: drop both sockets.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Bytes queued for the client and not yet written (for memory accounting and tests).
    #[must_use]
    pub fn client_backlog(&self) -> usize {
        self.out.len()
    }

    // ---- the request cycle ------------------------------------------------------------

    /// Runs the request cycle as far as the buffered input and the write queue allow, then
    /// starts the write-stall clock if output waits (on every way out: an answer that
    /// finished inside the cycle must not leave its bytes waiting with no timer).
    fn advance(&mut self, now: Instant) {
        self.run_cycle(now);
        self.note_output(now);
    }

    fn run_cycle(&mut self, now: Instant) {
        loop {
            match &mut self.phase {
                Phase::AwaitingHead { .. } => {
                    if self.out.len() >= OUTPUT_HIGH_WATER || self.draining.is_some() {
                        return;
                    }
                    match self.reader.poll_event() {
                        None => return,
                        Some(ReadEvent::Head(head)) => self.begin(now, head),
                        Some(ReadEvent::Error(e)) => self.refuse(now, None, e),
                        Some(ReadEvent::Body(_) | ReadEvent::End) => self.phase = Phase::Closed,
                    }
                }
                Phase::ReadingBody(inc) => match self.reader.poll_event() {
                    None => return,
                    Some(ReadEvent::Body(data)) => {
                        inc.last_byte = now;
                        if inc.reservation.grow(data.len()).is_err() {
                            self.overloaded(now);
                            continue;
                        }
                        inc.len += data.len();
                        inc.parts.push(data);
                    }
                    Some(ReadEvent::End) => self.dispatch(now),
                    Some(ReadEvent::Error(e)) => {
                        let Phase::ReadingBody(inc) =
                            std::mem::replace(&mut self.phase, Phase::Closed)
                        else {
                            return;
                        };
                        self.refuse(now, Some(&inc.head), e);
                    }
                    Some(ReadEvent::Head(_)) => self.phase = Phase::Closed,
                },
                Phase::Answering(a) => {
                    if a.is_finished() {
                        let keep = a.keeps_alive();
                        self.next_request(now, keep);
                        continue;
                    }
                    if a.is_streaming() && self.out.len() > MAX_STREAM_BACKLOG {
                        self.client_gone(now);
                    }
                    self.note_output(now);
                    return;
                }
                Phase::Closing { .. } | Phase::Closed => {
                    self.note_output(now);
                    return;
                }
            }
            self.note_output(now);
        }
    }

    fn start_closing(&mut self) {
        self.phase = Phase::Closing {
            linger_until: None,
            discarded: 0,
        };
    }

    /// The client is gone (or stopped reading): cancel the request, drop what is queued.
    fn client_gone(&mut self, now: Instant) {
        let date = self.date.at(self.clock.wall(now)).clone();
        if let Phase::Answering(a) = &mut self.phase {
            let mut sinks = Sinks {
                out: &mut self.out,
                actions: &mut self.actions,
                date: &date,
                spans: &mut self.spans,
            };
            a.client_gone(now, &mut sinks);
        }
        self.out.clear();
        self.write_stalled_since = None;
        self.phase = Phase::Closed;
    }

    /// Starts the write-stall clock when output begins to wait.
    fn note_output(&mut self, now: Instant) {
        if self.out.is_empty() {
            self.write_stalled_since = None;
        } else if self.write_stalled_since.is_none() {
            self.write_stalled_since = Some(now);
        }
    }
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
