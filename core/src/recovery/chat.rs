//! A Chat Completions client's stream, for recovery: what the relayed chunks say, and the
//! chunks that carry a continuation's text and end the stream.

use serde_json::{json, Map, Value};

use super::relayed::{Ending, NotContinuable, Relayed};
use crate::apis::chat::{finish_reason_name, usage_json};
use crate::apis::{ClientEvent, EventKind};
use crate::sse::{self, SseEvent};

/// The stream's identity, as the relayed chunks gave it: every chunk the gateway adds
/// repeats it (same `id`, `model`, `created`), and none is a second role chunk.
#[derive(Debug, Clone)]
pub(crate) struct ChatStream {
    include_usage: bool,
    id: Option<String>,
    model: Option<String>,
    created: Option<Value>,
    system_fingerprint: Option<String>,
}

impl ChatStream {
    pub(crate) fn new(include_usage: bool) -> Self {
        ChatStream {
            include_usage,
            id: None,
            model: None,
            created: None,
            system_fingerprint: None,
        }
    }

    /// Reads one relayed event.
    pub(crate) fn observe(&mut self, event: &SseEvent, r: &mut Relayed) {
        if sse::is_done(event) {
            r.block(NotContinuable::Ended);
            return;
        }
        let Ok(Value::Object(chunk)) = serde_json::from_str::<Value>(&event.data) else {
            if event.event.as_deref() == Some("error") {
                r.block(NotContinuable::Ended);
            }
            return;
        };
        if event.event.as_deref() == Some("error")
            || chunk.get("error").is_some_and(|e| !e.is_null())
        {
            r.block(NotContinuable::Ended);
            return;
        }
        let text_of = |k: &str| chunk.get(k).and_then(Value::as_str).map(str::to_owned);
        if self.id.is_none() {
            self.id = text_of("id");
        }
        if self.model.is_none() {
            self.model = text_of("model");
        }
        if self.created.is_none() {
            self.created = chunk.get("created").cloned();
        }
        if self.system_fingerprint.is_none() {
            self.system_fingerprint = text_of("system_fingerprint");
        }
        let choices = chunk.get("choices").and_then(Value::as_array);
        if chunk.get("usage").is_some_and(Value::is_object) && choices.is_some_and(|c| c.is_empty())
        {
            // The final usage chunk: the answer was complete.
            r.block(NotContinuable::AnswerComplete);
        }
        for choice in choices.into_iter().flatten() {
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                r.block(NotContinuable::MultipleChoices);
                continue;
            }
            if let Some(delta) = choice.get("delta") {
                observe_delta(delta, r);
            }
            if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
                r.block(NotContinuable::AnswerComplete);
            }
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Map<String, Value> {
        let mut chunk = Map::new();
        chunk.insert(
            "id".into(),
            json!(self.id.as_deref().unwrap_or("chatcmpl-switchback")),
        );
        chunk.insert("object".into(), json!("chat.completion.chunk"));
        chunk.insert("created".into(), self.created.clone().unwrap_or(json!(0)));
        chunk.insert("model".into(), json!(self.model.as_deref().unwrap_or("")));
        if let Some(fp) = &self.system_fingerprint {
            chunk.insert("system_fingerprint".into(), json!(fp));
        }
        chunk.insert(
            "choices".into(),
            json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }]),
        );
        if self.include_usage {
            chunk.insert("usage".into(), Value::Null);
        }
        chunk
    }

    /// The chunk carrying `text` as a further content delta.
    pub(crate) fn text(&self, text: &str) -> Vec<ClientEvent> {
        vec![event(
            self.chunk(json!({ "content": text }), None),
            EventKind::Content,
        )]
    }

    /// The end of a continued stream: the finish chunk, the one usage chunk (when the
    /// client asked for usage) and `[DONE]`. The `switchback` field rides on the usage
    /// chunk, or on the finish chunk when there is none.
    pub(crate) fn complete(&self, end: &Ending<'_>) -> Vec<ClientEvent> {
        let mut finish = self.chunk(json!({}), Some(finish_reason_name(end.stop)));
        let mut out = Vec::with_capacity(3);
        if self.include_usage {
            out.push(event(finish, EventKind::Held));
            let mut usage = self.chunk(json!({}), None);
            usage.insert("choices".into(), json!([]));
            usage.insert("usage".into(), usage_json(end.usage));
            usage.insert("switchback".into(), end.report.clone());
            out.push(event(usage, EventKind::Held));
        } else {
            finish.insert("switchback".into(), end.report.clone());
            out.push(event(finish, EventKind::Held));
        }
        out.push(ClientEvent {
            bytes: sse::encode_data("[DONE]"),
            kind: EventKind::Done,
        });
        out
    }

    /// The in-band error that ends the stream without `[DONE]` (spec §6), with the
    /// `switchback` report beside the error object.
    pub(crate) fn terminal_error(&self, message: &str, code: &str, report: &Value) -> ClientEvent {
        let data = json!({
            "error": { "message": message, "type": "upstream_error", "code": code },
            "switchback": report,
        });
        ClientEvent {
            bytes: sse::encode_data(&data.to_string()),
            kind: EventKind::Error {
                detail: message.to_owned(),
            },
        }
    }
}

fn observe_delta(delta: &Value, r: &mut Relayed) {
    if let Some(text) = delta.get("content").and_then(Value::as_str) {
        r.add_text(text);
    }
    let non_empty = |k: &str| match delta.get(k) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    };
    if non_empty("tool_calls") || non_empty("function_call") {
        r.block(NotContinuable::ToolCall);
    }
    if non_empty("refusal") {
        r.block(NotContinuable::Refusal);
    }
}

fn event(chunk: Map<String, Value>, kind: EventKind) -> ClientEvent {
    ClientEvent {
        bytes: sse::encode_data(&Value::Object(chunk).to_string()),
        kind,
    }
}
