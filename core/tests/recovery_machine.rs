//! Stream recovery run by the retry machine (spec §12), in the simulation: a committed
//! stream that is cut, stalls or reports an error is continued by a candidate, and the
//! client reads one complete answer; a candidate that rejects the continuation is passed
//! over and named; limits (the retry budget, the deadline, blocks, `max_continuations`, what
//! was relayed) end the stream with an error that says why.

mod common;
mod recovery_support;

use std::time::Duration;

use recovery_support::{anthropic_upstream, chat_upstream, read, ClientView};
use serde_json::{json, Value};
use switchback_core::apis::ClientApi;
use switchback_core::machine::{Action, AttemptId, Event, Outcome, TransportError};
use switchback_core::sim::{Ending, FakeReply, SimResponse, Simulation};

const GAP: Duration = Duration::from_millis(20);

/// `n` numbered words, `from` first: "w1 w2 ...", each with its trailing space.
fn words(from: usize, n: usize) -> Vec<String> {
    (from..from + n).map(|i| format!("w{i} ")).collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// An SSE byte stream split into its events (each with its blank line).
fn events(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .split_inclusive("\n\n")
        .map(str::to_owned)
        .collect()
}

fn sse(events: &[String], ending: Ending) -> FakeReply {
    FakeReply::sse(&refs(events), GAP, ending)
}

/// A Chat Completions stream of `pieces`, complete or not.
fn chat(id: &str, pieces: &[String], complete: bool) -> Vec<String> {
    events(&chat_upstream(
        id,
        &refs(pieces),
        complete.then_some("stop"),
    ))
}

/// An Anthropic Messages stream of `pieces`, complete or not.
fn anthropic(id: &str, pieces: &[String], complete: bool) -> Vec<String> {
    events(&anthropic_upstream(
        id,
        &refs(pieces),
        complete.then_some("end_turn"),
    ))
}

/// The 400 a model that does not accept a prefill answers (Anthropic's words).
fn prefill_400() -> FakeReply {
    FakeReply::json(
        400,
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"Prefilling assistant messages is not supported for this model."}}"#,
    )
}

/// `openai/gpt-4o` (primary, `assistant_prefill`, falling back to `anthropic/claude`) and
/// `anthropic/claude` (native); `primary_lines` and `top` are extra YAML (the primary's
/// entry, indented by 4; top level).
fn config(primary_lines: &str, policy: &str, top: &str) -> String {
    format!(
        "version: v0.3.0
listeners:
  - type: model
    name: l
    port: 12000
    timeout: \"60s\"
{top}model_providers:
  - model: openai/gpt-4o
    base_url: http://127.0.0.1:1001
    access_key: sk-primary-secret
    default: true
    timeouts: {{first_token: 5s, idle: 2s}}
{primary_lines}    retry_policy:
      fallback_models: [anthropic/claude]
      default_max_attempts: 1
{policy}  - model: anthropic/claude
    base_url: http://127.0.0.1:1002
    access_key: sk-ant-secret
    timeouts: {{first_token: 5s, idle: 2s}}
"
    )
}

const PREFILL: &str = "    continuation: assistant_prefill\n";
const RECOVERY: &str = "      stream_recovery: {max_continuations: 2}\n";

fn sim(yaml: &str) -> Simulation {
    common::sim(yaml)
}

fn chat_request(extra: &str) -> String {
    format!(
        r#"{{"model":"openai/gpt-4o","messages":[{{"role":"user","content":"Count."}}],"stream":true{extra}}}"#
    )
}

fn messages_request() -> String {
    json!({"model": "openai/gpt-4o", "max_tokens": 256, "messages": [{"role": "user", "content": "Count."}], "stream": true}).to_string()
}

fn responses_request() -> String {
    json!({"model": "openai/gpt-4o", "input": "Count.", "stream": true}).to_string()
}

/// The client's view of a streamed answer, its grammar checked, and the machine's trace
/// checked: one `Finish`, last; after the stream's head only relaying and continuations.
fn view(api: ClientApi, r: &SimResponse) -> ClientView {
    assert!(
        r.streamed,
        "not a stream: {}",
        String::from_utf8_lossy(&r.body)
    );
    let finishes = r
        .trace
        .iter()
        .filter(|(_, a)| matches!(a, Action::Finish(_)))
        .count();
    assert_eq!(finishes, 1);
    assert!(matches!(r.trace.last(), Some((_, Action::Finish(_)))));
    let head = r
        .trace
        .iter()
        .position(|(_, a)| matches!(a, Action::StartStream { .. }))
        .expect("a stream head");
    for (_, a) in &r.trace[head + 1..] {
        assert!(
            matches!(
                a,
                Action::Forward(_)
                    | Action::Finish(_)
                    | Action::Cancel { .. }
                    | Action::Send { .. }
            ),
            "after the head: {a:?}"
        );
    }
    read(api, &r.body)
}

fn summary(r: &SimResponse) -> &switchback_core::machine::Summary {
    r.summary.as_ref().expect("finished")
}

/// Each recorded attempt (for metrics and traces): its model, `error_type` and status.
fn recorded(sum: &switchback_core::machine::Summary) -> Vec<(&str, &str, Option<u16>)> {
    sum.records
        .iter()
        .map(|a| (a.model.as_str(), a.error_type.as_str(), a.status))
        .collect()
}

/// The request body the upstream of `model` got on call `n` (from 0), as JSON.
fn received(s: &Simulation, model: &str, n: usize) -> Value {
    let up = s.upstream(model).expect("scripted");
    serde_json::from_slice(&up.received[n]).expect("a JSON request body")
}

#[test]
fn a_cut_after_40_of_60_words_is_continued_by_the_same_model() {
    let mut s = sim(&config(PREFILL, RECOVERY, ""));
    let first = words(1, 40);
    let rest = words(41, 20);
    s.script(
        "openai/gpt-4o",
        vec![
            sse(&chat("chatcmpl-1", &first, false), Ending::Cut),
            sse(&chat("chatcmpl-2", &rest, true), Ending::End),
        ],
    );
    s.script("anthropic/claude", vec![prefill_400()]);
    let r = s
        .chat(&chat_request(r#","stream_options":{"include_usage":true}"#))
        .unwrap();
    let v = view(ClientApi::ChatCompletions, &r);
    assert!(v.complete && v.error.is_none(), "{v:?}");
    assert_eq!(v.text, words(1, 60).concat());
    assert_eq!(v.starts, 1, "one role chunk");
    assert_eq!(
        v.ids,
        vec!["chatcmpl-1".to_owned()],
        "the relayed id throughout"
    );
    assert_eq!(v.usage_chunks, 1, "one usage chunk");
    let sb = v.switchback.expect("the switchback field");
    assert_eq!(sb["continuations"], 1);
    assert_eq!(sb["models"], json!(["openai/gpt-4o"]));
    assert_eq!(sb["failures"][0]["stage"], "stream");
    assert_eq!(sb["failures"][0]["error_type"], "stream_interrupted");
    assert_eq!(
        sb["failures"][0]["relayed_chars"],
        first.concat().chars().count()
    );
    assert!(r.body.ends_with(b"data: [DONE]\n\n"), "[DONE] last");

    // The continuation: the original request plus the relayed text as the assistant turn.
    let q = received(&s, "openai/gpt-4o", 1);
    let msgs = q["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0], json!({"role": "user", "content": "Count."}));
    assert_eq!(
        msgs[1],
        json!({"role": "assistant", "content": first.concat()})
    );
    assert_eq!(q["stream"], true);
    assert_eq!(q["model"], "gpt-4o");
    assert_eq!(s.calls("anthropic/claude"), 0);

    let sum = summary(&r);
    assert_eq!(sum.outcome, Outcome::Success);
    assert_eq!(sum.attempts, 2);
    // Both attempts are recorded, for metrics and traces: the broken stream, then the
    // continuation that finished it.
    assert_eq!(
        recorded(sum),
        vec![
            ("openai/gpt-4o", "stream_aborted", Some(200)),
            ("openai/gpt-4o", "ok", Some(200)),
        ]
    );
    let rec = sum.recovery.as_ref().expect("the recovery summary");
    assert!(rec.completed);
    let line = rec.to_string();
    assert!(
        line.starts_with("1 continuation(s) on openai/gpt-4o; completed"),
        "{line}"
    );
}

#[test]
fn a_stall_past_idle_is_continued_by_the_fallback_for_a_messages_client() {
    // The primary has no continuation style: only the fallback is asked.
    let mut s = sim(&config("", RECOVERY, ""));
    let first = words(1, 20);
    let rest = words(21, 5);
    s.script(
        "openai/gpt-4o",
        vec![sse(&chat("chatcmpl-1", &first, false), Ending::Stall)],
    );
    s.script(
        "anthropic/claude",
        vec![sse(&anthropic("msg_c", &rest, true), Ending::End)],
    );
    let r = s.post("/v1/messages", &[], &messages_request()).unwrap();
    let v = view(ClientApi::Messages, &r);
    assert!(v.complete && v.error.is_none(), "{v:?}");
    assert_eq!(v.text, words(1, 25).concat());
    assert_eq!(v.starts, 1, "one message_start");
    let sb = v.switchback.expect("switchback");
    assert_eq!(sb["models"], json!(["anthropic/claude"]));
    assert_eq!(sb["failures"][0]["error_type"], "timeout_2000ms");
    assert_eq!(s.calls("openai/gpt-4o"), 1);

    // Native: a Messages request whose last turn is the text without its trailing space.
    let up = s.upstream("anthropic/claude").unwrap();
    assert_eq!(up.received_paths[0], "/v1/messages");
    let q = received(&s, "anthropic/claude", 0);
    let msgs = q["messages"].as_array().unwrap();
    assert_eq!(
        msgs.last().unwrap(),
        &json!({"role": "assistant", "content": first.concat().trim_end()})
    );
    assert_eq!(q["stream"], true);
    // The stall was detected after `idle`, and the continuation started at once.
    let sends: Vec<_> = r
        .trace
        .iter()
        .filter(|(_, a)| matches!(a, Action::Send { .. }))
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(sends.len(), 2);
    let stalled_at = r.started + GAP * (first.len() as u32 + 1);
    assert!(sends[1] >= stalled_at + Duration::from_secs(2), "{sends:?}");
    assert!(sends[1] < stalled_at + Duration::from_secs(3), "{sends:?}");
    assert_eq!(summary(&r).outcome, Outcome::Success);
}

#[test]
fn a_fallback_that_rejects_the_prefill_is_passed_over_and_the_primary_continues() {
    // The primary is rate limited; the fallback streams, is cut, and rejects its own
    // continuation; the primary accepts it. A Responses client reads one answer.
    let mut s = sim(&config(PREFILL, RECOVERY, ""));
    let first = words(1, 12);
    let rest = words(13, 6);
    s.script(
        "openai/gpt-4o",
        vec![
            FakeReply::json(
                429,
                r#"{"error":{"message":"slow down","type":"rate_limit"}}"#,
            ),
            sse(&chat("chatcmpl-p", &rest, true), Ending::End),
        ],
    );
    s.script(
        "anthropic/claude",
        vec![
            sse(&anthropic("msg_1", &first, false), Ending::Cut),
            prefill_400(),
        ],
    );
    let r = s.post("/v1/responses", &[], &responses_request()).unwrap();
    let v = view(ClientApi::Responses, &r);
    assert!(v.complete && v.error.is_none(), "{v:?}");
    assert_eq!(v.text, words(1, 18).concat());
    let sb = v.switchback.expect("switchback");
    assert_eq!(sb["continuations"], 2);
    assert_eq!(sb["models"], json!(["anthropic/claude", "openai/gpt-4o"]));
    let failures = sb["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "{sb}");
    assert_eq!(failures[1]["model"], "anthropic/claude");
    assert_eq!(failures[1]["error_type"], "http_400");
    assert!(
        failures[1]["message"]
            .as_str()
            .unwrap()
            .contains("Prefilling assistant messages is not supported"),
        "{sb}"
    );
    // Same model first: the fallback was asked before the primary.
    assert_eq!(s.calls("anthropic/claude"), 2);
    let q = received(&s, "openai/gpt-4o", 1);
    assert_eq!(
        q["messages"].as_array().unwrap().last().unwrap(),
        &json!({"role": "assistant", "content": first.concat()})
    );
    let sum = summary(&r);
    assert_eq!(sum.attempts, 4);
    assert_eq!(
        recorded(sum),
        vec![
            ("openai/gpt-4o", "http_429", Some(429)),
            ("anthropic/claude", "stream_aborted", Some(200)),
            ("anthropic/claude", "http_400", Some(400)),
            ("openai/gpt-4o", "ok", Some(200)),
        ]
    );
}

#[test]
fn every_candidate_rejecting_ends_with_an_error_naming_each_failure() {
    let mut s = sim(&config(PREFILL, RECOVERY, ""));
    let first = words(1, 5);
    s.script(
        "openai/gpt-4o",
        vec![
            sse(&chat("chatcmpl-1", &first, false), Ending::Cut),
            FakeReply::json(
                400,
                r#"{"error":{"message":"assistant prefill is not supported","type":"invalid_request_error"}}"#,
            ),
        ],
    );
    s.script("anthropic/claude", vec![prefill_400()]);
    let r = s.chat(&chat_request("")).unwrap();
    let v = view(ClientApi::ChatCompletions, &r);
    assert!(!v.complete, "no [DONE] after a failed recovery");
    assert_eq!(v.text, first.concat(), "nothing but the relayed text");
    let e = v.error.expect("the in-band error");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.starts_with("The upstream connection failed mid-stream"),
        "{message}"
    );
    assert!(
        message.contains("2 continuation(s) failed")
            && message.contains("openai/gpt-4o (assistant_prefill): http_400 (assistant prefill is not supported)")
            && message.contains("anthropic/claude (native): http_400 (Prefilling assistant messages is not supported for this model.)"),
        "{message}"
    );
    assert_eq!(e["code"], "stream_interrupted");
    let sb = v.switchback.expect("switchback beside the error");
    assert_eq!(sb["models"], json!(["openai/gpt-4o", "anthropic/claude"]));
    assert!(
        !String::from_utf8_lossy(&r.body).contains("sk-"),
        "no credentials"
    );
    let sum = summary(&r);
    assert_eq!(sum.outcome, Outcome::StreamAborted);
    assert!(!sum.recovery.as_ref().unwrap().completed);
}

#[test]
fn an_openai_client_of_an_anthropic_primary_is_continued_natively() {
    let yaml = "version: v0.3.0
listeners:
  - type: model
    name: l
    port: 12000
model_providers:
  - model: anthropic/claude
    base_url: http://127.0.0.1:1002
    access_key: sk-ant-secret
    default: true
    retry_policy:
      stream_recovery: {}
";
    let mut s = sim(yaml);
    let first = words(1, 8);
    let rest = words(9, 4);
    s.script(
        "anthropic/claude",
        vec![
            sse(&anthropic("msg_1", &first, false), Ending::End),
            sse(&anthropic("msg_2", &rest, true), Ending::End),
        ],
    );
    let body = r#"{"model":"anthropic/claude","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Count."}],"stream":true}"#;
    let r = s.chat(body).unwrap();
    let v = view(ClientApi::ChatCompletions, &r);
    assert!(v.complete, "{v:?}");
    assert_eq!(v.text, words(1, 12).concat());
    assert_eq!(v.starts, 1);
    assert_eq!(v.ids.len(), 1);
    let q = received(&s, "anthropic/claude", 1);
    assert_eq!(q["system"], "Be brief.");
    assert_eq!(
        q["messages"],
        json!([{"role": "user", "content": "Count."}, {"role": "assistant", "content": first.concat().trim_end()}])
    );
    // A clean end without a stop reason was the failure.
    assert_eq!(
        v.switchback.unwrap()["failures"][0]["error_type"],
        "stream_truncated"
    );
}

#[test]
fn an_in_band_error_after_commit_is_not_forwarded_but_continued() {
    let mut s = sim(&config(PREFILL, RECOVERY, ""));
    let first = words(1, 6);
    let rest = words(7, 3);
    let mut cut = chat("chatcmpl-1", &first, false);
    cut.push(
        "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\"}}\n\n"
            .to_owned(),
    );
    s.script(
        "openai/gpt-4o",
        vec![
            sse(&cut, Ending::End),
            sse(&chat("chatcmpl-2", &rest, true), Ending::End),
        ],
    );
    let r = s.chat(&chat_request("")).unwrap();
    let v = view(ClientApi::ChatCompletions, &r);
    assert!(v.complete && v.error.is_none(), "{v:?}");
    assert_eq!(v.text, words(1, 9).concat());
    assert!(!String::from_utf8_lossy(&r.body).contains("Overloaded"));
    assert_eq!(
        v.switchback.unwrap()["failures"][0]["error_type"],
        "stream_error"
    );
}

#[test]
fn a_continuation_cut_after_its_text_began_is_continued_from_the_longer_text() {
    let mut s = sim(&config(PREFILL, RECOVERY, ""));
    let first = words(1, 4);
    let second = words(5, 3);
    let third = words(8, 2);
    s.script(
        "openai/gpt-4o",
        vec![
            sse(&chat("chatcmpl-1", &first, false), Ending::Cut),
            sse(&chat("chatcmpl-2", &second, false), Ending::Cut),
        ],
    );
    s.script(
        "anthropic/claude",
        vec![sse(&anthropic("msg_3", &third, true), Ending::End)],
    );
    let r = s.chat(&chat_request("")).unwrap();
    let v = view(ClientApi::ChatCompletions, &r);
    assert!(v.complete, "{v:?}");
    assert_eq!(v.text, words(1, 9).concat());
    let q = received(&s, "anthropic/claude", 0);
    assert_eq!(
        q["messages"].as_array().unwrap().last().unwrap()["content"],
        words(1, 7).concat().trim_end()
    );
    let sb = v.switchback.unwrap();
    assert_eq!(
        sb["failures"][1]["relayed_chars"],
        second.concat().chars().count()
    );
}

#[test]
fn what_cannot_be_continued_ends_with_the_reason_and_no_continuation() {
    let mut s = sim(&config(PREFILL, RECOVERY, ""));
    let tool = [
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n",
    ];
    s.script(
        "openai/gpt-4o",
        vec![FakeReply::sse(&tool, GAP, Ending::Cut)],
    );
    s.script("anthropic/claude", vec![prefill_400()]);
    let r = s.chat(&chat_request("")).unwrap();
    let v = view(ClientApi::ChatCompletions, &r);
    let e = v.error.expect("the in-band error");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("The stream was not continued: a tool call had reached the client."),
        "{e}"
    );
    assert_eq!(v.switchback.unwrap()["not_continued"], "tool_call");
    assert_eq!(
        (s.calls("openai/gpt-4o"), s.calls("anthropic/claude")),
        (1, 0)
    );
    // Counted as a recovery that made no continuation.
    let rec = summary(&r).recovery.as_ref().expect("the recovery summary");
    assert_eq!(
        switchback_core::metrics::labels::recovery_outcome(rec),
        "not_continued"
    );
}

#[test]
fn a_spent_retry_budget_makes_no_continuation() {
    let top = "retry_budget: {ratio: 0, min_per_second: 0}\n";
    let mut s = sim(&config(PREFILL, RECOVERY, top));
    s.script(
        "openai/gpt-4o",
        vec![sse(&chat("chatcmpl-1", &words(1, 3), false), Ending::Cut)],
    );
    s.script("anthropic/claude", vec![prefill_400()]);
    let r = s.chat(&chat_request("")).unwrap();
    let v = view(ClientApi::ChatCompletions, &r);
    let sb = v.switchback.expect("switchback");
    assert_eq!(sb["not_continued"], "retry_budget");
    assert_eq!(sb["continuations"], 0, "the refused plan does not count");
    assert!(v.error.unwrap()["message"]
        .as_str()
        .unwrap()
        .contains("the retry budget admits no more retries"));
    assert_eq!(summary(&r).attempts, 1);
}

#[test]
fn the_deadline_bounds_recovery() {
    // A 3 s request: the stall takes 2 s of it, the continuation hangs until the
    // deadline, and nothing is sent past it.
    let yaml = config(PREFILL, RECOVERY, "").replace("timeout: \"60s\"", "timeout: \"3s\"");
    let mut s = sim(&yaml);
    s.script(
        "openai/gpt-4o",
        vec![
            sse(&chat("chatcmpl-1", &words(1, 2), false), Ending::Stall),
            FakeReply::Hang,
        ],
    );
    s.script("anthropic/claude", vec![FakeReply::Hang]);
    let r = s.chat(&chat_request("")).unwrap();
    let v = view(ClientApi::ChatCompletions, &r);
    let sb = v.switchback.expect("switchback");
    assert_eq!(sb["not_continued"], "deadline", "{sb}");
    assert_eq!(sb["models"], json!(["openai/gpt-4o"]));
    assert!(r.elapsed() <= Duration::from_secs(3), "{:?}", r.elapsed());
    for (at, a) in &r.trace {
        if matches!(a, Action::Send { .. }) {
            assert!(*at < r.started + Duration::from_secs(3));
        }
    }
    assert_eq!(s.calls("anthropic/claude"), 0);
}

#[test]
fn a_blocked_candidate_is_not_waited_for() {
    // A first request fails over to the fallback, whose 429 blocks it for a minute; the
    // second request's stream, cut, has no other candidate (the primary has no style).
    let mut s = sim(&config("", RECOVERY, ""));
    s.script(
        "openai/gpt-4o",
        vec![
            FakeReply::json(500, r#"{"error":{"message":"oops"}}"#),
            sse(&chat("chatcmpl-1", &words(1, 3), false), Ending::Cut),
        ],
    );
    s.script(
        "anthropic/claude",
        vec![FakeReply::json_with(
            429,
            &[("retry-after", "60")],
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        )],
    );
    let first = s
        .chat(&chat_request("").replace(r#","stream":true"#, ""))
        .unwrap();
    assert_eq!(
        first.status,
        429,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let r = s.chat(&chat_request("")).unwrap();
    let v = view(ClientApi::ChatCompletions, &r);
    let sb = v.switchback.expect("switchback");
    assert_eq!(sb["not_continued"], "blocked", "{sb}");
    assert_eq!(sb["continuations"], 0);
    assert!(v.error.unwrap()["message"]
        .as_str()
        .unwrap()
        .contains("every candidate left is blocked"));
    assert_eq!(s.calls("anthropic/claude"), 1);
    assert!(
        r.elapsed() < Duration::from_secs(5),
        "no wait for the block"
    );
}

#[test]
fn a_deepseek_continuation_goes_to_the_beta_path() {
    let yaml = "version: v0.3.0
listeners:
  - type: model
    name: l
    port: 12000
model_providers:
  - model: deepseek/deepseek-chat
    base_url: http://127.0.0.1:1003/v1
    access_key: ds-secret
    default: true
    continuation: deepseek_prefix
    retry_policy:
      stream_recovery: {}
";
    let mut s = sim(yaml);
    let first = words(1, 3);
    s.script(
        "deepseek/deepseek-chat",
        vec![
            sse(&chat("c1", &first, false), Ending::Cut),
            sse(&chat("c2", &words(4, 1), true), Ending::End),
        ],
    );
    let body = r#"{"model":"deepseek/deepseek-chat","messages":[{"role":"user","content":"Count."}],"stream":true}"#;
    let r = s.chat(body).unwrap();
    let v = view(ClientApi::ChatCompletions, &r);
    assert!(v.complete);
    assert_eq!(v.text, words(1, 4).concat());
    let up = s.upstream("deepseek/deepseek-chat").unwrap();
    assert_eq!(up.received_paths[0], "/v1/chat/completions");
    assert_eq!(up.received_paths[1], "/beta/chat/completions");
    let q = received(&s, "deepseek/deepseek-chat", 1);
    assert_eq!(
        q["messages"][1],
        json!({"role": "assistant", "content": first.concat(), "prefix": true})
    );
}

#[test]
fn without_stream_recovery_a_cut_stream_still_ends_with_the_error() {
    let mut s = sim(&config(PREFILL, "", ""));
    s.script(
        "openai/gpt-4o",
        vec![sse(&chat("chatcmpl-1", &words(1, 3), false), Ending::Cut)],
    );
    let r = s.chat(&chat_request("")).unwrap();
    let v = view(ClientApi::ChatCompletions, &r);
    assert!(v.error.is_some() && v.switchback.is_none(), "{v:?}");
    assert_eq!(summary(&r).attempts, 1);
    assert!(summary(&r).recovery.is_none());
}

#[test]
fn a_client_that_leaves_during_a_continuation_cancels_it() {
    let mut s = sim(&config(PREFILL, RECOVERY, ""));
    s.script(
        "openai/gpt-4o",
        vec![
            sse(&chat("chatcmpl-1", &words(1, 3), false), Ending::Cut),
            FakeReply::Hang,
        ],
    );
    let r = s
        .request(
            http::Method::POST,
            "/v1/chat/completions",
            http::HeaderMap::new(),
            &chat_request(""),
            Some(Duration::from_secs(1)),
        )
        .unwrap();
    let sum = summary(&r);
    assert_eq!(sum.outcome, Outcome::Cancelled);
    assert_eq!(sum.attempts, 2);
    assert!(r.elapsed() <= Duration::from_secs(1));
}

#[test]
fn an_in_band_error_is_quoted_when_no_candidate_continues() {
    let mut s = sim(&config(PREFILL, RECOVERY, ""));
    let mut cut = chat("chatcmpl-1", &words(1, 3), false);
    cut.push(
        "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\"}}\n\n"
            .to_owned(),
    );
    s.script("openai/gpt-4o", vec![sse(&cut, Ending::End), prefill_400()]);
    s.script("anthropic/claude", vec![prefill_400()]);
    let r = s.chat(&chat_request("")).unwrap();
    let v = view(ClientApi::ChatCompletions, &r);
    let e = v.error.expect("the recovery's error");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "The upstream reported an error mid-stream (Overloaded); the answer is incomplete."
        ),
        "{message}"
    );
    assert_eq!(e["code"], "stream_error");
    assert_eq!(
        String::from_utf8_lossy(&r.body)
            .matches("\"error\"")
            .count(),
        1,
        "the upstream's error event was not forwarded"
    );
}

/// Drives a machine directly: a Chat stream of three words on attempt 0, cut; then
/// `then` is fed and the actions after the continuation's `Send` are returned.
fn drive_to_continuation(then: &[Event]) -> Vec<Action> {
    use std::sync::Arc;
    use std::time::UNIX_EPOCH;
    use switchback_core::gateway::{ClientRequest, Gateway, Reply, RequestContext};

    let loaded =
        switchback_core::config::load_str(&config(PREFILL, RECOVERY, ""), &|_| None).unwrap();
    let gw = Arc::new(Gateway::new(loaded.config).unwrap());
    let now = common::epoch();
    let ctx = RequestContext {
        now,
        wall: UNIX_EPOCH,
        timeout: Duration::from_secs(60),
        random: 1,
    };
    let req = ClientRequest {
        method: http::Method::POST,
        path: "/v1/chat/completions".into(),
        headers: http::HeaderMap::new(),
        body: bytes::Bytes::from(chat_request("")),
    };
    let Reply::Chat(mut m) = gw.handle(req, ctx) else {
        panic!("a machine")
    };
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", "text/event-stream".parse().unwrap());
    let first = AttemptId(0);
    let stream = chat_upstream("chatcmpl-1", &["a ", "b ", "c "], None);
    for ev in [
        Event::Start,
        Event::UpstreamHead {
            attempt: first,
            status: 200,
            headers,
        },
        Event::UpstreamData {
            attempt: first,
            data: stream.into(),
        },
        Event::UpstreamFailed {
            attempt: first,
            error: TransportError::Io("reset".into()),
        },
    ] {
        m.handle(now, ev);
    }
    let before: Vec<Action> = std::iter::from_fn(|| m.poll_action()).collect();
    assert!(
        matches!(
            before.last(),
            Some(Action::Send {
                attempt: AttemptId(1),
                ..
            })
        ),
        "{before:?}"
    );
    assert!(
        before
            .iter()
            .any(|a| matches!(a, Action::Cancel { attempt } if *attempt == first)),
        "the cut attempt is cancelled: {before:?}"
    );
    for ev in then {
        m.handle(now + Duration::from_millis(10), ev.clone());
    }
    std::iter::from_fn(|| m.poll_action()).collect()
}

#[test]
fn a_shutdown_during_a_continuation_ends_with_the_error_naming_it_abandoned() {
    let after = drive_to_continuation(&[Event::Shutdown]);
    let [Action::Forward(bytes), Action::Finish(summary)] = &after[..] else {
        panic!("{after:?}")
    };
    let text = String::from_utf8_lossy(bytes);
    assert!(text.contains("The gateway is shutting down"), "{text}");
    assert!(text.contains("abandoned"), "{text}");
    assert!(!text.contains("[DONE]"));
    assert_eq!(summary.outcome, Outcome::StreamAborted);
    assert_eq!(summary.attempts, 2);
}

#[test]
fn a_continuation_answering_json_fails_and_late_events_of_the_cut_attempt_are_ignored() {
    let mut json = http::HeaderMap::new();
    json.insert("content-type", "application/json".parse().unwrap());
    let after = drive_to_continuation(&[
        // The cut attempt's late bytes: ignored.
        Event::UpstreamData {
            attempt: AttemptId(0),
            data: bytes::Bytes::from(chat_upstream("x", &["late"], Some("stop"))),
        },
        Event::UpstreamHead {
            attempt: AttemptId(1),
            status: 200,
            headers: json,
        },
    ]);
    // The continuation is cancelled and the fallback asked next.
    assert!(
        matches!(
            after[0],
            Action::Cancel {
                attempt: AttemptId(1)
            }
        ),
        "{after:?}"
    );
    let Action::Send { model, request, .. } = &after[1] else {
        panic!("{after:?}")
    };
    assert_eq!(model, "anthropic/claude");
    assert_eq!(request.path_and_query, "/v1/messages");
    assert!(!after
        .iter()
        .any(|a| matches!(a, Action::Forward(b) if String::from_utf8_lossy(b).contains("late"))));
}

#[test]
fn a_continuations_pushback_and_failures_count_as_for_any_attempt() {
    // Failure blocks after one failure; the 429 of gpt-4o's continuation blocks it (its
    // Retry-After), the fallback continues, and the next request avoids gpt-4o.
    let policy = format!(
        "{RECOVERY}      on_failures: {{consecutive: 1, window_seconds: 30, block_duration_seconds: 30}}\n"
    );
    let mut s = sim(&config(PREFILL, &policy, ""));
    s.script(
        "openai/gpt-4o",
        vec![
            sse(&chat("chatcmpl-1", &words(1, 3), false), Ending::Cut),
            FakeReply::json_with(
                429,
                &[("retry-after", "20")],
                r#"{"error":{"message":"slow"}}"#,
            ),
        ],
    );
    s.script(
        "anthropic/claude",
        vec![
            sse(&anthropic("m", &words(4, 2), true), Ending::End),
            FakeReply::json(200, common::SUCCESS),
        ],
    );
    let r = s.chat(&chat_request("")).unwrap();
    assert!(view(ClientApi::ChatCompletions, &r).complete);
    let next = s
        .chat(&chat_request("").replace(r#","stream":true"#, ""))
        .unwrap();
    assert_eq!(next.status, 200);
    assert_eq!(
        (s.calls("openai/gpt-4o"), s.calls("anthropic/claude")),
        (2, 2)
    );
}

#[test]
fn a_rejected_prefill_does_not_count_toward_failure_blocks() {
    let policy = format!(
        "{RECOVERY}      on_failures: {{consecutive: 1, window_seconds: 30, block_duration_seconds: 30}}\n"
    );
    let mut s = sim(&config(PREFILL, &policy, ""));
    s.script(
        "openai/gpt-4o",
        vec![
            sse(&chat("chatcmpl-1", &words(1, 3), false), Ending::Cut),
            prefill_400(),
            FakeReply::json(200, common::SUCCESS),
        ],
    );
    s.script(
        "anthropic/claude",
        vec![sse(&anthropic("m", &words(4, 2), true), Ending::End)],
    );
    let r = s.chat(&chat_request("")).unwrap();
    assert!(view(ClientApi::ChatCompletions, &r).complete);
    let next = s
        .chat(&chat_request("").replace(r#","stream":true"#, ""))
        .unwrap();
    assert_eq!(next.status, 200);
    assert_eq!(
        (s.calls("openai/gpt-4o"), s.calls("anthropic/claude")),
        (3, 1),
        "gpt-4o is not blocked"
    );
}
