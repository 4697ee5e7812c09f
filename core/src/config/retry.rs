//! `retry_policy:` → [`RetryPolicy`], with the checks of spec §3.3 that concern one policy.

use super::fields::{
    boolean, choice, count, duration, positive_count, positive_ms, positive_secs, text,
    BLOCK_APPLY_TO, SCOPES, STRATEGIES,
};
use super::protection::convert_on_failures;
use super::raw::{Opt, RawRetryPolicy, RawRule, RawStatusRule, RawThen, Scalar, S};
use super::recovery::convert_stream_recovery;
use super::report::{index, join, Pos, Report};
use super::status_codes::{status_range, warn_duplicate_codes};
use super::{
    Backoff, BackoffApplyTo, Escalation, HighLatency, LatencyMeasure, RetryAfterHandling,
    RetryPolicy, RetryRule, StatusRule, Strategy,
};
use std::time::Duration;

/// Where a policy names something that later cross-entry checks look at.
#[derive(Debug, Default)]
pub(crate) struct PolicyUses {
    /// Every retry strategy a rule or escalation may use, with where it is written.
    pub strategies: Vec<(Strategy, String, Pos)>,
    /// `on_high_latency.strategy`.
    pub latency_strategy: Option<(Strategy, String, Pos)>,
    /// `backoff.apply_to`.
    pub backoff_apply_to: Option<(BackoffApplyTo, String, Pos)>,
    /// `fallback_models` entries that are well formed.
    pub fallbacks: Vec<(String, String, Pos)>,
    /// Where `stream_recovery` is written.
    pub stream_recovery: Option<(String, Pos)>,
}

const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(5);

/// Converts one `retry_policy` found at `path`. Errors and warnings go to `rep`.
pub(crate) fn convert_policy(
    rep: &mut Report,
    raw: &S<RawRetryPolicy>,
    path: &str,
) -> (RetryPolicy, PolicyUses) {
    let r = &raw.value;
    let mut uses = PolicyUses::default();
    let defaults = RetryPolicy::default();
    let here = Pos::at(raw);

    let mut fallback_models = Vec::new();
    if let Some(list) = &r.fallback_models {
        let p = join(path, "fallback_models");
        for (i, m) in list.value.iter().enumerate() {
            let mp = index(&p, i);
            let name = text(m);
            if !is_model_name(&name) {
                rep.error(
                    &mp,
                    Pos::at(m),
                    format!("fallback model `{name}` must be written `provider/model-id`, e.g. `anthropic/claude-3-5-sonnet`"),
                );
                continue;
            }
            uses.fallbacks.push((name.clone(), mp, Pos::at(m)));
            fallback_models.push(name);
        }
    }

    let default_strategy = match &r.default_strategy {
        Some(v) => {
            let p = join(path, "default_strategy");
            let s = choice(rep, v, &p, STRATEGIES);
            if let Some(s) = s {
                uses.strategies.push((s, p, Pos::at(v)));
            }
            s.unwrap_or(defaults.default_rule.strategy)
        }
        None => {
            uses.strategies.push((
                defaults.default_rule.strategy,
                join(path, "default_strategy"),
                here,
            ));
            defaults.default_rule.strategy
        }
    };
    let default_max_attempts = r
        .default_max_attempts
        .as_ref()
        .and_then(|v| count(rep, v, &join(path, "default_max_attempts")))
        .unwrap_or(defaults.default_rule.max_attempts);
    let default_then = then(
        rep,
        &r.default_then,
        &join(path, "default_then"),
        default_max_attempts,
        &mut uses,
    );
    let default_max_wait = max_wait(
        rep,
        &r.default_max_wait,
        &join(path, "default_max_wait"),
        default_then.is_some(),
    );
    let default_rule = RetryRule {
        strategy: default_strategy,
        max_attempts: default_max_attempts,
        then: default_then,
        max_wait: default_max_wait,
    };

    let mut on_status_codes = Vec::new();
    if let Some(list) = &r.on_status_codes {
        let p = join(path, "on_status_codes");
        for (i, entry) in list.value.iter().enumerate() {
            if let Some(rule) = status_rule(rep, entry, &index(&p, i), &default_rule, &mut uses) {
                on_status_codes.push((rule, index(&p, i), Pos::at(entry)));
            }
        }
    }
    warn_duplicate_codes(rep, &on_status_codes);
    // Entries with `error_codes` are checked first (spec §4.9); keep file order otherwise.
    let (mut specific, general): (Vec<_>, Vec<_>) = on_status_codes
        .into_iter()
        .map(|(rule, _, _)| rule)
        .partition(|rule: &StatusRule| !rule.error_codes.is_empty());
    specific.extend(general);

    let on_timeout = r.on_timeout.as_ref().map(|t| {
        let p = join(path, "on_timeout");
        rule_fields(rep, &t.value, &p, &default_rule, true, &mut uses)
    });

    let backoff = r.backoff.as_ref().map(|b| {
        let p = join(path, "backoff");
        let apply_to = match &b.value.apply_to {
            Some(v) => {
                let ap = join(&p, "apply_to");
                let a = choice(
                    rep,
                    v,
                    &ap,
                    &[
                        ("same_model", BackoffApplyTo::SameModel),
                        ("same_provider", BackoffApplyTo::SameProvider),
                        ("global", BackoffApplyTo::Global),
                    ],
                );
                if let Some(a) = a {
                    uses.backoff_apply_to = Some((a, ap, Pos::at(v)));
                }
                a.unwrap_or(BackoffApplyTo::Global)
            }
            None => {
                rep.error(
                    join(&p, "apply_to"),
                    Pos::at(b),
                    "`backoff` needs `apply_to`: same_model, same_provider or global",
                );
                BackoffApplyTo::Global
            }
        };
        let base = b
            .value
            .base_ms
            .as_ref()
            .map(|v| positive_ms(rep, v, &join(&p, "base_ms")));
        let max = b
            .value
            .max_ms
            .as_ref()
            .map(|v| positive_ms(rep, v, &join(&p, "max_ms")));
        let jitter = b
            .value
            .jitter
            .as_ref()
            .and_then(|v| boolean(rep, v, &join(&p, "jitter")))
            .unwrap_or(true);
        let base_v = base.flatten().unwrap_or(Duration::from_millis(100));
        let max_v = max.flatten().unwrap_or(Duration::from_millis(5000));
        // Only compare when both values are valid (or defaulted).
        if base != Some(None) && max != Some(None) && max_v <= base_v {
            let (mp, mpos) = match &b.value.max_ms {
                Some(v) => (join(&p, "max_ms"), Pos::at(v)),
                None => (join(&p, "base_ms"), b.value.base_ms.as_ref().map(Pos::at).unwrap_or(Pos::at(b))),
            };
            rep.error(
                mp,
                mpos,
                format!(
                    "`max_ms` ({} ms) must be greater than `base_ms` ({} ms); raise max_ms or lower base_ms",
                    max_v.as_millis(),
                    base_v.as_millis()
                ),
            );
        }
        Backoff {
            apply_to,
            base: base_v,
            max: max_v,
            jitter,
        }
    });

    let mut retry_after_handling = RetryAfterHandling::default();
    if let Some(h) = &r.retry_after_handling {
        let p = join(path, "retry_after_handling");
        if let Some(v) = &h.value.scope {
            if let Some(s) = choice(rep, v, &join(&p, "scope"), SCOPES) {
                retry_after_handling.scope = s;
            }
        }
        if let Some(v) = &h.value.apply_to {
            if let Some(a) = choice(rep, v, &join(&p, "apply_to"), BLOCK_APPLY_TO) {
                retry_after_handling.apply_to = a;
            }
        }
        if let Some(v) = &h.value.max_retry_after_seconds {
            if let Some(d) = positive_secs(rep, v, &join(&p, "max_retry_after_seconds")) {
                retry_after_handling.max_retry_after = d;
            }
        }
    }

    let max_retry_duration = r
        .max_retry_duration_ms
        .as_ref()
        .and_then(|v| positive_ms(rep, v, &join(path, "max_retry_duration_ms")));

    let on_high_latency = r.on_high_latency.as_ref().and_then(|h| {
        high_latency(
            rep,
            h,
            &join(path, "on_high_latency"),
            &default_rule,
            &mut uses,
        )
    });

    let on_failures = r
        .on_failures
        .as_ref()
        .map(|f| convert_on_failures(rep, f, &join(path, "on_failures")));

    let stream_recovery = r.stream_recovery.as_ref().and_then(|s| {
        let p = join(path, "stream_recovery");
        uses.stream_recovery = Some((p.clone(), Pos::at(s)));
        convert_stream_recovery(rep, s, &p)
    });

    let policy = RetryPolicy {
        fallback_models,
        default_rule,
        on_status_codes: specific,
        on_timeout,
        backoff,
        retry_after_handling,
        max_retry_duration,
        on_high_latency,
        on_failures,
        stream_recovery,
    };
    (policy, uses)
}

/// `provider/model-id` with both parts non-empty.
pub(crate) fn is_model_name(s: &str) -> bool {
    matches!(s.split_once('/'), Some((p, id)) if !p.trim().is_empty() && !id.trim().is_empty())
}

fn then(
    rep: &mut Report,
    raw: &Opt<RawThen>,
    path: &str,
    default_max_attempts: u32,
    uses: &mut PolicyUses,
) -> Option<Escalation> {
    let t = raw.as_ref()?;
    let strategy = match &t.value.strategy {
        Some(v) => {
            let p = join(path, "strategy");
            let s = choice(rep, v, &p, STRATEGIES)?;
            uses.strategies.push((s, p, Pos::at(v)));
            s
        }
        None => {
            rep.error(
                join(path, "strategy"),
                Pos::at(t),
                "`then` needs a `strategy` (same_model, same_provider or different_provider) to escalate to",
            );
            return None;
        }
    };
    let max_attempts = match &t.value.max_attempts {
        Some(v) => positive_count(rep, v, &join(path, "max_attempts"))?,
        None => default_max_attempts.max(1),
    };
    Some(Escalation {
        strategy,
        max_attempts,
    })
}

fn max_wait(rep: &mut Report, raw: &Opt<Scalar>, path: &str, has_then: bool) -> Duration {
    let Some(v) = raw else {
        return DEFAULT_MAX_WAIT;
    };
    if !has_then {
        rep.warn(
            path,
            Pos::at(v),
            "`max_wait` only matters together with `then` (or `default_then`); it has no effect here",
        );
    }
    duration(rep, v, path, true).unwrap_or(DEFAULT_MAX_WAIT)
}

/// The fields a rule shares: strategy, max_attempts, then, max_wait. Missing strategy and
/// max_attempts come from the policy defaults.
fn rule_fields(
    rep: &mut Report,
    r: &RawRule,
    path: &str,
    defaults: &RetryRule,
    attempts_positive: bool,
    uses: &mut PolicyUses,
) -> RetryRule {
    rule_parts(
        rep,
        (&r.strategy, &r.max_attempts, &r.then, &r.max_wait),
        path,
        defaults,
        attempts_positive,
        uses,
    )
}

type RuleParts<'a> = (
    &'a Opt<Scalar>,
    &'a Opt<Scalar>,
    &'a Opt<RawThen>,
    &'a Opt<Scalar>,
);

fn rule_parts(
    rep: &mut Report,
    (strategy, max_attempts, then_raw, wait): RuleParts<'_>,
    path: &str,
    defaults: &RetryRule,
    attempts_positive: bool,
    uses: &mut PolicyUses,
) -> RetryRule {
    let strategy = match strategy {
        Some(v) => {
            let p = join(path, "strategy");
            let s = choice(rep, v, &p, STRATEGIES);
            if let Some(s) = s {
                uses.strategies.push((s, p, Pos::at(v)));
            }
            s.unwrap_or(defaults.strategy)
        }
        None => defaults.strategy,
    };
    let max_attempts = match max_attempts {
        Some(v) if attempts_positive => positive_count(rep, v, &join(path, "max_attempts")),
        Some(v) => count(rep, v, &join(path, "max_attempts")),
        None => Some(defaults.max_attempts),
    }
    .unwrap_or(defaults.max_attempts);
    let then = then(
        rep,
        then_raw,
        &join(path, "then"),
        defaults.max_attempts,
        uses,
    );
    let max_wait = max_wait(rep, wait, &join(path, "max_wait"), then.is_some());
    RetryRule {
        strategy,
        max_attempts,
        then,
        max_wait,
    }
}

fn status_rule(
    rep: &mut Report,
    entry: &S<RawStatusRule>,
    path: &str,
    defaults: &RetryRule,
    uses: &mut PolicyUses,
) -> Option<StatusRule> {
    let e = &entry.value;
    let mut codes = Vec::new();
    let mut ok = true;
    match &e.codes {
        Some(list) if !list.value.is_empty() => {
            let p = join(path, "codes");
            for (i, c) in list.value.iter().enumerate() {
                match status_range(c) {
                    Ok(r) => codes.push(r),
                    Err(msg) => {
                        ok = false;
                        rep.error(index(&p, i), Pos::at(c), msg);
                    }
                }
            }
        }
        Some(list) => {
            ok = false;
            rep.error(
                join(path, "codes"),
                Pos::at(list),
                "`codes` is empty; list at least one status code, e.g. [429] or [\"500-504\"]",
            );
        }
        None => {
            ok = false;
            rep.error(
                join(path, "codes"),
                Pos::at(entry),
                "this `on_status_codes` entry needs `codes`, e.g. codes: [429, \"502-504\"]",
            );
        }
    }
    let mut error_codes = Vec::new();
    if let Some(list) = &e.error_codes {
        let p = join(path, "error_codes");
        if list.value.is_empty() {
            rep.error(
                &p,
                Pos::at(list),
                "`error_codes` is empty; list error codes such as [context_length_exceeded] or remove the key",
            );
        }
        for (i, c) in list.value.iter().enumerate() {
            let t = text(c);
            if t.trim().is_empty() {
                rep.error(index(&p, i), Pos::at(c), "an error code cannot be empty");
            } else {
                error_codes.push(t);
            }
        }
    }
    let rule = rule_parts(
        rep,
        (&e.strategy, &e.max_attempts, &e.then, &e.max_wait),
        path,
        defaults,
        false,
        uses,
    );
    ok.then_some(StatusRule {
        codes,
        error_codes,
        rule,
    })
}

fn high_latency(
    rep: &mut Report,
    h: &S<super::raw::RawHighLatency>,
    path: &str,
    defaults: &RetryRule,
    uses: &mut PolicyUses,
) -> Option<HighLatency> {
    let r = &h.value;
    let threshold = match &r.threshold_ms {
        Some(v) => {
            let p = join(path, "threshold_ms");
            let t = positive_ms(rep, v, &p);
            if let Some(t) = t {
                if t < Duration::from_secs(1) {
                    rep.warn(
                        &p,
                        Pos::at(v),
                        format!("`threshold_ms` is {} ms; under 1000 ms ordinary responses will count as slow and block models", t.as_millis()),
                    );
                }
            }
            t
        }
        None => {
            rep.error(
                join(path, "threshold_ms"),
                Pos::at(h),
                "`on_high_latency` needs `threshold_ms`, the latency in milliseconds above which a response counts as slow",
            );
            None
        }
    };
    let measure = r
        .measure
        .as_ref()
        .and_then(|v| {
            choice(
                rep,
                v,
                &join(path, "measure"),
                &[
                    ("ttfb", LatencyMeasure::Ttfb),
                    ("total", LatencyMeasure::Total),
                ],
            )
        })
        .unwrap_or(LatencyMeasure::Ttfb);
    let min_triggers = r
        .min_triggers
        .as_ref()
        .and_then(|v| positive_count(rep, v, &join(path, "min_triggers")))
        .unwrap_or(1);
    let trigger_window = r
        .trigger_window_seconds
        .as_ref()
        .and_then(|v| positive_secs(rep, v, &join(path, "trigger_window_seconds")));
    if min_triggers > 1 && r.trigger_window_seconds.is_none() {
        let pos = r.min_triggers.as_ref().map(Pos::at).unwrap_or(Pos::at(h));
        rep.error(
            join(path, "trigger_window_seconds"),
            pos,
            format!("`min_triggers` is {min_triggers}, so `trigger_window_seconds` is required: how many seconds the {min_triggers} slow responses must fall within"),
        );
    }
    let strategy = match &r.strategy {
        Some(v) => {
            let p = join(path, "strategy");
            let s = choice(rep, v, &p, STRATEGIES);
            if let Some(s) = s {
                uses.latency_strategy = Some((s, p, Pos::at(v)));
            }
            s.unwrap_or(defaults.strategy)
        }
        None => defaults.strategy,
    };
    let max_attempts = match &r.max_attempts {
        Some(v) => {
            let p = join(path, "max_attempts");
            let n = count(rep, v, &p);
            rep.warn(
                &p,
                Pos::at(v),
                "`on_high_latency.max_attempts` is accepted but has no effect: a slow response is still delivered, and the latency block only steers later selections (see docs/configuration.md)",
            );
            n.unwrap_or(defaults.max_attempts)
        }
        None => defaults.max_attempts,
    };
    let block_duration = r
        .block_duration_seconds
        .as_ref()
        .and_then(|v| positive_secs(rep, v, &join(path, "block_duration_seconds")))
        .unwrap_or(Duration::from_secs(300));
    let scope = r
        .scope
        .as_ref()
        .and_then(|v| choice(rep, v, &join(path, "scope"), SCOPES))
        .unwrap_or(super::BlockScope::Model);
    let apply_to = r
        .apply_to
        .as_ref()
        .and_then(|v| choice(rep, v, &join(path, "apply_to"), BLOCK_APPLY_TO))
        .unwrap_or(super::BlockApplyTo::Global);
    Some(HighLatency {
        threshold: threshold?,
        measure,
        min_triggers,
        trigger_window,
        strategy,
        max_attempts,
        block_duration,
        scope,
        apply_to,
    })
}
