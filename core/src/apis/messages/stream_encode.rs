//! Internal stream events → Anthropic Messages SSE events.

use serde_json::{json, Value};

use super::super::model::{BlockKind, ReasoningOrigin, StopReason, StreamEvent, Usage};
use super::super::sse_out::{Emitted, EventKind};
use super::response::message_id;
use super::{stop_reason_name, usage_json};

/// Encodes one stream for a Messages client, in Anthropic's event grammar:
/// `message_start` and a `ping`; per block `content_block_start`, `content_block_delta`s
/// (`text_delta`, `input_json_delta`, `thinking_delta`, `signature_delta`) and
/// `content_block_stop`; at the end `message_delta` (stop reason and usage) and
/// `message_stop`; `error` for an in-band error.
///
/// Blocks get Anthropic indices in the order they start. Refusals are sent as text blocks
/// (with `stop_reason: refusal`); reasoning of another API's origin is dropped. Blocks still
/// open at the end are stopped before `message_delta`. Input usage is 0 in `message_start`
/// when the upstream reports usage only at the end (OpenAI does); `message_delta` carries the
/// final counts, input included.
#[derive(Debug, Clone)]
pub struct StreamEncoder {
    model: String,
    id: String,
    started: bool,
    /// Internal block id → (Anthropic index, still open).
    blocks: Vec<(usize, u64, bool)>,
    next_index: u64,
    usage: Usage,
    stop: Option<StopReason>,
    stop_sequence: Option<String>,
    finished: bool,
}

impl StreamEncoder {
    /// An encoder reporting `model`; `fallback_id` names the message until `Start` gives one.
    pub fn new(model: &str, fallback_id: &str) -> Self {
        StreamEncoder {
            model: model.to_owned(),
            id: message_id(fallback_id),
            started: false,
            blocks: Vec::new(),
            next_index: 0,
            usage: Usage::default(),
            stop: None,
            stop_sequence: None,
            finished: false,
        }
    }

    fn event(name: &'static str, data: Value, kind: EventKind) -> Emitted {
        Emitted::new(Some(name), data.to_string(), kind)
    }

    fn start(&mut self, out: &mut Vec<Emitted>) {
        if self.started {
            return;
        }
        self.started = true;
        let data = json!({
            "type": "message_start",
            "message": {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {
                    "input_tokens": self.usage.input,
                    "cache_creation_input_tokens": self.usage.cache_write,
                    "cache_read_input_tokens": self.usage.cache_read,
                    "output_tokens": self.usage.output,
                },
            },
        });
        out.push(Self::event("message_start", data, EventKind::Held));
        out.push(Self::event(
            "ping",
            json!({ "type": "ping" }),
            EventKind::Held,
        ));
    }

    fn index_of(&self, block: usize) -> Option<u64> {
        self.blocks
            .iter()
            .find(|(b, _, open)| *b == block && *open)
            .map(|(_, i, _)| *i)
    }

    fn delta(&self, out: &mut Vec<Emitted>, block: usize, delta: Value) {
        let Some(index) = self.index_of(block) else {
            return;
        };
        let data = json!({ "type": "content_block_delta", "index": index, "delta": delta });
        out.push(Self::event("content_block_delta", data, EventKind::Content));
    }

    fn stop_block(&mut self, out: &mut Vec<Emitted>, block: usize) {
        let Some(entry) = self
            .blocks
            .iter_mut()
            .find(|(b, _, open)| *b == block && *open)
        else {
            return;
        };
        entry.2 = false;
        let data = json!({ "type": "content_block_stop", "index": entry.1 });
        out.push(Self::event("content_block_stop", data, EventKind::Held));
    }

    /// Encodes one internal event, appending what the client gets to `out`.
    pub(crate) fn push(&mut self, event: &StreamEvent, out: &mut Vec<Emitted>) {
        if self.finished {
            return;
        }
        match event {
            StreamEvent::Start { id } => {
                if let Some(id) = id.as_deref().filter(|s| !s.is_empty()) {
                    self.id = message_id(id);
                }
                self.start(out);
            }
            StreamEvent::BlockStart { block, kind } => {
                let content_block = match kind {
                    BlockKind::Text | BlockKind::Refusal => json!({ "type": "text", "text": "" }),
                    BlockKind::ToolCall { id, name } => {
                        json!({ "type": "tool_use", "id": id, "name": name, "input": {} })
                    }
                    BlockKind::Thinking {
                        origin: ReasoningOrigin::Anthropic,
                        redacted: false,
                    } => json!({ "type": "thinking", "thinking": "", "signature": "" }),
                    BlockKind::Thinking {
                        origin: ReasoningOrigin::Anthropic,
                        redacted: true,
                    } => json!({ "type": "redacted_thinking", "data": "" }),
                    BlockKind::Thinking { .. } => return,
                };
                self.start(out);
                let index = self.next_index;
                self.next_index += 1;
                self.blocks.push((*block, index, true));
                let data = json!({ "type": "content_block_start", "index": index, "content_block": content_block });
                out.push(Self::event("content_block_start", data, EventKind::Held));
            }
            StreamEvent::TextDelta { block, text } | StreamEvent::RefusalDelta { block, text } => {
                self.delta(out, *block, json!({ "type": "text_delta", "text": text }));
            }
            StreamEvent::ToolArgsDelta { block, json: args } => {
                self.delta(
                    out,
                    *block,
                    json!({ "type": "input_json_delta", "partial_json": args }),
                );
            }
            StreamEvent::ThinkingDelta { block, text } => {
                self.delta(
                    out,
                    *block,
                    json!({ "type": "thinking_delta", "thinking": text }),
                );
            }
            StreamEvent::SignatureDelta { block, signature } => {
                self.delta(
                    out,
                    *block,
                    json!({ "type": "signature_delta", "signature": signature }),
                );
            }
            StreamEvent::BlockStop { block } => self.stop_block(out, *block),
            StreamEvent::Usage(update) => self.usage.apply(update),
            StreamEvent::Finish {
                stop,
                stop_sequence,
            } => {
                self.stop = *stop;
                self.stop_sequence.clone_from(stop_sequence);
            }
            StreamEvent::Error { kind, message, raw } => {
                self.finished = true;
                let data = json!({
                    "type": "error",
                    "error": { "type": kind.as_deref().unwrap_or("api_error"), "message": message },
                });
                out.push(Self::event(
                    "error",
                    data,
                    EventKind::Error {
                        detail: raw.clone(),
                    },
                ));
            }
            StreamEvent::Done => {
                self.start(out);
                let open: Vec<usize> = self
                    .blocks
                    .iter()
                    .filter(|(_, _, open)| *open)
                    .map(|(b, _, _)| *b)
                    .collect();
                for block in open {
                    self.stop_block(out, block);
                }
                self.finished = true;
                let data = json!({
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": stop_reason_name(self.stop),
                        "stop_sequence": self.stop_sequence,
                    },
                    "usage": usage_json(&self.usage),
                });
                out.push(Self::event("message_delta", data, EventKind::Held));
                let stop = json!({ "type": "message_stop" });
                out.push(Self::event("message_stop", stop, EventKind::Done));
            }
        }
    }

    /// The terminal error event after commit: `event: error` with an `api_error`.
    pub(crate) fn terminal_error(&mut self, message: &str, code: &str) -> Emitted {
        self.finished = true;
        terminal_error(message, code)
    }
}

/// `event: error` with `{"type":"error","error":{"type":"api_error","message","code"}}`: how a
/// committed Messages stream ends when its upstream fails (`code` names why, e.g.
/// `stream_timeout`).
pub(crate) fn terminal_error(message: &str, code: &str) -> Emitted {
    let data = json!({
        "type": "error",
        "error": { "type": "api_error", "message": message, "code": code },
    });
    Emitted::new(
        Some("error"),
        data.to_string(),
        EventKind::Error {
            detail: message.to_owned(),
        },
    )
}
