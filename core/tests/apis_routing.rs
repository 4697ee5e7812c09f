//! Paths, forwarded headers and the local count_tokens estimate.

use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use switchback_core::apis::count_tokens::{self, estimate_text, ESTIMATE_HEADER};
use switchback_core::apis::route::{forwarded_headers, upstream_path};
use switchback_core::apis::{ApiRequest, ClientApi, UpstreamApi};

#[test]
fn paths_follow_the_upstream_api_and_keep_the_providers_query() {
    use ClientApi as C;
    use UpstreamApi as U;
    let cases = [
        (
            "/v1/chat/completions",
            U::Responses,
            C::Responses,
            None,
            "/v1/responses",
        ),
        (
            "/v1/chat/completions",
            U::Embeddings,
            C::Embeddings,
            None,
            "/v1/embeddings",
        ),
        (
            "/openai/v1/chat/completions",
            U::ChatCompletions,
            C::Messages,
            Some("beta=true"),
            "/openai/v1/chat/completions",
        ),
        (
            "/v1/messages",
            U::Messages,
            C::Messages,
            Some("beta=true"),
            "/v1/messages?beta=true",
        ),
        (
            "/v1/messages",
            U::CountTokens,
            C::CountTokens,
            Some("beta=true"),
            "/v1/messages/count_tokens?beta=true",
        ),
        (
            "/v1/messages",
            U::Messages,
            C::ChatCompletions,
            Some("x=1"),
            "/v1/messages",
        ),
        (
            "/openai/deployments/gpt4/chat/completions?api-version=2024-10-21",
            U::Embeddings,
            C::Embeddings,
            Some("a=b"),
            "/openai/deployments/gpt4/embeddings?api-version=2024-10-21&a=b",
        ),
    ];
    for (endpoint, upstream, client, query, want) in cases {
        assert_eq!(
            upstream_path(endpoint, upstream, client, query),
            want,
            "{endpoint} {upstream:?}"
        );
    }
}

#[test]
fn anthropic_headers_reach_anthropic_targets_only() {
    let mut h = HeaderMap::new();
    h.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
    h.insert(
        "anthropic-beta",
        HeaderValue::from_static(
            "interleaved-thinking-2025-05-14,mid-conversation-system-2026-04-07",
        ),
    );
    h.insert("x-app", HeaderValue::from_static("cli"));
    h.insert("x-api-key", HeaderValue::from_static("sk-ant-client"));
    let to_anthropic = forwarded_headers(ClientApi::Messages, UpstreamApi::Messages, &h, false);
    let names: Vec<&str> = to_anthropic.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["anthropic-version", "anthropic-beta"]);
    assert!(
        forwarded_headers(ClientApi::Messages, UpstreamApi::ChatCompletions, &h, false).is_empty()
    );
    assert!(
        forwarded_headers(ClientApi::ChatCompletions, UpstreamApi::Messages, &h, false).is_empty()
    );

    // passthrough_auth: the client's key goes as x-api-key to Anthropic, as a bearer token to OpenAI.
    let auth = forwarded_headers(ClientApi::Messages, UpstreamApi::Messages, &h, true);
    assert!(auth
        .iter()
        .any(|(n, v)| n == "x-api-key" && v == "sk-ant-client" && v.is_sensitive()));
    let auth = forwarded_headers(ClientApi::Messages, UpstreamApi::ChatCompletions, &h, true);
    assert!(auth
        .iter()
        .any(|(n, v)| n == "authorization" && v == "Bearer sk-ant-client" && v.is_sensitive()));
    assert!(!auth.iter().any(|(n, _)| n == "x-api-key"));
}

#[test]
fn count_tokens_estimates_locally_and_says_so() {
    let body = br#"{"model":"claude-opus-4-8","system":"You are a helpful assistant.","messages":[{"role":"user","content":"Hello, world! How are you today?"}]}"#;
    let r = count_tokens::local_response(body);
    assert_eq!(r.status, 200);
    assert_eq!(r.headers[ESTIMATE_HEADER], "estimated");
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    let n = v["input_tokens"].as_u64().expect("count");
    // 8 + 2×4 overhead; "You are a helpful assistant." ≈ 7, the question ≈ 10.
    assert!((20..=40).contains(&n), "{n}");

    let bad = count_tokens::local_response(
        br#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#,
    );
    assert_eq!(bad.status, 400);
    let v: Value = serde_json::from_slice(&bad.body).expect("json");
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
}

#[test]
fn the_estimate_grows_with_tools_images_and_text() {
    let plain = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let tools = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":{"type":"object"}}]}"#;
    let image = br#"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}"#;
    let count = |b: &[u8]| {
        let req = ApiRequest::inspect(ClientApi::CountTokens, bytes::Bytes::copy_from_slice(b))
            .expect("valid");
        count_tokens::estimate(req.request().expect("decodes"))
    };
    assert!(count(tools) >= count(plain) + 350);
    assert!(count(image) >= 8 + 4 + 1600, "an image costs 1600 tokens");
    assert_eq!(estimate_text(""), 0);
    assert_eq!(
        estimate_text("hello"),
        2,
        "5 letters: two started groups of 4"
    );
    assert_eq!(estimate_text("12345"), 2);
    assert_eq!(estimate_text("a, b"), 3);
    assert_eq!(estimate_text("日本語"), 3);
    assert_eq!(estimate_text("привет"), 3);
    assert_eq!(estimate_text("🙂"), 2);
    // docs/apis.md: "On English prose this counts one token per 3.5 characters", measured
    // on these two passages (3.46 and 3.57 characters per token).
    let pangrams = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    let paragraph = "A gateway sits between the applications that call language models and \
        the providers that serve them. When a provider is overloaded, slow or down, the gateway \
        retries the request elsewhere, so the client still gets a complete answer. It must not \
        duplicate, truncate or lose anything on the way, and it must not turn one provider's \
        outage into a storm of retries.";
    assert_eq!(estimate_text(&pangrams), 260);
    assert_eq!(estimate_text(paragraph), 101);
    for prose in [pangrams.as_str(), paragraph] {
        let chars_per_token = prose.chars().count() as f64 / estimate_text(prose) as f64;
        assert!(
            (3.4..=3.6).contains(&chars_per_token),
            "{chars_per_token:.2} characters per token"
        );
    }
}

#[test]
fn targets_from_provider_entries() {
    use switchback_core::apis::{MaxTokensField, Target};
    let yaml = "version: v0.3.0\nmodel_providers:\n  - model: openai/gpt-5\n    access_key: k\n    default: true\n  - model: openai/local\n    base_url: http://127.0.0.1:9\n  - model: anthropic/claude-sonnet-4-5\n    access_key: k\n  - model: mistral/mistral-large\n    access_key: k\n";
    let loaded = switchback_core::config::load_str(yaml, &|_| None).expect("config");
    let p = &loaded.config.providers;
    let t = Target::for_provider(&p[0]);
    assert_eq!(
        (t.model_id, t.max_tokens_field),
        ("gpt-5", MaxTokensField::MaxCompletionTokens)
    );
    assert_eq!(
        Target::for_provider(&p[1]).max_tokens_field,
        MaxTokensField::MaxTokens,
        "a self-hosted OpenAI-compatible server"
    );
    let t = Target::for_provider(&p[2]);
    assert_eq!(
        (t.model_id, t.default_max_tokens),
        ("claude-sonnet-4-5", 4096)
    );
    assert_eq!(
        Target::for_provider(&p[3]).max_tokens_field,
        MaxTokensField::MaxTokens
    );
}
