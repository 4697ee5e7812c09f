//! Blocks, deadlines, concurrency and client protection

use std::thread;
use std::time::Instant;

use switchback_tests::client::{self, get, post_chat, post_chat_with, Streaming};
use switchback_tests::fixtures::*;
use switchback_tests::gateway::{GatewayOptions, Runtime};
use switchback_tests::mock_upstream::{refused_port, MockUpstream, Reply};
use switchback_tests::table::{assert_header, assert_status, error_of, ms, start, start_ports};

use crate::harness::{
    assert_exhausted, assert_success_content, ok, pair, too_many, LONG, NORMAL, RETRY_429,
};

/// With every candidate blocked far past the deadline, the next request is answered at
/// once: exhaustion, `Retry-After`, and no upstream call.
pub(crate) fn all_blocked_answers_at_once<R: Runtime>() {
    let primary = MockUpstream::start(vec![too_many().header("Retry-After", "60")]);
    let secondary = MockUpstream::start(vec![too_many().header("Retry-After", "60")]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    let e = assert_exhausted(&r, 429, 2);
    assert_eq!(e["attempts"][0]["retry_after_ms"], 60_000, "{e}");
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
    let r = post_chat(gw.addr, &chat_request());
    assert_status(&r, 429);
    let e = error_of(&r);
    assert_eq!(e["type"], "retry_exhausted", "{e}");
    assert_header(&r, "x-should-retry", "false");
    let secs: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers));
    assert!((55..=60).contains(&secs), "Retry-After {secs}");
    assert!(e["shortest_remaining_block_seconds"].is_u64(), "{e}");
    // Far below the 60 s block: answered at once, not after waiting.
    assert!(r.elapsed() < ms(10_000), "elapsed {:?}", r.elapsed());
    assert_eq!(
        (primary.calls(), secondary.calls()),
        (1, 1),
        "a blocked upstream was called"
    );
}

/// The listener `timeout` bounds the whole request, even when `first_token` is longer.
pub(crate) fn listener_deadline_bounds_request<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::hang()]);
    let secondary = MockUpstream::start(vec![Reply::hang()]);
    let policy =
        format!("{RETRY_429}on_timeout:\n  strategy: different_provider\n  max_attempts: 2\n");
    let yaml = pair(Some(&policy), LONG).replace("timeout: 10s", "timeout: 500ms");
    let gw = start::<R>(&yaml, &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_status(&r, 504);
    assert!(r.elapsed() >= ms(450), "elapsed {:?}", r.elapsed());
    // Far below `first_token` (30 s): the deadline ended it.
    assert!(
        r.elapsed() < ms(10_000),
        "the deadline was not kept: {:?}",
        r.elapsed()
    );
    assert_eq!(
        secondary.calls(),
        0,
        "no time was left for a second attempt"
    );
    assert!(primary.wait_closed_by_peer(0, ms(5000)));
}

/// Without a retry_policy, a transport failure gets a gateway-made error in OpenAI's
/// shape with `x-should-retry: false`.
pub(crate) fn no_policy_transport_error_is_gateway_error<R: Runtime>() {
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start_ports::<R>(
        &pair(None, NORMAL),
        &[refused_port(), secondary.port()],
        &GatewayOptions::default(),
    );
    let r = post_chat(gw.addr, &chat_request());
    assert!(
        r.status == 502 || r.status == 503,
        "status {}: {}",
        r.status,
        r.text()
    );
    let e = error_of(&r);
    assert_eq!(e["error_type"], "connect_error", "{e}");
    assert_header(&r, "x-should-retry", "false");
    assert_eq!(secondary.calls(), 0);
}

/// Requests are served concurrently: eight 1 s upstream answers take far less than
/// 8 x 1 s.
pub(crate) fn concurrent_requests_are_served_in_parallel<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok().delayed(ms(1000))]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &primary]);
    let addr = gw.addr;
    let t0 = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            thread::spawn(move || {
                let id = format!("parallel-{i}");
                let r = post_chat_with(addr, &chat_request(), &[("x-request-id", &id)]);
                (id, r)
            })
        })
        .collect();
    for h in handles {
        let (id, r) = h.join().expect("client thread");
        assert_success_content(&r);
        assert_header(&r, "x-request-id", &id);
    }
    assert!(t0.elapsed() < ms(5000), "serialized: {:?}", t0.elapsed());
    assert_eq!(primary.calls(), 8);
}

/// A client that never finishes its request head is cut off after the header read
/// timeout (408 or a close).
pub(crate) fn slow_client_head_times_out<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let options = GatewayOptions {
        header_read_timeout: Some(ms(300)),
        ..GatewayOptions::default()
    };
    let gw = start_ports::<R>(
        &pair(None, NORMAL),
        &[primary.port(), primary.port()],
        &options,
    );
    let t0 = Instant::now();
    let mut s = Streaming::send(
        gw.addr,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n",
    )
    .expect("connect");
    match s.read_head() {
        Ok(()) => assert_eq!(s.status, 408, "headers: {:?}", s.headers),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}"),
    }
    // The client never finishes its head: any end at all is the 300 ms timeout's.
    assert!(t0.elapsed() < ms(10_000), "elapsed {:?}", t0.elapsed());
    assert_eq!(primary.calls(), 0);
    assert_status(&get(gw.addr, "/healthz"), 200);
}

/// Bytes that are not HTTP get a 400 (never a crash); the gateway keeps serving.
pub(crate) fn malformed_http_400<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &primary]);
    let r = client::send_raw(gw.addr, b"THIS IS NOT HTTP\r\n\r\n").expect("a response");
    assert_status(&r, 400);
    assert_eq!(error_of(&r)["type"], "invalid_request_error");
    assert_status(&get(gw.addr, "/healthz"), 200);
    assert_eq!(primary.calls(), 0);
}
