//! Which candidates are asked to continue a stream, in which order (spec §12: §4.3 with
//! the same model first).

use std::sync::Arc;

use switchback_core::config::load_str;
use switchback_core::gateway::{Gateway, ProviderId};
use switchback_core::recovery::continuation_candidates;
use switchback_core::routing::Targets;

fn gateway(strategy: &str) -> Arc<Gateway> {
    let yaml = format!(
        "model_providers:
  - model: openai/gpt-4o
    access_key: k
    continuation: assistant_prefill
    retry_policy:
      fallback_models: [mistral/large]
      default_strategy: {strategy}
      stream_recovery: {{}}
  - model: openai/gpt-4o-mini
    access_key: k
    continuation: assistant_prefill
  - model: anthropic/claude
    access_key: k
  - model: groq/llama
    access_key: k
  - model: mistral/large
    access_key: k
    continuation: mistral_prefix
  - model: mock/ok
"
    );
    let cfg = load_str(&yaml, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    Arc::new(Gateway::new(cfg).unwrap())
}

fn names(gw: &Arc<Gateway>, failed: &str, tried: &[&str]) -> Vec<String> {
    let route = gw.route("openai/gpt-4o").unwrap();
    let (targets, primary) = Targets::for_route(Arc::clone(gw), &route).unwrap();
    let id = |m: &str| targets.find_model(m).unwrap();
    let tried: Vec<ProviderId> = tried.iter().map(|m| id(m)).collect();
    let policy = targets.provider(primary).retry_policy.clone().unwrap();
    continuation_candidates(&targets, &policy, primary, id(failed), &tried)
        .into_iter()
        .map(|i| targets.provider(i).model.clone())
        .collect()
}

#[test]
fn the_streaming_model_first_then_the_failover_order() {
    let gw = gateway("different_provider");
    // groq has no style and the mock cannot continue: neither is asked.
    assert_eq!(
        names(&gw, "openai/gpt-4o", &[]),
        ["openai/gpt-4o", "mistral/large", "anthropic/claude"]
    );
    // A stream on a fallback: it first, then the primary, then the others.
    assert_eq!(
        names(&gw, "anthropic/claude", &[]),
        ["anthropic/claude", "openai/gpt-4o", "mistral/large"]
    );
    assert_eq!(
        names(&gw, "openai/gpt-4o", &["openai/gpt-4o", "mistral/large"]),
        ["anthropic/claude"]
    );
}

#[test]
fn the_strategy_of_a_transport_failure_decides_who_fits() {
    let gw = gateway("same_provider");
    assert_eq!(
        names(&gw, "openai/gpt-4o", &[]),
        ["openai/gpt-4o", "openai/gpt-4o-mini"]
    );
    let gw = gateway("same_model");
    assert_eq!(names(&gw, "openai/gpt-4o", &[]), ["openai/gpt-4o"]);
    assert!(names(&gw, "openai/gpt-4o", &["openai/gpt-4o"]).is_empty());
}
