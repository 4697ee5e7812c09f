//! Helpers shared by the stream recovery tests: upstream streams as providers send them, a
//! relay through the ordinary translator, and a reader of each client API's stream that
//! checks its grammar the way the official SDKs read it.
#![allow(dead_code)]

use bytes::Bytes;
use serde_json::{json, Value};
use switchback_core::apis::{ApiRequest, ClientApi, ClientEvent, StreamTranslator, UpstreamApi};
use switchback_core::classify::Failure;
use switchback_core::config::{load_str, Config, Provider};
use switchback_core::gateway::ProviderId;
use switchback_core::recovery::{ContinuationState, ContinuationStep, Recovery};
use switchback_core::sse::{SseEvent, SseFramer};

/// A config with every style: its providers are looked up by model.
pub const PROVIDERS: &str = "model_providers:
  - model: openai/gpt-4o
    access_key: sk-test-secret-key-0001
    continuation: assistant_prefill
    retry_policy:
      fallback_models: [anthropic/claude]
      stream_recovery: {max_continuations: 3}
  - model: anthropic/claude
    access_key: sk-ant-secret-0002
  - model: mistral/mistral-large
    access_key: mistral-secret-0003
    continuation: mistral_prefix
  - model: deepseek/deepseek-chat
    access_key: deepseek-secret-0004
    continuation: deepseek_prefix
  - model: vllm/llama
    base_url: http://127.0.0.1:8000
    access_key: vllm-secret-0005
    continuation: vllm_continue_final_message
  - model: groq/llama
    access_key: groq-secret-0006
";

pub fn config() -> Config {
    load_str(PROVIDERS, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

/// The entry for `model`, and its id.
pub fn provider(model: &str) -> (ProviderId, Provider) {
    let cfg = config();
    let i = cfg
        .providers
        .iter()
        .position(|p| p.model == model)
        .unwrap_or_else(|| panic!("{model} not configured"));
    (ProviderId(i), cfg.providers[i].clone())
}

pub fn recovery(api: ClientApi, max: u32, include_usage: bool) -> Recovery {
    Recovery::new(
        api,
        switchback_core::config::StreamRecovery {
            max_continuations: max,
        },
        include_usage,
    )
    .expect("a streaming API")
}

/// A streamed client request of `api` for `model`.
pub fn request(api: ClientApi, model: &str, include_usage: bool) -> ApiRequest {
    let body = match api {
        ClientApi::ChatCompletions => {
            let mut v = json!({"model": model, "messages": [{"role": "user", "content": "Tell me a story."}], "stream": true, "seed": 7, "frequency_penalty": 0.50});
            if include_usage {
                v["stream_options"] = json!({"include_usage": true});
            }
            v
        }
        ClientApi::Messages => {
            json!({"model": model, "max_tokens": 512, "system": "Be brief.", "messages": [{"role": "user", "content": "Tell me a story."}], "stream": true, "metadata": {"user_id": "u1"}})
        }
        ClientApi::Responses => {
            json!({"model": model, "instructions": "Be brief.", "input": "Tell me a story.", "stream": true})
        }
        other => panic!("{other:?} does not stream"),
    };
    ApiRequest::inspect(api, Bytes::from(body.to_string())).expect("a valid request")
}

fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(name) => format!("event: {name}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// A Chat Completions upstream stream: role chunk, one chunk per piece, then (with
/// `finish`) the finish chunk, the usage chunk and `[DONE]`.
pub fn chat_upstream(id: &str, pieces: &[&str], finish: Option<&str>) -> Vec<u8> {
    let chunk = |delta: Value, finish: Value| json!({"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    let mut out = sse(
        None,
        &chunk(json!({"role": "assistant", "content": ""}), Value::Null),
    );
    for p in pieces {
        out.push_str(&sse(None, &chunk(json!({"content": p}), Value::Null)));
    }
    if let Some(f) = finish {
        out.push_str(&sse(None, &chunk(json!({}), json!(f))));
        out.push_str(&sse(
            None,
            &json!({"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o", "choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49}}),
        ));
        out.push_str("data: [DONE]\n\n");
    }
    out.into_bytes()
}

/// An Anthropic Messages upstream stream: `message_start`, one text block with one delta per
/// piece, then (with `stop`) the block stop, `message_delta` and `message_stop`.
pub fn anthropic_upstream(id: &str, pieces: &[&str], stop: Option<&str>) -> Vec<u8> {
    let mut out = sse(
        Some("message_start"),
        &json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 31, "output_tokens": 1}}}),
    );
    out.push_str(&sse(Some("ping"), &json!({"type": "ping"})));
    out.push_str(&sse(
        Some("content_block_start"),
        &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ));
    for p in pieces {
        out.push_str(&sse(
            Some("content_block_delta"),
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
        ));
    }
    if let Some(s) = stop {
        out.push_str(&sse(
            Some("content_block_stop"),
            &json!({"type": "content_block_stop", "index": 0}),
        ));
        out.push_str(&sse(
            Some("message_delta"),
            &json!({"type": "message_delta", "delta": {"stop_reason": s, "stop_sequence": null}, "usage": {"output_tokens": 12}}),
        ));
        out.push_str(&sse(Some("message_stop"), &json!({"type": "message_stop"})));
    }
    out.into_bytes()
}

/// An upstream stream of `api` (Chat or Messages).
pub fn upstream(api: UpstreamApi, id: &str, pieces: &[&str], finish: bool) -> Vec<u8> {
    match api {
        UpstreamApi::Messages => anthropic_upstream(id, pieces, finish.then_some("end_turn")),
        _ => chat_upstream(id, pieces, finish.then_some("stop")),
    }
}

/// Frames SSE bytes.
pub fn frame(bytes: &[u8]) -> Vec<SseEvent> {
    let mut framer = SseFramer::new(1 << 24);
    framer.push(bytes);
    let mut out = Vec::new();
    while let Some(ev) = framer.next_event() {
        out.push(ev.expect("within limits"));
    }
    out
}

/// The client events the ordinary relay makes of an upstream stream of `upstream` for a
/// client of `client` (a relay for the same API, a translation otherwise).
pub fn relay(
    client: ClientApi,
    upstream: UpstreamApi,
    include_usage: bool,
    sse: &[u8],
) -> Vec<ClientEvent> {
    let mut t = StreamTranslator::translating(
        upstream,
        client,
        "openai/gpt-4o",
        include_usage,
        Default::default(),
    );
    frame(sse).iter().flat_map(|e| t.push(e)).collect()
}

pub fn bytes_of(events: &[ClientEvent]) -> Vec<u8> {
    events.iter().flat_map(|e| e.bytes.to_vec()).collect()
}

/// Feeds a continuation's upstream stream to `rec` event by event, appending the forwarded
/// bytes to `client`; `cut`: the stream ends without its end (a clean EOF after the events).
pub fn continue_with(
    rec: &mut Recovery,
    sse: &[u8],
    client: &mut Vec<u8>,
    eof: bool,
) -> ContinuationState {
    let mut state = ContinuationState::Waiting;
    for ev in frame(sse) {
        let step = rec.push_continuation(&ev);
        client.extend_from_slice(&step.bytes());
        state = step.state;
        if matches!(
            state,
            ContinuationState::Complete | ContinuationState::Failed
        ) {
            return state;
        }
    }
    if eof {
        let step: ContinuationStep = rec.end_continuation();
        client.extend_from_slice(&step.bytes());
        state = step.state;
    }
    state
}

/// A 400 rejecting the prefill, as an upstream sends it.
pub fn prefill_rejected() -> Failure {
    Failure::Http {
        status: 400,
        headers: Default::default(),
        body: Bytes::from_static(br#"{"type":"error","error":{"type":"invalid_request_error","message":"Prefilling assistant messages is not supported for this model."}}"#),
    }
}

/// What a client of one API reads from a stream, with its grammar checked.
#[derive(Debug, Default)]
pub struct ClientView {
    /// The answer's text, as the SDK accumulates it.
    pub text: String,
    /// Whether the stream ended with its API's completion marker, nothing after it.
    pub complete: bool,
    /// The in-band error that ended it, if any (nothing after it either).
    pub error: Option<Value>,
    /// The `switchback` field, where the stream carries it.
    pub switchback: Option<Value>,
    /// Chat: role chunks; Messages: `message_start`s; Responses: `response.created`s.
    pub starts: usize,
    /// Chat: usage chunks.
    pub usage_chunks: usize,
    /// Chat chunk ids, Messages message ids, Responses response ids (one stream: one id).
    pub ids: Vec<String>,
}

/// Reads a client stream of `api`, panicking on any grammar error: anything after the end
/// marker or the error, a second start, ids that change, Responses sequence numbers that
/// do not rise by one, text that a final Responses event repeats differently.
pub fn read(api: ClientApi, bytes: &[u8]) -> ClientView {
    let mut v = ClientView::default();
    let mut ended = false;
    let mut seq: Option<u64> = None;
    let note_id = |v: &mut ClientView, id: Option<&str>| {
        if let Some(id) = id {
            if !v.ids.iter().any(|x| x == id) {
                v.ids.push(id.to_owned());
            }
        }
    };
    for ev in frame(bytes) {
        assert!(!ended, "an event after the end of the stream: {ev:?}");
        if ev.data.trim() == "[DONE]" {
            assert_eq!(api, ClientApi::ChatCompletions);
            v.complete = true;
            ended = true;
            continue;
        }
        let data: Value =
            serde_json::from_str(&ev.data).unwrap_or_else(|e| panic!("{e}: {}", ev.data));
        if let Some(sb) = data.get("switchback") {
            assert!(v.switchback.is_none(), "two switchback fields");
            v.switchback = Some(sb.clone());
        }
        match api {
            ClientApi::ChatCompletions => {
                if let Some(e) = data.get("error") {
                    v.error = Some(e.clone());
                    ended = true;
                    continue;
                }
                note_id(&mut v, data["id"].as_str());
                if data["choices"].as_array().is_some_and(|c| c.is_empty()) {
                    v.usage_chunks += 1;
                }
                for c in data["choices"].as_array().into_iter().flatten() {
                    if c["delta"].get("role").is_some() {
                        v.starts += 1;
                    }
                    if let Some(t) = c["delta"]["content"].as_str() {
                        v.text.push_str(t);
                    }
                }
            }
            ClientApi::Messages => {
                let name = ev.event.clone().unwrap_or_default();
                assert_eq!(
                    data["type"].as_str(),
                    Some(name.as_str()),
                    "event name and type agree"
                );
                match name.as_str() {
                    "message_start" => {
                        v.starts += 1;
                        note_id(&mut v, data["message"]["id"].as_str());
                    }
                    "content_block_delta" => {
                        if let Some(t) = data["delta"]["text"].as_str() {
                            v.text.push_str(t);
                        }
                    }
                    "message_stop" => {
                        v.complete = true;
                        ended = true;
                    }
                    "error" => {
                        v.error = Some(data["error"].clone());
                        ended = true;
                    }
                    _ => {}
                }
            }
            ClientApi::Responses => {
                let n = data["sequence_number"].as_u64().expect("a sequence number");
                if let Some(prev) = seq {
                    assert_eq!(n, prev + 1, "sequence numbers rise by one");
                }
                seq = Some(n);
                match data["type"].as_str().unwrap_or_default() {
                    "response.created" => {
                        v.starts += 1;
                        note_id(&mut v, data["response"]["id"].as_str());
                    }
                    "response.output_text.delta" => {
                        v.text.push_str(data["delta"].as_str().unwrap())
                    }
                    "response.output_text.done" => {
                        assert!(
                            v.text.ends_with(data["text"].as_str().unwrap()),
                            "done repeats the text"
                        );
                    }
                    "response.completed" | "response.incomplete" => {
                        note_id(&mut v, data["response"]["id"].as_str());
                        let out: String = data["response"]["output"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
                            .filter_map(|p| p["text"].as_str().map(str::to_owned))
                            .collect();
                        assert_eq!(out, v.text, "the final response repeats the whole text");
                        v.complete = true;
                        ended = true;
                    }
                    "response.failed" => {
                        note_id(&mut v, data["response"]["id"].as_str());
                        v.error = Some(data["response"]["error"].clone());
                        ended = true;
                    }
                    _ => {}
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(v.ids.len() <= 1, "one stream, one id: {:?}", v.ids);
    v
}
