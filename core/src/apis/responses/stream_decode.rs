//! Responses SSE events → internal stream events.

use serde_json::Value;

use super::super::json::{str_of, type_of, u64_of};
use super::super::model::{BlockKind, ReasoningOrigin, StreamEvent};
use super::{stop_from, usage_update};
use crate::sse::SseEvent;

/// Decodes one Responses stream, one event at a time.
///
/// `response.created` → `Start`; `response.content_part.added` (output text or refusal) and
/// `response.output_item.added` (function call, reasoning) → block starts; text, refusal,
/// function-argument and reasoning-summary deltas → deltas; `response.content_part.done` and
/// `response.output_item.done` → block stops (a reasoning item's final `encrypted_content`
/// as a signature delta first); `response.completed` / `response.incomplete` → usage,
/// `Finish` and `Done`; `response.failed` and `error` → `Error`. Other events (built-in tool
/// progress, annotations, `response.in_progress`) produce nothing.
#[derive(Debug, Clone, Default)]
pub struct StreamDecoder {
    /// (output_index, content_index or `None` for a whole item) → internal block id.
    blocks: Vec<((u64, Option<u64>), usize)>,
    next_block: usize,
    called: bool,
    completed: bool,
    finished: bool,
}

impl StreamDecoder {
    /// A decoder for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn find(&self, key: (u64, Option<u64>)) -> Option<usize> {
        self.blocks.iter().find(|(k, _)| *k == key).map(|(_, b)| *b)
    }

    fn open(&mut self, key: (u64, Option<u64>), kind: BlockKind, out: &mut Vec<StreamEvent>) {
        if self.find(key).is_some() {
            return;
        }
        let block = self.next_block;
        self.next_block += 1;
        self.blocks.push((key, block));
        out.push(StreamEvent::BlockStart { block, kind });
    }

    fn close(&mut self, key: (u64, Option<u64>), out: &mut Vec<StreamEvent>) {
        if let Some(pos) = self.blocks.iter().position(|(k, _)| *k == key) {
            let (_, block) = self.blocks.remove(pos);
            out.push(StreamEvent::BlockStop { block });
        }
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
        if name == "error" || name == "response.failed" {
            self.finished = true;
            let error = data
                .as_ref()
                .and_then(|d| d.get("response").and_then(|r| r.get("error")).or(Some(d)))
                .cloned()
                .unwrap_or(Value::Null);
            out.push(StreamEvent::Error {
                kind: str_of(&error, "code")
                    .or_else(|| type_of(&error).filter(|t| *t != "error"))
                    .map(str::to_owned),
                message: str_of(&error, "message")
                    .map(str::to_owned)
                    .unwrap_or_else(|| {
                        format!("the upstream stream reported an error: {}", event.data)
                    }),
                raw: event.data.clone(),
            });
            return None;
        }
        let Some(data) = data.filter(Value::is_object) else {
            return Some(format!("a Responses `{name}` event with malformed data"));
        };
        let output = u64_of(&data, "output_index").unwrap_or(0);
        let content = u64_of(&data, "content_index");
        let delta = || {
            str_of(&data, "delta")
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
        };
        match name.as_str() {
            "response.created" => out.push(StreamEvent::Start {
                id: data
                    .get("response")
                    .and_then(|r| str_of(r, "id"))
                    .map(str::to_owned),
            }),
            "response.content_part.added" => {
                let kind = match data.get("part").and_then(type_of) {
                    Some("output_text") => BlockKind::Text,
                    Some("refusal") => BlockKind::Refusal,
                    _ => return None,
                };
                self.open((output, Some(content.unwrap_or(0))), kind, out);
            }
            "response.output_item.added" => {
                let item = data.get("item")?;
                match type_of(item) {
                    Some("function_call") => {
                        self.called = true;
                        let kind = BlockKind::ToolCall {
                            id: str_of(item, "call_id").unwrap_or_default().to_owned(),
                            name: str_of(item, "name").unwrap_or_default().to_owned(),
                        };
                        self.open((output, None), kind, out);
                    }
                    Some("reasoning") => {
                        let kind = BlockKind::Thinking {
                            origin: ReasoningOrigin::OpenAi,
                            redacted: false,
                        };
                        self.open((output, None), kind, out);
                    }
                    _ => {}
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                let key = (output, Some(content.unwrap_or(0)));
                let text = delta()?;
                let refusal = name == "response.refusal.delta";
                if self.find(key).is_none() {
                    let kind = if refusal {
                        BlockKind::Refusal
                    } else {
                        BlockKind::Text
                    };
                    self.open(key, kind, out);
                }
                let block = self.find(key)?;
                out.push(if refusal {
                    StreamEvent::RefusalDelta { block, text }
                } else {
                    StreamEvent::TextDelta { block, text }
                });
            }
            "response.function_call_arguments.delta" => {
                let json = delta()?;
                let Some(block) = self.find((output, None)) else {
                    return Some("function call arguments for an item never added".into());
                };
                out.push(StreamEvent::ToolArgsDelta { block, json });
            }
            "response.reasoning_summary_text.delta" => {
                let text = delta()?;
                let block = self.find((output, None))?;
                out.push(StreamEvent::ThinkingDelta { block, text });
            }
            "response.content_part.done" => self.close((output, Some(content.unwrap_or(0))), out),
            "response.output_item.done" => {
                let item = data.get("item");
                if let (Some(block), Some(sig)) = (
                    self.find((output, None)),
                    item.and_then(|i| str_of(i, "encrypted_content")),
                ) {
                    out.push(StreamEvent::SignatureDelta {
                        block,
                        signature: sig.to_owned(),
                    });
                }
                self.close((output, None), out);
                let parts: Vec<(u64, Option<u64>)> = self
                    .blocks
                    .iter()
                    .filter(|((o, c), _)| *o == output && c.is_some())
                    .map(|(k, _)| *k)
                    .collect();
                for key in parts {
                    self.close(key, out);
                }
            }
            "response.completed" | "response.incomplete" => {
                self.finished = true;
                self.completed = true;
                for (_, block) in std::mem::take(&mut self.blocks) {
                    out.push(StreamEvent::BlockStop { block });
                }
                let response = data.get("response").unwrap_or(&Value::Null);
                if let Some(usage) = response.get("usage").filter(|u| u.is_object()) {
                    out.push(StreamEvent::Usage(usage_update(usage)));
                }
                let status =
                    str_of(response, "status").or(Some(if name == "response.incomplete" {
                        "incomplete"
                    } else {
                        "completed"
                    }));
                let reason = response
                    .get("incomplete_details")
                    .and_then(|d| str_of(d, "reason"));
                out.push(StreamEvent::Finish {
                    stop: Some(stop_from(status, reason, self.called)),
                    stop_sequence: None,
                });
                out.push(StreamEvent::Done);
            }
            _ => {}
        }
        None
    }

    /// The upstream ended cleanly: complete only after `response.completed` (or
    /// `response.incomplete`), which is the Responses stream's last event.
    pub(crate) fn end(&mut self, _out: &mut Vec<StreamEvent>) -> bool {
        self.finished = true;
        self.completed
    }
}
