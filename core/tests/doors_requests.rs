//! What each door sends upstream, in simulation (spec §5, §9): paths and queries, the
//! client headers forwarded or replaced, the body passed through or translated (Claude
//! Code's and Codex's requests included), the output-token cap, count_tokens and
//! embeddings routing, and the built-in mock behind every door.

mod apis_support;
mod common;
mod doors_support;

use common::sim;
use doors_support::*;
use serde_json::Value;
use switchback_core::apis::ClientApi;
use switchback_core::sim::{FakeReply, SimResponse, Simulation};

const OPENAI: &str = "openai/gpt-4o";
const CLAUDE: &str = "anthropic/claude-sonnet-4-5";

fn fixture(path: &str) -> String {
    let p = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// `CLAUDE` (default, one failover) then `OPENAI`, with `openai_extra` lines on OpenAI's.
fn claude_then_openai(openai_extra: &str) -> Simulation {
    sim(&format!(
        "version: v0.3.0\nmodel_providers:\n  - model: anthropic/claude-sonnet-4-5\n    base_url: http://127.0.0.1:2\n    access_key: ANTHROPIC-KEY\n    default: true\n    retry_policy:\n      default_strategy: different_provider\n      default_max_attempts: 1\n  - model: openai/gpt-4o\n    base_url: http://127.0.0.1:1\n    access_key: OPENAI-KEY\n{openai_extra}"
    ))
}

fn header<'a>(s: &'a Simulation, model: &str, call: usize, name: &str) -> Option<&'a str> {
    s.upstream(model)?
        .received_headers
        .get(call)?
        .get(name)?
        .to_str()
        .ok()
}

fn sent(s: &Simulation, model: &str, call: usize) -> Value {
    serde_json::from_slice(&s.upstream(model).expect("scripted").received[call]).expect("JSON")
}

fn post_with(s: &mut Simulation, path: &str, headers: &[(&str, &str)], body: &str) -> SimResponse {
    s.post(path, headers, body).expect("simulation")
}

const CLAUDE_CODE_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/json"),
    ("x-api-key", "sk-ant-client-own-key"),
    ("anthropic-version", "2023-06-01"),
    (
        "anthropic-beta",
        "claude-code-20250219,interleaved-thinking-2025-05-14",
    ),
    ("anthropic-beta", "mid-conversation-system-2026-04-07"),
    ("x-app", "cli"),
    ("user-agent", "claude-cli/2.1 (external, cli)"),
];

#[test]
fn claude_codes_request_passes_through_to_anthropic_with_its_query_and_betas() {
    let mut s = claude_then_openai("");
    s.script(CLAUDE, vec![Speaks::Messages.sse()]);
    let body = fixture("apis/messages/claude_code.request.json").replace("claude-opus-4-8", CLAUDE);
    let r = post_with(&mut s, "/v1/messages?beta=true", CLAUDE_CODE_HEADERS, &body);
    assert_eq!(r.status, 200);
    let up = s.upstream(CLAUDE).expect("scripted");
    assert_eq!(up.received_paths[0], "/v1/messages?beta=true");
    // The body: the client's bytes with only `model` replaced.
    let expected = body.replacen(CLAUDE, "claude-sonnet-4-5", 1);
    assert_eq!(String::from_utf8_lossy(&up.received[0]), expected);
    assert_eq!(header(&s, CLAUDE, 0, "x-api-key"), Some("ANTHROPIC-KEY"));
    assert_eq!(
        header(&s, CLAUDE, 0, "anthropic-version"),
        Some("2023-06-01")
    );
    assert_eq!(
        header(&s, CLAUDE, 0, "anthropic-beta"),
        Some("claude-code-20250219,interleaved-thinking-2025-05-14,mid-conversation-system-2026-04-07")
    );
    for absent in ["x-app", "user-agent", "authorization"] {
        assert_eq!(header(&s, CLAUDE, 0, absent), None, "{absent}");
    }
}

#[test]
fn claude_codes_request_fails_over_to_openai_translated_and_capped() {
    let mut s = claude_then_openai("    max_output_tokens: 16384\n");
    s.script(CLAUDE, vec![Speaks::Messages.error(529)]);
    s.script(OPENAI, vec![Speaks::Chat.sse()]);
    let body = fixture("apis/messages/claude_code.request.json").replace("claude-opus-4-8", CLAUDE);
    let r = post_with(&mut s, "/v1/messages?beta=true", CLAUDE_CODE_HEADERS, &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.headers["x-switchback-model"], OPENAI);
    let (text, complete) = answer(ClientApi::Messages, &r);
    assert_eq!((text.as_str(), complete), (Speaks::Chat.text(), true));

    let up = s.upstream(OPENAI).expect("scripted");
    assert_eq!(
        up.received_paths[0], "/v1/chat/completions",
        "no client query to another API"
    );
    assert_eq!(
        header(&s, OPENAI, 0, "authorization"),
        Some("Bearer OPENAI-KEY")
    );
    for absent in ["x-api-key", "anthropic-version", "anthropic-beta", "x-app"] {
        assert_eq!(header(&s, OPENAI, 0, absent), None, "{absent}");
    }
    let chat = sent(&s, OPENAI, 0);
    assert_eq!(chat["model"], "gpt-4o");
    assert_eq!(chat["max_tokens"], 16384, "64000 capped: {chat}");
    assert_eq!(chat["stream"], true);
    assert_eq!(chat["stream_options"]["include_usage"], true);
    let text = chat.to_string();
    for gone in [
        "cache_control",
        "\"thinking\"",
        "context_management",
        "output_config",
        "signature",
    ] {
        assert!(!text.contains(gone), "{gone} reached a Chat target: {chat}");
    }
    let roles: Vec<&str> = chat["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles[0], "system", "{roles:?}");
    assert!(roles.contains(&"tool"), "{roles:?}");
    assert!(
        chat["tools"].as_array().is_some_and(|t| !t.is_empty()),
        "{chat}"
    );
}

#[test]
fn codexs_request_passes_through_to_a_responses_provider_and_is_translated_for_chat() {
    let yaml = "version: v0.3.0\nmodel_providers:\n  - model: openai/gpt-5.3-codex\n    base_url: http://127.0.0.1:1\n    access_key: OPENAI-KEY\n    responses: true\n    default: true\n    retry_policy:\n      fallback_models: [mistral/devstral]\n      default_max_attempts: 1\n  - model: mistral/devstral\n    base_url: http://127.0.0.1:3\n    access_key: MISTRAL-KEY\n";
    let body = fixture("apis/responses/codex.request.json")
        .replace("gpt-5.3-codex", "openai/gpt-5.3-codex");
    let mut s = sim(yaml);
    s.script("openai/gpt-5.3-codex", vec![Speaks::Responses.error(429)]);
    s.script("mistral/devstral", vec![Speaks::Chat.sse()]);
    let r = post_with(
        &mut s,
        "/v1/responses",
        &[("authorization", "Bearer client")],
        &body,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (text, complete) = answer(ClientApi::Responses, &r);
    assert_eq!((text.as_str(), complete), (Speaks::Chat.text(), true));

    let first = s.upstream("openai/gpt-5.3-codex").expect("scripted");
    assert_eq!(first.received_paths[0], "/v1/responses");
    let expected = body.replacen("openai/gpt-5.3-codex", "gpt-5.3-codex", 1);
    assert_eq!(
        String::from_utf8_lossy(&first.received[0]),
        expected,
        "passed through"
    );

    let chat = sent(&s, "mistral/devstral", 0);
    assert_eq!(
        s.upstream("mistral/devstral").unwrap().received_paths[0],
        "/v1/chat/completions"
    );
    let tools: Vec<&str> = chat["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert_eq!(
        tools,
        ["exec_command", "mcp__github__list_prs"],
        "web_search dropped, namespace flattened"
    );
    let text = chat.to_string();
    for gone in [
        "encrypted_content",
        "prompt_cache_key",
        "client_metadata",
        "web_search",
        "\"store\"",
        "\"include\"",
    ] {
        assert!(!text.contains(gone), "{gone} reached a Chat target: {chat}");
    }
    assert_eq!(chat["messages"][0]["role"], "system", "{chat}");
    assert_eq!(chat["parallel_tool_calls"], false, "{chat}");
    // Mistral takes only 9-character tool-call ids.
    for m in chat["messages"].as_array().expect("messages") {
        if let Some(id) = m["tool_call_id"].as_str() {
            assert_eq!(id.len(), 9, "{m}");
        }
    }
}

#[test]
fn passthrough_auth_sends_the_clients_key_to_each_interface() {
    let yaml = "version: v0.3.0\nmodel_providers:\n  - model: anthropic/claude-sonnet-4-5\n    base_url: http://127.0.0.1:2\n    passthrough_auth: true\n    default: true\n    retry_policy:\n      default_max_attempts: 1\n  - model: openai/gpt-4o\n    base_url: http://127.0.0.1:1\n    passthrough_auth: true\n";
    let mut s = sim(yaml);
    s.script(CLAUDE, vec![Speaks::Messages.error(529)]);
    s.script(OPENAI, vec![Speaks::Chat.json()]);
    let headers = [("x-api-key", "sk-client")];
    let r = post_with(
        &mut s,
        "/v1/messages",
        &headers,
        &request(ClientApi::Messages, CLAUDE, false),
    );
    assert_eq!(r.status, 200);
    assert_eq!(header(&s, CLAUDE, 0, "x-api-key"), Some("sk-client"));
    assert_eq!(
        header(&s, OPENAI, 0, "authorization"),
        Some("Bearer sk-client")
    );
    assert_eq!(header(&s, OPENAI, 0, "x-api-key"), None);
}

#[test]
fn count_tokens_goes_to_anthropic_and_is_estimated_for_other_models() {
    let mut s = claude_then_openai("");
    s.script(CLAUDE, vec![FakeReply::json(200, r#"{"input_tokens":42}"#)]);
    let body = r#"{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"Hello there"}]}"#;
    let r = post_with(
        &mut s,
        "/v1/messages/count_tokens?beta=true",
        CLAUDE_CODE_HEADERS,
        body,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["input_tokens"], 42);
    assert!(r.headers.get("x-switchback-token-count").is_none());
    let up = s.upstream(CLAUDE).expect("scripted");
    assert_eq!(up.received_paths[0], "/v1/messages/count_tokens?beta=true");
    assert_eq!(
        String::from_utf8_lossy(&up.received[0]),
        body.replace("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5")
    );
    assert!(header(&s, CLAUDE, 0, "anthropic-beta").is_some());

    // An OpenAI model: counted here, and the header says it is an estimate.
    let r = post_with(
        &mut s,
        "/v1/messages/count_tokens",
        &[],
        &body.replace(CLAUDE, OPENAI),
    );
    assert_eq!(r.status, 200);
    assert!(r.json()["input_tokens"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(r.headers["x-switchback-token-count"], "estimated");
    assert_eq!(s.calls(OPENAI), 0);
}

#[test]
fn count_tokens_falls_back_to_the_estimate_when_anthropic_is_out_but_passes_400s_through() {
    let mut s = claude_then_openai("");
    s.script(CLAUDE, vec![Speaks::Messages.error(529)]);
    let body = r#"{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"Hello there"}]}"#;
    let r = post_with(&mut s, "/v1/messages/count_tokens", &[], body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.headers["x-switchback-token-count"], "estimated");
    assert!(
        r.headers.get("x-switchback-model").is_none(),
        "no model answered"
    );
    assert_eq!(r.headers["x-switchback-attempts"], "1");
    assert_eq!(s.calls(CLAUDE), 1);
    assert_eq!(
        s.calls(OPENAI),
        0,
        "an OpenAI target cannot count Anthropic tokens"
    );

    let mut s = claude_then_openai("");
    s.script(CLAUDE, vec![Speaks::Messages.error(400)]);
    let r = post_with(&mut s, "/v1/messages/count_tokens", &[], body);
    assert_eq!(r.status, 400);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        Speaks::Messages.error_body(400)
    );
}

#[test]
fn embeddings_fail_over_only_to_their_fallback_models() {
    let embedding = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}"#;
    let entries = "  - model: openai/text-embedding-3-small\n    base_url: http://127.0.0.1:1\n    access_key: K1\n    default: true\n    retry_policy:\n      default_max_attempts: 2\n";
    let fallback = "      fallback_models: [azure_openai/text-embedding-3-small]\n";
    let others = "  - model: mistral/mistral-large\n    base_url: http://127.0.0.1:3\n    access_key: K3\n  - model: azure_openai/text-embedding-3-small\n    base_url: http://127.0.0.1:4/openai/v1\n    access_key: K4\n";
    let body =
        r#"{"model":"openai/text-embedding-3-small","input":["a","b"],"encoding_format":"float"}"#;

    // With a fallback: the 429 fails over to it, the body passed through.
    let mut s = sim(&format!(
        "version: v0.3.0\nmodel_providers:\n{entries}{fallback}{others}"
    ));
    s.script(
        "openai/text-embedding-3-small",
        vec![Speaks::Chat.error(429)],
    );
    s.script(
        "azure_openai/text-embedding-3-small",
        vec![FakeReply::json(200, embedding)],
    );
    let r = post(&mut s, ClientApi::Embeddings, body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(String::from_utf8_lossy(&r.body), embedding);
    assert!(!r.streamed);
    let up = s
        .upstream("azure_openai/text-embedding-3-small")
        .expect("scripted");
    assert_eq!(up.received_paths[0], "/openai/v1/embeddings");
    assert_eq!(
        String::from_utf8_lossy(&up.received[0]),
        body.replace("openai/text-embedding-3-small", "text-embedding-3-small")
    );
    assert_eq!(
        header(&s, "azure_openai/text-embedding-3-small", 0, "api-key"),
        Some("K4")
    );
    assert_eq!(
        s.upstream("openai/text-embedding-3-small")
            .unwrap()
            .received_paths[0],
        "/v1/embeddings"
    );

    // Without one, the other configured models are no fallback: same-model retries only.
    let policy = "      default_strategy: same_model\n";
    let mut s = sim(&format!(
        "version: v0.3.0\nmodel_providers:\n{entries}{policy}{others}"
    ));
    s.script(
        "openai/text-embedding-3-small",
        vec![Speaks::Chat.error(429), FakeReply::json(200, embedding)],
    );
    let r = post(&mut s, ClientApi::Embeddings, body);
    assert_eq!(r.status, 200);
    assert_eq!(s.calls("openai/text-embedding-3-small"), 2);
    let mut s = sim(&format!(
        "version: v0.3.0\nmodel_providers:\n{entries}{others}"
    ));
    s.script(
        "openai/text-embedding-3-small",
        vec![Speaks::Chat.error(429)],
    );
    let r = post(&mut s, ClientApi::Embeddings, body);
    assert_eq!(r.status, 429);
    assert_eq!(
        s.calls("mistral/mistral-large") + s.calls("azure_openai/text-embedding-3-small"),
        0
    );

    // An answer without `data` is a failed attempt, and `stream: true` streams nothing.
    let mut s = sim(&format!(
        "version: v0.3.0\nmodel_providers:\n{entries}{fallback}{others}"
    ));
    s.script(
        "openai/text-embedding-3-small",
        vec![FakeReply::json(200, r#"{"object":"list"}"#)],
    );
    s.script(
        "azure_openai/text-embedding-3-small",
        vec![FakeReply::json(200, embedding)],
    );
    let r = post(
        &mut s,
        ClientApi::Embeddings,
        &body.replace("\"input\"", "\"stream\":true,\"input\""),
    );
    assert_eq!(r.status, 200);
    assert!(!r.streamed);
    assert_eq!(
        r.headers["x-switchback-model"],
        "azure_openai/text-embedding-3-small"
    );
}

#[test]
fn embeddings_for_a_model_without_an_embeddings_api_are_refused_at_once() {
    let mut s = claude_then_openai("");
    let r = post(
        &mut s,
        ClientApi::Embeddings,
        r#"{"model":"anthropic/claude-sonnet-4-5","input":"a"}"#,
    );
    assert_eq!(r.status, 400);
    let e = error_object(ClientApi::Embeddings, &r);
    assert_eq!(e["code"], "embeddings_not_supported", "{e}");
    assert_eq!(s.calls(CLAUDE) + s.calls(OPENAI), 0);
}

#[test]
fn the_mock_provider_answers_every_generative_door() {
    let yaml = "version: v0.3.0\nmodel_providers:\n  - model: mock/rate-limited\n    default: true\n    retry_policy:\n      fallback_models: [mock/ok]\n      default_strategy: same_provider\n  - model: mock/ok\n";
    for client in CLIENTS {
        for stream in [false, true] {
            let mut s = sim(yaml);
            let r = post(
                &mut s,
                client,
                &request(client, "mock/rate-limited", stream),
            );
            assert_eq!(r.status, 200, "{client:?}");
            assert_eq!(r.headers["x-switchback-model"], "mock/ok");
            let (text, complete) = answer(client, &r);
            assert_eq!(
                text, "Hello from the switchback mock provider.",
                "{client:?} {stream}"
            );
            assert!(complete);
        }
    }
    let mut s = sim(yaml);
    let r = post(
        &mut s,
        ClientApi::Embeddings,
        r#"{"model":"mock/ok","input":"a"}"#,
    );
    assert_eq!(
        error_object(ClientApi::Embeddings, &r)["code"],
        "embeddings_not_supported"
    );
}

#[test]
fn a_responses_provider_still_takes_chat_and_messages_clients_in_chat() {
    let yaml = "version: v0.3.0\nmodel_providers:\n  - model: openai/gpt-4.1\n    base_url: http://127.0.0.1:1\n    access_key: K\n    responses: true\n";
    for client in [ClientApi::ChatCompletions, ClientApi::Messages] {
        let mut s = sim(yaml);
        s.script("openai/gpt-4.1", vec![Speaks::Chat.json()]);
        let r = post(&mut s, client, &request(client, "openai/gpt-4.1", false));
        assert_eq!(answer(client, &r).0, Speaks::Chat.text());
        assert_eq!(
            s.upstream("openai/gpt-4.1").unwrap().received_paths[0],
            "/v1/chat/completions"
        );
    }
}
