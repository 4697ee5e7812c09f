//! One request being answered by its [`RetryMachine`]: the machine's actions carried out on
//! the client's write queue and the upstream socket slot, and the slot's inputs fed back.

use std::collections::VecDeque;
use std::time::Instant;

use http::HeaderValue;

use super::call::UpstreamCall;
use super::io::{UpstreamAction, UpstreamInput};
use super::log::RequestLog;
use super::meter::RequestMeter;
use super::output::ClientOutput;
use super::traced::Propagation;
use crate::machine::{Action, Event, RetryMachine};
use crate::server::{BodyKind, ResponseEncoder};
use crate::trace::SpanRecord;

/// Where the answer's bytes and socket instructions go, borrowed from the connection.
pub(crate) struct Sinks<'a> {
    pub(crate) out: &'a mut ClientOutput,
    pub(crate) actions: &'a mut VecDeque<UpstreamAction>,
    pub(crate) date: &'a HeaderValue,
    /// Finished spans, for the runtime's exporter.
    pub(crate) spans: &'a mut Vec<SpanRecord>,
}

/// A request whose response the machine produces.
#[derive(Debug)]
pub(crate) struct Answer {
    machine: Box<RetryMachine>,
    encoder: ResponseEncoder,
    log: RequestLog,
    /// The request's metrics (`None` when `metrics.enabled` is false).
    meter: Option<RequestMeter>,
    /// The request's trace context, sent upstream on each attempt.
    propagation: Option<Propagation>,
    call: Option<UpstreamCall>,
    /// A streamed response head was written.
    streaming: bool,
    finished: bool,
}

impl Answer {
    /// Starts the machine.
    pub(crate) fn start(
        now: Instant,
        machine: Box<RetryMachine>,
        encoder: ResponseEncoder,
        log: RequestLog,
        meter: Option<RequestMeter>,
        propagation: Option<Propagation>,
        sinks: &mut Sinks<'_>,
    ) -> Answer {
        let mut a = Answer {
            machine,
            encoder,
            log,
            meter,
            propagation,
            call: None,
            streaming: false,
            finished: false,
        };
        a.feed(now, Event::Start, sinks);
        a
    }

    /// The machine emitted `Finish`: the response is complete in the write queue.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether the connection may carry another request after this response.
    pub(crate) fn keeps_alive(&self) -> bool {
        self.encoder.keeps_alive()
    }

    /// A streamed response is being written.
    pub(crate) fn is_streaming(&self) -> bool {
        self.streaming && !self.finished
    }

    /// The earliest of the machine's timer and the connect deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let call = self.call.as_ref().and_then(UpstreamCall::poll_timeout);
        match (self.machine.poll_timeout(), call) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant, sinks: &mut Sinks<'_>) {
        if let Some(call) = &mut self.call {
            call.handle_timeout(now);
        }
        self.settle(now, sinks);
        if self.machine.poll_timeout().is_some_and(|t| t <= now) {
            self.feed(now, Event::Timer, sinks);
        }
    }

    /// The client went away (or stopped reading): the machine cancels everything.
    pub(crate) fn client_gone(&mut self, now: Instant, sinks: &mut Sinks<'_>) {
        self.feed(now, Event::ClientGone, sinks);
    }

    /// The drain timeout passed: the machine ends the request now.
    pub(crate) fn shutdown(&mut self, now: Instant, sinks: &mut Sinks<'_>) {
        self.feed(now, Event::Shutdown, sinks);
    }

    pub(crate) fn wants_upstream_read(&self) -> bool {
        self.call.as_ref().is_some_and(UpstreamCall::wants_read)
    }

    pub(crate) fn upstream_transmit(&mut self) -> Option<&[u8]> {
        self.call.as_mut().and_then(UpstreamCall::transmit)
    }

    pub(crate) fn upstream_written(&mut self, n: usize) {
        if let Some(call) = &mut self.call {
            call.written(n);
        }
    }

    pub(crate) fn handle_upstream(
        &mut self,
        now: Instant,
        input: UpstreamInput<'_>,
        sinks: &mut Sinks<'_>,
    ) {
        if let Some(call) = &mut self.call {
            call.handle(now, input);
        }
        self.settle(now, sinks);
    }

    /// Moves the call's socket instructions out and its events into the machine, until
    /// neither has more (an event may end the call or start a new one).
    fn settle(&mut self, now: Instant, sinks: &mut Sinks<'_>) {
        loop {
            let Some(call) = &mut self.call else { return };
            while let Some(action) = call.poll_action() {
                sinks.actions.push_back(action);
            }
            let Some(event) = call.poll_event() else {
                if call.is_done() {
                    self.call = None;
                }
                return;
            };
            self.machine.handle(now, event);
            self.carry_out(now, sinks);
        }
    }

    /// Hands `event` to the machine, carries out what it asks, and settles the call.
    fn feed(&mut self, now: Instant, event: Event, sinks: &mut Sinks<'_>) {
        self.machine.handle(now, event);
        self.carry_out(now, sinks);
        self.settle(now, sinks);
    }

    /// Carries out every action the machine has queued.
    fn carry_out(&mut self, now: Instant, sinks: &mut Sinks<'_>) {
        while let Some(action) = self.machine.poll_action() {
            self.act(now, action, sinks);
        }
    }

    fn act(&mut self, now: Instant, action: Action, sinks: &mut Sinks<'_>) {
        match action {
            Action::Send {
                attempt,
                connect_timeout,
                mut request,
                ..
            } => {
                if let Some(p) = &self.propagation {
                    p.decorate(attempt, &mut request.headers);
                }
                self.drop_call(sinks);
                self.call = Some(UpstreamCall::start(now, attempt, request, connect_timeout));
            }
            Action::Cancel { attempt } => {
                if self.call.as_ref().is_some_and(|c| c.attempt() == attempt) {
                    self.drop_call(sinks);
                }
            }
            Action::Respond(resp) => {
                let kind = BodyKind::Full(resp.body.len());
                let encoder = &mut self.encoder;
                sinks.out.write_with(|b| {
                    encoder.write_head(b, resp.status, &resp.headers, kind, sinks.date)
                });
                if !self.encoder.body_is_empty() {
                    sinks.out.push(resp.body);
                }
                if let Some(m) = &mut self.meter {
                    m.head_written(now, false);
                }
            }
            Action::StartStream { status, headers } => {
                let encoder = &mut self.encoder;
                sinks.out.write_with(|b| {
                    encoder.write_head(b, status, &headers, BodyKind::Stream, sinks.date)
                });
                self.streaming = true;
                if let Some(m) = &mut self.meter {
                    m.head_written(now, true);
                }
            }
            Action::Forward(data) => {
                if self.encoder.body_is_raw() {
                    sinks.out.push(data);
                } else {
                    let encoder = &self.encoder;
                    sinks.out.write_with(|b| encoder.write_body(b, &data));
                }
            }
            Action::Finish(summary) => {
                if self.streaming {
                    let encoder = &self.encoder;
                    sinks.out.write_with(|b| encoder.write_end(b));
                }
                self.drop_call(sinks);
                self.finished = true;
                self.log.finish(
                    now,
                    summary.status,
                    summary.attempts,
                    summary.model.as_deref(),
                    summary.recovery.as_ref(),
                );
                if let Some(m) = self.meter.take() {
                    m.finish(now, &summary, &self.machine);
                }
                if let Some(p) = self.propagation.take() {
                    sinks
                        .spans
                        .extend(p.finish(now, &summary, &self.log.request_id));
                }
            }
        }
    }

    /// Closes the slot unless the call already released or closed it.
    fn drop_call(&mut self, sinks: &mut Sinks<'_>) {
        if let Some(mut call) = self.call.take() {
            while let Some(action) = call.poll_action() {
                sinks.actions.push_back(action);
            }
            if !call.is_done() {
                sinks.actions.push_back(UpstreamAction::Close);
            }
        }
    }
}
