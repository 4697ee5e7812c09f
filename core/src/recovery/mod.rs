//! Stream recovery (spec §12): a stream cut after commit still ends complete, when a
//! candidate accepts a continuation.
//!
//! [`Recovery`] is the sans-IO piece the retry machine keeps for a committed stream whose
//! primary's policy has `stream_recovery`. It reads what the client was sent (in the
//! client's API grammar), says whether the stream can be continued, builds each
//! continuation request ([`ContinuationPlan`]) over the `apis` encoders, and splices a
//! continuation's stream into the client's: only the new text, as further deltas of the same
//! stream, then one ending. Failures are kept for the final in-band error and the
//! `switchback` field ([`RecoverySummary`]). It reads no clock and opens nothing: timeouts,
//! the deadline, the retry budget and candidate blocks stay the machine's.
//!
//! ```text
//! at commit:        let mut rec = Recovery::for_request(policy, &api_request)?;
//! every relayed byte to the client:                rec.observe(&bytes)
//! the committed stream fails (cut, stall, in-band error):
//!     rec.stream_failed(model, error_type);
//!     for id in continuation_candidates(..) (blocks, budget, deadline: the machine's):
//!         match rec.next_continuation(&api_request, id, provider) {
//!             Ok(plan) => send plan.body to plan.path(endpoint path) on plan.target, break,
//!             Err(NoContinuation::Skipped(_)) => continue,
//!             Err(_) => break,
//!         }
//!     none sent: forward rec.terminal_error(message, code), end the stream
//! each continuation event:   step = rec.push_continuation(&event); forward step.events;
//!     Complete: finish successfully; Failed: cancel it, try the next candidate as above
//! clean end: rec.end_continuation();  HTTP error / transport failure / timeout:
//!     rec.fail_continuation(&failure, provider)
//! ```

mod candidates;
mod chat;
mod continuation;
mod gate;
mod grammar;
mod messages;
mod plan;
mod raw_object;
mod relayed;
mod report;
mod responses;

pub use candidates::continuation_candidates;
pub use continuation::{deepseek_beta_path, upstream_for};
pub use plan::{ContinuationPlan, ContinuationState, ContinuationStep, NoContinuation};
pub use relayed::NotContinuable;
pub use report::{RecoveryFailure, RecoverySummary, Stage};

use bytes::Bytes;

use self::gate::{Restarted, TextGate};
use self::grammar::{Decoder, Grammar};
use self::relayed::{Ending, Relayed};
use crate::apis::model::{BlockKind, StopReason, StreamEvent, Usage};
use crate::apis::{self, ApiRequest, ClientApi, ClientEvent, Target};
use crate::classify::{Failure, TransportFailure};
use crate::config::{Continuation, Interface, Provider, RetryPolicy, StreamRecovery};
use crate::gateway::ProviderId;
use crate::secrets::{provider_credentials, scrub};
use crate::sse::{SseEvent, SseFramer};

/// The largest relayed event read: the bound the relay puts on an upstream event (1 MiB),
/// with room for what a translation adds to it.
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// The continuation in flight.
#[derive(Debug, Clone)]
struct Continuing {
    model: String,
    style: Continuation,
    decoder: Decoder,
    gate: TextGate,
    /// Characters of new text sent to the client.
    forwarded: usize,
    usage: Usage,
    stop: Option<StopReason>,
    stop_sequence: Option<String>,
}

/// Recovery for one committed stream (spec §12). See the module docs for the protocol.
#[derive(Debug)]
pub struct Recovery {
    max: u32,
    grammar: Grammar,
    relayed: Relayed,
    framer: SseFramer,
    current: Option<Continuing>,
    summary: RecoverySummary,
    finished: bool,
}

impl Recovery {
    /// Recovery for a stream of `api` (`None` for APIs that do not stream) under `settings`;
    /// `include_usage` is the Chat client's `stream_options.include_usage`.
    pub fn new(api: ClientApi, settings: StreamRecovery, include_usage: bool) -> Option<Recovery> {
        let grammar = match api {
            ClientApi::ChatCompletions => Grammar::Chat(chat::ChatStream::new(include_usage)),
            ClientApi::Messages => Grammar::Messages(messages::MessagesStream::default()),
            ClientApi::Responses => Grammar::Responses(responses::ResponsesStream::default()),
            ClientApi::CountTokens | ClientApi::Embeddings => return None,
        };
        Some(Recovery {
            max: settings.max_continuations,
            grammar,
            relayed: Relayed::default(),
            framer: SseFramer::new(MAX_EVENT_BYTES),
            current: None,
            summary: RecoverySummary::default(),
            finished: false,
        })
    }

    /// Recovery for `request` when it streams and the governing `policy` (the primary's)
    /// turns `stream_recovery` on; create it when the stream commits.
    pub fn for_request(policy: Option<&RetryPolicy>, request: &ApiRequest) -> Option<Recovery> {
        let settings = policy?.stream_recovery?;
        if !request.info().stream {
            return None;
        }
        Recovery::new(request.api(), settings, request.info().include_usage)
    }

    /// Reads bytes the client was sent by the relayed stream, in order, split anywhere
    /// (the held events flushed at commit included). Events this type returned must not be
    /// fed back: they are read already.
    pub fn observe(&mut self, bytes: &[u8]) {
        self.framer.push(bytes);
        while let Some(next) = self.framer.next_event() {
            match next {
                Ok(event) => self.grammar.observe(&event, &mut self.relayed),
                Err(_) => self.relayed.block(NotContinuable::TooLarge),
            }
        }
    }

    /// [`observe`](Self::observe) for one client event.
    pub fn observe_event(&mut self, event: &ClientEvent) {
        self.observe(&event.bytes);
    }

    fn absorb(&mut self, events: &[ClientEvent]) {
        let mut framer = SseFramer::new(usize::MAX);
        for e in events {
            framer.push(&e.bytes);
        }
        while let Some(Ok(event)) = framer.next_event() {
            self.grammar.observe(&event, &mut self.relayed);
        }
    }

    /// The text the client has been sent.
    pub fn relayed_text(&self) -> &str {
        &self.relayed.text
    }

    /// Why the stream cannot be continued now (ignoring a continuation in flight): no text,
    /// only whitespace, a tool call, a refusal, reasoning, several choices, a stop reason or
    /// end already sent, too large, or `max_continuations` reached.
    pub fn why_not(&self) -> Option<NotContinuable> {
        if let Some(why) = self.relayed.why_not() {
            return Some(why);
        }
        (self.summary.models.len() >= self.max as usize)
            .then_some(NotContinuable::LimitReached(self.max))
    }

    /// Whether a continuation may be started now.
    pub fn can_continue(&self) -> bool {
        !self.finished && self.current.is_none() && self.why_not().is_none()
    }

    /// Whether a continuation is in flight.
    pub fn is_continuing(&self) -> bool {
        self.current.is_some()
    }

    /// Whether the stream has ended (completed, or the terminal error was made).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// What recovery did so far.
    pub fn summary(&self) -> &RecoverySummary {
        &self.summary
    }

    /// Records that the relayed stream of `model` failed after commit (`error_type`:
    /// `stream_truncated`, `timeout_<ms>ms` for a stall, `stream_error` for an in-band
    /// error, ...). Call it once per failure of a stream that is not a continuation (those
    /// are recorded by the continuation calls).
    pub fn stream_failed(&mut self, model: &str, error_type: &str) {
        self.summary.failures.push(RecoveryFailure {
            stage: Stage::Stream,
            model: model.to_owned(),
            style: None,
            error_type: error_type.to_owned(),
            status: None,
            message: None,
            relayed_chars: self.relayed.text.chars().count(),
        });
    }

    /// The continuation request for candidate `target` (`provider`: its entry as the
    /// request sees it, e.g. `Targets::provider`), built from `request` as an ordinary
    /// attempt's body would be (spec §12). On `Ok` the continuation is in flight and counts
    /// toward `max_continuations`; the machine must now send it (after admitting it into the
    /// retry budget, within the deadline) and hand its stream to
    /// [`push_continuation`](Self::push_continuation).
    pub fn next_continuation(
        &mut self,
        request: &ApiRequest,
        target: ProviderId,
        provider: &Provider,
    ) -> Result<ContinuationPlan, NoContinuation> {
        if self.current.is_some() {
            return Err(NoContinuation::Busy);
        }
        if self.finished {
            return Err(NoContinuation::NotContinuable(NotContinuable::Ended));
        }
        if let Some(why) = self.why_not() {
            return Err(NoContinuation::NotContinuable(why));
        }
        let style = provider.continuation;
        let upstream = match upstream_for(style) {
            Some(u) if provider.interface != Interface::Mock => u,
            _ => {
                return Err(NoContinuation::Skipped(format!(
                    "{} cannot continue a stream (continuation: {style})",
                    provider.model
                )))
            }
        };
        let built = request
            .upstream_body(upstream, &Target::for_provider(provider))
            .and_then(|base| continuation::build(&base, style, &self.relayed.text));
        let built = match built {
            Ok(b) => b,
            Err(e) => {
                let message = e.to_string();
                self.summary.failures.push(RecoveryFailure {
                    stage: Stage::Continuation,
                    model: provider.model.clone(),
                    style: Some(style),
                    error_type: "untranslatable".into(),
                    status: None,
                    message: Some(report::clip(&message)),
                    relayed_chars: 0,
                });
                return Err(NoContinuation::Skipped(message));
            }
        };
        self.summary.models.push(provider.model.clone());
        self.current = Some(Continuing {
            model: provider.model.clone(),
            style,
            decoder: Decoder::for_api(upstream),
            gate: TextGate::new(&self.relayed.text, &built.overlap),
            forwarded: 0,
            usage: Usage::default(),
            stop: None,
            stop_sequence: None,
        });
        Ok(ContinuationPlan {
            target,
            model: provider.model.clone(),
            style,
            upstream,
            body: built.body,
        })
    }

    fn step(&self, events: Vec<ClientEvent>, state: Option<ContinuationState>) -> ContinuationStep {
        let state = state.unwrap_or(match &self.current {
            Some(c) if c.gate.has_passed() => ContinuationState::Continuing,
            Some(_) => ContinuationState::Waiting,
            None if self.finished => ContinuationState::Complete,
            None => ContinuationState::Failed,
        });
        ContinuationStep { events, state }
    }

    /// Records the continuation in flight as failed.
    fn fail(&mut self, error_type: &str, status: Option<u16>, message: Option<String>) {
        if let Some(c) = self.current.take() {
            self.summary.failures.push(RecoveryFailure {
                stage: Stage::Continuation,
                model: c.model,
                style: Some(c.style),
                error_type: error_type.to_owned(),
                status,
                message,
                relayed_chars: c.forwarded,
            });
        }
    }

    /// Sends `text` of the continuation in flight through the gate to the client.
    fn forward_text(&mut self, text: Result<String, Restarted>, out: &mut Vec<ClientEvent>) {
        match text {
            Ok(t) if t.is_empty() => {}
            Ok(t) => {
                let events = self.grammar.text(&t);
                self.absorb(&events);
                if let Some(c) = &mut self.current {
                    c.forwarded += t.chars().count();
                }
                out.extend(events);
            }
            Err(Restarted) => self.fail(
                "restarted",
                None,
                Some("the target began the answer again instead of continuing it".into()),
            ),
        }
    }

    /// One event of the continuation's upstream stream (framed SSE, in the plan's upstream
    /// API). Returns the client events to forward and where the continuation stands. With
    /// no continuation in flight: no events, and `Complete` once the stream has ended,
    /// `Failed` otherwise.
    pub fn push_continuation(&mut self, event: &SseEvent) -> ContinuationStep {
        let Some(c) = &mut self.current else {
            return self.step(Vec::new(), None);
        };
        let mut decoded = Vec::new();
        c.decoder.push(event, &mut decoded);
        self.apply(decoded)
    }

    /// Acts on decoded continuation events, in order, until the continuation completes or
    /// fails.
    fn apply(&mut self, decoded: Vec<StreamEvent>) -> ContinuationStep {
        let mut out = Vec::new();
        for ev in decoded {
            let Some(c) = &mut self.current else { break };
            match ev {
                StreamEvent::TextDelta { text, .. } => {
                    let passed = c.gate.push(&text);
                    self.forward_text(passed, &mut out);
                }
                StreamEvent::RefusalDelta { .. } => self.fail(
                    "refusal",
                    None,
                    Some("the continuation is a refusal".into()),
                ),
                StreamEvent::BlockStart {
                    kind: BlockKind::ToolCall { .. },
                    ..
                }
                | StreamEvent::ToolArgsDelta { .. } => self.fail(
                    "tool_call",
                    None,
                    Some(
                        "the continuation began a tool call, which cannot follow relayed text"
                            .into(),
                    ),
                ),
                StreamEvent::Usage(u) => c.usage.apply(&u),
                StreamEvent::Finish {
                    stop,
                    stop_sequence,
                } => {
                    c.stop = stop;
                    c.stop_sequence = stop_sequence;
                }
                StreamEvent::Error { kind, message, .. } => {
                    let why = match kind {
                        Some(k) => format!("{k}: {message}"),
                        None => message,
                    };
                    self.fail("stream_error", None, Some(report::clip(&why)));
                }
                StreamEvent::Done => return self.complete(out),
                _ => {}
            }
        }
        self.step(out, None)
    }

    /// The continuation's stream ended: flush the gate and end the client's stream, or
    /// record the continuation as failed (no content, or a restart).
    fn complete(&mut self, mut out: Vec<ClientEvent>) -> ContinuationStep {
        let Some(c) = &mut self.current else {
            return self.step(out, None);
        };
        let rest = c.gate.finish();
        self.forward_text(rest, &mut out);
        let Some(c) = &self.current else {
            return self.step(out, Some(ContinuationState::Failed));
        };
        if !c.gate.has_passed() {
            self.fail(
                "no_content",
                None,
                Some("the continuation ended without new text".into()),
            );
            return self.step(out, Some(ContinuationState::Failed));
        }
        let Some(c) = self.current.take() else {
            return self.step(out, Some(ContinuationState::Failed));
        };
        self.summary.completed = true;
        let report = self.summary.json();
        let end = Ending {
            stop: c.stop,
            stop_sequence: c.stop_sequence.as_deref(),
            usage: &c.usage,
            report: &report,
        };
        let closing = self.grammar.complete(&end);
        self.absorb(&closing);
        out.extend(closing);
        self.finished = true;
        self.step(out, Some(ContinuationState::Complete))
    }

    /// The continuation's upstream stream ended cleanly (good framing). Complete when its
    /// API says the answer was (a finish reason or end marker seen); otherwise it was cut:
    /// recorded as failed (after its text began, the next continuation, if any, goes on from
    /// the longer text).
    pub fn end_continuation(&mut self) -> ContinuationStep {
        let Some(c) = &mut self.current else {
            return self.step(Vec::new(), None);
        };
        let mut decoded = Vec::new();
        if c.decoder.end(&mut decoded) {
            let step = self.apply(decoded);
            if self.current.is_none() {
                return step;
            }
            // Complete per the decoder but no `Done` produced: end it here.
            return self.complete(step.events);
        }
        self.fail(
            "stream_truncated",
            None,
            Some("the continuation's stream ended before its answer was complete".into()),
        );
        self.step(Vec::new(), Some(ContinuationState::Failed))
    }

    /// The continuation in flight failed before or while streaming: an HTTP error status (a
    /// 400 for the prefill is the usual rejection), a transport failure, a first-token or
    /// idle timeout, the deadline. `provider` is the target's entry: its credentials are
    /// scrubbed from anything quoted.
    pub fn fail_continuation(&mut self, failure: &Failure, provider: &Provider) {
        let quoted = |status: u16, body: &Bytes| {
            let clean = scrub(body.clone(), provider_credentials(provider));
            report::clip(&apis::messages::read_error(status, &clean).message)
        };
        let message = match failure {
            Failure::Http { status, body, .. } => Some(quoted(*status, body)),
            Failure::Transport(TransportFailure::StreamError { data }) => {
                Some(quoted(0, &Bytes::from(data.clone())))
            }
            Failure::Transport(TransportFailure::InvalidResponse { reason, .. }) => {
                Some((*reason).to_owned())
            }
            Failure::Transport(_) => None,
        };
        self.fail(&failure.error_type(), failure.status(), message);
    }

    /// Records why the machine makes no (further) continuation although candidates are
    /// left: [`NotContinuable::RetryBudget`] or [`NotContinuable::Deadline`]. The final
    /// error and the `switchback` report name it. Call it before
    /// [`terminal_error`](Self::terminal_error).
    pub fn stop(&mut self, why: NotContinuable) {
        self.summary.not_continued = Some(why);
    }

    /// Takes back the plan [`next_continuation`](Self::next_continuation) made last, which
    /// the machine did not send (the retry budget refused it): it no longer counts toward
    /// `max_continuations` nor names its model, and recovery stops for `why` as with
    /// [`stop`](Self::stop). Without a continuation in flight it is `stop` alone.
    pub fn withdraw(&mut self, why: NotContinuable) {
        if self.current.take().is_some() {
            self.summary.models.pop();
        }
        self.stop(why);
    }

    /// The event that ends the client's stream when recovery cannot complete it (spec §6,
    /// §12): the client API's in-band error with `message` (the stream's own failure, e.g.
    /// "The upstream stream ended before the answer was complete."), followed by every
    /// continuation failure or why none was made, and `code`; the `switchback` report rides
    /// beside it. A continuation still in flight is recorded as abandoned. After it, nothing
    /// more is produced (empty bytes once the stream has ended).
    pub fn terminal_error(&mut self, message: &str, code: &str) -> Bytes {
        if self.finished {
            return Bytes::new();
        }
        if self.current.is_some() {
            self.fail(
                "abandoned",
                None,
                Some("the request ended while the continuation was running".into()),
            );
        }
        if self.summary.not_continued.is_none() {
            self.summary.not_continued = self.why_not();
        }
        self.finished = true;
        let message = format!("{message}{}", self.summary.error_sentence());
        let report = self.summary.json();
        self.grammar.terminal_error(&message, code, &report).bytes
    }
}
