//! Routing behind every door (spec §2, §9): an alias and a model under a wildcard entry
//! sent to `/v1/messages`, `/v1/responses`, `/v1/embeddings` and
//! `/v1/messages/count_tokens` reach the routed model's upstream, named as that model,
//! and no other upstream (the default entry least of all).

mod apis_support;
mod common;
mod doors_support;

use common::sim;
use doors_support::{post, request, Speaks};
use serde_json::Value;
use switchback_core::apis::ClientApi;
use switchback_core::sim::{FakeReply, Simulation};

const GPT: &str = "openai/gpt-4o";
const CLAUDE: &str = "anthropic/claude-sonnet-4-5";
const DEFAULT: &str = "mistral/mistral-large-latest";

/// Exact entries for `GPT` and `CLAUDE`, a wildcard for each of their prefixes, a default
/// that no request below should reach, and the aliases `fast` and `smart`.
fn routing_sim() -> Simulation {
    sim("version: v0.3.0\nmodel_providers:\n  - model: mistral/mistral-large-latest\n    base_url: http://127.0.0.1:1009\n    provider_interface: openai\n    access_key: k9\n    default: true\n  - model: openai/gpt-4o\n    base_url: http://127.0.0.1:1001\n    access_key: k1\n  - model: anthropic/claude-sonnet-4-5\n    base_url: http://127.0.0.1:1002\n    access_key: k2\n  - model: openai/*\n    base_url: http://127.0.0.1:1003\n    access_key: k3\n  - model: anthropic/*\n    base_url: http://127.0.0.1:1004\n    access_key: k4\nmodel_aliases:\n  fast:\n    target: openai/gpt-4o\n  smart:\n    target: anthropic/claude-sonnet-4-5\n")
}

const EMBEDDING: &str = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,0.25]}],"model":"up","usage":{"prompt_tokens":1,"total_tokens":1}}"#;

/// What the upstream of `speaks` answers a request of `api` with.
fn reply(api: ClientApi, speaks: Speaks) -> FakeReply {
    match api {
        ClientApi::Embeddings => FakeReply::json(200, EMBEDDING),
        ClientApi::CountTokens => FakeReply::json(200, r#"{"input_tokens":7}"#),
        _ => speaks.json(),
    }
}

/// Sends `requested` to `api`'s door and asserts that only `routed`'s upstream got it,
/// on `path`, with the body's `model` set to `model_id`.
fn assert_routed(api: ClientApi, requested: &str, routed: &str, model_id: &str, path: &str) {
    let mut s = routing_sim();
    let speaks = if routed.starts_with("anthropic/") {
        Speaks::Messages
    } else {
        Speaks::Chat
    };
    s.script(routed, vec![reply(api, speaks)]);
    s.script(DEFAULT, vec![reply(api, Speaks::Chat)]);
    let r = post(&mut s, api, &request(api, requested, false));
    assert_eq!(
        r.status,
        200,
        "{api:?} {requested}: {}",
        String::from_utf8_lossy(&r.body)
    );
    let up = s.upstream(routed).expect("scripted");
    assert_eq!(up.calls(), 1, "{api:?} {requested} reached {routed} once");
    assert_eq!(up.received_paths[0], path, "{api:?} {requested}");
    let sent: Value = serde_json::from_slice(&up.received[0]).expect("JSON");
    assert_eq!(sent["model"], model_id, "{api:?} {requested}: {sent}");
    assert_eq!(
        s.calls(DEFAULT),
        0,
        "{api:?} {requested} went to the default"
    );
}

#[test]
fn an_alias_and_a_wildcard_model_route_through_messages() {
    let api = ClientApi::Messages;
    assert_routed(api, "fast", GPT, "gpt-4o", "/v1/chat/completions");
    assert_routed(
        api,
        "openai/gpt-4.1-mini",
        "openai/gpt-4.1-mini",
        "gpt-4.1-mini",
        "/v1/chat/completions",
    );
    assert_routed(api, "smart", CLAUDE, "claude-sonnet-4-5", "/v1/messages");
    assert_routed(
        api,
        "anthropic/claude-haiku-4-5",
        "anthropic/claude-haiku-4-5",
        "claude-haiku-4-5",
        "/v1/messages",
    );
}

#[test]
fn an_alias_and_a_wildcard_model_route_through_responses() {
    let api = ClientApi::Responses;
    assert_routed(api, "fast", GPT, "gpt-4o", "/v1/chat/completions");
    assert_routed(
        api,
        "openai/o4-mini",
        "openai/o4-mini",
        "o4-mini",
        "/v1/chat/completions",
    );
    assert_routed(api, "smart", CLAUDE, "claude-sonnet-4-5", "/v1/messages");
    assert_routed(
        api,
        "anthropic/claude-opus-4-1",
        "anthropic/claude-opus-4-1",
        "claude-opus-4-1",
        "/v1/messages",
    );
}

#[test]
fn an_alias_and_a_wildcard_model_route_through_embeddings() {
    let api = ClientApi::Embeddings;
    assert_routed(api, "fast", GPT, "gpt-4o", "/v1/embeddings");
    assert_routed(
        api,
        "openai/text-embedding-3-small",
        "openai/text-embedding-3-small",
        "text-embedding-3-small",
        "/v1/embeddings",
    );
}

#[test]
fn an_alias_and_a_wildcard_model_route_through_count_tokens() {
    let api = ClientApi::CountTokens;
    assert_routed(
        api,
        "smart",
        CLAUDE,
        "claude-sonnet-4-5",
        "/v1/messages/count_tokens",
    );
    assert_routed(
        api,
        "anthropic/claude-haiku-4-5",
        "anthropic/claude-haiku-4-5",
        "claude-haiku-4-5",
        "/v1/messages/count_tokens",
    );
}

/// A wildcard `azure_openai/*` on a bare resource URL (the deployment path) and `openai/*`.
fn wildcard_sim() -> Simulation {
    sim("version: v0.3.0\nmodel_providers:\n  - model: azure_openai/*\n    base_url: https://r.openai.azure.com\n    access_key: k1\n  - model: openai/*\n    base_url: http://127.0.0.1:1002\n    access_key: k2\n")
}

#[test]
fn a_deployment_name_that_is_a_dot_segment_is_refused_in_the_clients_shape() {
    for api in [ClientApi::ChatCompletions, ClientApi::Messages] {
        for id in [".", ".."] {
            let mut s = wildcard_sim();
            let model = format!("azure_openai/{id}");
            s.script(&model, vec![Speaks::Chat.json()]);
            let r = post(&mut s, api, &request(api, &model, false));
            assert_eq!(r.status, 400, "{api:?} {model}");
            let e = doors_support::error_object(api, &r);
            let message = e["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(&format!("the Azure deployment name '{id}'")),
                "{api:?}: {e}"
            );
            assert_eq!(s.calls(&model), 0, "nothing is sent");
        }
    }
    // A dot inside a name is a deployment name like any other.
    let mut s = wildcard_sim();
    s.script("azure_openai/gpt-4.1", vec![Speaks::Chat.json()]);
    let api = ClientApi::ChatCompletions;
    let r = post(&mut s, api, &request(api, "azure_openai/gpt-4.1", false));
    assert_eq!(r.status, 200);
    assert_eq!(
        s.upstream("azure_openai/gpt-4.1")
            .expect("scripted")
            .received_paths[0],
        "/openai/deployments/gpt-4.1/chat/completions?api-version=2024-10-21"
    );
}

#[test]
fn a_wildcard_model_longer_than_the_bound_is_refused() {
    use switchback_core::routing::MAX_WILDCARD_MODEL_BYTES;
    let api = ClientApi::ChatCompletions;
    let longest = format!("openai/{}", "a".repeat(MAX_WILDCARD_MODEL_BYTES - 7));
    let mut s = wildcard_sim();
    s.script(&longest, vec![Speaks::Chat.json()]);
    let r = post(&mut s, api, &request(api, &longest, false));
    assert_eq!(r.status, 200, "{} bytes is within the bound", longest.len());
    let too_long = format!("{longest}a");
    s.script(&too_long, vec![Speaks::Chat.json()]);
    let r = post(&mut s, api, &request(api, &too_long, false));
    assert_eq!(r.status, 400);
    let e = doors_support::error_object(api, &r);
    assert_eq!(e["code"], "model_not_found", "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("may be at most 256")),
        "{e}"
    );
    assert_eq!(s.calls(&too_long), 0);
}
