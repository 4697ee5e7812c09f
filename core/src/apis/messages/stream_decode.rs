//! Anthropic Messages SSE events → internal stream events.

use serde_json::Value;

use super::super::json::{str_of, type_of, u64_of};
use super::super::model::{BlockKind, ReasoningOrigin, StreamEvent};
use super::error::read_error;
use super::{stop_reason_from, usage_update};
use crate::sse::SseEvent;

/// Decodes one Anthropic stream, one event at a time.
///
/// The event type is the `event:` name, or the `type` in the data. `message_start` →
/// `Start` and the input usage; `content_block_start` → a block start (text, tool use,
/// thinking, redacted thinking; server-tool blocks are ignored) with any initial text;
/// `content_block_delta` → text, tool-argument, thinking or signature deltas (empty ones and
/// citations are skipped; a text delta for a block never started opens a text block, a tool
/// delta for one is dropped); `content_block_stop` → block stop; `message_delta` → usage and,
/// with a stop reason, `Finish`; `message_stop` → `Done`; `error` → `Error` (even with data
/// that is not JSON). `ping` and unknown types produce nothing. After `Done` or `Error`,
/// nothing more is decoded.
#[derive(Debug, Clone, Default)]
pub struct StreamDecoder {
    /// Anthropic block index → internal block id.
    blocks: Vec<(u64, usize)>,
    next_block: usize,
    finish_seen: bool,
    finished: bool,
}

impl StreamDecoder {
    /// A decoder for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one upstream event into `out`. Returns why the event was dropped, if it was.
    pub(crate) fn push(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) -> Option<String> {
        if self.finished {
            return None;
        }
        let data: Option<Value> = serde_json::from_str(&event.data).ok();
        let name = event
            .event
            .as_deref()
            .filter(|n| *n != "message")
            .or_else(|| data.as_ref().and_then(type_of))
            .unwrap_or_default()
            .to_owned();
        if name == "error" {
            self.finished = true;
            let info = read_error(0, event.data.as_bytes());
            out.push(StreamEvent::Error {
                kind: Some(info.kind),
                message: info.message,
                raw: event.data.clone(),
            });
            return None;
        }
        let Some(data) = data.filter(Value::is_object) else {
            if event.data.trim() == "[DONE]" {
                return None;
            }
            return Some(format!("an Anthropic `{name}` event with malformed data"));
        };
        match name.as_str() {
            "message_start" => {
                let message = data.get("message");
                out.push(StreamEvent::Start {
                    id: message.and_then(|m| str_of(m, "id")).map(str::to_owned),
                });
                if let Some(usage) = message.and_then(|m| m.get("usage")) {
                    out.push(StreamEvent::Usage(usage_update(usage)));
                }
                None
            }
            "content_block_start" => self.block_start(&data, out),
            "content_block_delta" => self.block_delta(&data, out),
            "content_block_stop" => {
                if let Some(block) = self.block_of(&data) {
                    out.push(StreamEvent::BlockStop { block });
                }
                None
            }
            "message_delta" => {
                if let Some(usage) = data.get("usage") {
                    out.push(StreamEvent::Usage(usage_update(usage)));
                }
                let delta = data.get("delta");
                match delta.and_then(|d| d.get("stop_reason")) {
                    None | Some(Value::Null) => {}
                    Some(reason) => {
                        self.finish_seen = true;
                        out.push(StreamEvent::Finish {
                            stop: stop_reason_from(reason.as_str()),
                            stop_sequence: delta
                                .and_then(|d| str_of(d, "stop_sequence"))
                                .map(str::to_owned),
                        });
                    }
                }
                None
            }
            "message_stop" => {
                self.finished = true;
                out.push(StreamEvent::Done);
                None
            }
            _ => None,
        }
    }

    /// The upstream ended cleanly. Returns whether the answer was complete (a stop reason
    /// was seen), appending `Done` when the upstream did not send `message_stop`.
    pub(crate) fn end(&mut self, out: &mut Vec<StreamEvent>) -> bool {
        if self.finished {
            return true;
        }
        self.finished = true;
        if self.finish_seen {
            out.push(StreamEvent::Done);
        }
        self.finish_seen
    }

    fn block_of(&self, data: &Value) -> Option<usize> {
        let index = u64_of(data, "index")?;
        self.blocks
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| *b)
    }

    fn open(&mut self, index: Option<u64>) -> usize {
        let block = self.next_block;
        self.next_block += 1;
        if let Some(index) = index {
            self.blocks.retain(|(i, _)| *i != index);
            self.blocks.push((index, block));
        }
        block
    }

    fn block_start(&mut self, data: &Value, out: &mut Vec<StreamEvent>) -> Option<String> {
        let block = data.get("content_block")?;
        let index = u64_of(data, "index");
        match type_of(block) {
            Some("text") => {
                let id = self.open(index);
                out.push(StreamEvent::BlockStart {
                    block: id,
                    kind: BlockKind::Text,
                });
                if let Some(text) = str_of(block, "text").filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta {
                        block: id,
                        text: text.to_owned(),
                    });
                }
            }
            Some("tool_use") => {
                if index.is_none() {
                    return Some("an Anthropic tool_use block start without an index".into());
                }
                let id = self.open(index);
                out.push(StreamEvent::BlockStart {
                    block: id,
                    kind: BlockKind::ToolCall {
                        id: str_of(block, "id").unwrap_or_default().to_owned(),
                        name: str_of(block, "name").unwrap_or_default().to_owned(),
                    },
                });
            }
            Some(kind @ ("thinking" | "redacted_thinking")) => {
                let redacted = kind == "redacted_thinking";
                let id = self.open(index);
                out.push(StreamEvent::BlockStart {
                    block: id,
                    kind: BlockKind::Thinking {
                        origin: ReasoningOrigin::Anthropic,
                        redacted,
                    },
                });
                if let Some(text) = str_of(block, "thinking").filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::ThinkingDelta {
                        block: id,
                        text: text.to_owned(),
                    });
                }
                let token = if redacted { "data" } else { "signature" };
                if let Some(sig) = str_of(block, token).filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::SignatureDelta {
                        block: id,
                        signature: sig.to_owned(),
                    });
                }
            }
            _ => {}
        }
        None
    }

    fn block_delta(&mut self, data: &Value, out: &mut Vec<StreamEvent>) -> Option<String> {
        let delta = data.get("delta")?;
        let non_empty = |key: &str| {
            str_of(delta, key)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        };
        match type_of(delta) {
            Some("text_delta") => {
                let text = non_empty("text")?;
                let block = match self.block_of(data) {
                    Some(b) => b,
                    None => {
                        let b = self.open(u64_of(data, "index"));
                        out.push(StreamEvent::BlockStart {
                            block: b,
                            kind: BlockKind::Text,
                        });
                        b
                    }
                };
                out.push(StreamEvent::TextDelta { block, text });
            }
            Some("input_json_delta") => {
                let json = non_empty("partial_json")?;
                let Some(block) = self.block_of(data) else {
                    return Some("an Anthropic input_json_delta for an unknown block".into());
                };
                out.push(StreamEvent::ToolArgsDelta { block, json });
            }
            Some("thinking_delta") => {
                let text = non_empty("thinking")?;
                let block = self.block_of(data)?;
                out.push(StreamEvent::ThinkingDelta { block, text });
            }
            Some("signature_delta") => {
                let signature = non_empty("signature")?;
                let block = self.block_of(data)?;
                out.push(StreamEvent::SignatureDelta { block, signature });
            }
            _ => {}
        }
        None
    }
}
