//! `switchback check --explain` (spec §1, §10): the effective retry policy of every
//! provider entry, every default and Plano mapping filled in, as readable text.

use std::fmt::Write;
use std::time::Duration;

use super::{
    BackoffApplyTo, BlockApplyTo, BlockScope, Config, Continuation, LatencyMeasure, PolicyOrigin,
    Provider, RetryBudgetSettings, RetryPolicy, RetryRule, StatusRule, Strategy,
};

/// The text `check --explain` prints after the check result: the listeners, the aliases,
/// then one block per provider entry in config order.
pub fn explain(config: &Config) -> String {
    let mut out = String::new();
    for l in &config.listeners {
        let retries = l
            .max_retries
            .map(|n| format!(", max_retries {n}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "listener {} on {}:{}: request deadline {}{retries}",
            l.name,
            l.address,
            l.port,
            dur(l.timeout)
        );
    }
    for a in &config.aliases {
        let _ = writeln!(out, "alias {} -> {}", a.name, a.target);
    }
    if let Some(r) = &config.state.redis {
        let _ = writeln!(
            out,
            "shared state: blocks shared through {} under the key prefix `{}` (see docs/scaling.md)",
            r.endpoint, r.key_prefix
        );
    }
    let all: Vec<&Provider> = config.providers.iter().collect();
    for i in 0..all.len() {
        out.push('\n');
        provider(&mut out, &all, i, &config.retry_budget);
    }
    out
}

/// The entry's `continuation` (spec §12).
fn continuation_line(out: &mut String, p: &Provider) {
    let style = match p.continuation {
        Continuation::None => "none (never asked to continue a stream)".to_string(),
        Continuation::Native => {
            "native (a final assistant message, continued by Anthropic Messages)".to_string()
        }
        Continuation::DeepseekPrefix => {
            "deepseek_prefix (`prefix: true`, sent to the beta path /beta/chat/completions)"
                .to_string()
        }
        s => s.name().to_string(),
    };
    let _ = writeln!(out, "  continuation: {style}");
}

/// What the policy's `stream_recovery` does for entry `i` (spec §12).
fn stream_recovery_line(out: &mut String, all: &[&Provider], i: usize, policy: &RetryPolicy) {
    let Some(sr) = &policy.stream_recovery else {
        let _ = writeln!(
            out,
            "    stream_recovery: off (a stream that fails after commit ends with an in-band error)"
        );
        return;
    };
    let candidates = super::recovery::config_candidates(all, i);
    let list = if candidates.is_empty() {
        "none can continue".to_string()
    } else {
        candidates
            .iter()
            .map(|(m, c)| format!("{m} ({c})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "    stream_recovery: continue, up to {} continuation(s) per request; asked in order: {list}",
        sr.max_continuations
    );
}

fn provider(out: &mut String, all: &[&Provider], i: usize, gateway_budget: &RetryBudgetSettings) {
    let p = all[i];
    let name = p
        .name
        .as_ref()
        .map(|n| format!(" (name {n})"))
        .unwrap_or_default();
    let default = if p.default { ", default" } else { "" };
    let wildcard = if p.is_wildcard() {
        format!(
            ", wildcard: every {}/<id> without an exact entry",
            p.prefix()
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{}{name} (line {}{default}{wildcard})",
        p.model, p.line
    );
    let t = &p.timeouts;
    let _ = writeln!(
        out,
        "  timeouts: connect {}, first_token {}, idle {}",
        dur(t.connect),
        dur(t.first_token),
        dur(t.idle)
    );
    continuation_line(out, p);
    let Some(policy) = &p.retry_policy else {
        let _ = writeln!(
            out,
            "  retry_policy: none: no retries, the upstream's answer passes through unchanged"
        );
        return;
    };
    let origin = match p.policy_origin {
        PolicyOrigin::ListenerMaxRetries(n) => format!(
            "mapped from the model listener's max_retries: {n} (Plano's Envoy route retries: the same model, backoff 500ms doubling to 5s)"
        ),
        _ => "as written, defaults filled in".to_string(),
    };
    let _ = writeln!(out, "  retry_policy: {origin}");
    policy_lines(out, policy);
    on_failures_line(out, policy);
    retry_budget_line(out, p, gateway_budget);
    stream_recovery_line(out, all, i, policy);
}

/// The policy's `on_failures` (spec §11): off, or when consecutive failures open the
/// circuit and for how long.
fn on_failures_line(out: &mut String, policy: &RetryPolicy) {
    let Some(f) = &policy.on_failures else {
        let _ = writeln!(out, "    on_failures: off");
        return;
    };
    let _ = writeln!(
        out,
        "    on_failures: {} consecutive retriable failure(s) within {} block for {}, then one probe (scope {})",
        f.consecutive,
        dur(f.window),
        dur(f.block_duration),
        scope(f.scope)
    );
}

/// The retry budget the entry's retries count in (spec §11): its own, the gateway's,
/// or none.
fn retry_budget_line(out: &mut String, p: &Provider, gateway: &RetryBudgetSettings) {
    let (whose, b) = match &p.retry_budget {
        Some(own) => ("the entry's own", own),
        None => ("the gateway's", gateway),
    };
    if !b.enabled {
        let _ = writeln!(
            out,
            "    retry_budget: off ({whose} is disabled: retries are not budgeted)"
        );
        return;
    }
    let _ = writeln!(
        out,
        "    retry_budget: {whose}, ratio {} retries per request plus {} per second",
        b.ratio, b.min_per_second
    );
}

fn policy_lines(out: &mut String, p: &RetryPolicy) {
    let list = if p.fallback_models.is_empty() {
        "none".to_string()
    } else {
        p.fallback_models.join(", ")
    };
    let _ = writeln!(out, "    fallback_models: {list}");
    let covers = if p.on_timeout.is_none() {
        "408, 429, 500, 502, 503, 504, 529 and transport failures"
    } else {
        "408, 429, 500, 502, 503, 504, 529"
    };
    let _ = writeln!(
        out,
        "    default ({covers}, unless a rule below matches): {}",
        rule(&p.default_rule)
    );
    if p.on_status_codes.is_empty() {
        let _ = writeln!(out, "    on_status_codes: none");
    }
    for s in &p.on_status_codes {
        let _ = writeln!(out, "    on_status_codes {}: {}", codes(s), rule(&s.rule));
    }
    match &p.on_timeout {
        Some(r) => {
            let _ = writeln!(out, "    on_timeout: {}", rule(r));
        }
        None => {
            let _ = writeln!(out, "    on_timeout: as the default rule");
        }
    }
    match &p.backoff {
        Some(b) => {
            let apply_to = match b.apply_to {
                BackoffApplyTo::SameModel => "same_model",
                BackoffApplyTo::SameProvider => "same_provider",
                BackoffApplyTo::Global => "global",
            };
            let jitter = if b.jitter {
                ", jitter (x0.5 to x1)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    backoff: apply_to {apply_to}, base {} doubling to {}{jitter}",
                dur(b.base),
                dur(b.max)
            );
        }
        None => {
            let _ = writeln!(out, "    backoff: none (no delay between attempts)");
        }
    }
    let ra = &p.retry_after_handling;
    let _ = writeln!(
        out,
        "    retry_after_handling: scope {}, apply_to {}, max_retry_after {}",
        scope(ra.scope),
        apply(ra.apply_to),
        dur(ra.max_retry_after)
    );
    let budget = p.max_retry_duration.map_or(
        "none (the listener's deadline bounds the request)".to_string(),
        dur,
    );
    let _ = writeln!(out, "    max_retry_duration: {budget}");
    match &p.on_high_latency {
        None => {
            let _ = writeln!(out, "    on_high_latency: off");
        }
        Some(h) => {
            let measure = match h.measure {
                LatencyMeasure::Ttfb => "ttfb",
                LatencyMeasure::Total => "total",
            };
            let window = h
                .trigger_window
                .map(|w| format!(" within {}", dur(w)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    on_high_latency: {measure} over {}, {} trigger(s){window}, {} with {} retries, block {} (scope {}, apply_to {})",
                dur(h.threshold),
                h.min_triggers,
                strategy(h.strategy),
                h.max_attempts,
                dur(h.block_duration),
                scope(h.scope),
                apply(h.apply_to)
            );
        }
    }
}

fn rule(r: &RetryRule) -> String {
    let retries = match r.max_attempts {
        0 => "no retries".to_string(),
        1 => "1 retry".to_string(),
        n => format!("{n} retries"),
    };
    let then = r
        .then
        .map(|t| {
            format!(
                ", then {} with {} retries (max_wait {})",
                strategy(t.strategy),
                t.max_attempts,
                dur(r.max_wait)
            )
        })
        .unwrap_or_default();
    format!("{}, {retries}{then}", strategy(r.strategy))
}

fn codes(s: &StatusRule) -> String {
    let codes: Vec<String> = s
        .codes
        .iter()
        .map(|c| {
            if c.start == c.end {
                c.start.to_string()
            } else {
                format!("{}-{}", c.start, c.end)
            }
        })
        .collect();
    let errors = if s.error_codes.is_empty() {
        String::new()
    } else {
        format!(" with error code {}", s.error_codes.join(" or "))
    };
    format!("[{}]{errors}", codes.join(", "))
}

fn strategy(s: Strategy) -> &'static str {
    match s {
        Strategy::SameModel => "same_model",
        Strategy::SameProvider => "same_provider",
        Strategy::DifferentProvider => "different_provider",
    }
}

fn scope(s: BlockScope) -> &'static str {
    match s {
        BlockScope::Model => "model",
        BlockScope::Provider => "provider",
    }
}

fn apply(a: BlockApplyTo) -> &'static str {
    match a {
        BlockApplyTo::Global => "global",
        BlockApplyTo::Request => "request",
    }
}

/// `300s`, `1.5s`, `500ms`.
fn dur(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms > 1000 {
        format!("{}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}
