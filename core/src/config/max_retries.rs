//! A model listener's `max_retries: N` (spec §10), mapped onto a [`RetryPolicy`].
//!
//! Plano renders it as an Envoy route `retry_policy` (katanemo/plano
//! `config/envoy.template.yaml`): `retry_on: 5xx, connect-failure, refused-stream, reset,
//! retriable-status-codes` with `retriable_status_codes: [429, 500, 502, 503, 504]`,
//! `num_retries: N`, `per_try_timeout: 30s`, and `retry_back_off` from 0.5 s doubling up
//! to 5 s. Envoy retries the same upstream cluster, so the mapping retries the same
//! model. It applies to every provider entry without a `retry_policy` of its own; an
//! entry's own policy wins. `docs/plano.md` lists where it differs from Envoy.

use std::time::Duration;

use super::{Backoff, BackoffApplyTo, RetryAfterHandling, RetryPolicy, RetryRule, Strategy};

/// Envoy's default `retry_back_off.base_interval` in Plano's template.
pub const ENVOY_BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Plano's `retry_back_off.max_interval`.
pub const ENVOY_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Plano's `per_try_timeout`: the per-attempt limit until the answer starts.
pub const ENVOY_PER_TRY_TIMEOUT: Duration = Duration::from_secs(30);

/// The policy `max_retries: n` stands for (`n > 0`).
///
/// One rule with one counter, as Envoy's `num_retries` counts every retry of a request
/// together: the default rule (408, 429, 500, 502, 503, 504, 529 and every transport
/// failure) with `same_model` and `n` retries, and a backoff that applies to it.
pub fn listener_retry_policy(n: u32) -> RetryPolicy {
    RetryPolicy {
        fallback_models: Vec::new(),
        default_rule: RetryRule {
            strategy: Strategy::SameModel,
            max_attempts: n,
            then: None,
            max_wait: Duration::from_secs(5),
        },
        on_status_codes: Vec::new(),
        on_timeout: None,
        backoff: Some(Backoff {
            apply_to: BackoffApplyTo::SameModel,
            base: ENVOY_BACKOFF_BASE,
            max: ENVOY_BACKOFF_MAX,
            jitter: true,
        }),
        retry_after_handling: RetryAfterHandling::default(),
        max_retry_duration: None,
        on_high_latency: None,
        on_failures: None,
        stream_recovery: None,
    }
}
