//! Plano configs, served unchanged (spec §10): each scenario serves a file of the corpus in
//! `tests/configs/plano/` and proves where its requests land.

use switchback_tests::client::{get, post_chat};
use switchback_tests::fixtures::*;
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::{MockUpstream, Reply};
use switchback_tests::table::{assert_header, assert_status, error_of, ms, start};

use crate::harness::{assert_success_content, ok};

/// A corpus file with its `$..._API_KEY` references replaced by test keys (the ports stay
/// `${PRIMARY}` and so on, for [`start`]).
fn corpus(text: &str) -> String {
    let mut yaml = text.to_owned();
    for name in ["OPENAI", "MISTRAL", "ANTHROPIC"] {
        yaml = yaml.replace(&format!("${name}_API_KEY"), &format!("key-{name}"));
    }
    yaml
}

fn chat(model: &str) -> String {
    format!(r#"{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello"}}]}}"#)
}

/// The model the mock was asked for in its `n`th request.
fn asked(mock: &MockUpstream, n: usize) -> String {
    let requests = mock.requests();
    requests[n].json()["model"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `model_aliases`: a request for an alias goes to its target's entry, which is asked for
/// the target's model id; the answer names what the upstream named.
pub(crate) fn plano_alias_routes_to_target<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let secondary = MockUpstream::start(vec![ok(), ok()]);
    let yaml = corpus(include_str!("../../configs/plano/model_aliases.yaml"));
    let gw = start::<R>(&yaml, &[&primary, &secondary]);
    for alias in ["arch.summarize.v1", "fast-llm"] {
        let r = post_chat(gw.addr, &chat(alias));
        assert_success_content(&r);
        assert_header(&r, "x-switchback-model", "openai/gpt-4o-mini");
        assert_eq!(r.json()["model"], "mock-model", "the upstream's own name");
    }
    assert_eq!((primary.calls(), secondary.calls()), (0, 2));
    assert_eq!(asked(&secondary, 0), "gpt-4o-mini");
    assert_eq!(asked(&secondary, 1), "gpt-4o-mini");
    let models = get(gw.addr, "/v1/models").json().to_string();
    assert!(models.contains("\"arch.summarize.v1\"") && models.contains("\"fast-llm\""));
}

/// A wildcard entry answers `openai/<id>` as that concrete model: `<id>` upstream, the
/// full name in `x-switchback-model`; `/v1/models` lists the wildcard as written.
pub(crate) fn plano_wildcard_routes_concrete_model<R: Runtime>() {
    let wildcard = MockUpstream::start(vec![ok(), ok()]);
    let exact = MockUpstream::start(vec![ok()]);
    let yaml = corpus(include_str!("../../configs/plano/wildcard.yaml"));
    let gw = start::<R>(&yaml, &[&wildcard, &exact]);
    let r = post_chat(gw.addr, &chat("openai/gpt-4.1"));
    assert_success_content(&r);
    assert_header(&r, "x-switchback-model", "openai/gpt-4.1");
    assert_eq!(asked(&wildcard, 0), "gpt-4.1");
    let r = post_chat(gw.addr, &chat("openai/o3-mini"));
    assert_header(&r, "x-switchback-model", "openai/o3-mini");
    assert_eq!(asked(&wildcard, 1), "o3-mini");
    assert_eq!(exact.calls(), 0);
    let models = get(gw.addr, "/v1/models").json().to_string();
    assert!(models.contains("\"openai/*\"") && models.contains("\"openai/gpt-4o\""));
}

/// An exact entry wins over a wildcard of its prefix; a model no entry covers, with no
/// default, is a 404 (never sent anywhere).
pub(crate) fn plano_exact_beats_wildcard<R: Runtime>() {
    let wildcard = MockUpstream::start(vec![ok()]);
    let exact = MockUpstream::start(vec![ok()]);
    let yaml = corpus(include_str!("../../configs/plano/wildcard.yaml"));
    let gw = start::<R>(&yaml, &[&wildcard, &exact]);
    let r = post_chat(gw.addr, &chat("openai/gpt-4o"));
    assert_success_content(&r);
    assert_header(&r, "x-switchback-model", "openai/gpt-4o");
    assert_eq!(asked(&exact, 0), "gpt-4o");
    let r = post_chat(gw.addr, &chat("mistral/mistral-large"));
    assert_status(&r, 404);
    assert_eq!(error_of(&r)["code"], "model_not_found");
    let r = post_chat(gw.addr, &chat("openai/*"));
    assert_status(&r, 404);
    assert_eq!((wildcard.calls(), exact.calls()), (0, 1));
}

/// Listener `max_retries: 3` retries a 503 on the same model after Envoy's backoff
/// (0.5 s doubling, jittered to at least half); an entry's own policy wins.
pub(crate) fn plano_max_retries_retries_503_same_model<R: Runtime>() {
    let unavailable = || Reply::json(503, error_body(503, "Service unavailable"));
    let primary = MockUpstream::start(vec![unavailable(), unavailable(), ok()]);
    let secondary = MockUpstream::start(vec![unavailable(), unavailable()]);
    let yaml = corpus(include_str!("../../configs/plano/max_retries.yaml"));
    let gw = start::<R>(&yaml, &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_header(&r, "x-switchback-attempts", "3");
    assert_header(&r, "x-switchback-model", "openai/gpt-4o");
    assert_eq!((primary.calls(), secondary.calls()), (3, 0));
    // Backoff before retries 0 and 1: at least 250 ms + 500 ms with jitter.
    assert!(r.elapsed() >= ms(700), "{:?}", r.elapsed());
    // mistral's own policy grants one same-model retry, not the listener's three.
    let r = post_chat(gw.addr, &chat("mistral/ministral-3b-latest"));
    assert_status(&r, 503);
    assert_eq!(secondary.calls(), 2);
}

/// A fallback that only a wildcard entry covers is tried as that concrete model.
pub(crate) fn plano_fallback_through_wildcard<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::json(503, error_body(503, "down"))]);
    let wildcard = MockUpstream::start(vec![ok()]);
    let yaml = corpus(include_str!("../../configs/plano/wildcard_fallback.yaml"));
    let gw = start::<R>(&yaml, &[&primary, &wildcard]);
    let r = post_chat(gw.addr, &chat("anthropic/claude-sonnet-4-0"));
    assert_success_content(&r);
    assert_header(&r, "x-switchback-model", "openai/gpt-4.1");
    assert_header(&r, "x-switchback-attempts", "2");
    assert_eq!(asked(&wildcard, 0), "gpt-4.1");
}

/// `http_host` is the `Host` the upstream sees; `endpoint: host:port` reaches that port.
pub(crate) fn plano_http_host_and_endpoint<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let local = MockUpstream::start(vec![ok()]);
    let yaml = corpus(include_str!("../../configs/plano/http_host.yaml"));
    let gw = start::<R>(&yaml, &[&primary, &local]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_eq!(
        primary.requests()[0].header("host"),
        Some("llm.internal.example")
    );
    let r = post_chat(gw.addr, &chat("ollama/llama3.1"));
    assert_success_content(&r);
    assert_eq!(local.calls(), 1);
    assert_eq!(asked(&local, 0), "llama3.1");
}
