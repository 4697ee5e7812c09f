//! One upstream attempt on the connection's socket slot: the shared upstream codec
//! ([`Exchange`]) plus the rules around it that every runtime would otherwise decide for
//! itself (spec §8):
//!
//! - **Stale pooled connections**: a reused connection that fails before a single response
//!   byte (closed, reset, write refused) is a keep-alive race, not an upstream failure: the
//!   request is sent once more on a fresh connection, without the machine hearing of it.
//! - **Early answers**: the upstream may answer before the request is fully written (a 413 to
//!   a large body, a 429 at once). A write failure therefore never fails the attempt by
//!   itself: writing stops and the response is read; only what the read shows counts.
//! - **Back to the pool**: only when the response ended with reusable framing *and* the whole
//!   request was written; the connection is released before the machine hears `End`, so the
//!   next attempt finds it.
//! - **Connect deadline**: connecting (TCP + TLS) is bounded by the `Send`'s
//!   `connect_timeout`; past it the slot is closed and the attempt fails with
//!   `ConnectTimeout`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::io::{UpstreamAction, UpstreamInput};
use crate::machine::{AttemptId, Event, TransportError};
use crate::upstream::{Exchange, ExchangeError, ExchangeEvent, UpstreamHttpRequest};

#[derive(Debug)]
enum State {
    /// `Open` was asked for; no connection yet.
    Connecting { by: Instant },
    /// Connected; the request is being written and the response read.
    Open {
        reused: bool,
        /// A response byte arrived.
        received: bool,
        /// A write failed: writing stopped, the read decides (detail kept for the report).
        write_failed: Option<String>,
    },
    /// The attempt reported its end (or failure); nothing more happens on the slot.
    Done,
}

/// One attempt's use of the upstream socket slot. Feed it the runtime's inputs, write its
/// transmit bytes, and drain [`poll_action`](Self::poll_action) (for the runtime) and
/// [`poll_event`](Self::poll_event) (for the machine) after each input.
#[derive(Debug)]
pub(crate) struct UpstreamCall {
    attempt: AttemptId,
    request: UpstreamHttpRequest,
    connect_timeout: Duration,
    /// The codec of the current try (a new one for the stale-connection resend).
    exchange: Option<Exchange>,
    /// The piece of the request being written, and how much of it is written.
    sending: Option<(Bytes, usize)>,
    /// The stale-connection resend was used.
    resent: bool,
    state: State,
    actions: VecDeque<UpstreamAction>,
    events: VecDeque<Event>,
}

impl UpstreamCall {
    /// Starts attempt `attempt`: asks the runtime for a connection (a pooled one may do).
    pub(crate) fn start(
        now: Instant,
        attempt: AttemptId,
        request: UpstreamHttpRequest,
        connect_timeout: Duration,
    ) -> UpstreamCall {
        let mut call = UpstreamCall {
            attempt,
            connect_timeout,
            exchange: None,
            request,
            sending: None,
            resent: false,
            state: State::Done,
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        call.try_on(now, true);
        call
    }

    /// The attempt this call carries.
    pub(crate) fn attempt(&self) -> AttemptId {
        self.attempt
    }

    /// Whether the attempt ended (its last event is queued).
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The next instruction for the runtime's upstream slot.
    #[must_use]
    pub(crate) fn poll_action(&mut self) -> Option<UpstreamAction> {
        self.actions.pop_front()
    }

    /// The next event for the machine.
    #[must_use]
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When the connect must have finished by.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Connecting { by } => Some(by),
            _ => None,
        }
    }

    /// Whether the slot's connection should be read.
    pub(crate) fn wants_read(&self) -> bool {
        matches!(self.state, State::Open { .. })
    }

    /// The request bytes to write next, if any.
    #[must_use]
    pub(crate) fn transmit(&mut self) -> Option<&[u8]> {
        let State::Open {
            write_failed: None, ..
        } = self.state
        else {
            return None;
        };
        if self.sending.is_none() {
            self.sending = self
                .exchange
                .as_mut()
                .and_then(Exchange::poll_transmit)
                .map(|b| (b, 0));
        }
        self.sending.as_ref().map(|(b, at)| &b[*at..])
    }

    /// `n` bytes of [`transmit`](Self::transmit) were written.
    pub(crate) fn written(&mut self, n: usize) {
        if let Some((bytes, at)) = &mut self.sending {
            *at += n;
            if *at >= bytes.len() {
                self.sending = None;
            }
        }
    }

    /// The connect deadline passed.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let State::Connecting { by } = self.state {
            if now >= by {
                self.actions.push_back(UpstreamAction::Close);
                self.fail(TransportError::ConnectTimeout);
            }
        }
    }

    /// Something happened on the slot.
    pub(crate) fn handle(&mut self, now: Instant, input: UpstreamInput<'_>) {
        match (&mut self.state, input) {
            (State::Connecting { .. }, UpstreamInput::Opened { reused }) => {
                self.state = State::Open {
                    reused,
                    received: false,
                    write_failed: None,
                };
            }
            (State::Connecting { .. }, UpstreamInput::ConnectFailed { tls, detail }) => {
                let error = if tls {
                    TransportError::Tls(detail.to_owned())
                } else {
                    TransportError::Connect(detail.to_owned())
                };
                self.fail(error);
            }
            (State::Open { received, .. }, UpstreamInput::Data(data)) => {
                *received = true;
                if let Some(x) = &mut self.exchange {
                    x.handle_input(data);
                }
                self.drain_exchange(now);
            }
            (State::Open { .. }, UpstreamInput::Eof) => {
                if let Some(x) = &mut self.exchange {
                    x.handle_eof();
                }
                self.drain_exchange(now);
            }
            (State::Open { write_failed, .. }, UpstreamInput::WriteFailed(detail)) => {
                // The upstream may have answered early and closed: read what it said.
                *write_failed = Some(detail.to_owned());
                self.sending = None;
            }
            (
                State::Open {
                    reused, received, ..
                },
                UpstreamInput::ReadFailed(detail),
            ) => {
                if *reused && !*received && !self.resent {
                    self.resend(now);
                } else {
                    self.actions.push_back(UpstreamAction::Close);
                    self.fail(TransportError::Io(detail.to_owned()));
                }
            }
            _ => {}
        }
    }

    /// Turns the codec's events into machine events, applying the rules of the module docs.
    fn drain_exchange(&mut self, now: Instant) {
        while let Some(event) = self.exchange.as_mut().and_then(Exchange::poll_event) {
            let State::Open {
                reused,
                write_failed,
                ..
            } = &self.state
            else {
                return;
            };
            match event {
                ExchangeEvent::Failed(ExchangeError::ClosedBeforeResponse)
                    if *reused && !self.resent =>
                {
                    self.resend(now);
                    return;
                }
                ExchangeEvent::Failed(ExchangeError::ClosedBeforeResponse) => {
                    let detail = match write_failed {
                        Some(w) => format!("the request could not be written ({w})"),
                        None => ExchangeError::ClosedBeforeResponse.to_string(),
                    };
                    self.actions.push_back(UpstreamAction::Close);
                    self.fail(TransportError::Io(detail));
                    return;
                }
                ExchangeEvent::End { reusable } => {
                    let fully_written = write_failed.is_none()
                        && self.sending.is_none()
                        && !self.exchange.as_ref().is_some_and(Exchange::has_transmit);
                    let action = if reusable && fully_written {
                        UpstreamAction::Release {
                            origin: self.request.origin.clone(),
                        }
                    } else {
                        UpstreamAction::Close
                    };
                    self.actions.push_back(action);
                    self.report(Event::UpstreamEnd {
                        attempt: self.attempt,
                    });
                    return;
                }
                ExchangeEvent::Failed(e) => {
                    self.actions.push_back(UpstreamAction::Close);
                    self.report(Event::from_exchange(self.attempt, ExchangeEvent::Failed(e)));
                    return;
                }
                other => self
                    .events
                    .push_back(Event::from_exchange(self.attempt, other)),
            }
        }
    }

    /// The one transparent resend: the pooled connection was stale.
    fn resend(&mut self, now: Instant) {
        self.resent = true;
        self.sending = None;
        self.actions.push_back(UpstreamAction::Close);
        self.try_on(now, false);
    }

    /// A fresh codec for the request and a connection to send it on (`reuse`: a pooled one
    /// may do).
    fn try_on(&mut self, now: Instant, reuse: bool) {
        match Exchange::new(&self.request) {
            Ok(exchange) => {
                self.exchange = Some(exchange);
                self.state = State::Connecting {
                    by: now + self.connect_timeout,
                };
                self.actions.push_back(UpstreamAction::Open {
                    origin: self.request.origin.clone(),
                    reuse,
                });
            }
            Err(e) => self.report(Event::from_exchange(self.attempt, ExchangeEvent::Failed(e))),
        }
    }

    fn fail(&mut self, error: TransportError) {
        self.report(Event::UpstreamFailed {
            attempt: self.attempt,
            error,
        });
    }

    fn report(&mut self, event: Event) {
        self.state = State::Done;
        self.events.push_back(event);
    }
}
