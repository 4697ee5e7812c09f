//! Internal stream events → Responses SSE events.

use serde_json::{json, Map, Value};

use super::super::model::{BlockKind, StopReason, StreamEvent, Usage};
use super::super::sse_out::{Emitted, EventKind};
use super::super::MAX_ACCUMULATED_BYTES;
use super::response::function_call_item;
use super::{response_id, response_object, status_for, usage_json, ToolNames};

#[derive(Debug, Clone)]
enum ItemKind {
    /// A message with one content part: output text, or a refusal.
    Message { refusal: bool, text: String },
    FunctionCall {
        call_id: String,
        name: String,
        arguments: String,
    },
}

#[derive(Debug, Clone)]
struct Item {
    block: usize,
    id: String,
    kind: ItemKind,
    open: bool,
}

/// Encodes one stream for a Responses client, in the Responses event grammar, every event
/// with a `sequence_number` counted from 0:
///
/// `response.created`, `response.in_progress`; per text or refusal block a `message` item
/// (`response.output_item.added`, `response.content_part.added`, `response.output_text.delta`
/// or `response.refusal.delta`s, `response.output_text.done` or `response.refusal.done`,
/// `response.content_part.done`, `response.output_item.done`); per tool call a
/// `function_call` item (`response.output_item.added`,
/// `response.function_call_arguments.delta`s, `response.function_call_arguments.done`,
/// `response.output_item.done`); at the end `response.completed` (or `response.incomplete`
/// after a length or content-filter stop) with the whole output and usage; for an error
/// `response.failed`.
///
/// Reasoning is dropped (only a Responses upstream, which is relayed unchanged, has
/// reasoning a Responses client can send back). Namespaced tool names are restored from
/// `names`. The text and arguments kept for the final events are capped at
/// [`MAX_ACCUMULATED_BYTES`]; past it the stream fails.
#[derive(Debug, Clone)]
pub struct StreamEncoder {
    model: String,
    id: String,
    names: ToolNames,
    seq: u64,
    started: bool,
    items: Vec<Item>,
    usage: Usage,
    stop: Option<StopReason>,
    kept: usize,
    finished: bool,
}

impl StreamEncoder {
    /// An encoder reporting `model`; `fallback_id` names the response until `Start` gives one.
    pub fn new(model: &str, fallback_id: &str, names: ToolNames) -> Self {
        StreamEncoder {
            model: model.to_owned(),
            id: response_id(fallback_id),
            names,
            seq: 0,
            started: false,
            items: Vec::new(),
            usage: Usage::default(),
            stop: None,
            kept: 0,
            finished: false,
        }
    }

    fn event(&mut self, name: &'static str, fields: Value, kind: EventKind) -> Emitted {
        let mut data = Map::new();
        data.insert("type".into(), json!(name));
        data.insert("sequence_number".into(), json!(self.seq));
        self.seq += 1;
        if let Value::Object(more) = fields {
            data.extend(more);
        }
        Emitted::new(Some(name), Value::Object(data).to_string(), kind)
    }

    fn response(&self, status: &str) -> Value {
        response_object(&self.id, &self.model, status)
    }

    fn start(&mut self, out: &mut Vec<Emitted>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response("in_progress");
        let e = self.event(
            "response.created",
            json!({ "response": response }),
            EventKind::Held,
        );
        out.push(e);
        let e = self.event(
            "response.in_progress",
            json!({ "response": response }),
            EventKind::Held,
        );
        out.push(e);
    }

    fn item_json(&self, item: &Item, status: &str) -> Value {
        match &item.kind {
            ItemKind::Message { refusal, text } => json!({
                "id": item.id,
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": if status == "in_progress" { json!([]) } else { json!([part_json(*refusal, text)]) },
            }),
            ItemKind::FunctionCall {
                call_id,
                name,
                arguments,
            } => function_call_item(&item.id, call_id, name, arguments, status, &self.names),
        }
    }

    fn position(&self, block: usize) -> Option<usize> {
        self.items.iter().position(|i| i.block == block && i.open)
    }

    /// Encodes one internal event, appending what the client gets to `out`.
    pub(crate) fn push(&mut self, event: &StreamEvent, out: &mut Vec<Emitted>) {
        if self.finished {
            return;
        }
        match event {
            StreamEvent::Start { id } => {
                if let Some(id) = id.as_deref().filter(|s| !s.is_empty()) {
                    self.id = response_id(id);
                }
                self.start(out);
            }
            StreamEvent::BlockStart { block, kind } => self.block_start(*block, kind, out),
            StreamEvent::TextDelta { block, text } | StreamEvent::RefusalDelta { block, text } => {
                self.text_delta(*block, text, out)
            }
            StreamEvent::ToolArgsDelta { block, json: args } => self.args_delta(*block, args, out),
            StreamEvent::BlockStop { block } => self.block_stop(*block, out),
            StreamEvent::Usage(update) => self.usage.apply(update),
            StreamEvent::Finish { stop, .. } => self.stop = *stop,
            StreamEvent::Error { kind, message, raw } => {
                let code = kind.clone().unwrap_or_else(|| "server_error".to_owned());
                let e = self.failed(&code, message, raw);
                out.push(e);
            }
            StreamEvent::Done => self.done(out),
            StreamEvent::ThinkingDelta { .. } | StreamEvent::SignatureDelta { .. } => {}
        }
    }

    fn block_start(&mut self, block: usize, kind: &BlockKind, out: &mut Vec<Emitted>) {
        let (prefix, kind) = match kind {
            BlockKind::Text => (
                "msg",
                ItemKind::Message {
                    refusal: false,
                    text: String::new(),
                },
            ),
            BlockKind::Refusal => (
                "msg",
                ItemKind::Message {
                    refusal: true,
                    text: String::new(),
                },
            ),
            BlockKind::ToolCall { id, name } => (
                "fc",
                ItemKind::FunctionCall {
                    call_id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                },
            ),
            BlockKind::Thinking { .. } => return,
        };
        self.start(out);
        let output_index = self.items.len();
        let item = Item {
            block,
            id: format!("{prefix}_{}_{output_index}", self.id),
            kind,
            open: true,
        };
        let added = self.item_json(&item, "in_progress");
        let e = self.event(
            "response.output_item.added",
            json!({ "output_index": output_index, "item": added }),
            EventKind::Held,
        );
        out.push(e);
        if let ItemKind::Message { refusal, .. } = &item.kind {
            let part = part_json(*refusal, "");
            let e = self.event(
                "response.content_part.added",
                json!({ "item_id": item.id, "output_index": output_index, "content_index": 0, "part": part }),
                EventKind::Held,
            );
            out.push(e);
        }
        self.items.push(item);
    }

    /// Counts `n` more kept bytes; false (and the failure emitted) past the cap.
    fn keep(&mut self, n: usize, out: &mut Vec<Emitted>) -> bool {
        self.kept = self.kept.saturating_add(n);
        if self.kept <= MAX_ACCUMULATED_BYTES {
            return true;
        }
        let message = format!(
            "the answer is larger than the {MAX_ACCUMULATED_BYTES} bytes the gateway can translate"
        );
        let e = self.failed("response_too_large", &message, &message);
        out.push(e);
        false
    }

    fn text_delta(&mut self, block: usize, text: &str, out: &mut Vec<Emitted>) {
        let Some(pos) = self.position(block) else {
            return;
        };
        if !self.keep(text.len(), out) {
            return;
        }
        let item_id = self.items[pos].id.clone();
        let ItemKind::Message {
            refusal,
            text: kept,
        } = &mut self.items[pos].kind
        else {
            return;
        };
        kept.push_str(text);
        let name = if *refusal {
            "response.refusal.delta"
        } else {
            "response.output_text.delta"
        };
        let mut fields =
            json!({ "item_id": item_id, "output_index": pos, "content_index": 0, "delta": text });
        if let (false, Some(obj)) = (*refusal, fields.as_object_mut()) {
            obj.insert("logprobs".into(), json!([]));
        }
        let e = self.event(name, fields, EventKind::Content);
        out.push(e);
    }

    fn args_delta(&mut self, block: usize, args: &str, out: &mut Vec<Emitted>) {
        let Some(pos) = self.position(block) else {
            return;
        };
        if !self.keep(args.len(), out) {
            return;
        }
        let item_id = self.items[pos].id.clone();
        let ItemKind::FunctionCall { arguments, .. } = &mut self.items[pos].kind else {
            return;
        };
        arguments.push_str(args);
        let e = self.event(
            "response.function_call_arguments.delta",
            json!({ "item_id": item_id, "output_index": pos, "delta": args }),
            EventKind::Content,
        );
        out.push(e);
    }

    fn block_stop(&mut self, block: usize, out: &mut Vec<Emitted>) {
        let Some(pos) = self.position(block) else {
            return;
        };
        self.items[pos].open = false;
        let item = self.items[pos].clone();
        match &item.kind {
            ItemKind::Message { refusal, text } => {
                let (name, fields) = if *refusal {
                    (
                        "response.refusal.done",
                        json!({ "item_id": item.id, "output_index": pos, "content_index": 0, "refusal": text }),
                    )
                } else {
                    (
                        "response.output_text.done",
                        json!({ "item_id": item.id, "output_index": pos, "content_index": 0, "text": text, "logprobs": [] }),
                    )
                };
                let e = self.event(name, fields, EventKind::Held);
                out.push(e);
                let e = self.event(
                    "response.content_part.done",
                    json!({ "item_id": item.id, "output_index": pos, "content_index": 0, "part": part_json(*refusal, text) }),
                    EventKind::Held,
                );
                out.push(e);
            }
            ItemKind::FunctionCall {
                name, arguments, ..
            } => {
                let plain = self.names.restore(name).map_or(name.as_str(), |(_, n)| n);
                let e = self.event(
                    "response.function_call_arguments.done",
                    json!({ "item_id": item.id, "output_index": pos, "name": plain, "arguments": arguments }),
                    EventKind::Held,
                );
                out.push(e);
            }
        }
        let done = self.item_json(&item, "completed");
        let e = self.event(
            "response.output_item.done",
            json!({ "output_index": pos, "item": done }),
            EventKind::Held,
        );
        out.push(e);
    }

    fn done(&mut self, out: &mut Vec<Emitted>) {
        self.start(out);
        let open: Vec<usize> = self
            .items
            .iter()
            .filter(|i| i.open)
            .map(|i| i.block)
            .collect();
        for block in open {
            self.block_stop(block, out);
        }
        self.finished = true;
        let (status, details) = status_for(self.stop);
        let mut response = self.response(status);
        let output: Vec<Value> = self
            .items
            .iter()
            .map(|i| self.item_json(i, "completed"))
            .collect();
        if let Some(obj) = response.as_object_mut() {
            obj.insert("output".into(), Value::Array(output));
            obj.insert("incomplete_details".into(), details);
            obj.insert("usage".into(), usage_json(&self.usage));
        }
        let name = if status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        let e = self.event(name, json!({ "response": response }), EventKind::Done);
        out.push(e);
    }

    fn failed(&mut self, code: &str, message: &str, detail: &str) -> Emitted {
        self.finished = true;
        let mut response = self.response("failed");
        if let Some(obj) = response.as_object_mut() {
            obj.insert("error".into(), json!({ "code": code, "message": message }));
        }
        self.event(
            "response.failed",
            json!({ "response": response }),
            EventKind::Error {
                detail: detail.to_owned(),
            },
        )
    }

    /// The terminal error event after commit: `response.failed` with `code` and `message`.
    pub(crate) fn terminal_error(&mut self, message: &str, code: &str) -> Emitted {
        self.failed(code, message, message)
    }
}

fn part_json(refusal: bool, text: &str) -> Value {
    if refusal {
        json!({ "type": "refusal", "refusal": text })
    } else {
        json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] })
    }
}

/// `response.failed` for a relayed Responses stream that must end after commit: `seq` is the
/// next sequence number, `id` the response's id.
pub(crate) fn terminal_failed(
    seq: u64,
    id: &str,
    model: &str,
    message: &str,
    code: &str,
) -> Emitted {
    let mut response = response_object(id, model, "failed");
    if let Some(obj) = response.as_object_mut() {
        obj.insert("error".into(), json!({ "code": code, "message": message }));
    }
    let data = json!({ "type": "response.failed", "sequence_number": seq, "response": response });
    Emitted::new(
        Some("response.failed"),
        data.to_string(),
        EventKind::Error {
            detail: message.to_owned(),
        },
    )
}
