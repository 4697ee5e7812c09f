//! `retry_policy.stream_recovery` and a provider entry's `continuation` (spec §12):
//! defaults, every validation error with its YAML path and line, the warning for a policy
//! no candidate can serve, and what `check --explain` says.

use switchback_core::config::{
    explain, load_str, ConfigError, Continuation, Diagnostic, Loaded, StreamRecovery,
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

/// The warnings at `path`.
fn warnings_at<'a>(l: &'a Loaded, path: &str) -> Vec<&'a Diagnostic> {
    l.warnings.iter().filter(|w| w.path == path).collect()
}

#[test]
fn a_written_stream_recovery_with_a_candidate_loads_without_warnings() {
    for policy in [
        "      stream_recovery: {}\n",
        "      stream_recovery: {mode: off}\n",
    ] {
        let l = load(&config("", policy));
        assert!(l.warnings.is_empty(), "{policy}: {:#?}", l.warnings);
    }
}

/// An OpenAI primary with `policy` (indented by 6) and `extra` lines on its entry (indented
/// by 4), then an Anthropic entry.
fn config(extra: &str, policy: &str) -> String {
    format!(
        "model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n{extra}    retry_policy:\n{policy}  - model: anthropic/claude\n    access_key: k\n"
    )
}

#[test]
fn recovery_is_off_unless_written_and_styles_default_by_interface() {
    let l = load(&config("", "      {}\n"));
    let openai = &l.config.providers[0];
    let anthropic = &l.config.providers[1];
    assert_eq!(openai.retry_policy.as_ref().unwrap().stream_recovery, None);
    assert_eq!(openai.continuation, Continuation::None);
    assert_eq!(anthropic.continuation, Continuation::Native);
    let mock = load("model_providers:\n  - model: mock/ok\n");
    assert_eq!(mock.config.providers[0].continuation, Continuation::None);
}

#[test]
fn writing_the_block_turns_it_on_with_two_continuations() {
    let l = load(&config("", "      stream_recovery: {}\n"));
    let policy = l.config.providers[0].retry_policy.as_ref().unwrap();
    assert_eq!(
        policy.stream_recovery,
        Some(StreamRecovery {
            max_continuations: 2
        })
    );
    let l = load(&config(
        "",
        "      stream_recovery: {mode: continue, max_continuations: 5}\n",
    ));
    let policy = l.config.providers[0].retry_policy.as_ref().unwrap();
    assert_eq!(policy.stream_recovery.unwrap().max_continuations, 5);
    let l = load(&config("", "      stream_recovery: {mode: off}\n"));
    assert_eq!(
        l.config.providers[0]
            .retry_policy
            .as_ref()
            .unwrap()
            .stream_recovery,
        None
    );
}

#[test]
fn every_style_is_read() {
    for (style, want) in [
        ("assistant_prefill", Continuation::AssistantPrefill),
        ("mistral_prefix", Continuation::MistralPrefix),
        ("deepseek_prefix", Continuation::DeepseekPrefix),
        (
            "vllm_continue_final_message",
            Continuation::VllmContinueFinalMessage,
        ),
        ("none", Continuation::None),
    ] {
        let l = load(&config(
            &format!("    continuation: {style}\n"),
            "      {}\n",
        ));
        assert_eq!(l.config.providers[0].continuation, want, "{style}");
        assert_eq!(want.name(), style);
    }
    let l = load(
        "model_providers:\n  - model: anthropic/claude-opus-4-6\n    access_key: k\n    continuation: none\n  - model: anthropic/claude\n    access_key: k\n    continuation: native\n",
    );
    assert_eq!(l.config.providers[0].continuation, Continuation::None);
    assert_eq!(l.config.providers[1].continuation, Continuation::Native);
}

#[test]
fn bad_values_are_errors_with_path_and_line() {
    error_at(
        &config("", "      stream_recovery: {mode: restart}\n"),
        "model_providers[0].retry_policy.stream_recovery.mode",
        5,
        "continue, off",
    );
    error_at(
        &config("", "      stream_recovery: {max_continuations: 0}\n"),
        "model_providers[0].retry_policy.stream_recovery.max_continuations",
        5,
        "mode: off",
    );
    error_at(
        &config("", "      stream_recovery: {max_continuations: 6}\n"),
        "model_providers[0].retry_policy.stream_recovery.max_continuations",
        5,
        "from 1 to 5",
    );
    error_at(
        &config("", "      stream_recovery: {max_continuations: two}\n"),
        "model_providers[0].retry_policy.stream_recovery.max_continuations",
        5,
        "whole number",
    );
    error_at(
        &config("    continuation: prefill\n", "      {}\n"),
        "model_providers[0].continuation",
        4,
        "assistant_prefill",
    );
    error_at(
        &config("    continuation: native\n", "      {}\n"),
        "model_providers[0].continuation",
        4,
        "no native continuation",
    );
    error_at(
        "model_providers:\n  - model: anthropic/claude\n    access_key: k\n    continuation: mistral_prefix\n",
        "model_providers[0].continuation",
        4,
        "continue natively",
    );
    error_at(
        "model_providers:\n  - model: mock/ok\n    continuation: assistant_prefill\n",
        "model_providers[0].continuation",
        3,
        "mock providers",
    );
    error_at(
        "model_providers:\n  - model: azure_openai/dep\n    base_url: https://x.openai.azure.com\n    access_key: k\n    continuation: deepseek_prefix\n",
        "model_providers[0].continuation",
        5,
        "beta endpoint",
    );
}

#[test]
fn unknown_keys_in_the_block_are_refused() {
    let err = load_str(
        &config("", "      stream_recovery: {max_continuation: 2}\n"),
        &|_| None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_continuation"), "{err}");
}

#[test]
fn recovery_no_candidate_can_serve_is_a_warning() {
    // Only OpenAI-interface entries without a style: nobody can continue.
    let yaml = "model_providers:\n  - model: openai/gpt-4o\n    access_key: k\n    retry_policy:\n      stream_recovery: {}\n  - model: groq/llama\n    access_key: k\n";
    let l = load(yaml);
    let w = warnings_at(&l, "model_providers[0].retry_policy.stream_recovery");
    assert_eq!(w.len(), 1, "{:#?}", l.warnings);
    assert_eq!(w[0].line, Some(5));
    assert!(w[0].message.contains("no candidate can continue"), "{w:?}");
    // An Anthropic failover continues natively: no warning.
    let l = load(&config("", "      stream_recovery: {}\n"));
    assert!(
        warnings_at(&l, "model_providers[0].retry_policy.stream_recovery").is_empty(),
        "{:#?}",
        l.warnings
    );
    // same_model recovery on an entry that cannot continue: the failover does not count.
    let l = load(&config(
        "",
        "      on_timeout: {strategy: same_model, max_attempts: 1}\n      stream_recovery: {}\n",
    ));
    assert_eq!(
        warnings_at(&l, "model_providers[0].retry_policy.stream_recovery").len(),
        1,
        "{:#?}",
        l.warnings
    );
}

#[test]
fn explain_names_each_style_and_the_candidates_in_order() {
    let yaml = "model_providers:\n  - model: groq/llama\n    access_key: k\n    continuation: assistant_prefill\n    retry_policy:\n      fallback_models: [mistral/large]\n      stream_recovery: {max_continuations: 3}\n  - model: openai/gpt-4o\n    access_key: k\n  - model: anthropic/claude\n    access_key: k\n  - model: mistral/large\n    access_key: k\n    continuation: mistral_prefix\n  - model: deepseek/deepseek-chat\n    access_key: k\n    continuation: deepseek_prefix\n";
    let text = explain(&load(yaml).config);
    assert!(
        text.contains("stream_recovery: continue, up to 3 continuation(s) per request; asked in order: groq/llama (assistant_prefill), mistral/large (mistral_prefix), anthropic/claude (native), deepseek/deepseek-chat (deepseek_prefix)"),
        "{text}"
    );
    assert!(text.contains("continuation: none (never asked"), "{text}");
    assert!(text.contains("continuation: native"), "{text}");
    assert!(text.contains("/beta/chat/completions"), "{text}");
    let text = explain(&load(&config("", "      {}\n")).config);
    assert!(text.contains("stream_recovery: off"), "{text}");
    let text = explain(&load(&config("", "      stream_recovery: {mode: \"off\"}\n")).config);
    assert!(text.contains("stream_recovery: off"), "{text}");
}

#[test]
fn every_style_is_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/streaming.md"))
        .expect("docs/streaming.md");
    for style in [
        Continuation::None,
        Continuation::Native,
        Continuation::AssistantPrefill,
        Continuation::MistralPrefix,
        Continuation::DeepseekPrefix,
        Continuation::VllmContinueFinalMessage,
    ] {
        assert!(
            doc.contains(&format!("| `{style}`")),
            "{style} missing from docs/streaming.md"
        );
    }
}
