//! The warning and error texts of Plano compatibility (spec §10) that the corpus in
//! `tests/configs/plano/` does not already pin, each with its path and line.

use std::time::Duration;

use switchback_core::config::{
    load_str, ConfigError, Diagnostic, Loaded, PolicyOrigin, Strategy, IMPLICIT_LISTENER,
};

fn env(name: &str) -> Option<String> {
    name.ends_with("_API_KEY").then(|| "sk-test".to_string())
}

fn ok(yaml: &str) -> Loaded {
    load_str(yaml, &env).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(yaml: &str) -> Vec<Diagnostic> {
    match load_str(yaml, &env) {
        Ok(l) => panic!("expected errors, got {:?}", l.config),
        Err(ConfigError { errors }) => errors,
    }
}

#[track_caller]
fn has(found: &[Diagnostic], path: &str, line: usize, needle: &str) {
    assert!(
        found
            .iter()
            .any(|d| d.path == path && d.line == Some(line) && d.message.contains(needle)),
        "nothing at {path} line {line} mentioning {needle:?}; got:\n{found:#?}"
    );
}

const HEAD: &str = "listeners:\n  - type: model\n    port: 12000\n";
const OPENAI: &str = "  - model: openai/gpt-4o\n    access_key: $OPENAI_API_KEY\n";

#[test]
fn every_ignored_override_is_named_and_the_connect_timeout_is_honoured() {
    let l = ok(&format!("{HEAD}model_providers:\n{OPENAI}  - model: mistral/m\n    access_key: $MISTRAL_API_KEY\n    timeouts: {{connect: 2s}}\noverrides:\n  upstream_connect_timeout: 9s\n  prompt_target_intent_matching_threshold: 0.6\n  use_agent_orchestrator: true\n  disable_signals: true\n  llm_routing_model: Plano-Orchestrator\n  agent_orchestration_model: Plano-Orchestrator\n  orchestrator_model_context_length: 8192\n"));
    assert_eq!(
        l.config.providers[0].timeouts.connect,
        Duration::from_secs(9)
    );
    assert_eq!(
        l.config.providers[1].timeouts.connect,
        Duration::from_secs(2),
        "the entry's own wins"
    );
    let w = &l.warnings;
    has(
        w,
        "overrides.prompt_target_intent_matching_threshold",
        12,
        "`overrides.prompt_target_intent_matching_threshold` is ignored: it tunes prompt targets",
    );
    has(
        w,
        "overrides.use_agent_orchestrator",
        13,
        "is ignored: switchback runs no agent orchestrator",
    );
    has(w, "overrides.disable_signals", 14, "nothing to disable");
    has(w, "overrides.llm_routing_model", 15, "runs no router model");
    has(
        w,
        "overrides.agent_orchestration_model",
        16,
        "runs no agent orchestrator",
    );
    has(
        w,
        "overrides.orchestrator_model_context_length",
        17,
        "runs no orchestrator model",
    );
    assert_eq!(w.len(), 6, "{w:#?}");
    let e = errors(&format!("{HEAD}model_providers:\n{OPENAI}overrides:\n  upstream_connect_timeout: 10\n  upstream_conect_timeout: 1s\n"));
    has(&e, "overrides.upstream_connect_timeout", 8, "needs a unit");
    has(
        &e,
        "overrides.upstream_conect_timeout",
        9,
        "unknown field `upstream_conect_timeout`; Plano's schema allows only",
    );
}

#[test]
fn the_ignored_section_warnings_say_what_is_not_done() {
    let l = ok(&format!("{HEAD}model_providers:\n{OPENAI}mode: llm\nagents:\n  - id: a\n    url: http://localhost:1\n"));
    has(
        &l.warnings,
        "mode",
        7,
        "`mode` is ignored: switchback always serves model (LLM) requests",
    );
    has(&l.warnings, "agents", 9, "`agents` is ignored: switchback serves no agent listeners, so these agents are never called");
    let e = errors(&format!(
        "{HEAD}model_providers:\n{OPENAI}mode:\n  - llm\nstate_storage: memory\n"
    ));
    has(&e, "mode", 8, "`mode` must be a single value here");
    has(&e, "state_storage", 9, "`state_storage` must be a mapping");
}

#[test]
fn orchestration_keys_on_a_model_listener_are_named_and_output_filters_refused() {
    let l = ok("listeners:\n  - type: model\n    name: m\n    router: plano_orchestrator_v1\nmodel_providers:\n  - model: mock/ok\n");
    has(
        &l.warnings,
        "listeners[0].router",
        4,
        "`listeners[0].router` is ignored: it configures agent orchestration",
    );
    let e = errors("listeners:\n  - type: model\n    output_filters: [redactor]\nmodel_providers:\n  - model: mock/ok\n");
    has(
        &e,
        "listeners[0].output_filters",
        3,
        "skipping them would pass unfiltered responses on",
    );
    let e = errors("listeners:\n  - type: agent\n    name: a\n    agents:\n      - id: x\n        descripton: typo\nmodel_providers:\n  - model: mock/ok\n");
    has(
        &e,
        "listeners[0].agents[0].descripton",
        6,
        "unknown field `descripton`",
    );
}

#[test]
fn the_implicit_listener_is_plano_s() {
    let l = ok("listeners: []\nmodel_providers:\n  - model: mock/ok\n");
    let lis = &l.config.listeners;
    assert_eq!(lis.len(), 1);
    assert_eq!(lis[0].name, IMPLICIT_LISTENER);
    assert_eq!(
        (lis[0].port, lis[0].timeout),
        (12000, Duration::from_secs(300))
    );
    assert_eq!(lis[0].address.to_string(), "127.0.0.1");
    has(
        &l.warnings,
        "listeners",
        1,
        "serves Plano's implicit model listener `egress_traffic`",
    );
    // Absent altogether: switchback's own default, silently.
    let l = ok("model_providers:\n  - model: mock/ok\n");
    assert_eq!(l.config.listeners[0].name, "model_listener");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn max_retries_maps_onto_providers_without_a_policy() {
    let l = ok(&format!("listeners:\n  - type: model\n    max_retries: 2\nmodel_providers:\n{OPENAI}  - model: mock/ok\n    retry_policy: {{}}\n"));
    let p = &l.config.providers[0];
    assert_eq!(p.policy_origin, PolicyOrigin::ListenerMaxRetries(2));
    let policy = p.retry_policy.as_ref().unwrap();
    assert_eq!(policy.default_rule.strategy, Strategy::SameModel);
    assert_eq!(policy.default_rule.max_attempts, 2);
    let b = policy.backoff.unwrap();
    assert_eq!(
        (b.base, b.max, b.jitter),
        (Duration::from_millis(500), Duration::from_secs(5), true)
    );
    assert_eq!(l.config.providers[1].policy_origin, PolicyOrigin::Written);
    assert_eq!(
        l.config.providers[1]
            .retry_policy
            .as_ref()
            .unwrap()
            .default_rule
            .strategy,
        Strategy::DifferentProvider
    );
    let l = ok(&format!(
        "listeners:\n  - type: model\n    max_retries: 0\nmodel_providers:\n{OPENAI}"
    ));
    assert_eq!(
        l.config.providers[0].retry_policy, None,
        "0 retries: nothing mapped"
    );
    let e = errors(&format!(
        "listeners:\n  - type: model\n    max_retries: -1\nmodel_providers:\n{OPENAI}"
    ));
    has(&e, "listeners[0].max_retries", 3, "must be a whole number");
}

#[test]
fn provider_key_errors() {
    let e = errors(&format!("{HEAD}model_providers:\n  - model: openai/*\n    name: all-openai\n    access_key: k\n  - model: ollama/a\n    base_url: http://127.0.0.1:1\n    endpoint: 127.0.0.1:2\n  - model: openai/gpt-4o\n    http_host: \"a b/c\"\n    retry_policy:\n      fallback_models: [anthropic/*]\n"));
    has(
        &e,
        "model_providers[0].name",
        6,
        "a wildcard entry stands for many models",
    );
    has(
        &e,
        "model_providers[1].endpoint",
        10,
        "both `base_url` and `endpoint`",
    );
    has(
        &e,
        "model_providers[2].http_host",
        12,
        "`http_host` must be a host name",
    );
    has(
        &e,
        "model_providers[2].retry_policy.fallback_models[0]",
        14,
        "is a wildcard; a fallback must name one model",
    );
    let e = errors(&format!(
        "{HEAD}model_providers:\n  - model: someone/m\n  - model: plano/Arch-Function\n"
    ));
    has(
        &e,
        "model_providers[0].base_url",
        5,
        "`someone` is not a provider prefix switchback knows",
    );
    has(
        &e,
        "model_providers[1].base_url",
        6,
        "names a server you run",
    );
    let e = errors(&format!("{HEAD}model_providers:\n  - model: azure_openai/*\n    base_url: https://r.openai.azure.com\n    access_key: k\n  - model: azure_openai/bad name\n    base_url: https://r.openai.azure.com\n    access_key: k\n"));
    assert_eq!(
        e.len(),
        1,
        "a wildcard's endpoint is checked with a sample id: {e:#?}"
    );
    has(
        &e,
        "model_providers[1].base_url",
        9,
        "may only hold letters, digits",
    );
}

#[test]
fn alias_errors() {
    let e = errors(&format!("{HEAD}model_providers:\n{OPENAI}    name: best\nmodel_aliases:\n  best:\n    target: openai/gpt-4o\n  openai/gpt-4o:\n    target: openai/gpt-4o\n  empty: {{}}\n"));
    has(
        &e,
        "model_aliases.best",
        9,
        "is also the model or name of model_providers[0]",
    );
    has(
        &e,
        "model_aliases.openai/gpt-4o",
        11,
        "is also the model or name",
    );
    has(&e, "model_aliases.empty", 13, "needs a `target`");
    let e = errors(&format!(
        "{HEAD}model_providers:\n{OPENAI}model_aliases:\n  fast:\n    targt: openai/gpt-4o\n"
    ));
    has(&e, "model_aliases.fast.targt", 9, "unknown field `targt`");
    let l = ok(&format!(
        "{HEAD}model_providers:\n{OPENAI}model_aliases:\n  fast:\n    target: gpt-4o\n"
    ));
    assert_eq!(
        l.config.aliases[0].target, "openai/gpt-4o",
        "a bare id names its entry"
    );
}

#[test]
fn fallbacks_a_wildcard_covers_are_defined() {
    let l = ok(&format!("{HEAD}model_providers:\n  - model: anthropic/claude\n    access_key: k\n    retry_policy:\n      fallback_models: [openai/gpt-4.1, mistral/large]\n  - model: openai/*\n    access_key: k\n"));
    assert_eq!(l.warnings.len(), 1, "{:#?}", l.warnings);
    has(
        &l.warnings,
        "model_providers[0].retry_policy.fallback_models[1]",
        8,
        "`mistral/large` is not defined by any provider entry",
    );
}

/// Asserts one finding at `path` and `line` whose whole message is `message`.
#[track_caller]
fn exactly(found: &[Diagnostic], path: &str, line: usize, message: &str) {
    assert!(
        found
            .iter()
            .any(|d| d.path == path && d.line == Some(line) && d.message == message),
        "no {path} (line {line}): {message:?}; got:\n{found:#?}"
    );
}

#[test]
fn the_routing_section_is_ignored_with_its_reason() {
    let l = ok(&format!(
        "{HEAD}model_providers:\n{OPENAI}routing:\n  model: Arch-Router\n"
    ));
    exactly(
        &l.warnings,
        "routing",
        8,
        "`routing` is ignored: switchback does no session or preference routing; a request goes to the model it names, an alias, or the default provider",
    );
}

#[test]
fn tracing_exporters_are_ignored_with_their_reason() {
    let l = ok(&format!(
        "{HEAD}model_providers:\n{OPENAI}tracing:\n  random_sampling: 10\n  exporters:\n    - type: posthog\n      api_key: phc-test\n"
    ));
    exactly(
        &l.warnings,
        "tracing.exporters",
        10,
        "`tracing.exporters` is ignored: switchback exports spans over OTLP only (`opentracing_grpc_endpoint` or `otlp_http_endpoint`); no PostHog events are sent",
    );
}

#[test]
fn a_legacy_listener_with_another_message_format_is_refused() {
    let e = errors(&format!(
        "listeners:\n  egress_traffic:\n    port: 12000\n    message_format: anthropic\nmodel_providers:\n{OPENAI}"
    ));
    exactly(
        &e,
        "listeners.egress_traffic.message_format",
        4,
        "`message_format` must be `openai` (the only format switchback serves)",
    );
}

#[test]
fn an_unknown_legacy_listener_is_refused() {
    let e = errors(&format!(
        "listeners:\n  egress_traffic:\n    port: 12000\n  side_traffic:\n    port: 12001\nmodel_providers:\n{OPENAI}"
    ));
    exactly(
        &e,
        "listeners.side_traffic",
        4,
        "unknown legacy listener `side_traffic`; the legacy form only knows `egress_traffic` and `ingress_traffic` (or use the list form: `listeners: [{type: model, port: 12000}]`)",
    );
}

#[test]
fn an_alias_written_twice_is_refused() {
    let e = errors(&format!(
        "{HEAD}model_providers:\n{OPENAI}model_aliases:\n  fast:\n    target: openai/gpt-4o\n  fast:\n    target: openai/gpt-4o\n"
    ));
    exactly(
        &e,
        "model_aliases.fast",
        10,
        "the key `fast` appears twice in this mapping; keep only one",
    );
}

#[test]
fn an_empty_provider_list_is_refused() {
    let e = errors(&format!("{HEAD}model_providers: []\n"));
    exactly(
        &e,
        "model_providers",
        4,
        "`model_providers` is empty; add at least one provider, e.g. `- model: openai/gpt-4o`",
    );
}
