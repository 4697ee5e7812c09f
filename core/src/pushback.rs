//! Rate-limit pushback: how long an upstream asked us to stay away (spec §4.5).
//!
//! [`parse_pushback`] reads a retriable response's headers and returns the wait the provider
//! asked for, or `None` when it asked for nothing usable. It is total: any header value, however
//! malformed, yields either `None` or a duration in `(0, cap]`, never a panic.
//!
//! Sources, in order; the first that yields a usable value wins and later ones are not read:
//!
//! 1. `retry-after-ms`: milliseconds, decimal, may be fractional (`1500`, `12.5`).
//! 2. `Retry-After`: delay-seconds (`120`; a fraction such as `1.5` is also accepted) or an
//!    HTTP-date in any of the three RFC 9110 forms (IMF-fixdate, RFC 850, asctime), taken
//!    relative to `wall_now`.
//! 3. OpenAI `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` (Go-style durations such
//!    as `1s`, `6m0s`, `12ms`), each only when its `x-ratelimit-remaining-requests` /
//!    `-tokens` is `0`. When both are exhausted the larger reset wins.
//! 4. Anthropic `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset`
//!    (RFC 3339 timestamps, relative to `wall_now`), each only when its matching
//!    `anthropic-ratelimit-*-remaining` is `0`; the latest exhausted reset wins. Anthropic sends
//!    these on every response, so a reset whose bucket still has room says nothing about a wait.
//!
//! Values that are negative, zero, NaN, in the past, not representable as a [`Duration`], or
//! unparsable are ignored and the next source is tried. Representable values above `cap` are
//! capped to `cap`. When a header occurs more than once only its first value is read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

/// The OpenAI reset headers and the `remaining` header that gates each.
const OPENAI_RESETS: [(&str, &str); 2] = [
    (
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    ),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
];

/// The Anthropic reset headers and the `remaining` header that gates each.
const ANTHROPIC_RESETS: [(&str, &str); 4] = [
    (
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
    ),
    (
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    ),
    (
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ),
    (
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ),
];

/// Reads the wait an upstream asked for from a response's headers.
///
/// Call it on a response the retry policy classified as retriable (typically 429 or 503), with
/// the current wall-clock time (HTTP-dates and RFC 3339 resets are absolute) and the policy's
/// `max_retry_after_seconds` as `cap`.
///
/// Promises: never panics; returns `None` (no usable signal, or `cap` is zero) or a duration `d`
/// with `Duration::ZERO < d <= cap`. See the module docs for the sources and their order.
pub fn parse_pushback(
    headers: &HeaderMap,
    wall_now: SystemTime,
    cap: Duration,
) -> Option<Duration> {
    if cap.is_zero() {
        return None;
    }
    let found = header_str(headers, "retry-after-ms")
        .and_then(parse_millis)
        .or_else(|| header_str(headers, "retry-after").and_then(|v| parse_retry_after(v, wall_now)))
        .or_else(|| openai_reset(headers))
        .or_else(|| anthropic_reset(headers, wall_now))?;
    Some(found.min(cap))
}

/// Parses a Go `time.Duration` string such as `1s`, `6m0s`, `12ms`, `1h2m3.5s`, `0.5s`, `.5s`.
///
/// Accepts what Go's `time.ParseDuration` accepts for non-negative values: an optional `+`, then
/// one or more `<number><unit>` pairs where the number is decimal with an optional fraction and
/// the unit is one of `ns`, `us`, `µs` (U+00B5), `μs` (U+03BC), `ms`, `s`, `m`, `h`; or the bare
/// string `0`. Fractions below a nanosecond are truncated, as in Go. Surrounding ASCII whitespace
/// is ignored.
///
/// Returns `None` for a negative duration (a leading `-`), an unknown or missing unit, an empty
/// string, or a value that does not fit in a [`Duration`]. May return `Some(Duration::ZERO)`.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let (int_digits, after_int) = split_digits(rest);
        let (frac_digits, after_frac) = match after_int.strip_prefix('.') {
            Some(r) => split_digits(r),
            None => ("", after_int),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return None;
        }
        let unit_end = after_frac
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after_frac.len());
        let (unit, next) = after_frac.split_at(unit_end);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int_value = decimal_u128(int_digits)?;
        total_ns = total_ns.checked_add(int_value.checked_mul(unit_ns)?)?;
        // Only the first 18 fraction digits can matter at nanosecond resolution for any unit
        // up to an hour; the rest are validated as digits above and otherwise ignored.
        let frac_used = &frac_digits[..frac_digits.len().min(18)];
        if !frac_used.is_empty() {
            let scale = 10u128.checked_pow(u32::try_from(frac_used.len()).ok()?)?;
            let frac_value = decimal_u128(frac_used)?;
            total_ns = total_ns.checked_add(frac_value.checked_mul(unit_ns)? / scale)?;
        }
        rest = next;
    }
    duration_from_nanos(total_ns)
}

/// The first value of header `name` as text, or `None` if absent or not visible ASCII.
fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

/// Splits `s` into its leading ASCII digits and the rest.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// Parses a string of ASCII digits (empty means 0) as a `u128`, `None` on overflow.
fn decimal_u128(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |acc, b| {
        acc.checked_mul(10)?.checked_add(u128::from(b - b'0'))
    })
}

fn duration_from_nanos(ns: u128) -> Option<Duration> {
    let secs = u64::try_from(ns / 1_000_000_000).ok()?;
    let sub = u32::try_from(ns % 1_000_000_000).ok()?;
    Some(Duration::new(secs, sub))
}

/// Parses an unsigned decimal `digits[.digits]` number of `unit_ns` nanoseconds each, exactly
/// (fractions below a nanosecond truncated). `None` if malformed or not representable.
fn parse_decimal(s: &str, unit_ns: u128) -> Option<Duration> {
    let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let (int_digits, after) = split_digits(s);
    let (frac_digits, after) = match after.strip_prefix('.') {
        Some(r) => split_digits(r),
        None => ("", after),
    };
    if !after.is_empty() || int_digits.is_empty() {
        return None;
    }
    let int_value = decimal_u128(int_digits)?;
    let mut ns = int_value.checked_mul(unit_ns)?;
    let frac_used = &frac_digits[..frac_digits.len().min(18)];
    if !frac_used.is_empty() {
        let scale = 10u128.checked_pow(u32::try_from(frac_used.len()).ok()?)?;
        ns = ns.checked_add(decimal_u128(frac_used)?.checked_mul(unit_ns)? / scale)?;
    }
    duration_from_nanos(ns)
}

/// `retry-after-ms`: a positive decimal number of milliseconds.
fn parse_millis(s: &str) -> Option<Duration> {
    parse_decimal(s, 1_000_000).filter(|d| !d.is_zero())
}

/// `Retry-After`: delay-seconds, or an HTTP-date later than `wall_now`.
fn parse_retry_after(s: &str, wall_now: SystemTime) -> Option<Duration> {
    let trimmed = s.trim_matches(|c: char| c.is_ascii_whitespace());
    if trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        return parse_decimal(trimmed, 1_000_000_000).filter(|d| !d.is_zero());
    }
    let at = httpdate::parse_http_date(trimmed).ok()?;
    until(at, wall_now)
}

/// The positive time from `wall_now` until `at`; `None` if `at` is not in the future.
fn until(at: SystemTime, wall_now: SystemTime) -> Option<Duration> {
    at.duration_since(wall_now).ok().filter(|d| !d.is_zero())
}

/// Whether a `remaining` header says the bucket is empty (the integer 0).
fn exhausted(headers: &HeaderMap, name: &str) -> bool {
    header_str(headers, name).is_some_and(|v| {
        let v = v.trim_matches(|c: char| c.is_ascii_whitespace());
        !v.is_empty() && v.bytes().all(|b| b == b'0')
    })
}

fn openai_reset(headers: &HeaderMap) -> Option<Duration> {
    OPENAI_RESETS
        .iter()
        .filter(|(remaining, _)| exhausted(headers, remaining))
        .filter_map(|(_, reset)| header_str(headers, reset).and_then(parse_go_duration))
        .filter(|d| !d.is_zero())
        .max()
}

fn anthropic_reset(headers: &HeaderMap, wall_now: SystemTime) -> Option<Duration> {
    ANTHROPIC_RESETS
        .iter()
        .filter(|(remaining, _)| exhausted(headers, remaining))
        .filter_map(|(_, reset)| header_str(headers, reset).and_then(parse_rfc3339))
        .filter_map(|at| until(at, wall_now))
        .max()
}

/// Parses an RFC 3339 `date-time` (`2024-05-01T12:00:30Z`, `2024-05-01t12:00:30.25+02:00`;
/// a space is also accepted in place of `T`). A leap second (`:60`) is read as the following
/// second. Returns `None` for anything malformed, out of range, or not representable.
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.trim_matches(|c: char| c.is_ascii_whitespace()).as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')),
        )
    };
    let sep = |i: usize, ok: &[u8]| b.get(i).is_some_and(|c| ok.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return None;
        }
        let used = (end - start).min(9);
        let value = num(start..start + used)?;
        nanos = value * 10i64.pow(9 - u32::try_from(used).ok()?);
        i = end;
    }
    let offset_secs = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let oh = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let om = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let local = days * 86_400 + hour * 3600 + minute * 60 + second;
    let unix = local - offset_secs;
    let sub = u32::try_from(nanos).ok()?;
    if unix >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(u64::try_from(unix).ok()?, sub))
    } else {
        let back = Duration::new(unix.unsigned_abs(), 0);
        UNIX_EPOCH
            .checked_sub(back)?
            .checked_add(Duration::new(0, sub))
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[path = "pushback_tests.rs"]
mod tests;
