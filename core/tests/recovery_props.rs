//! Property tests of stream recovery (spec §12): whatever was relayed, however the bytes
//! were split, whichever candidates reject the continuation first, the client reads the
//! relayed text followed by exactly one continuation's new text (never the answer begun
//! again, never a piece twice), in one well-formed stream that ends once, with nothing
//! after its end.

mod recovery_support;

use proptest::prelude::*;
use recovery_support::*;
use switchback_core::apis::{ClientApi, UpstreamApi};
use switchback_core::recovery::ContinuationState;

fn api() -> impl Strategy<Value = ClientApi> {
    prop_oneof![
        Just(ClientApi::ChatCompletions),
        Just(ClientApi::Messages),
        Just(ClientApi::Responses)
    ]
}

fn upstream_api() -> impl Strategy<Value = UpstreamApi> {
    prop_oneof![
        Just(UpstreamApi::ChatCompletions),
        Just(UpstreamApi::Messages)
    ]
}

fn pieces(max: usize) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("[a-zA-Zé ,.\n]{1,10}", 0..max)
}

/// The continuation's text: fresh text, or (a third of the time) the relayed text begun
/// again, as a target that ignores the prefill answers.
fn continuation(relayed: Vec<String>) -> impl Strategy<Value = (Vec<String>, Vec<String>)> {
    let r = relayed.clone();
    prop_oneof![
        2 => pieces(6).prop_map(move |c| (relayed.clone(), c)),
        1 => pieces(3).prop_map(move |tail| {
            let mut c = r.clone();
            c.extend(tail);
            (r.clone(), c)
        }),
    ]
}

fn case() -> impl Strategy<
    Value = (
        ClientApi,
        UpstreamApi,
        bool,
        usize,
        Vec<String>,
        Vec<String>,
        bool,
        usize,
    ),
> {
    (api(), upstream_api(), any::<bool>(), 1usize..40)
        .prop_flat_map(|(a, u, usage, chunk)| {
            pieces(8)
                .prop_flat_map(continuation)
                .prop_map(move |(r, c)| (a, u, usage, chunk, r, c))
        })
        .prop_flat_map(|(a, u, usage, chunk, r, c)| {
            (any::<bool>(), 0usize..3).prop_map(move |(anthropic, rejects)| {
                (a, u, usage, chunk, r.clone(), c.clone(), anthropic, rejects)
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_client_reads_the_prefix_then_one_continuation(
        (api, original, include_usage, chunk, relayed, cont, anthropic, rejects) in case()
    ) {
        let relayed_text: String = relayed.concat();
        let mut rec = recovery(api, 3, include_usage);
        let refs: Vec<&str> = relayed.iter().map(String::as_str).collect();
        let mut client = bytes_of(&relay(api, original, include_usage, &upstream(original, "up", &refs, false)));
        for piece in client.chunks(chunk) {
            rec.observe(piece);
        }
        prop_assert_eq!(rec.relayed_text(), relayed_text.as_str());
        if relayed_text.trim().is_empty() {
            prop_assert!(!rec.can_continue());
            return Ok(());
        }
        prop_assert!(rec.can_continue());
        rec.stream_failed("openai/gpt-4o", "stream_truncated");
        let req = request(api, "openai/gpt-4o", include_usage);
        // Candidates that reject the prefill first (at most two: max_continuations is 3).
        for _ in 0..rejects {
            let (id, p) = provider("mistral/mistral-large");
            rec.next_continuation(&req, id, &p).unwrap();
            rec.fail_continuation(&prefill_rejected(), &p);
        }
        let (target, cont_api) = if anthropic {
            ("anthropic/claude", UpstreamApi::Messages)
        } else {
            ("openai/gpt-4o", UpstreamApi::ChatCompletions)
        };
        let (id, p) = provider(target);
        let plan = rec.next_continuation(&req, id, &p).unwrap();
        prop_assert_eq!(plan.upstream, cont_api);
        let crefs: Vec<&str> = cont.iter().map(String::as_str).collect();
        let state = continue_with(&mut rec, &upstream(cont_api, "c", &crefs, true), &mut client, true);
        let cont_text: String = cont.concat();

        if state == ContinuationState::Failed {
            client.extend_from_slice(&rec.terminal_error("cut", "stream_truncated"));
        }
        let v = read(api, &client);
        prop_assert_eq!(v.starts, 1);
        // The relayed text comes first, untouched.
        prop_assert!(v.text.starts_with(&relayed_text));
        let new = &v.text[relayed_text.len()..];
        match state {
            ContinuationState::Complete => {
                prop_assert!(v.complete && v.error.is_none());
                prop_assert!(!new.is_empty());
                // The new text is the continuation's own, less only whitespace the client
                // already had (Anthropic's prefill cannot end in whitespace).
                prop_assert!(cont_text.ends_with(new), "{:?} is not the end of {:?}", new, cont_text);
                let dropped = &cont_text[..cont_text.len() - new.len()];
                let tail = &relayed_text[relayed_text.trim_end().len()..];
                prop_assert!(tail.starts_with(dropped), "dropped {:?}, tail {:?}", dropped, tail);
                if !anthropic {
                    prop_assert_eq!(dropped, "");
                }
                // Never the answer begun again.
                let begin: String = relayed_text.trim_start().chars().take(24).collect();
                if begin.chars().count() >= 8 {
                    prop_assert!(!new.trim_start().starts_with(begin.as_str()));
                }
                let sb = v.switchback.unwrap();
                prop_assert_eq!(sb["continuations"].as_u64(), Some(rejects as u64 + 1));
                prop_assert_eq!(sb["failures"].as_array().unwrap().len(), rejects + 1);
                if api == ClientApi::ChatCompletions {
                    prop_assert_eq!(v.usage_chunks, usize::from(include_usage));
                }
            }
            ContinuationState::Failed => {
                // Nothing of a failed continuation reached the client.
                prop_assert_eq!(new, "");
                prop_assert!(!v.complete);
                prop_assert!(v.error.is_some());
                let error_type = rec.summary().failures.last().unwrap().error_type.clone();
                prop_assert!(error_type == "no_content" || error_type == "restarted", "{}", error_type);
            }
            other => prop_assert!(false, "unexpected state {:?}", other),
        }
        prop_assert!(rec.is_finished());
    }
}

/// An SSE event of any of the three grammars, with fields that may be missing, mistyped or
/// out of order.
fn any_event() -> impl Strategy<Value = String> {
    let name = proptest::sample::select(
        &[
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
            "error",
            "response.created",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.output_item.done",
            "response.completed",
            "response.failed",
            "response.function_call_arguments.delta",
            "ping",
            "",
        ][..],
    );
    let value = prop_oneof![
        Just("null".to_owned()),
        Just("\"x\"".to_owned()),
        Just("7".to_owned()),
        Just("[]".to_owned()),
        Just("{\"type\":\"text\",\"text\":\"t\"}".to_owned()),
        Just("{\"type\":\"text_delta\",\"text\":\"t\"}".to_owned()),
        Just("{\"id\":\"r\",\"type\":\"message\"}".to_owned()),
        Just("[{\"index\":0,\"delta\":{\"content\":\"c\"}}]".to_owned()),
        Just(
            "[{\"index\":3,\"delta\":{\"tool_calls\":[1]},\"finish_reason\":\"stop\"}]".to_owned()
        ),
    ];
    let key = proptest::sample::select(
        &[
            "type",
            "index",
            "delta",
            "content_block",
            "item",
            "item_id",
            "output_index",
            "content_index",
            "sequence_number",
            "response",
            "choices",
            "usage",
            "error",
            "id",
            "part",
        ][..],
    );
    (
        name,
        proptest::collection::vec((key, value), 0..6),
        any::<bool>(),
    )
        .prop_map(|(name, fields, raw)| {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let data = if raw {
                "not json".to_owned()
            } else {
                format!("{{{}}}", body.join(","))
            };
            if name.is_empty() {
                format!("data: {data}\n\n")
            } else {
                format!("event: {name}\ndata: {data}\n\n")
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Nothing a stream carries makes recovery panic, and whatever it produced ends once.
    #[test]
    fn any_events_are_read_without_panic(
        api in api(),
        relayed in proptest::collection::vec(any_event(), 0..12),
        cont in proptest::collection::vec(any_event(), 0..12),
        anthropic in any::<bool>(),
        eof in any::<bool>(),
    ) {
        let mut rec = recovery(api, 2, true);
        for e in &relayed {
            rec.observe(e.as_bytes());
        }
        let req = request(api, "openai/gpt-4o", true);
        let target = if anthropic { "anthropic/claude" } else { "openai/gpt-4o" };
        let (id, p) = provider(target);
        let mut out = Vec::new();
        if rec.next_continuation(&req, id, &p).is_ok() {
            let state = continue_with(&mut rec, cont.concat().as_bytes(), &mut out, eof);
            if state != ContinuationState::Complete {
                out.extend_from_slice(&rec.terminal_error("cut", "stream_truncated"));
            }
        } else {
            out.extend_from_slice(&rec.terminal_error("cut", "stream_truncated"));
        }
        prop_assert!(rec.is_finished());
        // Whatever was produced is well-formed SSE with JSON data (or `[DONE]`).
        for ev in frame(&out) {
            prop_assert!(ev.data == "[DONE]" || serde_json::from_str::<serde_json::Value>(&ev.data).is_ok());
        }
        prop_assert!(rec.terminal_error("again", "x").is_empty(), "nothing after the end");
    }
}
