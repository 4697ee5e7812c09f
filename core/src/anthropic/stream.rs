//! Anthropic SSE events → OpenAI `chat.completion.chunk`s, one event at a time.

use serde_json::{json, Value};

use super::{finish_reason, openai_id, translate_error, Usage};
use crate::sse::SseEvent;

/// What one upstream event becomes for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Translated {
    /// An OpenAI `chat.completion.chunk` JSON (to be sent as `data: <json>\n\n`).
    Chunk(String),
    /// The stream is complete: send `data: [DONE]`.
    Done,
    /// An in-band error (Anthropic `error` event), as an OpenAI error JSON `{"error":{...}}`.
    Error(String),
}

/// Incremental Anthropic SSE → OpenAI chunk translation for one stream.
///
/// - `message_start` → a role chunk (`delta: {"role":"assistant","content":""}`); its id and
///   input usage are remembered.
/// - `content_block_start`: `tool_use` → a chunk opening tool call `index` (tool_use blocks are
///   counted from 0) with its id and name and empty arguments; a `text` block with initial text
///   → a content chunk; other blocks → nothing.
/// - `content_block_delta`: `text_delta` → `delta.content`; `input_json_delta` →
///   `delta.tool_calls[{index, function: {arguments}}]`; empty deltas, thinking and signature
///   deltas → nothing.
/// - `message_delta` → a chunk with an empty delta and the `finish_reason`; usage is updated.
/// - `message_stop` → with `include_usage`, a chunk with `choices: []` and the usage totals;
///   then [`Translated::Done`].
/// - `error` → [`Translated::Error`] (via [`translate_error`]), even when its data is not JSON.
/// - `ping`, `content_block_stop`, unknown types and malformed data → nothing (malformed data is
///   logged). After `Done` or `Error`, every event → nothing.
///
/// With `include_usage`, every ordinary chunk carries `"usage": null`, as OpenAI's do.
#[derive(Debug, Clone)]
pub struct StreamTranslator {
    model: String,
    include_usage: bool,
    id: Option<String>,
    usage: Usage,
    /// Anthropic content block index → OpenAI tool call index, for tool_use blocks.
    tool_blocks: Vec<(u64, usize)>,
    finished: bool,
}

impl StreamTranslator {
    /// A translator for one stream, reporting `model` in every chunk.
    pub fn new(model: &str, include_usage: bool) -> Self {
        StreamTranslator {
            model: model.to_owned(),
            include_usage,
            id: None,
            usage: Usage::default(),
            tool_blocks: Vec::new(),
            finished: false,
        }
    }

    /// Translates one upstream event (by its `event:` name, or the `type` in its data) into zero
    /// or more OpenAI events. Unknown event types are ignored; malformed data → nothing (and a
    /// tracing warn).
    pub fn push(&mut self, event: &SseEvent) -> Vec<Translated> {
        if self.finished {
            return Vec::new();
        }
        let data: Option<Value> = serde_json::from_str(&event.data).ok();
        let name = event
            .event
            .as_deref()
            .filter(|n| *n != "message")
            .or_else(|| data.as_ref()?.get("type")?.as_str())
            .unwrap_or_default()
            .to_owned();
        if name == "error" {
            self.finished = true;
            let body = translate_error(0, event.data.as_bytes());
            return vec![Translated::Error(
                String::from_utf8_lossy(&body).into_owned(),
            )];
        }
        let Some(data) = data.filter(Value::is_object) else {
            if event.data.trim() != "[DONE]" {
                tracing::warn!(event = %name, "dropping an Anthropic stream event with malformed data");
            }
            return Vec::new();
        };
        match name.as_str() {
            "message_start" => self.message_start(&data),
            "content_block_start" => self.block_start(&data),
            "content_block_delta" => self.block_delta(&data),
            "message_delta" => self.message_delta(&data),
            "message_stop" => self.message_stop(),
            _ => Vec::new(),
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Translated {
        let mut chunk = json!({
            "id": openai_id(self.id.as_deref()),
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
        Translated::Chunk(chunk.to_string())
    }

    fn message_start(&mut self, data: &Value) -> Vec<Translated> {
        let message = data.get("message");
        if let Some(id) = message.and_then(|m| m.get("id")).and_then(Value::as_str) {
            self.id = Some(id.to_owned());
        }
        if let Some(usage) = message.and_then(|m| m.get("usage")) {
            self.usage.update(usage);
        }
        vec![self.chunk(json!({ "role": "assistant", "content": "" }), None)]
    }

    fn block_start(&mut self, data: &Value) -> Vec<Translated> {
        let Some(block) = data.get("content_block") else {
            return Vec::new();
        };
        match block.get("type").and_then(Value::as_str) {
            Some("tool_use") => {
                let Some(block_index) = data.get("index").and_then(Value::as_u64) else {
                    tracing::warn!("dropping an Anthropic tool_use block start without an index");
                    return Vec::new();
                };
                let index = self.tool_blocks.len();
                self.tool_blocks.push((block_index, index));
                let id = block.get("id").and_then(Value::as_str).unwrap_or_default();
                let name = block
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                vec![self.chunk(
                    json!({ "tool_calls": [{
                        "index": index,
                        "id": id,
                        "type": "function",
                        "function": { "name": name, "arguments": "" },
                    }] }),
                    None,
                )]
            }
            Some("text") => match block.get("text").and_then(Value::as_str) {
                Some(text) if !text.is_empty() => {
                    vec![self.chunk(json!({ "content": text }), None)]
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn block_delta(&mut self, data: &Value) -> Vec<Translated> {
        let Some(delta) = data.get("delta") else {
            return Vec::new();
        };
        match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => match delta.get("text").and_then(Value::as_str) {
                Some(text) if !text.is_empty() => {
                    vec![self.chunk(json!({ "content": text }), None)]
                }
                _ => Vec::new(),
            },
            Some("input_json_delta") => {
                let partial = delta
                    .get("partial_json")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if partial.is_empty() {
                    return Vec::new();
                }
                let block_index = data.get("index").and_then(Value::as_u64);
                let Some(index) = self
                    .tool_blocks
                    .iter()
                    .find(|(b, _)| Some(*b) == block_index)
                    .map(|(_, i)| *i)
                else {
                    tracing::warn!("dropping an Anthropic input_json_delta for an unknown block");
                    return Vec::new();
                };
                vec![self.chunk(
                    json!({ "tool_calls": [{ "index": index, "function": { "arguments": partial } }] }),
                    None,
                )]
            }
            _ => Vec::new(),
        }
    }

    fn message_delta(&mut self, data: &Value) -> Vec<Translated> {
        if let Some(usage) = data.get("usage") {
            self.usage.update(usage);
        }
        let Some(delta) = data.get("delta") else {
            return Vec::new();
        };
        match delta.get("stop_reason") {
            None | Some(Value::Null) => Vec::new(),
            Some(reason) => vec![self.chunk(json!({}), Some(finish_reason(reason.as_str())))],
        }
    }

    fn message_stop(&mut self) -> Vec<Translated> {
        self.finished = true;
        let mut out = Vec::with_capacity(2);
        if self.include_usage {
            let chunk = json!({
                "id": openai_id(self.id.as_deref()),
                "object": "chat.completion.chunk",
                "created": 0,
                "model": self.model,
                "choices": [],
                "usage": self.usage.to_openai(),
            });
            out.push(Translated::Chunk(chunk.to_string()));
        }
        out.push(Translated::Done);
        out
    }
}
