//! The continuation request of each style (spec §12), for each client API: the body an
//! ordinary attempt sends to the target, plus the relayed text as a final assistant turn in
//! the form the style asks for; and the path DeepSeek's prefix completion needs.

mod recovery_support;

use bytes::Bytes;
use recovery_support::*;
use serde_json::{json, Value};
use switchback_core::apis::{ApiRequest, ClientApi, UpstreamApi};
use switchback_core::config::Continuation;
use switchback_core::recovery::{ContinuationPlan, Recovery};

/// A Chat body written by hand, to see which bytes survive.
const CHAT_BODY: &str = r#"{"model": "openai/gpt-4o",  "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me a story."}], "temperature": 0.70, "seed": 7, "logit_bias": {"50256": -100}, "stream": true, "x_vendor": {"keep": [1, 2.50]}}"#;

/// The Chat client's relayed text.
const TEXT: &str = "Once upon a time there was a fox ";

fn relayed(api: ClientApi) -> Recovery {
    let mut rec = recovery(api, 2, false);
    let sse = chat_upstream("c1", &[TEXT], None);
    rec.observe(&bytes_of(&relay(
        api,
        UpstreamApi::ChatCompletions,
        false,
        &sse,
    )));
    assert_eq!(rec.relayed_text(), TEXT);
    rec
}

fn plan(api: ClientApi, body: &str, target: &str) -> ContinuationPlan {
    let mut rec = relayed(api);
    let req = ApiRequest::inspect(api, Bytes::from(body.to_owned())).unwrap();
    let (id, p) = provider(target);
    rec.next_continuation(&req, id, &p)
        .unwrap_or_else(|e| panic!("{target}: {e:?}"))
}

fn json_of(plan: &ContinuationPlan) -> Value {
    serde_json::from_slice(&plan.body).unwrap()
}

fn last_message(plan: &ContinuationPlan) -> Value {
    json_of(plan)["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone()
}

#[test]
fn chat_passthrough_keeps_every_other_byte() {
    let p = plan(ClientApi::ChatCompletions, CHAT_BODY, "openai/gpt-4o");
    assert_eq!(p.style, Continuation::AssistantPrefill);
    assert_eq!(p.upstream, UpstreamApi::ChatCompletions);
    let text = String::from_utf8(p.body.to_vec()).unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"model":"gpt-4o","messages":[{{"role": "system", "content": "Be brief."}},{{"role": "user", "content": "Tell me a story."}},{{"content":"{TEXT}","role":"assistant"}}],"temperature":0.70,"seed":7,"logit_bias":{{"50256": -100}},"stream":true,"x_vendor":{{"keep": [1, 2.50]}}}}"#
        )
    );
    assert_eq!(p.path("/v1/chat/completions"), "/v1/chat/completions");
}

#[test]
fn mistral_prefix_marks_the_turn() {
    let p = plan(
        ClientApi::ChatCompletions,
        CHAT_BODY,
        "mistral/mistral-large",
    );
    assert_eq!(
        last_message(&p),
        json!({"role": "assistant", "content": TEXT, "prefix": true})
    );
    assert_eq!(json_of(&p)["model"], "mistral-large");
    assert_eq!(json_of(&p)["seed"], 7);
}

#[test]
fn deepseek_prefix_marks_the_turn_and_goes_to_the_beta_path() {
    let p = plan(
        ClientApi::ChatCompletions,
        CHAT_BODY,
        "deepseek/deepseek-chat",
    );
    assert_eq!(
        last_message(&p),
        json!({"role": "assistant", "content": TEXT, "prefix": true})
    );
    let (_, entry) = provider("deepseek/deepseek-chat");
    let endpoint = switchback_core::provider::endpoint(&entry)
        .unwrap()
        .unwrap();
    assert_eq!(endpoint.path, "/v1/chat/completions");
    assert_eq!(p.path(&endpoint.path), "/beta/chat/completions");
    assert_eq!(endpoint.origin.host, "api.deepseek.com");
}

#[test]
fn vllm_continues_the_final_message_without_a_generation_prompt() {
    let body = CHAT_BODY.replace(
        "\"seed\": 7",
        "\"seed\": 7, \"add_generation_prompt\": true",
    );
    let p = plan(ClientApi::ChatCompletions, &body, "vllm/llama");
    let v = json_of(&p);
    assert_eq!(v["continue_final_message"], true);
    assert_eq!(v["add_generation_prompt"], false);
    assert_eq!(
        last_message(&p),
        json!({"role": "assistant", "content": TEXT})
    );
    assert_eq!(
        String::from_utf8_lossy(&p.body)
            .matches("add_generation_prompt")
            .count(),
        1
    );
}

#[test]
fn chat_to_anthropic_is_translated_then_continued_natively() {
    let p = plan(ClientApi::ChatCompletions, CHAT_BODY, "anthropic/claude");
    assert_eq!(p.upstream, UpstreamApi::Messages);
    let v = json_of(&p);
    assert_eq!(v["system"], "Be brief.");
    assert_eq!(v["model"], "claude");
    assert_eq!(v["stream"], true);
    // Anthropic refuses a final assistant turn ending in whitespace.
    assert_eq!(
        last_message(&p),
        json!({"role": "assistant", "content": TEXT.trim_end()})
    );
    assert_eq!(p.path("/v1/messages"), "/v1/messages");
}

#[test]
fn messages_passthrough_drops_thinking_and_merges_a_client_prefill() {
    let body = r#"{"model":"anthropic/claude","max_tokens":1024,"thinking":{"type":"enabled","budget_tokens":512},"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"A story in JSON."},{"role":"assistant","content":"{\"story\": \""}],"stream":true,"metadata":{"user_id":"u1"}}"#;
    let p = plan(ClientApi::Messages, body, "anthropic/claude");
    let v = json_of(&p);
    assert!(v.get("thinking").is_none(), "{v}");
    assert_eq!(v["system"][0]["cache_control"]["type"], "ephemeral");
    assert_eq!(v["metadata"]["user_id"], "u1");
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(
        msgs.len(),
        2,
        "the client's prefill and the relayed text are one turn"
    );
    assert_eq!(
        msgs[1]["content"],
        format!("{{\"story\": \"{}", TEXT.trim_end())
    );
}

#[test]
fn messages_to_openai_is_translated_then_prefilled() {
    let body = r#"{"model":"anthropic/claude","max_tokens":300,"system":"Be brief.","messages":[{"role":"user","content":[{"type":"text","text":"Tell me a story."}]}],"stream":true}"#;
    let p = plan(ClientApi::Messages, body, "openai/gpt-4o");
    let v = json_of(&p);
    assert_eq!(
        v["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(v["max_completion_tokens"], 300);
    assert_eq!(v["stream_options"]["include_usage"], true);
    assert_eq!(
        last_message(&p),
        json!({"role": "assistant", "content": TEXT})
    );
}

#[test]
fn responses_to_chat_targets_is_translated_then_continued() {
    let body = r#"{"model":"openai/gpt-4o","instructions":"Be brief.","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"Tell me a story."}]}],"stream":true,"store":false}"#;
    for (target, prefix) in [("mistral/mistral-large", true), ("openai/gpt-4o", false)] {
        let p = plan(ClientApi::Responses, body, target);
        assert_eq!(p.upstream, UpstreamApi::ChatCompletions);
        let last = last_message(&p);
        assert_eq!(last["content"], TEXT);
        assert_eq!(last.get("prefix").is_some(), prefix, "{target}");
        assert_eq!(json_of(&p)["messages"][0]["content"], "Be brief.");
    }
    let p = plan(ClientApi::Responses, body, "anthropic/claude");
    assert_eq!(p.upstream, UpstreamApi::Messages);
    assert_eq!(json_of(&p)["system"], "Be brief.");
}

#[test]
fn a_request_the_target_cannot_express_is_a_named_failure() {
    // `n: 2` cannot be translated to Anthropic: the candidate is skipped, and the failure
    // is recorded for the final error.
    let body = r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}],"n":2,"stream":true}"#;
    let mut rec = relayed(ClientApi::ChatCompletions);
    let req = ApiRequest::inspect(ClientApi::ChatCompletions, Bytes::from(body)).unwrap();
    let (id, p) = provider("anthropic/claude");
    assert!(rec.next_continuation(&req, id, &p).is_err());
    let f = rec.summary().failures.last().unwrap();
    assert_eq!(f.error_type, "untranslatable");
    assert_eq!(rec.summary().continuations(), 0);
}
