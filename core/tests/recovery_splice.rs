//! Stream recovery end to end in the core (spec §12): a stream cut after commit, a
//! continuation built for a candidate, its stream spliced into the client's, for every
//! client API and both continuation upstream APIs; failures, limits and what cannot be
//! continued.

mod recovery_support;

use recovery_support::*;
use serde_json::json;
use switchback_core::apis::{ClientApi, UpstreamApi};
use switchback_core::classify::{Failure, TransportFailure};
use switchback_core::recovery::{ContinuationState, NoContinuation, NotContinuable, Recovery};

const PARTS: &[&str] = &["Once upon ", "a time there ", "was a fox "];
const REST: &[&str] = &["who lived ", "in the woods."];

/// The client's stream so far: `PARTS` of an `upstream` stream relayed to `api`, cut.
fn cut_stream(api: ClientApi, upstream: UpstreamApi, include_usage: bool) -> (Recovery, Vec<u8>) {
    let mut rec = recovery(api, 2, include_usage);
    let events = relay(
        api,
        upstream,
        include_usage,
        &upstream_stream(upstream, PARTS, false),
    );
    let client = bytes_of(&events);
    // Split anywhere: the recovery frames what it is fed.
    for piece in client.chunks(7) {
        rec.observe(piece);
    }
    rec.stream_failed("openai/gpt-4o", "stream_truncated");
    (rec, client)
}

fn upstream_stream(api: UpstreamApi, pieces: &[&str], finish: bool) -> Vec<u8> {
    upstream(api, "up1", pieces, finish)
}

#[test]
fn every_client_api_gets_one_complete_answer_from_either_upstream() {
    for api in [
        ClientApi::ChatCompletions,
        ClientApi::Messages,
        ClientApi::Responses,
    ] {
        for original in [UpstreamApi::ChatCompletions, UpstreamApi::Messages] {
            for (target, cont) in [
                ("openai/gpt-4o", UpstreamApi::ChatCompletions),
                ("anthropic/claude", UpstreamApi::Messages),
            ] {
                let label = format!("{api:?} <- {original:?}, continued by {target}");
                let (mut rec, mut client) = cut_stream(api, original, true);
                assert!(rec.can_continue(), "{label}");
                assert_eq!(rec.relayed_text(), PARTS.concat(), "{label}");
                let (id, p) = provider(target);
                let plan = rec
                    .next_continuation(&request(api, "openai/gpt-4o", true), id, &p)
                    .unwrap_or_else(|e| panic!("{label}: {e:?}"));
                assert_eq!(plan.upstream, cont, "{label}");
                let state = continue_with(
                    &mut rec,
                    &upstream_stream(cont, REST, true),
                    &mut client,
                    true,
                );
                assert_eq!(state, ContinuationState::Complete, "{label}");
                let v = read(api, &client);
                assert!(v.complete && v.error.is_none(), "{label}: {v:?}");
                assert_eq!(
                    v.text,
                    format!("{}{}", PARTS.concat(), REST.concat()),
                    "{label}"
                );
                assert_eq!(v.starts, 1, "{label}: no second start");
                let sb = v
                    .switchback
                    .unwrap_or_else(|| panic!("{label}: no switchback field"));
                assert_eq!(sb["continuations"], 1, "{label}");
                assert_eq!(sb["models"], json!([target]), "{label}");
                assert_eq!(
                    sb["failures"][0]["error_type"], "stream_truncated",
                    "{label}"
                );
                if api == ClientApi::ChatCompletions {
                    assert_eq!(v.usage_chunks, 1, "{label}: one usage chunk");
                }
                assert!(rec.is_finished());
                assert!(rec.summary().completed);
            }
        }
    }
}

#[test]
fn chat_without_include_usage_carries_switchback_on_the_finish_chunk() {
    let (mut rec, mut client) = cut_stream(
        ClientApi::ChatCompletions,
        UpstreamApi::ChatCompletions,
        false,
    );
    let (id, p) = provider("openai/gpt-4o");
    rec.next_continuation(
        &request(ClientApi::ChatCompletions, "openai/gpt-4o", false),
        id,
        &p,
    )
    .unwrap();
    continue_with(
        &mut rec,
        &chat_upstream("c2", REST, Some("stop")),
        &mut client,
        true,
    );
    let v = read(ClientApi::ChatCompletions, &client);
    assert_eq!(v.usage_chunks, 0);
    assert!(v.complete);
    assert_eq!(v.switchback.unwrap()["continuations"], 1);
    // Same id, model and created as the relayed chunks.
    let chunks: Vec<serde_json::Value> = frame(&client)
        .iter()
        .filter_map(|e| serde_json::from_str(&e.data).ok())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["id"] == "up1" && c["created"] == 1700000000 && c["model"] == "gpt-4o"),
        "{chunks:#?}"
    );
}

#[test]
fn anthropic_prefill_loses_trailing_whitespace_and_the_client_never_sees_it_twice() {
    let (mut rec, mut client) = cut_stream(
        ClientApi::ChatCompletions,
        UpstreamApi::ChatCompletions,
        true,
    );
    assert!(rec.relayed_text().ends_with(' '));
    let (id, p) = provider("anthropic/claude");
    let plan = rec
        .next_continuation(
            &request(ClientApi::ChatCompletions, "openai/gpt-4o", true),
            id,
            &p,
        )
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&plan.body).unwrap();
    let last = body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last,
        json!({"role": "assistant", "content": "Once upon a time there was a fox"})
    );
    // Anthropic continues with the space the prefill lost.
    continue_with(
        &mut rec,
        &anthropic_upstream("m2", &[" who", " lived."], Some("end_turn")),
        &mut client,
        true,
    );
    let v = read(ClientApi::ChatCompletions, &client);
    assert_eq!(v.text, "Once upon a time there was a fox who lived.");
}

#[test]
fn a_rejected_prefill_moves_on_and_every_failure_is_named() {
    let (mut rec, mut client) = cut_stream(ClientApi::Messages, UpstreamApi::Messages, false);
    let req = request(ClientApi::Messages, "anthropic/claude", false);
    let (a, pa) = provider("anthropic/claude");
    rec.next_continuation(&req, a, &pa).unwrap();
    rec.fail_continuation(&prefill_rejected(), &pa);
    assert!(rec.can_continue());
    let (o, po) = provider("openai/gpt-4o");
    rec.next_continuation(&req, o, &po).unwrap();
    let state = continue_with(
        &mut rec,
        &chat_upstream("c", REST, Some("stop")),
        &mut client,
        true,
    );
    assert_eq!(state, ContinuationState::Complete);
    let v = read(ClientApi::Messages, &client);
    assert_eq!(v.text, format!("{}{}", PARTS.concat(), REST.concat()));
    let sb = v.switchback.unwrap();
    assert_eq!(sb["continuations"], 2);
    assert_eq!(sb["models"], json!(["anthropic/claude", "openai/gpt-4o"]));
    let f = &sb["failures"][1];
    assert_eq!(f["error_type"], "http_400");
    assert_eq!(f["status"], 400);
    assert_eq!(f["continuation"], "native");
    assert!(f["message"].as_str().unwrap().contains("Prefilling"), "{f}");
}

#[test]
fn when_every_candidate_rejects_the_error_lists_each_failure_in_the_clients_shape() {
    for api in [
        ClientApi::ChatCompletions,
        ClientApi::Messages,
        ClientApi::Responses,
    ] {
        let (mut rec, mut client) = cut_stream(api, UpstreamApi::ChatCompletions, true);
        let req = request(api, "openai/gpt-4o", true);
        let (o, po) = provider("openai/gpt-4o");
        rec.next_continuation(&req, o, &po).unwrap();
        rec.fail_continuation(&prefill_rejected(), &po);
        let (a, pa) = provider("anthropic/claude");
        rec.next_continuation(&req, a, &pa).unwrap();
        // An empty continuation: a finish and nothing else.
        let state = continue_with(
            &mut rec,
            &anthropic_upstream("m", &[], Some("end_turn")),
            &mut client,
            true,
        );
        assert_eq!(state, ContinuationState::Failed, "{api:?}");
        assert_eq!(
            rec.next_continuation(&req, o, &po),
            Err(NoContinuation::NotContinuable(
                NotContinuable::LimitReached(2)
            ))
        );
        client.extend_from_slice(&rec.terminal_error(
            "The upstream stream ended before the answer was complete.",
            "stream_truncated",
        ));
        let v = read(api, &client);
        assert!(!v.complete, "{api:?}");
        assert_eq!(
            v.text,
            PARTS.concat(),
            "{api:?}: nothing of the failed continuations"
        );
        let e = v.error.unwrap();
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains("openai/gpt-4o (assistant_prefill): http_400"),
            "{message}"
        );
        assert!(
            message.contains("anthropic/claude (native): no_content"),
            "{message}"
        );
        assert_eq!(e["code"], "stream_truncated");
        let sb = v.switchback.unwrap();
        assert_eq!(sb["failures"].as_array().unwrap().len(), 3, "{sb}");
        assert_eq!(sb["not_continued"], "max_continuations");
        assert!(rec.is_finished());
        assert!(!rec.summary().completed);
    }
}

#[test]
fn a_continuation_that_starts_over_is_refused() {
    let (mut rec, mut client) = cut_stream(
        ClientApi::ChatCompletions,
        UpstreamApi::ChatCompletions,
        true,
    );
    let (o, po) = provider("openai/gpt-4o");
    rec.next_continuation(
        &request(ClientApi::ChatCompletions, "openai/gpt-4o", true),
        o,
        &po,
    )
    .unwrap();
    let restart = chat_upstream(
        "c",
        &["Once upon a time ", "there was a fox who"],
        Some("stop"),
    );
    assert_eq!(
        continue_with(&mut rec, &restart, &mut client, true),
        ContinuationState::Failed
    );
    assert_eq!(
        rec.summary().failures.last().unwrap().error_type,
        "restarted"
    );
    assert_eq!(
        read(ClientApi::ChatCompletions, &client).text,
        PARTS.concat()
    );
}

#[test]
fn a_continuation_cut_after_its_text_began_is_continued_from_the_longer_text() {
    let (mut rec, mut client) = cut_stream(ClientApi::Responses, UpstreamApi::Messages, true);
    let req = request(ClientApi::Responses, "openai/gpt-4o", true);
    let (a, pa) = provider("anthropic/claude");
    rec.next_continuation(&req, a, &pa).unwrap();
    let state = continue_with(
        &mut rec,
        &anthropic_upstream("m", &["who lived "], None),
        &mut client,
        true,
    );
    assert_eq!(state, ContinuationState::Failed);
    let f = rec.summary().failures.last().unwrap().clone();
    assert_eq!(f.error_type, "stream_truncated");
    assert_eq!(f.relayed_chars, "who lived ".len());
    assert_eq!(
        rec.relayed_text(),
        "Once upon a time there was a fox who lived "
    );
    let (o, po) = provider("openai/gpt-4o");
    let plan = rec.next_continuation(&req, o, &po).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&plan.body).unwrap();
    assert_eq!(
        body["messages"].as_array().unwrap().last().unwrap()["content"],
        "Once upon a time there was a fox who lived "
    );
    continue_with(
        &mut rec,
        &chat_upstream("c", &["in the woods."], Some("stop")),
        &mut client,
        true,
    );
    let v = read(ClientApi::Responses, &client);
    assert!(v.complete);
    assert_eq!(
        v.text,
        "Once upon a time there was a fox who lived in the woods."
    );
}

#[test]
fn transport_failures_and_in_band_errors_fail_the_continuation() {
    let (mut rec, mut client) = cut_stream(
        ClientApi::ChatCompletions,
        UpstreamApi::ChatCompletions,
        true,
    );
    let req = request(ClientApi::ChatCompletions, "openai/gpt-4o", true);
    let (o, po) = provider("openai/gpt-4o");
    rec.next_continuation(&req, o, &po).unwrap();
    rec.fail_continuation(
        &Failure::Transport(TransportFailure::Timeout {
            after: std::time::Duration::from_secs(30),
        }),
        &po,
    );
    assert_eq!(
        rec.summary().failures.last().unwrap().error_type,
        "timeout_30000ms"
    );
    let (a, pa) = provider("anthropic/claude");
    rec.next_continuation(&req, a, &pa).unwrap();
    let overloaded = b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    assert_eq!(
        continue_with(&mut rec, overloaded, &mut client, false),
        ContinuationState::Failed
    );
    let f = rec.summary().failures.last().unwrap();
    assert_eq!(f.error_type, "stream_error");
    assert!(f.message.as_deref().unwrap().contains("overloaded_error"));
}

#[test]
fn credentials_echoed_in_an_error_body_are_scrubbed() {
    let (mut rec, _) = cut_stream(
        ClientApi::ChatCompletions,
        UpstreamApi::ChatCompletions,
        true,
    );
    let (o, po) = provider("openai/gpt-4o");
    rec.next_continuation(
        &request(ClientApi::ChatCompletions, "openai/gpt-4o", true),
        o,
        &po,
    )
    .unwrap();
    rec.fail_continuation(
        &Failure::Http {
            status: 401,
            headers: Default::default(),
            body: bytes::Bytes::from_static(
                br#"{"error":{"message":"bad key sk-test-secret-key-0001"}}"#,
            ),
        },
        &po,
    );
    let bytes = rec.terminal_error("cut", "stream_truncated");
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("sk-test-secret-key-0001"), "{text}");
    assert!(text.contains("bad key ***"), "{text}");
}

#[test]
fn what_cannot_be_continued_is_never_continued() {
    let (o, po) = provider("openai/gpt-4o");
    let req = request(ClientApi::ChatCompletions, "openai/gpt-4o", true);
    // Nothing relayed.
    let rec = &mut recovery(ClientApi::ChatCompletions, 2, true);
    assert_eq!(rec.why_not(), Some(NotContinuable::NoText));
    assert!(matches!(
        rec.next_continuation(&req, o, &po),
        Err(NoContinuation::NotContinuable(NotContinuable::NoText))
    ));
    // Only whitespace.
    let rec = &mut recovery(ClientApi::ChatCompletions, 2, true);
    rec.observe(&bytes_of(&relay(
        ClientApi::ChatCompletions,
        UpstreamApi::ChatCompletions,
        true,
        &chat_upstream("x", &["  \n"], None),
    )));
    assert_eq!(rec.why_not(), Some(NotContinuable::NoText));
    // A tool call.
    let rec = &mut recovery(ClientApi::ChatCompletions, 2, true);
    rec.observe(b"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me check.\"}}]}\n\n");
    assert!(rec.can_continue());
    rec.observe(b"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n");
    assert_eq!(rec.why_not(), Some(NotContinuable::ToolCall));
    // Several choices.
    let rec = &mut recovery(ClientApi::ChatCompletions, 2, true);
    rec.observe(
        b"data: {\"id\":\"x\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"b\"}}]}\n\n",
    );
    assert_eq!(rec.why_not(), Some(NotContinuable::MultipleChoices));
    // A finish reason already sent: complete, only its end was lost.
    let rec = &mut recovery(ClientApi::ChatCompletions, 2, true);
    rec.observe(&bytes_of(
        &relay(
            ClientApi::ChatCompletions,
            UpstreamApi::ChatCompletions,
            true,
            &chat_upstream("x", &["done"], Some("stop")),
        )[..3],
    ));
    assert_eq!(rec.why_not(), Some(NotContinuable::AnswerComplete));
    // Messages: thinking.
    let rec = &mut recovery(ClientApi::Messages, 2, true);
    rec.observe(b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n");
    assert_eq!(rec.why_not(), Some(NotContinuable::Reasoning));
    // Responses: a function call.
    let rec = &mut recovery(ClientApi::Responses, 2, true);
    rec.observe(b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":3,\"item_id\":\"m\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n\nevent: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":4,\"item_id\":\"f\",\"output_index\":1,\"delta\":\"{\"}\n\n");
    assert_eq!(rec.why_not(), Some(NotContinuable::ToolCall));
    // A terminal error names why.
    let text = String::from_utf8(rec.terminal_error("cut", "stream_truncated").to_vec()).unwrap();
    assert!(
        text.contains("The stream was not continued: a tool call had reached the client."),
        "{text}"
    );
    assert!(text.contains("\"not_continued\":\"tool_call\""), "{text}");
}

#[test]
fn a_candidate_without_a_style_is_skipped_and_calls_are_answered_in_order() {
    let (mut rec, _) = cut_stream(
        ClientApi::ChatCompletions,
        UpstreamApi::ChatCompletions,
        true,
    );
    let req = request(ClientApi::ChatCompletions, "openai/gpt-4o", true);
    let (g, pg) = provider("groq/llama");
    assert!(matches!(
        rec.next_continuation(&req, g, &pg),
        Err(NoContinuation::Skipped(_))
    ));
    assert_eq!(
        rec.summary().continuations(),
        0,
        "a skipped candidate is no continuation"
    );
    let (o, po) = provider("openai/gpt-4o");
    rec.next_continuation(&req, o, &po).unwrap();
    assert!(rec.is_continuing());
    assert_eq!(
        rec.next_continuation(&req, o, &po),
        Err(NoContinuation::Busy)
    );
    // A new relayed chunk cannot arrive while continuing; a terminal error records the
    // continuation in flight as abandoned.
    rec.terminal_error("deadline", "request_timeout");
    assert_eq!(
        rec.summary().failures.last().unwrap().error_type,
        "abandoned"
    );
    assert!(matches!(
        rec.next_continuation(&req, o, &po),
        Err(NoContinuation::NotContinuable(NotContinuable::Ended))
    ));
}

#[test]
fn the_summary_reads_well_in_a_log_line() {
    let (mut rec, mut client) = cut_stream(
        ClientApi::ChatCompletions,
        UpstreamApi::ChatCompletions,
        true,
    );
    let req = request(ClientApi::ChatCompletions, "openai/gpt-4o", true);
    let (o, po) = provider("openai/gpt-4o");
    rec.next_continuation(&req, o, &po).unwrap();
    rec.fail_continuation(&prefill_rejected(), &po);
    let (a, pa) = provider("anthropic/claude");
    rec.next_continuation(&req, a, &pa).unwrap();
    continue_with(
        &mut rec,
        &anthropic_upstream("m", REST, Some("end_turn")),
        &mut client,
        true,
    );
    let line = rec.summary().to_string();
    assert!(
        line.starts_with("2 continuation(s) on openai/gpt-4o, anthropic/claude; completed"),
        "{line}"
    );
    assert!(
        line.contains("openai/gpt-4o (assistant_prefill): http_400"),
        "{line}"
    );
}

#[test]
fn a_budget_or_deadline_stop_is_named_in_the_error() {
    let (mut rec, mut client) = cut_stream(ClientApi::Messages, UpstreamApi::Messages, false);
    assert!(rec.can_continue());
    rec.stop(NotContinuable::RetryBudget);
    client.extend_from_slice(&rec.terminal_error("cut", "stream_truncated"));
    let v = read(ClientApi::Messages, &client);
    let e = v.error.unwrap();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("the retry budget admits no more retries"),
        "{e}"
    );
    assert_eq!(v.switchback.unwrap()["not_continued"], "retry_budget");
}
