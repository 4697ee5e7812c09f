//! An Anthropic Messages client's stream, for recovery: what the relayed events say, and the
//! events that carry a continuation's text and end the stream.

use serde_json::{json, Value};

use super::relayed::{Ending, NotContinuable, Relayed};
use crate::apis::messages::{stop_reason_name, usage_json};
use crate::apis::{ClientEvent, EventKind};
use crate::sse::SseEvent;

/// The relayed stream's blocks: a continuation's text goes on as further `text_delta`s of
/// the open text block (or of a new text block, when the last one was already stopped),
/// and no second `message_start` is sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct MessagesStream {
    /// The index of the open text block.
    open_text: Option<u64>,
    /// The index a new block gets.
    next_index: u64,
}

impl MessagesStream {
    /// Reads one relayed event.
    pub(crate) fn observe(&mut self, event: &SseEvent, r: &mut Relayed) {
        let data: Option<Value> = serde_json::from_str(&event.data).ok();
        let name = event
            .event
            .as_deref()
            .filter(|n| *n != "message")
            .or_else(|| {
                data.as_ref()
                    .and_then(|d| d.get("type"))
                    .and_then(Value::as_str)
            })
            .unwrap_or_default()
            .to_owned();
        if name == "error" {
            r.block(NotContinuable::Ended);
            return;
        }
        let Some(data) = data else { return };
        let index = data.get("index").and_then(Value::as_u64);
        match name.as_str() {
            "content_block_start" => {
                if let Some(i) = index {
                    self.next_index = self.next_index.max(i.saturating_add(1));
                }
                let block = data.get("content_block");
                match block.and_then(|b| b.get("type")).and_then(Value::as_str) {
                    Some("text") => {
                        self.open_text = index;
                        if let Some(t) = block.and_then(|b| b.get("text")).and_then(Value::as_str) {
                            r.add_text(t);
                        }
                    }
                    Some("tool_use" | "server_tool_use") => r.block(NotContinuable::ToolCall),
                    Some("thinking" | "redacted_thinking") => r.block(NotContinuable::Reasoning),
                    Some(other) => {
                        r.block(NotContinuable::OtherContent(format!("a `{other}` block")));
                    }
                    None => {}
                }
            }
            "content_block_delta" => {
                let delta = data.get("delta");
                match delta.and_then(|d| d.get("type")).and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(t) = delta.and_then(|d| d.get("text")).and_then(Value::as_str) {
                            r.add_text(t);
                        }
                    }
                    Some("input_json_delta") => r.block(NotContinuable::ToolCall),
                    Some("thinking_delta" | "signature_delta") => {
                        r.block(NotContinuable::Reasoning);
                    }
                    // Citations annotate text already sent; the text itself continues.
                    _ => {}
                }
            }
            "content_block_stop" if index.is_some() && index == self.open_text => {
                self.open_text = None;
            }
            "message_delta" => {
                let stop = data.get("delta").and_then(|d| d.get("stop_reason"));
                if stop.is_some_and(|s| !s.is_null()) {
                    r.block(NotContinuable::AnswerComplete);
                }
            }
            "message_stop" => r.block(NotContinuable::Ended),
            _ => {}
        }
    }

    /// The events carrying `text`: a `content_block_start` first when no text block is
    /// open, then a `content_block_delta`.
    pub(crate) fn text(&self, text: &str) -> Vec<ClientEvent> {
        let mut out = Vec::with_capacity(2);
        let index = match self.open_text {
            Some(i) => i,
            None => {
                let i = self.next_index;
                out.push(event(
                    "content_block_start",
                    json!({ "type": "content_block_start", "index": i, "content_block": { "type": "text", "text": "" } }),
                    EventKind::Held,
                ));
                i
            }
        };
        out.push(event(
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": index, "delta": { "type": "text_delta", "text": text } }),
            EventKind::Content,
        ));
        out
    }

    /// The end of a continued stream: the open text block's `content_block_stop`, one
    /// `message_delta` (the continuation's stop reason and usage, and the `switchback`
    /// field) and `message_stop`.
    pub(crate) fn complete(&self, end: &Ending<'_>) -> Vec<ClientEvent> {
        let mut out = Vec::with_capacity(3);
        if let Some(i) = self.open_text {
            out.push(event(
                "content_block_stop",
                json!({ "type": "content_block_stop", "index": i }),
                EventKind::Held,
            ));
        }
        out.push(event(
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": { "stop_reason": stop_reason_name(end.stop), "stop_sequence": end.stop_sequence },
                "usage": usage_json(end.usage),
                "switchback": end.report,
            }),
            EventKind::Held,
        ));
        out.push(event(
            "message_stop",
            json!({ "type": "message_stop" }),
            EventKind::Done,
        ));
        out
    }

    /// `event: error`, Anthropic's shape, with the `switchback` report beside the error.
    pub(crate) fn terminal_error(&self, message: &str, code: &str, report: &Value) -> ClientEvent {
        let mut e = event(
            "error",
            json!({
                "type": "error",
                "error": { "type": "api_error", "message": message, "code": code },
                "switchback": report,
            }),
            EventKind::Held,
        );
        e.kind = EventKind::Error {
            detail: message.to_owned(),
        };
        e
    }
}

fn event(name: &str, data: Value, kind: EventKind) -> ClientEvent {
    ClientEvent {
        bytes: SseEvent {
            event: Some(name.to_owned()),
            data: data.to_string(),
            id: None,
            retry: None,
        }
        .to_bytes(),
        kind,
    }
}
