//! What stream recovery did for one request: the continuations it made and every failure,
//! for the `switchback` field, the final in-band error and the log line.

use std::fmt;

use serde_json::{json, Value};

use super::relayed::NotContinuable;
use crate::config::Continuation;

/// The longest upstream error message quoted in a failure.
const MAX_MESSAGE_CHARS: usize = 300;

/// Which part of the request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The committed attempt whose stream was being relayed (before any continuation).
    Stream,
    /// A continuation attempt.
    Continuation,
}

/// One failure stream recovery saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryFailure {
    pub stage: Stage,
    /// The `provider/model` that failed.
    pub model: String,
    /// The continuation style it was asked in (continuations only).
    pub style: Option<Continuation>,
    /// `http_<status>`, `timeout_<ms>ms`, `connect_error`, `invalid_response`, `stream_error`,
    /// `stream_truncated`, `no_content`, `restarted`, `tool_call`, `refusal`,
    /// `untranslatable`, or what the caller named for a stream failure.
    pub error_type: String,
    pub status: Option<u16>,
    /// What the upstream said (credentials scrubbed, at most 300 characters), or why the
    /// gateway judged the continuation failed.
    pub message: Option<String>,
    /// Characters of new text this continuation had sent to the client when it failed (0: it
    /// failed before any of its content reached the client).
    pub relayed_chars: usize,
}

impl RecoveryFailure {
    pub(crate) fn json(&self) -> Value {
        let mut v = json!({
            "stage": match self.stage { Stage::Stream => "stream", Stage::Continuation => "continuation" },
            "model": self.model,
            "error_type": self.error_type,
        });
        if let Some(obj) = v.as_object_mut() {
            if let Some(s) = self.style {
                obj.insert("continuation".into(), json!(s.name()));
            }
            if let Some(s) = self.status {
                obj.insert("status".into(), json!(s));
            }
            if let Some(m) = &self.message {
                obj.insert("message".into(), json!(m));
            }
            if self.relayed_chars > 0 {
                obj.insert("relayed_chars".into(), json!(self.relayed_chars));
            }
        }
        v
    }
}

impl fmt::Display for RecoveryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.model)?;
        if let Some(s) = self.style {
            write!(f, " ({s})")?;
        }
        write!(f, ": {}", self.error_type)?;
        if let Some(m) = &self.message {
            write!(f, " ({m})")?;
        }
        Ok(())
    }
}

/// `message` shortened to [`MAX_MESSAGE_CHARS`].
pub(crate) fn clip(message: &str) -> String {
    let m = message.trim();
    match m.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &m[..cut]),
        None => m.to_owned(),
    }
}

/// The record of one request's recovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoverySummary {
    /// The model of each continuation attempt, in order (failed ones included).
    pub models: Vec<String>,
    /// Every failure, in order: the stream's own, then each failed continuation.
    pub failures: Vec<RecoveryFailure>,
    /// Why the stream was not (or no longer) continued, when recovery stopped for a reason
    /// other than running out of candidates.
    pub not_continued: Option<NotContinuable>,
    /// A continuation completed the answer.
    pub completed: bool,
}

impl RecoverySummary {
    /// How many continuations ran.
    pub fn continuations(&self) -> usize {
        self.models.len()
    }

    /// The `switchback` field: `{"continuations", "models", "failures"}`, plus
    /// `not_continued` (a code) when recovery was refused.
    pub fn json(&self) -> Value {
        let mut v = json!({
            "continuations": self.models.len(),
            "models": self.models,
            "failures": self.failures.iter().map(RecoveryFailure::json).collect::<Vec<_>>(),
        });
        if let (Some(why), Some(obj)) = (&self.not_continued, v.as_object_mut()) {
            obj.insert("not_continued".into(), json!(why.code()));
        }
        v
    }

    /// The sentence the final in-band error adds to its message: every continuation failure,
    /// or why none was made.
    pub(crate) fn error_sentence(&self) -> String {
        let failed: Vec<String> = self
            .failures
            .iter()
            .filter(|f| f.stage == Stage::Continuation)
            .map(ToString::to_string)
            .collect();
        let mut s = String::new();
        if !failed.is_empty() {
            s.push_str(&format!(
                " Stream recovery failed: {} continuation(s) failed: {}.",
                failed.len(),
                failed.join("; ")
            ));
        }
        match &self.not_continued {
            Some(why) if failed.is_empty() => {
                s.push_str(&format!(" The stream was not continued: {why}."));
            }
            Some(why) => s.push_str(&format!(" No further continuation: {why}.")),
            None if failed.is_empty() => {
                s.push_str(" No candidate could continue the stream.");
            }
            None => {}
        }
        s
    }
}

impl fmt::Display for RecoverySummary {
    /// The log line's value: `2 continuation(s) on a, b; completed` and the failures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} continuation(s)", self.models.len())?;
        if !self.models.is_empty() {
            write!(f, " on {}", self.models.join(", "))?;
        }
        f.write_str(if self.completed {
            "; completed"
        } else {
            "; not completed"
        })?;
        if let Some(why) = &self.not_continued {
            write!(f, "; not continued: {}", why.code())?;
        }
        for fail in &self.failures {
            write!(f, "; {fail}")?;
        }
        Ok(())
    }
}
