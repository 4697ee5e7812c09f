//! `chat.completion.chunk`s → internal stream events.

use serde_json::Value;

use super::super::json::{str_of, type_of, u64_of};
use super::super::model::{BlockKind, StreamEvent};
use super::{finish_reason_from, usage_update};
use crate::sse::{self, SseEvent};

/// Decodes one Chat Completions stream, one chunk at a time.
///
/// The first chunk gives `Start` (with its `id`). In the first choice's delta, non-empty
/// `content` → text deltas (opening a text block), `refusal` → refusal deltas, and each
/// `tool_calls[i]` → a tool-call block (opened by the first delta of index `i`, which should
/// carry its `id` and `name`; a missing id becomes `call_<i>`) and its argument deltas. Blocks
/// run one after another: a new block closes the open one (text, refusal or call), and
/// arguments that arrive for a call after a later block began are dropped (and reported). `finish_reason` → `Finish` and the blocks are
/// closed; a `usage` object → `Usage`; `[DONE]` → `Done`. An `error` object (or an
/// `event: error`) → `Error`. Data that is not JSON is dropped; provider extensions such as
/// `reasoning_content` are ignored.
#[derive(Debug, Clone, Default)]
pub struct StreamDecoder {
    started: bool,
    text_block: Option<usize>,
    refusal_block: Option<usize>,
    /// Chat tool call index → internal block id.
    tools: Vec<(u64, usize)>,
    open: Vec<usize>,
    next_block: usize,
    finish_seen: bool,
    finished: bool,
}

impl StreamDecoder {
    /// A decoder for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn open(&mut self, kind: BlockKind, out: &mut Vec<StreamEvent>) -> usize {
        let block = self.next_block;
        self.next_block += 1;
        self.open.push(block);
        out.push(StreamEvent::BlockStart { block, kind });
        block
    }

    fn close(&mut self, block: usize, out: &mut Vec<StreamEvent>) {
        if let Some(pos) = self.open.iter().position(|b| *b == block) {
            self.open.remove(pos);
            out.push(StreamEvent::BlockStop { block });
        }
    }

    fn close_all(&mut self, out: &mut Vec<StreamEvent>) {
        for block in std::mem::take(&mut self.open) {
            out.push(StreamEvent::BlockStop { block });
        }
        self.text_block = None;
        self.refusal_block = None;
    }

    /// Decodes one upstream event into `out`. Returns why the event was dropped, if it was.
    pub(crate) fn push(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) -> Option<String> {
        if self.finished {
            return None;
        }
        if sse::is_done(event) {
            self.finished = true;
            self.close_all(out);
            out.push(StreamEvent::Done);
            return None;
        }
        let is_error_event = event.event.as_deref() == Some("error");
        let data: Value = match serde_json::from_str(&event.data) {
            Ok(v) => v,
            Err(e) if !is_error_event => return Some(format!("event data is not JSON: {e}")),
            Err(_) => Value::Null,
        };
        if is_error_event || data.get("error").is_some_and(|e| !e.is_null()) {
            self.finished = true;
            let error = data.get("error").unwrap_or(&data);
            let message = str_of(error, "message")
                .or_else(|| error.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    format!("the upstream stream reported an error: {}", event.data)
                });
            let kind = type_of(error)
                .or_else(|| str_of(error, "code"))
                .map(str::to_owned);
            out.push(StreamEvent::Error {
                kind,
                message,
                raw: event.data.clone(),
            });
            return None;
        }
        if !data.is_object() {
            return None;
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: str_of(&data, "id").map(str::to_owned),
            });
        }
        let mut dropped = None;
        if let Some(choice) = data
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        {
            dropped = self.choice(choice, out);
        }
        if let Some(usage) = data.get("usage").filter(|u| u.is_object()) {
            out.push(StreamEvent::Usage(usage_update(usage)));
        }
        dropped
    }

    fn choice(&mut self, choice: &Value, out: &mut Vec<StreamEvent>) -> Option<String> {
        let mut dropped = None;
        if let Some(delta) = choice.get("delta") {
            if let Some(text) = str_of(delta, "content").filter(|t| !t.is_empty()) {
                let block = match self.text_block {
                    Some(b) => b,
                    None => {
                        self.close_all(out);
                        let b = self.open(BlockKind::Text, out);
                        self.text_block = Some(b);
                        b
                    }
                };
                out.push(StreamEvent::TextDelta {
                    block,
                    text: text.to_owned(),
                });
            }
            if let Some(text) = str_of(delta, "refusal").filter(|t| !t.is_empty()) {
                let block = match self.refusal_block {
                    Some(b) => b,
                    None => {
                        self.close_all(out);
                        let b = self.open(BlockKind::Refusal, out);
                        self.refusal_block = Some(b);
                        b
                    }
                };
                out.push(StreamEvent::RefusalDelta {
                    block,
                    text: text.to_owned(),
                });
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(why) = self.tool_call(call, out) {
                    dropped = Some(why);
                }
            }
        }
        if let Some(reason) = choice.get("finish_reason").filter(|r| !r.is_null()) {
            self.finish_seen = true;
            self.close_all(out);
            out.push(StreamEvent::Finish {
                stop: finish_reason_from(reason.as_str()),
                stop_sequence: None,
            });
        }
        dropped
    }

    fn tool_call(&mut self, call: &Value, out: &mut Vec<StreamEvent>) -> Option<String> {
        let index = u64_of(call, "index").unwrap_or(0);
        let function = call.get("function");
        let block = match self.tools.iter().find(|(i, _)| *i == index) {
            Some((_, b)) => *b,
            None => {
                // Blocks run one after another, as Anthropic's do: a new call closes the
                // text and the previous call.
                if let Some(text) = self.text_block.take() {
                    self.close(text, out);
                }
                if let Some(&(_, previous)) = self.tools.last() {
                    self.close(previous, out);
                }
                let id = str_of(call, "id")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("call_{index}"));
                let name = function
                    .and_then(|f| str_of(f, "name"))
                    .unwrap_or_default()
                    .to_owned();
                let b = self.open(BlockKind::ToolCall { id, name }, out);
                self.tools.push((index, b));
                b
            }
        };
        if let Some(args) = function
            .and_then(|f| str_of(f, "arguments"))
            .filter(|a| !a.is_empty())
        {
            if !self.open.contains(&block) {
                return Some(format!(
                    "arguments for tool call {index} after a later call began"
                ));
            }
            out.push(StreamEvent::ToolArgsDelta {
                block,
                json: args.to_owned(),
            });
        }
        None
    }

    /// The upstream ended cleanly. Returns whether the answer was complete (a
    /// `finish_reason` was seen), appending `Done` when the upstream did not send `[DONE]`.
    pub(crate) fn end(&mut self, out: &mut Vec<StreamEvent>) -> bool {
        if self.finished {
            return true;
        }
        self.finished = true;
        if self.finish_seen {
            self.close_all(out);
            out.push(StreamEvent::Done);
        }
        self.finish_seen
    }
}
