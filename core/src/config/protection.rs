//! The settings that protect upstreams and the gateway itself (spec §11): `retry_budget`
//! (top level and per provider entry), `on_failures` (in a `retry_policy`) and `limits`.

use super::fields::{boolean, choice, field, int_in, positive_count, positive_secs, text, SCOPES};
use super::raw::{RawLimits, RawOnFailures, RawRetryBudget, Scalar, S};
use super::report::{join, Pos, Report};
use super::{Limits, OnFailures, RetryBudgetSettings};

/// The largest `retry_budget.ratio` accepted: beyond it the budget bounds nothing useful.
const MAX_RATIO: f64 = 100.0;
/// The largest `retry_budget.min_per_second` accepted.
const MAX_MIN_PER_SECOND: u64 = 1_000_000;
/// Under this, `limits.max_buffered_body_bytes` refuses bodies the per-body limits allow.
const PER_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Converts a `retry_budget` mapping found at `path`. Keys it does not set come from
/// `base` (the spec defaults at the top level, the top-level budget on an entry).
pub(crate) fn convert_retry_budget(
    rep: &mut Report,
    raw: &S<RawRetryBudget>,
    path: &str,
    base: RetryBudgetSettings,
) -> RetryBudgetSettings {
    let r = &raw.value;
    let mut out = base;
    if let Some(v) = &r.enabled {
        if let Some(b) = boolean(rep, v, &join(path, "enabled")) {
            out.enabled = b;
        }
    }
    if let Some(v) = &r.ratio {
        if let Some(ratio) = ratio(rep, v, &join(path, "ratio")) {
            out.ratio = ratio;
        }
    }
    if let Some(v) = &r.min_per_second {
        let p = join(path, "min_per_second");
        if let Some(n) = int_in(rep, v, &p, 0, MAX_MIN_PER_SECOND) {
            out.min_per_second = n as u32;
        }
    }
    if out.enabled && out.ratio == 0.0 && out.min_per_second == 0 {
        rep.warn(
            path,
            Pos::at(raw),
            "`ratio` and `min_per_second` are both 0, so no retry will ever be made; raise one of them, or set `enabled: false` to stop budgeting retries",
        );
    }
    out
}

/// A non-negative decimal number up to [`MAX_RATIO`].
fn ratio(rep: &mut Report, v: &S<Scalar>, path: &str) -> Option<f64> {
    let name = field(path);
    let n = match &v.value {
        Scalar::Int(i) => *i as f64,
        Scalar::Float(f) => *f,
        Scalar::Str(s) if s.trim().parse::<f64>().is_ok() => {
            rep.error(
                path,
                Pos::at(v),
                format!("`{name}` must be a number, not the string \"{s}\"; remove the quotes"),
            );
            return None;
        }
        other => {
            rep.error(
                path,
                Pos::at(v),
                format!(
                    "`{name}` must be a number from 0 to {MAX_RATIO}, but it is {} (`{}`)",
                    other.kind(),
                    text(v)
                ),
            );
            return None;
        }
    };
    if !(0.0..=MAX_RATIO).contains(&n) {
        rep.error(
            path,
            Pos::at(v),
            format!(
                "`{name}` is {}, but it must be a number from 0 to {MAX_RATIO} (0.2 allows one retry per five requests)",
                text(v)
            ),
        );
        return None;
    }
    Some(n)
}

/// Converts an `on_failures` mapping found at `path`; absent keys take the spec defaults.
pub(crate) fn convert_on_failures(
    rep: &mut Report,
    raw: &S<RawOnFailures>,
    path: &str,
) -> OnFailures {
    let r = &raw.value;
    let mut out = OnFailures::default();
    if let Some(v) = &r.consecutive {
        if let Some(n) = positive_count(rep, v, &join(path, "consecutive")) {
            out.consecutive = n;
        }
    }
    if let Some(v) = &r.window_seconds {
        if let Some(d) = positive_secs(rep, v, &join(path, "window_seconds")) {
            out.window = d;
        }
    }
    if let Some(v) = &r.block_duration_seconds {
        if let Some(d) = positive_secs(rep, v, &join(path, "block_duration_seconds")) {
            out.block_duration = d;
        }
    }
    if let Some(v) = &r.scope {
        if let Some(s) = choice(rep, v, &join(path, "scope"), SCOPES) {
            out.scope = s;
        }
    }
    out
}

/// Converts the top-level `limits` mapping.
pub(crate) fn convert_limits(rep: &mut Report, raw: &S<RawLimits>, path: &str) -> Limits {
    let mut out = Limits::default();
    if let Some(v) = &raw.value.max_buffered_body_bytes {
        let p = join(path, "max_buffered_body_bytes");
        if let Some(n) = byte_size(rep, v, &p) {
            if n < PER_BODY_LIMIT {
                rep.warn(
                    &p,
                    Pos::at(v),
                    format!("{n} bytes is less than the 32 MiB a single request or response body may hold, so such a body is refused with 503 even on an idle gateway"),
                );
            }
            out.max_buffered_body_bytes = n;
        }
    }
    out
}

/// Units a byte size may carry, with their multipliers.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

/// A positive byte count: a whole number of bytes, or a string such as `"256MiB"`.
fn byte_size(rep: &mut Report, v: &S<Scalar>, path: &str) -> Option<usize> {
    let name = field(path);
    let bytes = match &v.value {
        Scalar::Int(_) => int_in(rep, v, path, 1, u64::MAX)?,
        Scalar::Str(s) => {
            let s = s.trim();
            let digits = s.bytes().take_while(u8::is_ascii_digit).count();
            let (number, unit) = s.split_at(digits);
            let multiplier = SIZE_UNITS
                .iter()
                .find(|(u, _)| *u == unit.trim())
                .map(|(_, m)| *m);
            let value = number.parse::<u64>().ok();
            match (value, multiplier) {
                (Some(n), Some(m)) if n > 0 => match n.checked_mul(m) {
                    Some(b) => b,
                    None => {
                        rep.error(path, Pos::at(v), format!("`{name}` is too large"));
                        return None;
                    }
                },
                _ => {
                    let units: Vec<&str> = SIZE_UNITS.iter().map(|(u, _)| *u).collect();
                    rep.error(
                        path,
                        Pos::at(v),
                        format!("`{name}` must be a positive whole number of bytes or a size such as \"256MiB\" (units: {}), not `{s}`", units.join(", ")),
                    );
                    return None;
                }
            }
        }
        other => {
            rep.error(
                path,
                Pos::at(v),
                format!(
                    "`{name}` must be a number of bytes or a size such as \"256MiB\", but it is {}",
                    other.kind()
                ),
            );
            return None;
        }
    };
    match usize::try_from(bytes) {
        Ok(b) => Some(b),
        Err(_) => {
            rep.error(path, Pos::at(v), format!("`{name}` is too large"));
            None
        }
    }
}

/// Warns that an entry's own `retry_budget` has no effect when the entry never retries.
pub(crate) fn warn_budget_without_policy(rep: &mut Report, raw: &S<RawRetryBudget>, path: &str) {
    rep.warn(
        path,
        Pos::at(raw),
        "this entry has no `retry_policy`, so its requests are never retried and its own `retry_budget` has no effect; remove it or add a retry_policy",
    );
}
