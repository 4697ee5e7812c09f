//! Internal stream events → `chat.completion.chunk`s.

use serde_json::{json, Value};

use super::super::model::{BlockKind, StreamEvent, Usage};
use super::super::sse_out::{Emitted, EventKind};
use super::response::completion_id;
use super::{finish_reason_name, usage_json};

/// Encodes one stream for a Chat client.
///
/// - `Start` → the one role chunk (`delta: {"role":"assistant","content":""}`).
/// - A tool-call block start → a chunk opening tool call `index` (counted from 0) with its
///   id, name and empty arguments; argument deltas → `delta.tool_calls[{index, function:
///   {arguments}}]`; text deltas → `delta.content`; refusal deltas → `delta.refusal`.
///   Reasoning produces nothing (Chat has no field for it).
/// - `Finish` → a chunk with an empty delta and the `finish_reason`.
/// - `Done` → with `include_usage`, a chunk with `choices: []` and the usage totals; then
///   `data: [DONE]`.
/// - `Error` → `data: {"error":{"message","type","code","param"}}`.
///
/// With `include_usage`, every ordinary chunk carries `"usage": null`, as OpenAI's do. After
/// `Done` or `Error`, nothing more is emitted.
#[derive(Debug, Clone)]
pub struct StreamEncoder {
    model: String,
    include_usage: bool,
    id: String,
    usage: Usage,
    /// Internal block id → Chat tool call index.
    tools: Vec<(usize, usize)>,
    finished: bool,
}

impl StreamEncoder {
    /// An encoder reporting `model`; `fallback_id` names the answer until `Start` gives an id.
    pub fn new(model: &str, include_usage: bool, fallback_id: &str) -> Self {
        StreamEncoder {
            model: model.to_owned(),
            include_usage,
            id: completion_id(fallback_id),
            usage: Usage::default(),
            tools: Vec::new(),
            finished: false,
        }
    }

    /// Whether `Done` or `Error` was encoded.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self.model,
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
        });
        if let (true, Some(obj)) = (self.include_usage, chunk.as_object_mut()) {
            obj.insert("usage".into(), Value::Null);
        }
        chunk.to_string()
    }

    fn emit(&self, out: &mut Vec<Emitted>, delta: Value, kind: EventKind) {
        out.push(Emitted::new(None, self.chunk(delta, None), kind));
    }

    /// Encodes one internal event, appending what the client gets to `out`.
    pub(crate) fn push(&mut self, event: &StreamEvent, out: &mut Vec<Emitted>) {
        if self.finished {
            return;
        }
        match event {
            StreamEvent::Start { id } => {
                if let Some(id) = id.as_deref().filter(|s| !s.is_empty()) {
                    self.id = completion_id(id);
                }
                let delta = json!({ "role": "assistant", "content": "" });
                self.emit(out, delta, EventKind::Held);
            }
            StreamEvent::BlockStart {
                block,
                kind: BlockKind::ToolCall { id, name },
            } => {
                let index = self.tools.len();
                self.tools.push((*block, index));
                let delta = json!({ "tool_calls": [{
                    "index": index,
                    "id": id,
                    "type": "function",
                    "function": { "name": name, "arguments": "" },
                }] });
                self.emit(out, delta, EventKind::Content);
            }
            StreamEvent::TextDelta { text, .. } if !text.is_empty() => {
                self.emit(out, json!({ "content": text }), EventKind::Content);
            }
            StreamEvent::RefusalDelta { text, .. } if !text.is_empty() => {
                self.emit(out, json!({ "refusal": text }), EventKind::Content);
            }
            StreamEvent::ToolArgsDelta { block, json: args } if !args.is_empty() => {
                let Some(index) = self.tools.iter().find(|(b, _)| b == block).map(|(_, i)| *i)
                else {
                    return;
                };
                let delta = json!({ "tool_calls": [{ "index": index, "function": { "arguments": args } }] });
                self.emit(out, delta, EventKind::Content);
            }
            StreamEvent::Usage(update) => self.usage.apply(update),
            StreamEvent::Finish { stop, .. } => {
                let data = self.chunk(json!({}), Some(finish_reason_name(*stop)));
                out.push(Emitted::new(None, data, EventKind::Held));
            }
            StreamEvent::Error { kind, message, raw } => {
                self.finished = true;
                let kind = kind.as_deref().unwrap_or("api_error");
                let body = json!({
                    "error": { "message": message, "type": kind, "code": kind, "param": null },
                });
                out.push(Emitted::new(
                    None,
                    body.to_string(),
                    EventKind::Error {
                        detail: raw.clone(),
                    },
                ));
            }
            StreamEvent::Done => {
                self.finished = true;
                if self.include_usage {
                    let chunk = json!({
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": self.model,
                        "choices": [],
                        "usage": usage_json(&self.usage),
                    });
                    out.push(Emitted::new(None, chunk.to_string(), EventKind::Held));
                }
                out.push(Emitted::new(None, "[DONE]".to_owned(), EventKind::Done));
            }
            _ => {}
        }
    }

    /// The terminal error event after commit (spec §6): `data: {"error":{...}}`, no `[DONE]`.
    pub(crate) fn terminal_error(&mut self, message: &str, code: &str) -> Emitted {
        self.finished = true;
        terminal_error(message, code)
    }
}

/// `data: {"error":{"message","type":"upstream_error","code"}}`: how a committed Chat stream
/// ends when its upstream fails.
pub(crate) fn terminal_error(message: &str, code: &str) -> Emitted {
    let v = json!({"error": {"message": message, "type": "upstream_error", "code": code}});
    Emitted::new(
        None,
        v.to_string(),
        EventKind::Error {
            detail: message.to_owned(),
        },
    )
}
