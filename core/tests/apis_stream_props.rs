//! Property tests over generated Chat streams: whatever the upstream sends, each client gets
//! its own API's grammar.

mod apis_support;

use apis_support::*;
use bytes::Bytes;
use serde_json::{json, Value};
use switchback_core::apis::{ClientApi, ClientEvent, EventKind, UpstreamApi};

/// One step of a generated Chat stream.
#[derive(Debug, Clone)]
enum Step {
    Text(String),
    Call { index: u64, with_id: bool },
    Finish(&'static str),
    Usage(u64),
}

fn chat_steps() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
    use proptest::prelude::*;
    let step = prop_oneof![
        3 => "[a-z ]{1,6}".prop_map(Step::Text),
        3 => (0u64..3, any::<bool>()).prop_map(|(index, with_id)| Step::Call { index, with_id }),
        1 => proptest::sample::select(&["stop", "length", "tool_calls", "content_filter"][..]).prop_map(Step::Finish),
        1 => (0u64..1000).prop_map(Step::Usage),
    ];
    proptest::collection::vec(step, 0..25)
}

/// The Chat SSE for the steps; each call's arguments are `{"n":<index>}` split in two halves
/// sent by its first two deltas, then `[DONE]` (when `done`).
fn chat_sse(steps: &[Step], done: bool) -> Vec<u8> {
    let mut out = String::new();
    let mut sent: Vec<(u64, usize)> = Vec::new();
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-p", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    for s in steps {
        match s {
            Step::Text(t) => out.push_str(&chunk(json!({"content": t}), Value::Null)),
            Step::Call { index, with_id } => {
                let args = format!("{{\"n\":{index}}}");
                let (a, b) = args.split_at(3);
                let n = sent.iter().filter(|(i, _)| i == index).count();
                let mut call = json!({"index": index, "function": {"arguments": if n == 0 { a } else if n == 1 { b } else { "" }}});
                if n == 0 {
                    call["function"]["name"] = json!(format!("f{index}"));
                    if *with_id {
                        call["id"] = json!(format!("call_{index}"));
                    }
                }
                sent.push((*index, n));
                out.push_str(&chunk(json!({"tool_calls": [call]}), Value::Null));
            }
            Step::Finish(r) => out.push_str(&chunk(json!({}), json!(r))),
            Step::Usage(n) => out.push_str(&format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-p", "choices": [], "usage": {"prompt_tokens": n, "completion_tokens": 1, "total_tokens": n + 1}})
            )),
        }
    }
    if done {
        out.push_str("data: [DONE]\n\n");
    }
    out.into_bytes()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Whatever a Chat upstream streams, a Messages client gets Anthropic's grammar (one block
    /// at a time, deltas only for open blocks, `message_delta` after the blocks, nothing
    /// after `message_stop`) and a Responses client gets numbered events whose final response
    /// repeats what the deltas built.
    #[test]
    fn translated_streams_keep_each_clients_grammar(steps in chat_steps(), done in proptest::prelude::any::<bool>()) {
        let sse = chat_sse(&steps, done);
        let m = run(&mut translator(ClientApi::Messages, UpstreamApi::ChatCompletions, false), &sse, 17);
        accumulate_messages_lenient(&m);
        let r = run(&mut translator(ClientApi::Responses, UpstreamApi::ChatCompletions, false), &sse, 17);
        accumulate_responses(&r);
        let c = run(&mut translator(ClientApi::ChatCompletions, UpstreamApi::Messages, true),
            &run(&mut translator(ClientApi::Messages, UpstreamApi::ChatCompletions, false), &sse, 64)
                .iter().flat_map(|e| e.bytes.to_vec()).collect::<Vec<u8>>(), 5);
        let c = accumulate_chat(&c);
        proptest::prop_assert!(c["roles"].as_u64().unwrap_or(0) <= 1, "at most one role chunk");
    }
}

/// [`accumulate_messages`] without requiring tool inputs to be complete JSON (a generated
/// call may be cut by a later one).
fn accumulate_messages_lenient(events: &[ClientEvent]) {
    let filtered: Vec<ClientEvent> = events
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Dropped { .. }))
        .cloned()
        .map(|mut e| {
            let (name, mut data) = parsed(&e);
            if name.as_deref() == Some("content_block_delta")
                && data["delta"]["type"] == "input_json_delta"
            {
                // Keep the grammar check, not the JSON one.
                data["delta"] = json!({"type": "text_delta", "text": ""});
                e.bytes = Bytes::from(format!("event: content_block_delta\ndata: {data}\n\n"));
            }
            e
        })
        .collect();
    accumulate_messages(&filtered);
}
