//! One connection to Redis, as bytes and time: its phase (waiting to reconnect,
//! connecting, open), the bytes to write, the bytes read and not yet decoded, the replies
//! it waits for in order, and its timers (connect, reply, health check, backoff).
//! What to send and what replies mean is the session's business (`session.rs`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::resp::{self, RespError, Value};

/// How long connecting (TCP and TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a request may wait for its reply before the connection is taken for dead.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
/// An open connection with nothing to say sends `PING` after this long, so a dead peer
/// (a host gone without a reset) is noticed within this plus [`REPLY_TIMEOUT`].
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(3);
/// The first reconnect waits about this long; each failure in a row doubles it.
pub const RECONNECT_BASE: Duration = Duration::from_millis(50);
/// Reconnects never wait longer than this.
pub const RECONNECT_MAX: Duration = Duration::from_secs(2);
/// The most undecoded bytes held; a reply larger than this drops the connection.
pub const MAX_INPUT: usize = 1024 * 1024;

/// Which connection: the one for commands (load, write, publish) or the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkId {
    Commands,
    Subscriber,
}

/// What a reply in the queue answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expect {
    Auth,
    Select,
    Subscribe,
    Ping,
    Scan,
    Pttl,
    /// The stored record of this key.
    Get(String),
    Write,
    Publish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Closed; connect again at this instant.
    Waiting(Instant),
    /// Connect asked for; give up at this instant.
    Connecting(Instant),
    /// Connected.
    Open,
}

/// One connection's state. See the module docs.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) phase: Phase,
    /// Handshake replies still to come before the link is ready.
    pub(crate) handshake_left: usize,
    /// Handshake done (commands) or subscription confirmed (subscriber).
    pub(crate) ready: bool,
    /// Connection failures in a row (drives the backoff).
    failures: u32,
    out: Vec<u8>,
    written: usize,
    input: Vec<u8>,
    expect: VecDeque<Expect>,
    /// Since when the oldest unanswered request has waited (reset by each reply).
    waiting_since: Option<Instant>,
    /// The last byte sent or received.
    last_activity: Instant,
}

impl Link {
    /// A link about to connect (the caller asks for the connection).
    pub(crate) fn connecting(now: Instant) -> Link {
        Link {
            phase: Phase::Connecting(now + CONNECT_TIMEOUT),
            handshake_left: 0,
            ready: false,
            failures: 0,
            out: Vec::new(),
            written: 0,
            input: Vec::new(),
            expect: VecDeque::new(),
            waiting_since: None,
            last_activity: now,
        }
    }

    /// The connection is up.
    pub(crate) fn opened(&mut self, now: Instant) {
        self.phase = Phase::Open;
        self.last_activity = now;
    }

    /// The handshake is done: later failures start the backoff from the beginning.
    pub(crate) fn became_ready(&mut self) {
        self.ready = true;
        self.failures = 0;
    }

    /// Queues a command whose reply will be `expect`.
    pub(crate) fn send(&mut self, now: Instant, args: &[&[u8]], expect: Expect) {
        resp::encode_command(&mut self.out, args);
        self.expect.push_back(expect);
        self.waiting_since.get_or_insert(now);
    }

    /// How many replies are awaited.
    pub(crate) fn in_flight(&self) -> usize {
        self.expect.len()
    }

    /// Whether a reply of this kind is awaited.
    pub(crate) fn awaits(&self, pred: impl Fn(&Expect) -> bool) -> bool {
        self.expect.iter().any(pred)
    }

    /// Bytes to write now, if any.
    pub(crate) fn transmit(&self) -> Option<&[u8]> {
        (self.phase == Phase::Open && self.written < self.out.len())
            .then(|| &self.out[self.written..])
    }

    /// `n` bytes of [`transmit`](Self::transmit) were written.
    pub(crate) fn written(&mut self, now: Instant, n: usize) {
        self.written = (self.written + n).min(self.out.len());
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        self.last_activity = now;
    }

    /// Adds read bytes; `Err` when more than [`MAX_INPUT`] would wait undecoded.
    pub(crate) fn receive(&mut self, now: Instant, data: &[u8]) -> Result<(), String> {
        if self.input.len() + data.len() > MAX_INPUT {
            return Err(format!("a reply larger than {MAX_INPUT} bytes"));
        }
        self.input.extend_from_slice(data);
        self.last_activity = now;
        Ok(())
    }

    /// The next complete value read (`Ok(None)`: none has fully arrived yet; `Err`: the
    /// bytes are not RESP2 within the decoder's bounds, drop the connection). Which
    /// request it answers is the caller's to take with [`answered`](Self::answered).
    pub(crate) fn next_value(&mut self) -> Result<Option<Value>, RespError> {
        match resp::decode(&self.input)? {
            Some((value, used)) => {
                self.input.drain(..used);
                Ok(Some(value))
            }
            None => Ok(None),
        }
    }

    /// Takes the oldest awaited reply's meaning (a reply arrived for it).
    pub(crate) fn answered(&mut self, now: Instant) -> Option<Expect> {
        let e = self.expect.pop_front();
        self.waiting_since = (!self.expect.is_empty()).then_some(now);
        e
    }

    /// Takes the awaited reply matching `pred` out of order (a subscriber's `pong` or
    /// `subscribe` confirmation, which share the stream with pushed messages).
    pub(crate) fn answered_where(
        &mut self,
        now: Instant,
        pred: impl Fn(&Expect) -> bool,
    ) -> Option<Expect> {
        let i = self.expect.iter().position(pred)?;
        let e = self.expect.remove(i);
        self.waiting_since = (!self.expect.is_empty()).then_some(now);
        e
    }

    /// Closes the link and schedules the next connect after a jittered, capped,
    /// doubling backoff (`u` uniform in `[0.5, 1.0)`). Returns the wait.
    pub(crate) fn reset(&mut self, now: Instant, u: f64) -> Duration {
        let factor = 1u32.checked_shl(self.failures).unwrap_or(u32::MAX);
        let wait = RECONNECT_BASE
            .checked_mul(factor)
            .unwrap_or(RECONNECT_MAX)
            .min(RECONNECT_MAX)
            .mul_f64(u.clamp(0.5, 1.0));
        self.failures = self.failures.saturating_add(1);
        *self = Link {
            phase: Phase::Waiting(now + wait),
            failures: self.failures,
            ..Link::connecting(now)
        };
        wait
    }

    /// Whether the link is open, ready, idle and due a health-check `PING` at `now`.
    pub(crate) fn due_ping(&self, now: Instant) -> bool {
        self.phase == Phase::Open
            && self.ready
            && self.expect.is_empty()
            && now >= self.last_activity + HEALTH_INTERVAL
    }

    /// Whether a reply is overdue at `now`.
    pub(crate) fn reply_overdue(&self, now: Instant) -> bool {
        self.waiting_since
            .is_some_and(|since| now >= since + REPLY_TIMEOUT)
    }

    /// The next instant this link needs attention.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting(at) | Phase::Connecting(at) => Some(at),
            Phase::Open => {
                let reply = self.waiting_since.map(|s| s + REPLY_TIMEOUT);
                let ping = (self.ready && self.expect.is_empty())
                    .then_some(self.last_activity + HEALTH_INTERVAL);
                reply.into_iter().chain(ping).min()
            }
        }
    }
}
