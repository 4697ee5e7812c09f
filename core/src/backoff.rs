//! Backoff before a retry (spec §4.4).

use std::time::Duration;

use crate::config::{model_prefix, Backoff, BackoffApplyTo};

/// The backoff before retry number `n` (0 for the first retry) to `next_model`, after
/// `failed_model` failed: `min(max, base * 2^n)` (saturating), times `u` when jitter is
/// on, where the caller draws `u` uniformly from `[0.5, 1.0)`. Zero when `apply_to`
/// does not cover this retry.
pub fn backoff_delay(
    backoff: &Backoff,
    n: u32,
    failed_model: &str,
    next_model: &str,
    u: f64,
) -> Duration {
    let applies = match backoff.apply_to {
        BackoffApplyTo::SameModel => failed_model == next_model,
        BackoffApplyTo::SameProvider => model_prefix(failed_model) == model_prefix(next_model),
        BackoffApplyTo::Global => true,
    };
    if !applies {
        return Duration::ZERO;
    }
    let factor = 1u32.checked_shl(n).unwrap_or(u32::MAX);
    let delay = backoff
        .base
        .checked_mul(factor)
        .unwrap_or(backoff.max)
        .min(backoff.max);
    if backoff.jitter {
        let u = if (0.5..1.0).contains(&u) { u } else { 0.75 };
        delay.mul_f64(u)
    } else {
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(apply_to: BackoffApplyTo, jitter: bool) -> Backoff {
        Backoff {
            apply_to,
            base: Duration::from_millis(500),
            max: Duration::from_millis(5000),
            jitter,
        }
    }

    #[test]
    fn doubles_and_caps() {
        let bo = b(BackoffApplyTo::Global, false);
        let d: Vec<u64> = (0..6)
            .map(|n| backoff_delay(&bo, n, "a/x", "b/y", 0.5).as_millis() as u64)
            .collect();
        assert_eq!(d, vec![500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(
            backoff_delay(&bo, 400, "a/x", "a/x", 0.5),
            Duration::from_millis(5000)
        );
    }

    #[test]
    fn apply_to_limits_when_it_counts() {
        let same_model = b(BackoffApplyTo::SameModel, false);
        assert_eq!(
            backoff_delay(&same_model, 0, "a/x", "a/y", 0.5),
            Duration::ZERO
        );
        assert_eq!(
            backoff_delay(&same_model, 0, "a/x", "a/x", 0.5),
            Duration::from_millis(500)
        );
        let same_provider = b(BackoffApplyTo::SameProvider, false);
        assert_eq!(
            backoff_delay(&same_provider, 1, "a/x", "a/y", 0.5),
            Duration::from_millis(1000)
        );
        assert_eq!(
            backoff_delay(&same_provider, 1, "a/x", "b/y", 0.5),
            Duration::ZERO
        );
    }

    #[test]
    fn jitter_scales_into_half_to_full() {
        let bo = b(BackoffApplyTo::Global, true);
        assert_eq!(
            backoff_delay(&bo, 0, "a/x", "a/x", 0.5),
            Duration::from_millis(250)
        );
        let hi = backoff_delay(&bo, 0, "a/x", "a/x", 0.999);
        assert!(hi < Duration::from_millis(500) && hi > Duration::from_millis(490));
    }
}
