//! The provider keys of the client-API doors: `responses` and `max_output_tokens`.

use switchback_core::config::{load_str, ConfigError};

fn load(providers: &str) -> Result<switchback_core::config::Config, ConfigError> {
    let yaml = format!("version: v0.3.0\nmodel_providers:\n{providers}");
    load_str(&yaml, &|_| None).map(|l| l.config)
}

#[track_caller]
fn error_at(providers: &str, path: &str, line: usize, needle: &str) {
    let errs = load(providers).expect_err("an error").errors;
    assert!(
        errs.iter()
            .any(|d| d.path == path && d.line == Some(line) && d.message.contains(needle)),
        "no error at {path}:{line} mentioning {needle:?}: {}",
        ConfigError { errors: errs }
    );
}

#[test]
fn responses_and_the_output_cap_are_read() {
    let c = load("  - model: openai/gpt-4.1\n    access_key: K\n    responses: true\n    max_output_tokens: 32000\n  - model: openai/gpt-4o\n    access_key: K\n")
        .expect("valid");
    assert!(c.providers[0].responses);
    assert_eq!(c.providers[0].max_output_tokens, Some(32000));
    assert!(!c.providers[1].responses);
    assert_eq!(c.providers[1].max_output_tokens, None);
}

#[test]
fn responses_needs_an_openai_interface_provider() {
    error_at(
        "  - model: anthropic/claude-sonnet-4-5\n    access_key: K\n    responses: true\n",
        "model_providers[0].responses",
        5,
        "needs an OpenAI-interface provider",
    );
    error_at(
        "  - model: mock/ok\n    responses: true\n",
        "model_providers[0].responses",
        4,
        "mock",
    );
    error_at(
        "  - model: azure_openai/gpt-4o\n    base_url: https://x.openai.azure.com\n    access_key: K\n    responses: true\n",
        "model_providers[0].responses",
        6,
        "Azure",
    );
    error_at(
        "  - model: openai/gpt-4o\n    access_key: K\n    responses: 1\n",
        "model_providers[0].responses",
        5,
        "responses",
    );
    // `responses: false` is allowed anywhere.
    load("  - model: anthropic/claude-sonnet-4-5\n    access_key: K\n    responses: false\n")
        .expect("valid");
}

#[test]
fn max_output_tokens_must_be_positive() {
    error_at(
        "  - model: openai/gpt-4o\n    access_key: K\n    max_output_tokens: 0\n",
        "model_providers[0].max_output_tokens",
        5,
        "positive",
    );
    error_at(
        "  - model: openai/gpt-4o\n    access_key: K\n    max_output_tokens: many\n",
        "model_providers[0].max_output_tokens",
        5,
        "max_output_tokens",
    );
}
