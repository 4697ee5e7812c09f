//! Streaming (spec §6)

use switchback_tests::fixtures::*;
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::{Ending, MockUpstream, Reply};
use switchback_tests::table::{ms, start};

use crate::harness::{
    assert_aborted_stream, assert_clean_stream, pair, stream, stream_ok, LONG, NORMAL, RETRY_429,
};

/// A stream cut before its first content event is retried: the client sees one clean
/// stream, from the fallback only.
pub(crate) fn stream_cut_before_commit_retried<R: Runtime>() {
    let primary =
        MockUpstream::start(vec![Reply::sse(&[role_event()], ms(10)).ending(Ending::Cut)]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = stream(gw.addr);
    assert_clean_stream(&r, STREAM_TEXT);
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
}

/// A stream cut after content was relayed: a terminal error event, no `[DONE]`, and no
/// second provider spliced in.
pub(crate) fn stream_cut_after_commit_ends_with_error<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::sse(
        &[role_event(), content_event("Hel"), content_event("lo")],
        ms(10),
    )
    .ending(Ending::Cut)]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = stream(gw.addr);
    assert_aborted_stream(&r, "Hello");
    assert!(r.complete, "the response body should still end properly");
    assert_eq!(secondary.calls(), 0);
}

/// A committed stream that stalls past `idle` ends with a terminal error event, and the
/// stalled upstream connection is closed.
pub(crate) fn stream_stall_after_commit_ends_with_error<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::sse(
        &[role_event(), content_event("Hi")],
        ms(10),
    )
    .ending(Ending::Stall)]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    // Only the stall is timed: the first chunk has the usual `first_token`.
    let gw = start::<R>(
        &pair(Some(RETRY_429), "{first_token: 2s, idle: 300ms}"),
        &[&primary, &secondary],
    );
    let r = stream(gw.addr);
    let e = assert_aborted_stream(&r, "Hi");
    assert_eq!(e["code"], "stream_timeout", "{e}");
    // The idle timeout's own error, not the listener deadline's.
    assert_eq!(
        e["message"], "The upstream stream stalled for 300 ms; the answer is incomplete.",
        "{e}"
    );
    assert!(r.elapsed() >= ms(300), "elapsed {:?}", r.elapsed());
    // The stalled upstream never ends: an answer at all is the idle timeout's.
    assert!(r.elapsed() < ms(10_000), "elapsed {:?}", r.elapsed());
    assert_eq!(secondary.calls(), 0);
    assert!(
        primary.wait_closed_by_peer(0, ms(5000)),
        "the stalled upstream connection was not closed"
    );
}

/// An in-band error event before any content is a failed attempt: fail over.
pub(crate) fn inband_error_before_commit_fails_over<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::sse(
        &[role_event(), error_event("overloaded")],
        ms(10),
    )]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = stream(gw.addr);
    assert_clean_stream(&r, STREAM_TEXT);
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
}

/// An event whose data is not JSON is dropped; the stream otherwise completes.
pub(crate) fn malformed_sse_event_dropped<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::sse(
        &[
            role_event(),
            content_event("Hi"),
            "data: this is not json\n\n".to_owned(),
            content_event(" there"),
            finish_event(),
            DONE_EVENT.to_owned(),
        ],
        ms(5),
    )]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = stream(gw.addr);
    assert_clean_stream(&r, "Hi there");
    assert!(!r.text().contains("not json"), "relayed: {}", r.text());
    assert_eq!((primary.calls(), secondary.calls()), (1, 0));
}

/// An upstream stream that ends cleanly after its finish chunk but without `[DONE]` is
/// finished promptly with `[DONE]`.
pub(crate) fn missing_done_appended<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::sse(
        &[role_event(), content_event("Hi"), finish_event()],
        ms(5),
    )]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), LONG), &[&primary, &secondary]);
    let r = stream(gw.addr);
    assert_clean_stream(&r, "Hi");
    // Far below the 30 s idle timeout: the stream was ended by its own end.
    assert!(r.elapsed() < ms(10_000), "not prompt: {:?}", r.elapsed());
    assert_eq!((primary.calls(), secondary.calls()), (1, 0));
}
