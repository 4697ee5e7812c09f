//! `retry_budget`, `on_failures` and `limits` (spec §11): defaults, inheritance, every
//! validation error with its YAML path and line, and the warnings.

use std::time::Duration;
use switchback_core::config::{
    load_str, BlockScope, ConfigError, Diagnostic, Limits, Loaded, OnFailures, RetryBudgetSettings,
};

fn load(yaml: &str) -> Loaded {
    load_str(yaml, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn error_at(yaml: &str, path: &str, line: usize, needle: &str) {
    let errors = match load_str(yaml, &|_| None) {
        Ok(l) => panic!("expected an error at {path}, got {:?}", l.config),
        Err(ConfigError { errors }) => errors,
    };
    assert!(
        errors
            .iter()
            .any(|d| d.path == path && d.line == Some(line) && d.message.contains(needle)),
        "no error at {path} line {line} mentioning {needle:?}; got:\n{}",
        ConfigError { errors }
    );
}

#[track_caller]
fn warned(l: &Loaded, path: &str, line: usize, needle: &str) {
    assert!(
        l.warnings.iter().any(|w: &Diagnostic| w.path == path
            && w.line == Some(line)
            && w.message.contains(needle)),
        "no warning at {path} line {line} with {needle:?}: {:#?}",
        l.warnings
    );
}

/// Two providers; the first has a retry policy with `policy` (indented by 6) under it.
fn providers(policy: &str) -> String {
    format!(
        "model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n{policy}  - model: anthropic/claude\n    access_key: k\n"
    )
}

#[test]
fn budget_on_by_default_limits_256_mib_failure_blocks_off() {
    let l = load(&providers("      {}\n"));
    assert_eq!(l.config.retry_budget, RetryBudgetSettings::default());
    assert_eq!(
        l.config.retry_budget,
        RetryBudgetSettings {
            enabled: true,
            ratio: 0.2,
            min_per_second: 10
        }
    );
    assert_eq!(
        l.config.limits,
        Limits {
            max_buffered_body_bytes: 256 * 1024 * 1024
        }
    );
    let p = &l.config.providers[0];
    assert_eq!(p.retry_budget, None);
    assert_eq!(p.retry_policy.as_ref().unwrap().on_failures, None);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn on_failures_written_empty_takes_the_spec_defaults() {
    let l = load(&providers("      on_failures: {}\n"));
    let f = l.config.providers[0]
        .retry_policy
        .as_ref()
        .unwrap()
        .on_failures
        .expect("on");
    assert_eq!(
        f,
        OnFailures {
            consecutive: 5,
            window: Duration::from_secs(30),
            block_duration: Duration::from_secs(30),
            scope: BlockScope::Model
        }
    );
    let l = load(&providers(
        "      on_failures: {consecutive: 2, window_seconds: 10, block_duration_seconds: 4, scope: provider}\n",
    ));
    let f = l.config.providers[0]
        .retry_policy
        .as_ref()
        .unwrap()
        .on_failures
        .expect("on");
    assert_eq!(
        (f.consecutive, f.window, f.block_duration, f.scope),
        (
            2,
            Duration::from_secs(10),
            Duration::from_secs(4),
            BlockScope::Provider
        )
    );
}

#[test]
fn a_provider_budget_inherits_what_it_does_not_set_from_the_top_level() {
    let l = load(
        "retry_budget: {ratio: 0.5, min_per_second: 3}
limits: {max_buffered_body_bytes: 1GiB}
model_providers:
  - model: openai/gpt-4o
    access_key: k
    retry_policy: {}
    retry_budget: {min_per_second: 1}
  - model: anthropic/claude
    access_key: k
",
    );
    assert_eq!(l.config.retry_budget.ratio, 0.5);
    assert_eq!(l.config.retry_budget.min_per_second, 3);
    assert_eq!(l.config.limits.max_buffered_body_bytes, 1 << 30);
    let own = l.config.providers[0].retry_budget.expect("own budget");
    assert_eq!(
        own,
        RetryBudgetSettings {
            enabled: true,
            ratio: 0.5,
            min_per_second: 1
        }
    );
    assert_eq!(l.config.providers[1].retry_budget, None);
}

#[test]
fn budget_can_be_switched_off() {
    let l = load(&format!(
        "retry_budget: {{enabled: false}}\n{}",
        providers("      {}\n")
    ));
    assert!(!l.config.retry_budget.enabled);
}

#[test]
fn an_entry_that_writes_a_budget_is_budgeted_even_when_the_gateway_is_not() {
    let l = load(
        "retry_budget: {enabled: false, ratio: 0.5}
model_providers:
  - model: openai/gpt-4o
    access_key: k
    retry_policy: {}
    retry_budget: {min_per_second: 2}
  - model: openai/gpt-4o-mini
    access_key: k
    retry_policy: {}
    retry_budget: {enabled: false}
",
    );
    let own = l.config.providers[0].retry_budget.expect("own budget");
    assert!(own.enabled);
    assert_eq!((own.ratio, own.min_per_second), (0.5, 2));
    assert!(!l.config.providers[1].retry_budget.expect("own").enabled);
}

#[test]
fn sizes_take_units() {
    for (written, bytes) in [
        ("1048576", 1usize << 20),
        ("\"64MiB\"", 64 << 20),
        ("512KiB", 512 << 10),
        ("2GB", 2_000_000_000),
        ("\"100 MB\"", 100_000_000),
    ] {
        let l = load(&format!(
            "limits:\n  max_buffered_body_bytes: {written}\n{}",
            providers("      {}\n")
        ));
        assert_eq!(l.config.limits.max_buffered_body_bytes, bytes, "{written}");
    }
}

#[test]
fn budget_errors_name_the_path_and_line() {
    let tail = providers("      {}\n");
    error_at(
        &format!("retry_budget:\n  ratio: -1\n{tail}"),
        "retry_budget.ratio",
        2,
        "from 0 to 100",
    );
    error_at(
        &format!("retry_budget:\n  ratio: \"0.2\"\n{tail}"),
        "retry_budget.ratio",
        2,
        "remove the quotes",
    );
    error_at(
        &format!("retry_budget:\n  ratio: lots\n{tail}"),
        "retry_budget.ratio",
        2,
        "must be a number",
    );
    error_at(
        &format!("retry_budget:\n  min_per_second: 2.5\n{tail}"),
        "retry_budget.min_per_second",
        2,
        "whole number",
    );
    error_at(
        &format!("retry_budget:\n  min_per_second: -3\n{tail}"),
        "retry_budget.min_per_second",
        2,
        "whole number",
    );
    error_at(
        &format!("retry_budget:\n  enabled: \"yes\"\n{tail}"),
        "retry_budget.enabled",
        2,
        "true or false",
    );
    error_at(
        &format!("retry_budget:\n  ratios: 1\n{tail}"),
        "retry_budget.ratios",
        2,
        "unknown field",
    );
    let entry = "model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy: {}\n    retry_budget:\n      ratio: 200\n";
    error_at(
        entry,
        "model_providers[0].retry_budget.ratio",
        6,
        "from 0 to 100",
    );
}

#[test]
fn on_failures_errors_name_the_path_and_line() {
    let p = "model_providers[0].retry_policy.on_failures";
    error_at(
        &providers("      on_failures:\n        consecutive: 0\n"),
        &format!("{p}.consecutive"),
        6,
        "not 0",
    );
    error_at(
        &providers("      on_failures:\n        window_seconds: 0\n"),
        &format!("{p}.window_seconds"),
        6,
        "not 0",
    );
    error_at(
        &providers("      on_failures:\n        block_duration_seconds: \"30\"\n"),
        &format!("{p}.block_duration_seconds"),
        6,
        "remove the quotes",
    );
    error_at(
        &providers("      on_failures:\n        scope: region\n"),
        &format!("{p}.scope"),
        6,
        "model, provider",
    );
    error_at(
        &providers("      on_failures:\n        apply_to: global\n"),
        &format!("{p}.apply_to"),
        6,
        "unknown field",
    );
}

#[test]
fn limits_errors_name_the_path_and_line() {
    let tail = providers("      {}\n");
    for bad in ["0", "\"12XB\"", "\"MiB\"", "true", "\"0MiB\""] {
        error_at(
            &format!("limits:\n  max_buffered_body_bytes: {bad}\n{tail}"),
            "limits.max_buffered_body_bytes",
            2,
            "max_buffered_body_bytes",
        );
    }
    error_at(
        &format!("limits:\n  max_body: 1\n{tail}"),
        "limits.max_body",
        2,
        "unknown field",
    );
}

#[test]
fn warnings_for_settings_that_do_nothing_or_refuse_everything() {
    let l = load(&format!(
        "retry_budget: {{ratio: 0, min_per_second: 0}}\nlimits: {{max_buffered_body_bytes: 1MiB}}\n{}",
        providers("      {}\n")
    ));
    warned(&l, "retry_budget", 1, "no retry will ever be made");
    warned(
        &l,
        "limits.max_buffered_body_bytes",
        2,
        "less than the 32 MiB",
    );
    let l = load("model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_budget: {ratio: 1}\n");
    warned(
        &l,
        "model_providers[0].retry_budget",
        4,
        "no `retry_policy`",
    );
}
