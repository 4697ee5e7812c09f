//! Defaults, warnings and variable expansion.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use switchback_core::config::{
    load_str, BlockApplyTo, BlockScope, Diagnostic, Interface, Loaded, MockSettings, RetryPolicy,
    Strategy, Timeouts,
};

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" => Some("sk-openai".into()),
        "TEAM" => Some("platform".into()),
        "PORT" => Some("8080".into()),
        _ => None,
    }
}

fn load(yaml: &str) -> Loaded {
    load_str(yaml, &env).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn warned(l: &Loaded, path: &str, line: usize, needle: &str) {
    let ok = l
        .warnings
        .iter()
        .any(|w: &Diagnostic| w.path == path && w.line == Some(line) && w.message.contains(needle));
    assert!(
        ok,
        "no warning at {path} line {line} with {needle:?}: {:#?}",
        l.warnings
    );
}

#[test]
fn listener_and_provider_defaults() {
    let l = load("model_providers:\n  - model: openai/gpt-4o\n    access_key: $OPENAI_API_KEY\n");
    let c = &l.config;
    assert_eq!(c.version, None);
    assert_eq!(c.listeners.len(), 1);
    let lis = &c.listeners[0];
    assert_eq!(lis.address, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(lis.port, 12000);
    assert_eq!(lis.timeout, Duration::from_secs(300));
    let p = &c.providers[0];
    assert_eq!(p.interface, Interface::OpenAi);
    assert!(!p.default && !p.passthrough_auth);
    assert!(p.retry_policy.is_none());
    assert_eq!(p.timeouts, Timeouts::default());
    assert_eq!(p.line, 2);
    assert_eq!(p.access_key.as_ref().unwrap().expose(), "sk-openai");
    assert!(l.warnings.is_empty());
}

#[test]
fn listener_fields() {
    let l = load("listeners:\n  - type: model\n    name: edge\n    address: 0.0.0.0\n    port: 9000\n    timeout: 2m\nmodel_providers:\n  - model: mock/ok\n");
    let lis = &l.config.listeners[0];
    assert_eq!(lis.name, "edge");
    assert_eq!(lis.address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(lis.port, 9000);
    assert_eq!(lis.timeout, Duration::from_secs(120));
}

#[test]
fn legacy_listener_form() {
    let l = load("listeners:\n  egress_traffic:\n    address: 0.0.0.0\n    port: 12000\n    message_format: openai\n    timeout: 30s\nmodel_providers:\n  - model: mock/ok\n");
    let lis = &l.config.listeners[0];
    assert_eq!(lis.name, "egress_traffic");
    assert_eq!(lis.timeout, Duration::from_secs(30));
}

#[test]
fn empty_retry_policy_is_the_default_policy() {
    let l = load("model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy: {}\n  - model: anthropic/claude\n    access_key: k\n");
    assert_eq!(
        l.config.providers[0].retry_policy,
        Some(RetryPolicy::default())
    );
    assert_eq!(l.config.providers[1].interface, Interface::Anthropic);
}

#[test]
fn rule_defaults_inherit_policy_defaults() {
    let l = load("model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      default_strategy: same_model\n      default_max_attempts: 4\n      on_status_codes:\n        - codes: [\"429\", \"500-504\"]\n      on_timeout: {}\n      backoff: {apply_to: global}\n      retry_after_handling: {}\n");
    let p = l.config.providers[0].retry_policy.clone().unwrap();
    let r = &p.on_status_codes[0];
    assert_eq!(r.codes.len(), 2);
    assert!(r.codes[0].contains(429) && r.codes[1].contains(503) && !r.codes[1].contains(505));
    assert_eq!(
        (r.rule.strategy, r.rule.max_attempts),
        (Strategy::SameModel, 4)
    );
    assert_eq!(r.rule.max_wait, Duration::from_secs(5));
    let t = p.on_timeout.unwrap();
    assert_eq!((t.strategy, t.max_attempts), (Strategy::SameModel, 4));
    let b = p.backoff.unwrap();
    assert_eq!(
        (b.base, b.max, b.jitter),
        (
            Duration::from_millis(100),
            Duration::from_millis(5000),
            true
        )
    );
    assert_eq!(p.retry_after_handling.scope, BlockScope::Model);
    assert_eq!(p.retry_after_handling.apply_to, BlockApplyTo::Global);
    assert_eq!(p.max_retry_duration, None);
}

#[test]
fn high_latency_defaults() {
    let l = load("model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      on_high_latency: {threshold_ms: 3000}\n  - model: anthropic/c\n    access_key: k\n");
    let h = l.config.providers[0]
        .retry_policy
        .as_ref()
        .unwrap()
        .on_high_latency
        .unwrap();
    assert_eq!(h.min_triggers, 1);
    assert_eq!(h.trigger_window, None);
    assert_eq!(h.block_duration, Duration::from_secs(300));
    assert_eq!(h.strategy, Strategy::DifferentProvider);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn interfaces_and_timeouts() {
    let l = load("model_providers:\n  - model: azure_openai/gpt-4o\n    base_url: https://x.openai.azure.com\n    access_key: k\n    timeouts: {connect: 2s, first_token: 1m, idle: 1500ms}\n  - model: anthropic/claude\n    provider_interface: openai\n    access_key: k\n  - model: ollama/llama3\n    base_url: http://127.0.0.1:11434\n    provider_interface: claude\n");
    let p = &l.config.providers;
    assert_eq!(p[0].interface, Interface::AzureOpenAi);
    assert_eq!(p[0].timeouts.connect, Duration::from_secs(2));
    assert_eq!(p[0].timeouts.first_token, Duration::from_secs(60));
    assert_eq!(p[0].timeouts.idle, Duration::from_millis(1500));
    assert_eq!(p[1].interface, Interface::OpenAi);
    assert_eq!(p[2].interface, Interface::Anthropic);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn mock_providers() {
    let l = load("model_providers:\n  - model: mock/rate-limited\n    mock: {retry_after_seconds: 2}\n  - model: mock/slow\n  - model: mock/ok\n    mock: {delay: 250ms}\n  - model: mock/stream-cut\n");
    let p = &l.config.providers;
    assert!(p.iter().all(|p| p.interface == Interface::Mock));
    assert_eq!(p[0].mock.retry_after_seconds, 2);
    assert_eq!(p[0].mock.delay, Duration::ZERO);
    assert_eq!(p[1].mock.delay, MockSettings::default().delay);
    assert_eq!(p[2].mock.delay, Duration::from_millis(250));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn expansion_in_access_key_base_url_and_headers() {
    let l = load("model_providers:\n  - model: vllm/qwen\n    base_url: http://127.0.0.1:${PORT}/v1\n    access_key: ${OPENAI_API_KEY}\n    headers:\n      x-team: team-$TEAM\n      x-literal: cost $$5\n    name: $NOT_EXPANDED\n");
    let p = &l.config.providers[0];
    assert_eq!(p.base_url.as_deref(), Some("http://127.0.0.1:8080/v1"));
    assert_eq!(p.access_key.as_ref().unwrap().expose(), "sk-openai");
    assert_eq!(p.headers[0].1.expose(), "team-platform");
    assert_eq!(p.headers[1].1.expose(), "cost $5");
    assert_eq!(p.name.as_deref(), Some("$NOT_EXPANDED"));
    assert_eq!(format!("{:?}", p.access_key), "Some(Secret(***))");
}

#[test]
fn warning_duplicate_code() {
    let l = load("model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      on_status_codes:\n        - codes: [\"500-504\"]\n        - codes: [503]\n  - model: anthropic/c\n    access_key: k\n");
    warned(
        &l,
        "model_providers[0].retry_policy.on_status_codes[1].codes",
        7,
        "first entry wins",
    );
}

#[test]
fn warning_undefined_fallback() {
    let l = load("model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      fallback_models: [anthropic/claude-9]\n  - model: anthropic/c\n    access_key: k\n");
    warned(
        &l,
        "model_providers[0].retry_policy.fallback_models[0]",
        5,
        "not defined",
    );
}

#[test]
fn warning_failover_with_single_provider() {
    let l = load("model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      default_strategy: same_model\n      on_status_codes:\n        - codes: [429]\n          strategy: different_provider\n");
    warned(
        &l,
        "model_providers[0].retry_policy.on_status_codes[0].strategy",
        8,
        "never find a candidate",
    );
    let l = load("model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      on_timeout: {strategy: same_provider, max_attempts: 1}\n      default_strategy: same_model\n  - model: anthropic/c\n    access_key: k\n");
    warned(
        &l,
        "model_providers[0].retry_policy.on_timeout.strategy",
        5,
        "same_provider",
    );
}

#[test]
fn warning_implicit_default_strategy_with_single_provider() {
    let l = load(
        "model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy: {}\n",
    );
    warned(
        &l,
        "model_providers[0].retry_policy.default_strategy",
        4,
        "different_provider",
    );
}

#[test]
fn warning_backoff_never_applies() {
    let l = load("model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      backoff: {apply_to: same_model}\n  - model: anthropic/c\n    access_key: k\n");
    warned(
        &l,
        "model_providers[0].retry_policy.backoff.apply_to",
        5,
        "never applies",
    );
}

#[test]
fn warning_low_threshold_and_latency_max_attempts() {
    let l = load("model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      on_high_latency:\n        threshold_ms: 200\n        max_attempts: 3\n  - model: anthropic/c\n    access_key: k\n");
    warned(
        &l,
        "model_providers[0].retry_policy.on_high_latency.threshold_ms",
        6,
        "under 1000",
    );
    warned(
        &l,
        "model_providers[0].retry_policy.on_high_latency.max_attempts",
        7,
        "no effect",
    );
}

#[test]
fn warning_missing_access_key() {
    let l = load("model_providers:\n  - model: openai/gpt-4o\n  - model: openai/gpt-4o-mini\n    passthrough_auth: true\n");
    warned(
        &l,
        "model_providers[0].access_key",
        2,
        "without credentials",
    );
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
}

#[test]
fn warning_deprecated_alias_and_ignored_sections() {
    let l = load(
        "tracing:\n  random_sampling: 100\nllm_providers:\n  - model: mock/ok\n    http_host: x\n",
    );
    warned(&l, "llm_providers", 4, "deprecated");
    warned(&l, "tracing", 2, "names no endpoint");
    warned(&l, "llm_providers[0].http_host", 5, "ignored");
    assert_eq!(l.config.providers[0].model, "mock/ok");
}

#[test]
fn warning_max_wait_without_then() {
    let l = load("model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      default_strategy: same_model\n      on_timeout: {max_attempts: 1, max_wait: 2s}\n");
    warned(
        &l,
        "model_providers[0].retry_policy.on_timeout.max_wait",
        6,
        "only matters together with `then`",
    );
}
