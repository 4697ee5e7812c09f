//! Helpers shared by the core's integration tests.
#![allow(dead_code)]

use std::time::Instant;

/// The origin of a test's virtual time. The one real clock reading in the core's
/// tests: after it, time moves only when a test advances it.
#[allow(clippy::disallowed_methods)]
pub fn epoch() -> Instant {
    Instant::now()
}

use switchback_core::config::load_str;
use switchback_core::sim::Simulation;

/// A simulation of a config written inline (no environment variables).
pub fn sim(yaml: &str) -> Simulation {
    let loaded = load_str(yaml, &|_| None).unwrap_or_else(|e| panic!("test config: {e}"));
    Simulation::new(loaded.config, epoch())
}

/// The seed suite's OpenAI-shaped success body.
pub const SUCCESS: &str = r#"{"id":"chatcmpl-test-001","object":"chat.completion","created":1700000000,"model":"mock-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from mock provider!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#;

/// The seed suite's error body for `status`.
pub fn error_body(status: u16, message: &str) -> String {
    format!(r#"{{"error":{{"message":"{message}","type":"server_error","code":"{status}"}}}}"#)
}

/// The seed suite's chat request.
pub const CHAT: &str =
    r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"Hello"}]}"#;

/// A two-provider config (openai primary with `policy`, anthropic secondary), in the
/// seed templates' shape. `policy` is YAML indented for the `retry_policy:` key, or "".
pub fn two_providers(policy: &str) -> String {
    format!(
        "version: v0.3.0\nlisteners:\n  - type: model\n    name: l\n    port: 12000\nmodel_providers:\n  - model: openai/gpt-4o\n    base_url: http://127.0.0.1:1\n    access_key: k1\n    default: true\n{policy}\n  - model: anthropic/claude-3-5-sonnet\n    provider_interface: openai\n    base_url: http://127.0.0.1:2\n    access_key: k2\n"
    )
}
