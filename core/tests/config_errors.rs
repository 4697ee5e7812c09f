//! One test per validation error: each asserts the YAML path and line of the finding.

use switchback_core::config::{load_str, ConfigError, Diagnostic};

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" => Some("sk-test-openai".into()),
        "PORT" => Some("8080".into()),
        _ => None,
    }
}

fn errors(yaml: &str) -> Vec<Diagnostic> {
    match load_str(yaml, &env) {
        Ok(l) => panic!("expected errors, got {:?}", l.config),
        Err(ConfigError { errors }) => errors,
    }
}

/// Asserts that some error sits at `path` on `line` and mentions `needle`.
#[track_caller]
fn expect(yaml: &str, path: &str, line: usize, needle: &str) {
    let errs = errors(yaml);
    let found = errs
        .iter()
        .any(|d| d.path == path && d.line == Some(line) && d.message.contains(needle));
    assert!(
        found,
        "no error at {path} line {line} mentioning {needle:?}; got:\n{}",
        ConfigError { errors: errs }
    );
}

const HEAD: &str = "listeners:\n  - type: model\n    port: 12000\nmodel_providers:\n";
// With HEAD, the first provider entry starts on line 5.

fn with(providers: &str) -> String {
    format!("{HEAD}{providers}")
}

#[test]
fn unknown_key_in_provider() {
    let y = with("  - model: openai/gpt-4o\n    acess_key: x\n");
    expect(&y, "model_providers[0].acess_key", 6, "unknown field");
}

#[test]
fn unknown_key_in_backoff() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      backoff:\n        apply_to: global\n        base: 100\n");
    expect(
        &y,
        "model_providers[0].retry_policy.backoff.base",
        10,
        "unknown field",
    );
}

#[test]
fn unknown_top_level_key() {
    expect(
        "model_providerz: []\n",
        "model_providerz",
        1,
        "unknown field",
    );
}

#[test]
fn yaml_syntax_error() {
    let errs = errors("model_providers: [\n  - model: x\n");
    assert!(errs[0].line.is_some(), "{errs:?}");
    assert!(errs[0].message.contains("YAML") || !errs[0].message.is_empty());
}

#[test]
fn wrong_type_list_for_scalar() {
    let y = with("  - model: [openai/gpt-4o]\n");
    expect(&y, "model_providers[0].model", 5, "single value");
}

#[test]
fn wrong_type_word_for_number() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      default_max_attempts: three\n");
    expect(
        &y,
        "model_providers[0].retry_policy.default_max_attempts",
        8,
        "whole number",
    );
}

#[test]
fn wrong_type_quoted_boolean() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    default: \"true\"\n");
    expect(&y, "model_providers[0].default", 7, "without quotes");
}

#[test]
fn bad_strategy() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      default_strategy: other_provider\n");
    expect(
        &y,
        "model_providers[0].retry_policy.default_strategy",
        8,
        "different_provider",
    );
}

#[test]
fn bad_measure_and_scope() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      on_high_latency:\n        threshold_ms: 5000\n        measure: p99\n        scope: region\n");
    expect(
        &y,
        "model_providers[0].retry_policy.on_high_latency.measure",
        10,
        "ttfb",
    );
    expect(
        &y,
        "model_providers[0].retry_policy.on_high_latency.scope",
        11,
        "provider",
    );
}

#[test]
fn status_code_out_of_range() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      on_status_codes:\n        - codes: [429, 600]\n");
    expect(
        &y,
        "model_providers[0].retry_policy.on_status_codes[0].codes[1]",
        9,
        "100-599",
    );
}

#[test]
fn inverted_range() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      on_status_codes:\n        - codes: [\"504-502\"]\n");
    expect(
        &y,
        "model_providers[0].retry_policy.on_status_codes[0].codes[0]",
        9,
        "\"502-504\"",
    );
}

#[test]
fn malformed_range() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      on_status_codes:\n        - codes: [\"5xx\"]\n");
    expect(
        &y,
        "model_providers[0].retry_policy.on_status_codes[0].codes[0]",
        9,
        "not a status code",
    );
}

#[test]
fn zero_where_positive_needed() {
    let fields = [
        (
            "backoff:\n        apply_to: global\n        base_ms: 0\n",
            "backoff.base_ms",
            10,
        ),
        (
            "backoff:\n        apply_to: global\n        max_ms: 0\n",
            "backoff.max_ms",
            10,
        ),
        ("max_retry_duration_ms: 0\n", "max_retry_duration_ms", 8),
        (
            "on_timeout:\n        max_attempts: 0\n",
            "on_timeout.max_attempts",
            9,
        ),
        (
            "retry_after_handling:\n        max_retry_after_seconds: 0\n",
            "retry_after_handling.max_retry_after_seconds",
            9,
        ),
        (
            "on_high_latency:\n        threshold_ms: 0\n",
            "on_high_latency.threshold_ms",
            9,
        ),
        (
            "on_high_latency:\n        threshold_ms: 2000\n        block_duration_seconds: 0\n",
            "on_high_latency.block_duration_seconds",
            10,
        ),
        (
            "on_high_latency:\n        threshold_ms: 2000\n        trigger_window_seconds: 0\n",
            "on_high_latency.trigger_window_seconds",
            10,
        ),
    ];
    for (snippet, path, line) in fields {
        let y = with(&format!(
            "  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      {snippet}"
        ));
        expect(
            &y,
            &format!("model_providers[0].retry_policy.{path}"),
            line,
            "not 0",
        );
    }
}

#[test]
fn max_not_above_base() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      backoff:\n        apply_to: global\n        base_ms: 500\n        max_ms: 500\n");
    expect(
        &y,
        "model_providers[0].retry_policy.backoff.max_ms",
        11,
        "greater than `base_ms`",
    );
}

#[test]
fn backoff_needs_apply_to() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      backoff: {base_ms: 100}\n");
    expect(
        &y,
        "model_providers[0].retry_policy.backoff.apply_to",
        8,
        "needs `apply_to`",
    );
}

#[test]
fn min_triggers_without_window() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      on_high_latency:\n        threshold_ms: 5000\n        min_triggers: 3\n");
    expect(
        &y,
        "model_providers[0].retry_policy.on_high_latency.trigger_window_seconds",
        10,
        "required",
    );
}

#[test]
fn fallback_without_slash() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      fallback_models: [claude-3-5-sonnet]\n");
    expect(
        &y,
        "model_providers[0].retry_policy.fallback_models[0]",
        8,
        "provider/model-id",
    );
}

#[test]
fn two_defaults() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    default: true\n  - model: mistral/large\n    access_key: k\n    default: true\n");
    expect(&y, "model_providers[1].default", 10, "only one entry");
}

#[test]
fn duplicate_models() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n  - model: openai/gpt-4o\n    access_key: k\n");
    expect(
        &y,
        "model_providers[1].model",
        7,
        "already defined by model_providers[0] (line 5)",
    );
}

#[test]
fn duplicate_names() {
    let y = with("  - model: openai/gpt-4o\n    name: fast\n    access_key: k\n  - model: openai/gpt-4o-mini\n    name: fast\n    access_key: k\n");
    expect(&y, "model_providers[1].name", 9, "already used");
}

#[test]
fn both_provider_lists() {
    let y = format!("{HEAD}  - model: openai/gpt-4o\n    access_key: k\nllm_providers:\n  - model: openai/gpt-4o-mini\n");
    expect(&y, "llm_providers", 8, "both `model_providers`");
}

#[test]
fn no_providers() {
    let errs = errors("version: v0.3.0\nlisteners:\n  - type: model\n");
    assert!(errs
        .iter()
        .any(|d| d.path == "model_providers" && d.message.contains("no providers")));
    expect("model_providers: []\n", "model_providers", 1, "empty");
}

#[test]
fn duplicate_listener_ports() {
    let y = "listeners:\n  - type: model\n    name: a\n  - type: model\n    name: b\n    port: 12000\nmodel_providers:\n  - model: mock/ok\n";
    expect(y, "listeners[1].port", 4, "already used by listeners[0]");
}

#[test]
fn unknown_listener_type() {
    // Prompt and agent listeners are skipped with a warning (tests/config_plano.rs);
    // a type Plano does not know is an error.
    let y = "listeners:\n  - type: proxy\n    name: p\nmodel_providers:\n  - model: mock/ok\n";
    expect(
        y,
        "listeners[0].type",
        2,
        "must be `model`, `prompt` or `agent`",
    );
}

#[test]
fn listener_timeout_needs_unit() {
    let y = "listeners:\n  - type: model\n    timeout: 300\nmodel_providers:\n  - model: mock/ok\n";
    expect(y, "listeners[0].timeout", 3, "\"300s\"");
}

#[test]
fn listener_bad_address_and_port() {
    let y = "listeners:\n  - type: model\n    address: everywhere\n  - type: model\n    port: 70000\nmodel_providers:\n  - model: mock/ok\n";
    expect(y, "listeners[0].address", 3, "IP address");
    expect(y, "listeners[1].port", 5, "from 1 to 65535");
}

#[test]
fn model_required_and_shaped() {
    let y = with("  - name: x\n  - model: gpt-4o\n");
    expect(&y, "model_providers[0].model", 5, "needs `model`");
    expect(&y, "model_providers[1].model", 6, "provider/model-id");
}

#[test]
fn unset_variable_names_variable_and_path() {
    let y = with("  - model: openai/gpt-4o\n    access_key: $MISSING_KEY\n");
    expect(&y, "model_providers[0].access_key", 6, "$MISSING_KEY");
    let errs = errors(&y);
    assert!(errs[0]
        .message
        .contains("the access_key of model_providers[0]"));
}

#[test]
fn secrets_never_in_messages() {
    // A bad header name next to a key that expands: the key's value must not leak.
    let y = with("  - model: openai/gpt-4o\n    access_key: $OPENAI_API_KEY\n    base_url: ftp://$OPENAI_API_KEY@host\n    headers:\n      \"bad header\": $OPENAI_API_KEY\n");
    let errs = errors(&y);
    let all = ConfigError {
        errors: errs.clone(),
    }
    .to_string();
    assert!(!all.contains("sk-test-openai"), "{all}");
    expect(&y, "model_providers[0].base_url", 7, "http://");
    // Credentials written into the URL itself are refused, and not repeated.
    let in_url = with(
        "  - model: openai/gpt-4o\n    base_url: https://admin:hunter2-secret@api.example.com/v1\n",
    );
    let all = ConfigError {
        errors: errors(&in_url),
    }
    .to_string();
    assert!(!all.contains("hunter2-secret"), "{all}");
    expect(
        &in_url,
        "model_providers[0].base_url",
        6,
        "must not carry `user:password@` credentials",
    );
    expect(
        &y,
        "model_providers[0].headers.bad header",
        9,
        "header name",
    );
}

#[test]
fn base_url_required_for_self_hosted() {
    let y = with("  - model: ollama/llama3\n");
    expect(&y, "model_providers[0].base_url", 5, "no public endpoint");
}

#[test]
fn unknown_mock_kind() {
    let y = with("  - model: mock/flaky\n");
    expect(&y, "model_providers[0].model", 5, "mock/rate-limited");
}

#[test]
fn mock_block_only_on_mock_models() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    mock: {delay: 1s}\n");
    expect(&y, "model_providers[0].mock", 7, "only allowed on `mock/");
}

#[test]
fn bad_provider_interface() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    provider_interface: grpc\n");
    expect(&y, "model_providers[0].provider_interface", 7, "anthropic");
}

#[test]
fn bad_timeouts() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    timeouts: {connect: 5, first_token: \"0s\", idle: 3x}\n");
    expect(&y, "model_providers[0].timeouts.connect", 7, "needs a unit");
    expect(
        &y,
        "model_providers[0].timeouts.first_token",
        7,
        "longer than zero",
    );
    expect(&y, "model_providers[0].timeouts.idle", 7, "unknown unit");
}

#[test]
fn then_needs_strategy_and_positive_attempts() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      on_status_codes:\n        - codes: [429]\n          then: {max_attempts: 1}\n      on_timeout:\n        then: {strategy: different_provider, max_attempts: 0}\n");
    expect(
        &y,
        "model_providers[0].retry_policy.on_status_codes[0].then.strategy",
        10,
        "needs a `strategy`",
    );
    expect(
        &y,
        "model_providers[0].retry_policy.on_timeout.then.max_attempts",
        12,
        "not 0",
    );
}

#[test]
fn collects_many_errors_at_once() {
    let y = with("  - model: openai/gpt-4o\n    access_key: $NOPE\n    retry_policy:\n      default_strategy: sideways\n      backoff: {apply_to: global, base_ms: 0}\n  - model: ollama/x\n");
    let errs = errors(&y);
    assert!(errs.len() >= 4, "{errs:?}");
    // Sorted by line.
    let lines: Vec<_> = errs.iter().map(|d| d.line.unwrap_or(0)).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
}

#[test]
fn display_has_path_line_and_message() {
    let y = with("  - model: openai/gpt-4o\n    access_key: k\n    default: maybe\n");
    let text = load_str(&y, &env).unwrap_err().to_string();
    assert!(
        text.starts_with("error: model_providers[0].default (line 7, column 14): "),
        "{text}"
    );
}

proptest::proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
        let _ = load_str(&s, &env);
    }

    #[test]
    fn never_panics_on_mangled_config(cut in 0usize..400, junk in "[ -~\\n]{0,20}") {
        let base = "listeners:\n  - type: model\n    port: 12000\nmodel_providers:\n  - model: openai/gpt-4o\n    access_key: ${OPENAI_API_KEY}\n    retry_policy:\n      on_status_codes:\n        - codes: [429, \"502-504\"]\n          then: {strategy: same_model}\n      backoff: {apply_to: global, base_ms: 10}\n";
        let cut = cut.min(base.len());
        let text = format!("{}{}{}", &base[..cut], junk, &base[cut..]);
        let _ = load_str(&text, &env);
    }
}
