//! What [`Recovery`](super::Recovery) hands the machine: a continuation request to send, why
//! none was made, and what each continuation event produced.

use bytes::{Bytes, BytesMut};

use super::continuation::deepseek_beta_path;
use super::relayed::NotContinuable;
use crate::apis::{ClientEvent, UpstreamApi};
use crate::config::Continuation;
use crate::gateway::ProviderId;

/// One continuation request, for the machine to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinuationPlan {
    /// The candidate asked.
    pub target: ProviderId,
    /// Its client-facing `provider/model`.
    pub model: String,
    pub style: Continuation,
    /// The API the request speaks (Messages for `native`, Chat Completions otherwise); its
    /// stream is read by [`Recovery::push_continuation`], never by a `StreamTranslator`.
    pub upstream: UpstreamApi,
    /// The request body (JSON, `stream: true`).
    pub body: Bytes,
}

impl ContinuationPlan {
    /// The request path, given the path of the target's ordinary requests of this API
    /// (`Endpoint::path`): the same, except DeepSeek's prefix completion, which lives under
    /// `/beta` ([`deepseek_beta_path`]).
    pub fn path(&self, endpoint_path: &str) -> String {
        match self.style {
            Continuation::DeepseekPrefix => deepseek_beta_path(endpoint_path),
            _ => endpoint_path.to_owned(),
        }
    }
}

/// Why [`Recovery::next_continuation`] made no plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoContinuation {
    /// The stream cannot be continued by anyone: end it with [`Recovery::terminal_error`].
    NotContinuable(NotContinuable),
    /// This candidate cannot take it (no style, the mock provider, or the request cannot be
    /// expressed for it; the last is recorded as a failure): try the next one.
    Skipped(String),
    /// A continuation is already in flight: finish it first.
    Busy,
}

/// Where a continuation stands after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContinuationState {
    /// None of its text has reached the client yet (its first-token timeout applies).
    Waiting,
    /// Its text is reaching the client (the idle timeout applies between events).
    Continuing,
    /// The answer is complete: forward the events, which end the stream, and finish
    /// successfully.
    Complete,
    /// This continuation failed and is recorded; cancel its upstream call and try the next
    /// candidate, or end with [`Recovery::terminal_error`].
    Failed,
}

/// What one continuation event (or its end) produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinuationStep {
    /// Client events to forward, in order (already observed: never feed them back).
    pub events: Vec<ClientEvent>,
    pub state: ContinuationState,
}

impl ContinuationStep {
    /// The events' bytes, concatenated.
    pub fn bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        for e in &self.events {
            out.extend_from_slice(&e.bytes);
        }
        out.freeze()
    }
}
