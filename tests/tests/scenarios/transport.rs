//! Transport failures

use switchback_tests::client::post_chat;
use switchback_tests::fixtures::*;
use switchback_tests::gateway::{GatewayOptions, Runtime};
use switchback_tests::mock_upstream::{refused_port, Ending, MockUpstream, Reply};
use switchback_tests::table::{assert_header, ms, start, start_ports};

use crate::harness::{
    assert_exhausted, assert_success_content, ok, pair, NORMAL, RETRY_429, SHORT,
};

/// Connection refused is a failed attempt: fail over.
pub(crate) fn connect_refused_fails_over<R: Runtime>() {
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start_ports::<R>(
        &pair(Some(RETRY_429), NORMAL),
        &[refused_port(), secondary.port()],
        &GatewayOptions::default(),
    );
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_eq!(secondary.calls(), 1);
    assert_header(&r, "x-switchback-attempts", "2");
}

/// A connection closed before any response byte (on a fresh connection) is a failed
/// attempt: fail over, without re-sending to the same upstream.
pub(crate) fn reset_before_headers_fails_over<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::reset()]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_eq!(primary.calls(), 1);
    assert_eq!(secondary.calls(), 1);
}

/// A 200 whose body is cut short is a failed attempt, never relayed.
pub(crate) fn truncated_json_fails_over<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::json(
        200,
        r#"{"id": "chatcmpl-x", "choices": [{"#,
    )
    .ending(Ending::Cut)]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
}

/// No answer within `first_token` anywhere: 504 exhaustion with `timeout_<ms>ms`
/// attempts, well before the listener deadline.
pub(crate) fn first_token_timeouts_exhaust<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::hang()]);
    let secondary = MockUpstream::start(vec![Reply::hang()]);
    let policy =
        format!("{RETRY_429}on_timeout:\n  strategy: different_provider\n  max_attempts: 2\n");
    let gw = start::<R>(&pair(Some(&policy), SHORT), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    let e = assert_exhausted(&r, 504, 2);
    for a in e["attempts"].as_array().into_iter().flatten() {
        let t = a["error_type"].as_str().unwrap_or_default();
        let n: u64 = t
            .strip_prefix("timeout_")
            .and_then(|t| t.strip_suffix("ms"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a timeout error_type: {a}"));
        assert!((300..1000).contains(&n), "{a}");
    }
    assert!(r.elapsed() >= ms(600), "elapsed {:?}", r.elapsed());
    // Both upstreams hang forever and the listener deadline is 10 s: this is the
    // timeouts' answer.
    assert!(r.elapsed() < ms(8000), "elapsed {:?}", r.elapsed());
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
    assert!(primary.wait_closed_by_peer(0, ms(5000)));
    assert!(secondary.wait_closed_by_peer(0, ms(5000)));
}

/// Spec §4.8: `error_type` names the timeout that fired (`timeout_300ms` for a 300 ms
/// `first_token`); `latency_ms` carries the measured time.
pub(crate) fn timeout_error_type_names_the_timeout<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::hang()]);
    let secondary = MockUpstream::start(vec![Reply::hang()]);
    let policy =
        format!("{RETRY_429}on_timeout:\n  strategy: different_provider\n  max_attempts: 2\n");
    let gw = start::<R>(&pair(Some(&policy), SHORT), &[&primary, &secondary]);
    // Several requests, so a timer that fires a millisecond late shows up.
    for _ in 0..3 {
        let r = post_chat(gw.addr, &chat_request());
        let e = assert_exhausted(&r, 504, 2);
        for a in e["attempts"].as_array().into_iter().flatten() {
            assert_eq!(a["error_type"], "timeout_300ms", "{a}");
            assert!(a["latency_ms"].as_u64().is_some_and(|l| l >= 300), "{a}");
        }
    }
}
