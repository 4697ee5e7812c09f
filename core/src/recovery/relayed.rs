//! What the client has been sent of a stream, as far as continuing it is concerned: the
//! assistant text, and anything that makes a continuation impossible.

use std::fmt;

use serde_json::Value;

use crate::apis::model::{StopReason, Usage};
use crate::apis::MAX_ACCUMULATED_BYTES;

/// Why a stream cannot be continued (spec §12: only a stream that relayed text content,
/// and nothing but text, is continued).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotContinuable {
    /// No text, or only whitespace, reached the client.
    NoText,
    /// A tool call was relayed.
    ToolCall,
    /// A refusal was relayed.
    Refusal,
    /// Reasoning (thinking) was relayed: its signature cannot be continued, and Anthropic
    /// refuses a prefilled turn with extended thinking on.
    Reasoning,
    /// The answer has more than one choice (`n` > 1).
    MultipleChoices,
    /// Content of another kind was relayed (the event or block type is named).
    OtherContent(String),
    /// The answer's stop reason reached the client: it is complete, only its end was lost.
    AnswerComplete,
    /// The stream already ended for the client (its end marker or an error went out).
    Ended,
    /// The text is larger than the gateway keeps ([`MAX_ACCUMULATED_BYTES`]).
    TooLarge,
    /// `max_continuations` continuations were already made.
    LimitReached(u32),
    /// The retry budget did not admit another continuation (spec §11).
    RetryBudget,
    /// The request's deadline left no time for another continuation.
    Deadline,
    /// Every candidate left is blocked (a Retry-After or failure block, spec §4.5, §11):
    /// the client's stream is open and silent, so recovery does not wait for one.
    Blocked,
}

impl NotContinuable {
    /// A short name for logs and the `switchback` report.
    pub fn code(&self) -> &'static str {
        match self {
            NotContinuable::NoText => "no_text",
            NotContinuable::ToolCall => "tool_call",
            NotContinuable::Refusal => "refusal",
            NotContinuable::Reasoning => "reasoning",
            NotContinuable::MultipleChoices => "multiple_choices",
            NotContinuable::OtherContent(_) => "other_content",
            NotContinuable::AnswerComplete => "answer_complete",
            NotContinuable::Ended => "ended",
            NotContinuable::TooLarge => "too_large",
            NotContinuable::LimitReached(_) => "max_continuations",
            NotContinuable::RetryBudget => "retry_budget",
            NotContinuable::Deadline => "deadline",
            NotContinuable::Blocked => "blocked",
        }
    }
}

impl fmt::Display for NotContinuable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotContinuable::NoText => f.write_str("no text had reached the client"),
            NotContinuable::ToolCall => f.write_str("a tool call had reached the client"),
            NotContinuable::Refusal => f.write_str("a refusal had reached the client"),
            NotContinuable::Reasoning => f.write_str("reasoning had reached the client"),
            NotContinuable::MultipleChoices => f.write_str("the answer has several choices"),
            NotContinuable::OtherContent(what) => write!(f, "{what} had reached the client"),
            NotContinuable::AnswerComplete => {
                f.write_str("the answer's stop reason had reached the client")
            }
            NotContinuable::Ended => f.write_str("the stream had already ended"),
            NotContinuable::TooLarge => f.write_str("the answer is too large to continue"),
            NotContinuable::LimitReached(n) => {
                write!(
                    f,
                    "the {n} continuation(s) max_continuations allows were made"
                )
            }
            NotContinuable::RetryBudget => f.write_str("the retry budget admits no more retries"),
            NotContinuable::Deadline => f.write_str("the request's deadline has passed"),
            NotContinuable::Blocked => f.write_str("every candidate left is blocked"),
        }
    }
}

/// The text the client has and the first reason, if any, it cannot be continued.
#[derive(Debug, Clone, Default)]
pub(crate) struct Relayed {
    pub text: String,
    pub blocker: Option<NotContinuable>,
    /// Bytes kept for this stream (the text, and whatever a grammar keeps to repeat at the
    /// end), bounded by [`MAX_ACCUMULATED_BYTES`].
    kept: usize,
}

impl Relayed {
    /// Records relayed text.
    pub(crate) fn add_text(&mut self, text: &str) {
        if self.keep(text.len()) {
            self.text.push_str(text);
        }
    }

    /// Counts `n` more kept bytes; false (and the stream marked too large) past the bound.
    pub(crate) fn keep(&mut self, n: usize) -> bool {
        self.kept = self.kept.saturating_add(n);
        if self.kept > MAX_ACCUMULATED_BYTES {
            self.block(NotContinuable::TooLarge);
            return false;
        }
        true
    }

    /// Records why the stream cannot be continued (the first reason stays).
    pub(crate) fn block(&mut self, why: NotContinuable) {
        if self.blocker.is_none() {
            self.blocker = Some(why);
        }
    }

    /// Why the stream cannot be continued now, if it cannot.
    pub(crate) fn why_not(&self) -> Option<NotContinuable> {
        if let Some(b) = &self.blocker {
            return Some(b.clone());
        }
        self.text
            .trim()
            .is_empty()
            .then_some(NotContinuable::NoText)
    }
}

/// How a completed continuation ends the client's stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending<'a> {
    pub stop: Option<StopReason>,
    pub stop_sequence: Option<&'a str>,
    /// The continuation's usage, as its upstream reported it.
    pub usage: &'a Usage,
    /// The `switchback` field (`report::Report::json`).
    pub report: &'a Value,
}
