//! The policies the `retry_machine` check runs the machine under, and the bounds each one
//! sets: the retries its rules grant, its backoff's bounds, its continuations and its
//! retry budget.

use std::sync::OnceLock;
use std::time::Duration;

use switchback_core::config::{load_str, BackoffApplyTo, Config};

/// A policy with backoff, Retry-After handling, a duration budget and a fallback list
/// (each policy is the lines of the four entries, for [`config_yaml`]).
const POLICY_A: [&str; 4] = [
    "
    default: true
    timeouts: {first_token: 2s, idle: 1s}
    retry_policy:
      fallback_models: [anthropic/claude-3-5-sonnet]
      default_strategy: different_provider
      default_max_attempts: 2
      on_status_codes:
        - codes: [429]
          strategy: same_model
          max_attempts: 2
      on_timeout: {strategy: different_provider, max_attempts: 1}
      backoff: {apply_to: same_model, base_ms: 100, max_ms: 400, jitter: true}
      retry_after_handling: {scope: model, apply_to: global, max_retry_after_seconds: 30}
      max_retry_duration_ms: 8000
",
    "",
    "",
    "",
];
const POLICY_A_TIMEOUT: &str = "10s";
/// Retries granted by `POLICY_A`: 429 (2) + the defaults (2) + timeouts (1).
const GRANTED_A: u32 = 5;

/// Escalation (`then`), error-code matching and provider-wide blocks.
const POLICY_B: [&str; 4] = [
    "
    default: true
    timeouts: {first_token: 1s, idle: 500ms}
    retry_policy:
      default_strategy: same_provider
      default_max_attempts: 1
      on_status_codes:
        - codes: [429]
          strategy: same_model
          max_attempts: 1
          max_wait: 1s
          then: {strategy: different_provider, max_attempts: 2}
        - codes: [400]
          error_codes: [context_length_exceeded]
          strategy: different_provider
          max_attempts: 1
      on_timeout: {strategy: same_model, max_attempts: 1}
      retry_after_handling: {scope: provider, apply_to: global, max_retry_after_seconds: 5}
",
    "",
    "",
    "",
];
const POLICY_B_TIMEOUT: &str = "6s";
/// Retries granted by `POLICY_B`: 429 (1, then 2) + 400 (1) + the defaults (1) + timeouts (1).
const GRANTED_B: u32 = 6;

/// Stream recovery (continuations by the primary, a native and a prefix style), a failure
/// circuit that opens on one failure, and a retry budget tighter than what the rules grant:
/// 4 (429/529) + 4 (the defaults) + 3 (timeouts) retries and 3 continuations, against a
/// budget of 4 retries per first attempt in any 10 s window (no floor), so that one request
/// can spend it.
const POLICY_C: [&str; 4] = [
    "
    default: true
    continuation: assistant_prefill
    timeouts: {first_token: 1s, idle: 500ms}
    retry_budget: {ratio: 4, min_per_second: 0}
    retry_policy:
      fallback_models: [anthropic/claude-3-5-sonnet, mistral/mistral-large]
      default_strategy: different_provider
      default_max_attempts: 4
      on_status_codes:
        - codes: [429, 529]
          strategy: same_model
          max_attempts: 4
      on_timeout: {strategy: different_provider, max_attempts: 3}
      backoff: {apply_to: global, base_ms: 50, max_ms: 300, jitter: false}
      on_failures: {consecutive: 1, window_seconds: 30, block_duration_seconds: 2, scope: model}
      retry_after_handling: {scope: model, apply_to: global, max_retry_after_seconds: 3}
      stream_recovery: {mode: continue, max_continuations: 3}
",
    "",
    "
    continuation: mistral_prefix
    timeouts: {first_token: 1s, idle: 500ms}
",
    "
    timeouts: {first_token: 1s, idle: 500ms}
",
];
const POLICY_C_TIMEOUT: &str = "10s";
/// Retries granted by `POLICY_C`'s rules (continuations apart).
const GRANTED_C: u32 = 11;

/// Every model the policies name (for the block tables' allowances).
pub(crate) const MODELS: &[&str] = &[
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "mistral/mistral-large",
    "anthropic/claude-3-5-sonnet",
];

/// How often a request that waits for a half-open circuit looks again (the machine's
/// `PROBE_RECHECK`).
pub(crate) const PROBE_RECHECK: Duration = Duration::from_millis(250);

/// What a wait before a retry may be, by the policy's `backoff`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackoffBounds {
    /// The least backoff of any retry it applies to: `min(base, max)`, halved with jitter.
    pub least: Duration,
    /// No backoff exceeds `max`.
    pub most: Duration,
    /// The backoff applies only to a retry on the model that failed (`apply_to:
    /// same_model`); with `global` to every retry.
    pub same_model_only: bool,
}

/// The retry budget's bound (spec §11): over any 10 s window, retries number at most
/// `ratio` × the first attempts in it plus `floor`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BudgetBound {
    pub ratio: f64,
    /// `min_per_second` × 10.
    pub floor: u64,
}

impl BudgetBound {
    /// The retries a window with `first_attempts` first attempts admits.
    pub(crate) fn admits(self, first_attempts: u64) -> u64 {
        (self.ratio * first_attempts as f64).floor() as u64 + self.floor
    }
}

/// One policy the check runs, loaded, with its bounds.
pub(crate) struct FuzzPolicy {
    pub config: Config,
    /// Retries the rules grant before a stream commits.
    pub granted: u32,
    pub backoff: Option<BackoffBounds>,
    /// `stream_recovery`'s `max_continuations`, when recovery is on.
    pub max_continuations: Option<u32>,
    /// The primary's own `retry_budget`, when it has one.
    pub budget: Option<BudgetBound>,
    /// Whether the policy has a failure circuit (waits for a half-open probe are then
    /// rechecks, not backoffs).
    pub has_failure_circuit: bool,
}

/// A config of the four [`MODELS`] on local ports (the first entry's lines make it the
/// default and give it the policy): the listener's
/// `timeout`, and each entry's lines after its address and key (`extras`, in `MODELS`
/// order, each as a literal that starts with a newline, or empty).
fn config_yaml(timeout: &str, extras: &[&str; 4]) -> String {
    let mut y = format!(
        "listeners:\n  - type: model\n    name: l\n    port: 12000\n    timeout: {timeout}\nmodel_providers:\n"
    );
    for (i, (model, extra)) in MODELS.iter().zip(extras).enumerate() {
        let key = char::from(b'a' + i as u8);
        y.push_str(&format!(
            "  - model: {model}\n    base_url: http://127.0.0.1:{}\n    access_key: key-{key}\n{}",
            9901 + i,
            extra.strip_prefix('\n').unwrap_or(extra)
        ));
    }
    y
}

/// The three policies, loaded once.
pub(crate) fn policies() -> &'static [FuzzPolicy; 3] {
    static POLICIES: OnceLock<[FuzzPolicy; 3]> = OnceLock::new();
    POLICIES.get_or_init(|| {
        [
            load(&config_yaml(POLICY_A_TIMEOUT, &POLICY_A), GRANTED_A),
            load(&config_yaml(POLICY_B_TIMEOUT, &POLICY_B), GRANTED_B),
            load(&config_yaml(POLICY_C_TIMEOUT, &POLICY_C), GRANTED_C),
        ]
    })
}

fn load(yaml: &str, granted: u32) -> FuzzPolicy {
    let config = load_str(yaml, &|_| None).expect("fuzz policy loads").config;
    let primary = &config.providers[0];
    let policy = primary.retry_policy.as_ref().expect("a retry policy");
    let backoff = policy.backoff.as_ref().map(|b| {
        let least = b.base.min(b.max);
        BackoffBounds {
            least: if b.jitter { least / 2 } else { least },
            most: b.max,
            same_model_only: b.apply_to == BackoffApplyTo::SameModel,
        }
    });
    let budget = primary
        .retry_budget
        .filter(|b| b.enabled)
        .map(|b| BudgetBound {
            ratio: b.ratio,
            floor: u64::from(b.min_per_second) * 10,
        });
    FuzzPolicy {
        granted,
        backoff,
        max_continuations: policy.stream_recovery.map(|r| r.max_continuations),
        budget,
        has_failure_circuit: policy.on_failures.is_some(),
        config,
    }
}
