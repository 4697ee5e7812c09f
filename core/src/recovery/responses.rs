//! An OpenAI Responses client's stream, for recovery: what the relayed events say, and the
//! events that carry a continuation's text and end the stream.
//!
//! Responses repeats the whole answer at the end (`response.output_text.done`,
//! `response.output_item.done`, `response.completed`), so the relayed items are kept: each
//! finished item as the stream gave it, and the text of each open message part.

use serde_json::{json, Map, Value};

use super::relayed::{Ending, NotContinuable, Relayed};
use crate::apis::responses::{status_for, usage_json};
use crate::apis::{ClientEvent, EventKind};
use crate::sse::SseEvent;

#[derive(Debug, Clone)]
struct Part {
    index: u64,
    text: String,
    open: bool,
}

#[derive(Debug, Clone)]
struct Item {
    output_index: u64,
    id: String,
    /// `message`, `reasoning`, `web_search_call`, ...
    kind: String,
    /// The item as `response.output_item.done` gave it.
    done: Option<Value>,
    /// A message's output-text parts.
    parts: Vec<Part>,
}

/// The relayed response: its id and object, the next sequence number, and its items. A
/// continuation's text goes on as further `response.output_text.delta`s of the open message
/// part, with the same item id and sequence numbers that continue the relayed ones.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResponsesStream {
    next_seq: u64,
    /// The response object of the latest `response.created` / `response.in_progress`.
    response: Option<Value>,
    items: Vec<Item>,
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

impl ResponsesStream {
    fn item_mut(&mut self, data: &Value) -> Option<&mut Item> {
        let id = str_at(data, "item_id");
        let index = data.get("output_index").and_then(Value::as_u64);
        self.items
            .iter_mut()
            .rev()
            .find(|i| Some(i.id.as_str()) == id || (id.is_none() && Some(i.output_index) == index))
    }

    /// Reads one relayed event.
    pub(crate) fn observe(&mut self, event: &SseEvent, r: &mut Relayed) {
        let data: Option<Value> = serde_json::from_str(&event.data).ok();
        let name = event
            .event
            .as_deref()
            .filter(|n| *n != "message")
            .or_else(|| data.as_ref().and_then(|d| str_at(d, "type")))
            .unwrap_or_default()
            .to_owned();
        let Some(data) = data else {
            if matches!(name.as_str(), "error" | "response.failed") {
                r.block(NotContinuable::Ended);
            }
            return;
        };
        if let Some(seq) = data.get("sequence_number").and_then(Value::as_u64) {
            self.next_seq = self.next_seq.max(seq.saturating_add(1));
        }
        let content_index = data
            .get("content_index")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match name.as_str() {
            "response.created" | "response.in_progress" => {
                if let Some(resp) = data.get("response").filter(|v| v.is_object()) {
                    if r.keep(resp.to_string().len()) {
                        self.response = Some(resp.clone());
                    }
                }
            }
            "response.output_item.added" => {
                let item = data.get("item");
                let kind = item.and_then(|i| str_at(i, "type")).unwrap_or_default();
                if matches!(kind, "function_call" | "custom_tool_call") {
                    r.block(NotContinuable::ToolCall);
                }
                self.items.push(Item {
                    output_index: data
                        .get("output_index")
                        .and_then(Value::as_u64)
                        .unwrap_or(self.items.len() as u64),
                    id: item
                        .and_then(|i| str_at(i, "id"))
                        .unwrap_or_default()
                        .to_owned(),
                    kind: kind.to_owned(),
                    done: None,
                    parts: Vec::new(),
                });
            }
            "response.content_part.added" => {
                let part = data.get("part").and_then(|p| str_at(p, "type"));
                if part == Some("refusal") {
                    r.block(NotContinuable::Refusal);
                }
                if let Some(item) = self.item_mut(&data) {
                    item.parts.push(Part {
                        index: content_index,
                        text: String::new(),
                        open: true,
                    });
                }
            }
            "response.output_text.delta" => {
                let text = str_at(&data, "delta").unwrap_or_default().to_owned();
                r.add_text(&text);
                if !r.keep(text.len()) {
                    return;
                }
                if let Some(item) = self.item_mut(&data) {
                    match item.parts.iter_mut().find(|p| p.index == content_index) {
                        Some(p) => p.text.push_str(&text),
                        None => item.parts.push(Part {
                            index: content_index,
                            text,
                            open: true,
                        }),
                    }
                }
            }
            "response.output_text.done" | "response.content_part.done" => {
                if let Some(item) = self.item_mut(&data) {
                    for p in item.parts.iter_mut().filter(|p| p.index == content_index) {
                        p.open = false;
                    }
                }
            }
            "response.output_item.done" => {
                let item = data.get("item").cloned().unwrap_or(Value::Null);
                let kept = r.keep(item.to_string().len());
                if let Some(slot) = self.item_mut(&data) {
                    slot.parts.iter_mut().for_each(|p| p.open = false);
                    if kept {
                        slot.done = Some(item);
                    }
                }
            }
            "response.refusal.delta" => r.block(NotContinuable::Refusal),
            "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta" => {
                r.block(NotContinuable::ToolCall);
            }
            "response.completed" | "response.incomplete" => r.block(NotContinuable::AnswerComplete),
            "response.failed" | "error" => r.block(NotContinuable::Ended),
            _ => {}
        }
    }

    fn response_id(&self) -> String {
        self.response
            .as_ref()
            .and_then(|r| str_at(r, "id"))
            .unwrap_or("resp_switchback")
            .to_owned()
    }

    /// The response object for a final event, with `status`.
    fn response(&self, status: &str) -> Value {
        let mut resp = self.response.clone().unwrap_or_else(|| {
            crate::apis::responses::response_object(&self.response_id(), "", status)
        });
        if let Some(obj) = resp.as_object_mut() {
            obj.insert("status".into(), json!(status));
            obj.insert("error".into(), Value::Null);
        }
        resp
    }

    fn event(
        &self,
        seq: &mut u64,
        name: &'static str,
        fields: Value,
        kind: EventKind,
    ) -> ClientEvent {
        let mut data = Map::new();
        data.insert("type".into(), json!(name));
        data.insert("sequence_number".into(), json!(*seq));
        *seq += 1;
        if let Value::Object(more) = fields {
            data.extend(more);
        }
        ClientEvent {
            bytes: SseEvent {
                event: Some(name.to_owned()),
                data: Value::Object(data).to_string(),
                id: None,
                retry: None,
            }
            .to_bytes(),
            kind,
        }
    }

    /// The open message part text goes on in: (item position, part position).
    fn open_part(&self) -> Option<(usize, usize)> {
        let (i, item) = self
            .items
            .iter()
            .enumerate()
            .rev()
            .find(|(_, i)| i.kind == "message")?;
        if item.done.is_some() {
            return None;
        }
        let p = item.parts.iter().rposition(|p| p.open)?;
        Some((i, p))
    }

    /// The events carrying `text`: when no message part is open, a new message item
    /// (`response.output_item.added`, `response.content_part.added`) first; then a
    /// `response.output_text.delta`.
    pub(crate) fn text(&self, text: &str) -> Vec<ClientEvent> {
        let mut seq = self.next_seq;
        let mut out = Vec::with_capacity(3);
        let (item_id, output_index, content_index) = match self.open_part() {
            Some((i, p)) => {
                let item = &self.items[i];
                (item.id.clone(), item.output_index, item.parts[p].index)
            }
            None => {
                let output_index = self
                    .items
                    .iter()
                    .map(|i| i.output_index.saturating_add(1))
                    .max()
                    .unwrap_or(0);
                let id = format!("msg_{}_{output_index}", self.response_id());
                let item = json!({ "id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": [] });
                out.push(self.event(
                    &mut seq,
                    "response.output_item.added",
                    json!({ "output_index": output_index, "item": item }),
                    EventKind::Held,
                ));
                out.push(self.event(
                    &mut seq,
                    "response.content_part.added",
                    json!({ "item_id": id, "output_index": output_index, "content_index": 0, "part": part_json("") }),
                    EventKind::Held,
                ));
                (id, output_index, 0)
            }
        };
        out.push(self.event(
            &mut seq,
            "response.output_text.delta",
            json!({ "item_id": item_id, "output_index": output_index, "content_index": content_index, "delta": text, "logprobs": [] }),
            EventKind::Content,
        ));
        out
    }

    fn message_json(item: &Item, status: &str) -> Value {
        let content: Vec<Value> = item.parts.iter().map(|p| part_json(&p.text)).collect();
        json!({ "id": item.id, "type": "message", "status": status, "role": "assistant", "content": content })
    }

    /// The end of a continued stream: the open message is finished
    /// (`response.output_text.done`, `response.content_part.done`,
    /// `response.output_item.done`, each repeating the whole text), then one
    /// `response.completed` (or `response.incomplete`) with every item, the continuation's
    /// usage and the `switchback` field.
    pub(crate) fn complete(&self, end: &Ending<'_>) -> Vec<ClientEvent> {
        let mut seq = self.next_seq;
        let mut out = Vec::new();
        let mut output = Vec::with_capacity(self.items.len());
        for item in &self.items {
            if let Some(done) = &item.done {
                output.push(done.clone());
                continue;
            }
            if item.kind != "message" {
                continue; // an unfinished item of another kind has nothing to repeat
            }
            for p in item.parts.iter().filter(|p| p.open) {
                out.push(self.event(
                    &mut seq,
                    "response.output_text.done",
                    json!({ "item_id": item.id, "output_index": item.output_index, "content_index": p.index, "text": p.text, "logprobs": [] }),
                    EventKind::Held,
                ));
                out.push(self.event(
                    &mut seq,
                    "response.content_part.done",
                    json!({ "item_id": item.id, "output_index": item.output_index, "content_index": p.index, "part": part_json(&p.text) }),
                    EventKind::Held,
                ));
            }
            let done = Self::message_json(item, "completed");
            out.push(self.event(
                &mut seq,
                "response.output_item.done",
                json!({ "output_index": item.output_index, "item": done }),
                EventKind::Held,
            ));
            output.push(done);
        }
        let (status, details) = status_for(end.stop);
        let mut resp = self.response(status);
        if let Some(obj) = resp.as_object_mut() {
            obj.insert("output".into(), Value::Array(output));
            obj.insert("incomplete_details".into(), details);
            obj.insert("usage".into(), usage_json(end.usage));
        }
        let name = if status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        out.push(self.event(
            &mut seq,
            name,
            json!({ "response": resp, "switchback": end.report }),
            EventKind::Done,
        ));
        out
    }

    /// `response.failed` with the next sequence number, the same response id, `error:
    /// {code, message}`, and the `switchback` report.
    pub(crate) fn terminal_error(&self, message: &str, code: &str, report: &Value) -> ClientEvent {
        let mut seq = self.next_seq;
        let mut resp = self.response("failed");
        if let Some(obj) = resp.as_object_mut() {
            obj.insert("error".into(), json!({ "code": code, "message": message }));
        }
        self.event(
            &mut seq,
            "response.failed",
            json!({ "response": resp, "switchback": report }),
            EventKind::Error {
                detail: message.to_owned(),
            },
        )
    }
}

fn part_json(text: &str) -> Value {
    json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] })
}
