//! `GET /v1/status` (spec §13): what an operator asks first in an outage, as JSON: what
//! is blocked, why and until when; how much the retry budgets still admit; and each
//! provider entry's counters since the process started.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::block_table::{BlockEntry, BlockKey, BlockKind};
use crate::gateway::Gateway;

/// The JSON body of `GET /v1/status` at `now` (`wall`: the wall-clock time then).
pub fn status_body(gw: &Gateway, now: Instant, wall: SystemTime) -> Value {
    let counts = gw.metrics().merged();
    let blocks: Vec<Value> = gw
        .blocks()
        .lock()
        .blocks(now)
        .iter()
        .map(|b| block(b, now, wall))
        .collect();
    let budgets: Vec<Value> = gw
        .budget_statuses(now)
        .into_iter()
        .map(|(label, s)| {
            json!({
                "budget": label,
                "window_seconds": crate::retry_budget::RETRY_BUDGET_WINDOW.as_secs(),
                "first_attempts": s.first_attempts,
                "retries": s.retries,
                "allowed": s.allowed,
                "headroom": s.headroom(),
                "rejections": s.refused,
            })
        })
        .collect();
    let mut seen = Vec::new();
    let providers: Vec<Value> = (0..gw.target_count())
        .map(crate::gateway::ProviderId)
        .filter_map(|id| {
            let slot = gw.metric_slot(id);
            if seen.contains(&slot) {
                return None;
            }
            seen.push(slot);
            let attempts: serde_json::Map<String, Value> = counts
                .attempts_of(slot)
                .into_iter()
                .map(|(e, n)| (e.to_owned(), json!(n)))
                .collect();
            Some(json!({
                "model": gw.provider(id).model,
                "requests": counts.requests_of(slot),
                "retries": counts.retries_of(slot),
                "failovers_from": counts.failovers_from(slot),
                "attempts": attempts,
            }))
        })
        .collect();
    json!({
        "generation": gw.generation(),
        "metrics_enabled": gw.metrics_enabled(),
        "requests_in_flight": counts.in_flight(),
        "streams_open": counts.open_streams(),
        "blocks": blocks,
        "retry_budgets": budgets,
        "providers": providers,
    })
}

fn block(b: &BlockEntry, now: Instant, wall: SystemTime) -> Value {
    let (model, scope) = match &b.key {
        BlockKey::Model(m) => (m.clone(), "model"),
        BlockKey::Prefix(p) => (format!("{p}/*"), "provider"),
    };
    let reason = match b.kind {
        BlockKind::RetryAfter => "the upstream pushed back (Retry-After or rate-limit reset headers)",
        BlockKind::Latency => "high latency (on_high_latency triggers)",
        BlockKind::Failures if b.until.is_none() => {
            "consecutive failures (on_failures); the block ended and the next attempt probes the model"
        }
        BlockKind::Failures => "consecutive failures (on_failures)",
    };
    let mut v = json!({
        "model": model,
        "scope": scope,
        "kind": b.kind.as_str(),
        "reason": reason,
        "state": if b.until.is_some() { "blocked" } else { "half_open" },
    });
    if let Some(until) = b.until {
        let left = until.saturating_duration_since(now);
        v["until"] = json!(rfc3339(wall + left));
        v["remaining_ms"] = json!(left.as_millis() as u64);
    }
    v
}

/// `t` as an RFC 3339 UTC timestamp with milliseconds (`2026-01-02T03:04:05.678Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123);
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000Z");
    }
}
