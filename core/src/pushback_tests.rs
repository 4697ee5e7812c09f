use super::*;
use http::{HeaderName, HeaderValue};
use proptest::prelude::*;

/// 2026-01-01T00:00:00Z, a Thursday.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

const CAP: Duration = Duration::from_secs(300);

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("test header name"),
            HeaderValue::from_str(value).expect("test header value"),
        );
    }
    map
}

fn parse(pairs: &[(&str, &str)]) -> Option<Duration> {
    parse_pushback(&headers(pairs), now(), CAP)
}

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

#[test]
fn no_headers_no_pushback() {
    assert_eq!(parse(&[]), None);
    assert_eq!(parse(&[("content-type", "application/json")]), None);
}

#[test]
fn retry_after_ms_integer_and_fractional() {
    assert_eq!(parse(&[("retry-after-ms", "1500")]), ms(1500));
    assert_eq!(parse(&[("retry-after-ms", " 20 ")]), ms(20));
    assert_eq!(
        parse(&[("retry-after-ms", "12.5")]),
        Some(Duration::from_micros(12_500))
    );
    assert_eq!(
        parse(&[("retry-after-ms", "0.000001")]),
        Some(Duration::from_nanos(1))
    );
    assert_eq!(parse(&[("retry-after-ms", "1.")]), ms(1));
}

#[test]
fn retry_after_ms_wins_over_retry_after() {
    assert_eq!(
        parse(&[("retry-after", "30"), ("retry-after-ms", "250")]),
        ms(250)
    );
}

#[test]
fn bad_retry_after_ms_falls_through() {
    for bad in [
        "0",
        "0.0",
        "-5",
        "abc",
        "",
        "1e3",
        "NaN",
        "inf",
        "+5",
        ".5",
        "5 ms",
        "0.0000001",
    ] {
        assert_eq!(
            parse(&[("retry-after-ms", bad), ("retry-after", "7")]),
            Some(Duration::from_secs(7)),
            "retry-after-ms {bad:?}"
        );
        assert_eq!(parse(&[("retry-after-ms", bad)]), None, "{bad:?}");
    }
}

#[test]
fn retry_after_seconds() {
    assert_eq!(parse(&[("retry-after", "2")]), Some(Duration::from_secs(2)));
    assert_eq!(
        parse(&[("Retry-After", "120")]),
        Some(Duration::from_secs(120))
    );
    assert_eq!(parse(&[("retry-after", "1.5")]), ms(1500));
}

#[test]
fn retry_after_bad_seconds_ignored() {
    for bad in [
        "0",
        "-1",
        "1s",
        "soon",
        "",
        "1,2",
        "99999999999999999999999999999999999",
    ] {
        assert_eq!(parse(&[("retry-after", bad)]), None, "{bad:?}");
    }
}

#[test]
fn retry_after_http_date_all_three_forms() {
    let thirty = Some(Duration::from_secs(30));
    // IMF-fixdate
    assert_eq!(
        parse(&[("retry-after", "Thu, 01 Jan 2026 00:00:30 GMT")]),
        thirty
    );
    // RFC 850 (two-digit year)
    assert_eq!(
        parse(&[("retry-after", "Thursday, 01-Jan-26 00:00:30 GMT")]),
        thirty
    );
    // asctime
    assert_eq!(
        parse(&[("retry-after", "Thu Jan  1 00:00:30 2026")]),
        thirty
    );
}

#[test]
fn retry_after_http_date_in_past_or_now_ignored() {
    assert_eq!(
        parse(&[("retry-after", "Thu, 01 Jan 2026 00:00:00 GMT")]),
        None
    );
    assert_eq!(
        parse(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]),
        None
    );
}

#[test]
fn retry_after_malformed_dates_ignored() {
    for bad in [
        // wrong weekday
        "Fri, 01 Jan 2026 00:00:30 GMT",
        // not GMT
        "Thu, 01 Jan 2026 00:00:30 PST",
        // impossible day
        "Sat, 31 Feb 2026 00:00:30 GMT",
        "Thu, 01 Foo 2026 00:00:30 GMT",
        "2026-01-01T00:00:30Z",
    ] {
        assert_eq!(parse(&[("retry-after", bad)]), None, "{bad:?}");
    }
}

#[test]
fn retry_after_far_future_date_is_capped() {
    assert_eq!(
        parse(&[("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")]),
        Some(CAP)
    );
}

#[test]
fn values_above_cap_are_capped() {
    assert_eq!(parse(&[("retry-after", "86400")]), Some(CAP));
    assert_eq!(parse(&[("retry-after-ms", "300001")]), Some(CAP));
    assert_eq!(parse(&[("retry-after-ms", "300000")]), Some(CAP));
    let tiny = Duration::from_millis(10);
    assert_eq!(
        parse_pushback(&headers(&[("retry-after", "1")]), now(), tiny),
        Some(tiny)
    );
}

#[test]
fn zero_cap_never_pushes_back() {
    assert_eq!(
        parse_pushback(&headers(&[("retry-after", "1")]), now(), Duration::ZERO),
        None
    );
}

#[test]
fn overflowing_values_are_ignored_not_capped() {
    let huge = "1".repeat(40);
    assert_eq!(parse(&[("retry-after-ms", &huge)]), None);
    assert_eq!(parse(&[("retry-after", &huge)]), None);
}

#[test]
fn openai_reset_only_when_remaining_is_zero() {
    assert_eq!(
        parse(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1s"),
        ]),
        Some(Duration::from_secs(1))
    );
    assert_eq!(
        parse(&[
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-reset-requests", "1s"),
        ]),
        None
    );
    // no remaining header at all: not exhausted
    assert_eq!(parse(&[("x-ratelimit-reset-requests", "1s")]), None);
    assert_eq!(
        parse(&[
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]),
        Some(CAP)
    );
    assert_eq!(
        parse(&[
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "12ms"),
            ("x-ratelimit-remaining-requests", "3"),
            ("x-ratelimit-reset-requests", "2s"),
        ]),
        ms(12)
    );
}

#[test]
fn openai_both_exhausted_takes_larger() {
    assert_eq!(
        parse(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "2.5s"),
        ]),
        ms(2500)
    );
    // an unusable reset on one side leaves the other
    assert_eq!(
        parse(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "garbage"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "20ms"),
        ]),
        ms(20)
    );
}

#[test]
fn openai_zero_reset_ignored() {
    assert_eq!(
        parse(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "0s"),
        ]),
        None
    );
}

#[test]
fn retry_after_wins_over_openai() {
    assert_eq!(
        parse(&[
            ("retry-after", "3"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1s"),
        ]),
        Some(Duration::from_secs(3))
    );
}

#[test]
fn anthropic_reset_when_remaining_is_zero() {
    assert_eq!(
        parse(&[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:20Z"),
        ]),
        Some(Duration::from_secs(20))
    );
    assert_eq!(
        parse(&[
            ("anthropic-ratelimit-input-tokens-remaining", "0"),
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2026-01-01T01:00:05.5+01:00"
            ),
        ]),
        ms(5500)
    );
    assert_eq!(
        parse(&[
            ("anthropic-ratelimit-output-tokens-remaining", "0"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2025-12-31t23:30:10-00:30"
            ),
        ]),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn anthropic_not_exhausted_or_past_ignored() {
    assert_eq!(
        parse(&[
            ("anthropic-ratelimit-requests-remaining", "49"),
            ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:20Z"),
        ]),
        None
    );
    assert_eq!(
        parse(&[
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2025-12-31T23:59:59Z"),
        ]),
        None
    );
}

#[test]
fn anthropic_several_exhausted_takes_latest() {
    assert_eq!(
        parse(&[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:20Z"),
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:40Z"),
            ("anthropic-ratelimit-output-tokens-remaining", "10"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2026-01-01T00:01:40Z"
            ),
        ]),
        Some(Duration::from_secs(40))
    );
}

#[test]
fn openai_wins_over_anthropic() {
    assert_eq!(
        parse(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1s"),
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:20Z"),
        ]),
        Some(Duration::from_secs(1))
    );
}

#[test]
fn first_header_value_is_used() {
    assert_eq!(
        parse(&[("retry-after", "4"), ("retry-after", "9")]),
        Some(Duration::from_secs(4))
    );
}

#[test]
fn non_ascii_values_are_ignored() {
    let mut map = HeaderMap::new();
    map.insert(
        "retry-after",
        HeaderValue::from_bytes(b"\xff\xfe5").expect("obs-text is a valid header value"),
    );
    assert_eq!(parse_pushback(&map, now(), CAP), None);
}

#[test]
fn go_durations() {
    let cases: &[(&str, Duration)] = &[
        ("0", Duration::ZERO),
        ("1s", Duration::from_secs(1)),
        ("6m0s", Duration::from_secs(360)),
        ("12ms", Duration::from_millis(12)),
        ("0.5s", Duration::from_millis(500)),
        (".5s", Duration::from_millis(500)),
        ("1.s", Duration::from_secs(1)),
        ("1h2m3.5s", Duration::from_millis(3_723_500)),
        ("1.5h", Duration::from_secs(5400)),
        ("300ns", Duration::from_nanos(300)),
        ("2us", Duration::from_micros(2)),
        ("2\u{b5}s", Duration::from_micros(2)),
        ("2\u{3bc}s", Duration::from_micros(2)),
        ("+3s", Duration::from_secs(3)),
        ("1m1m", Duration::from_secs(120)),
        ("1.0000000001s", Duration::from_secs(1)),
        (
            "0.1234567891234567891234s",
            Duration::from_nanos(123_456_789),
        ),
        (" 7s ", Duration::from_secs(7)),
    ];
    for (s, want) in cases {
        assert_eq!(parse_go_duration(s), Some(*want), "{s:?}");
    }
}

#[test]
fn go_duration_rejects() {
    for bad in [
        "",
        "-1s",
        "1",
        "s",
        ".s",
        "1d",
        "1 s",
        "1S",
        "1.2.3s",
        "abc",
        "1s-",
        "++1s",
        "99999999999999999999999999999999999999999h",
        "5124095576030432h",
    ] {
        assert_eq!(parse_go_duration(bad), None, "{bad:?}");
    }
}

#[test]
fn rfc3339_forms() {
    let t = |s| parse_rfc3339(s);
    assert_eq!(t("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
    assert_eq!(
        t("2026-01-01T00:00:00Z"),
        Some(UNIX_EPOCH + Duration::from_secs(1_767_225_600))
    );
    assert_eq!(
        t("2024-02-29 12:00:00.123456789123+00:00"),
        Some(UNIX_EPOCH + Duration::new(1_709_208_000, 123_456_789))
    );
    assert_eq!(
        t("1969-12-31T23:59:59Z"),
        UNIX_EPOCH.checked_sub(Duration::from_secs(1))
    );
    for bad in [
        "2023-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00+0100",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00+24:00",
        "2026-1-01T00:00:00Z",
        "+026-01-01T00:00:00Z",
        "2026-01-01T00:00:00ZZ",
    ] {
        assert_eq!(t(bad), None, "{bad:?}");
    }
}

fn header_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "retry-after-ms",
        "retry-after",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ])
}

/// Header values: plausible-looking ones, arbitrary text, and arbitrary bytes.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[0-9]{0,25}(\\.[0-9]{0,25})?".prop_map(String::into_bytes),
        "-?[0-9.]{0,8}(h|m|s|ms|us|ns){0,3}[0-9.]{0,8}(h|m|s|ms)?".prop_map(String::into_bytes),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})"
            .prop_map(String::into_bytes),
        "(Mon|Thu|Sun)[a-z,]{0,6} [0-9]{1,2}[ -](Jan|Feb|Nov)[ -][0-9]{2,4} [0-9:]{8} GMT"
            .prop_map(String::into_bytes),
        any::<String>().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..40),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn pushback_is_total_and_bounded(
        pairs in prop::collection::vec((header_name(), header_value()), 0..8),
        now_secs in 0u64..8_000_000_000,
        now_nanos in 0u32..1_000_000_000,
        cap_ms in 0u64..10_000_000,
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                map.append(name, value);
            }
        }
        let cap = Duration::from_millis(cap_ms);
        let wall_now = UNIX_EPOCH + Duration::new(now_secs, now_nanos);
        if let Some(d) = parse_pushback(&map, wall_now, cap) {
            prop_assert!(d > Duration::ZERO);
            prop_assert!(d <= cap);
        }
    }

    #[test]
    fn go_duration_never_panics(s in any::<String>()) {
        let _ = parse_go_duration(&s);
    }

    #[test]
    fn go_duration_roundtrips_hms(h in 0u64..1000, m in 0u64..60, s in 0u64..60, milli in 0u64..1000) {
        let text = format!("{h}h{m}m{s}.{milli:03}s");
        let want = Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + milli);
        prop_assert_eq!(parse_go_duration(&text), Some(want));
    }
}
