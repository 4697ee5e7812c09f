//! Cancellation (spec §7)

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use switchback_tests::client::{self, get, Streaming};
use switchback_tests::fixtures::*;
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::{MockUpstream, Reply};
use switchback_tests::table::{assert_status, ms, start, HEAD};

use crate::harness::{pair, provider, stream_ok, too_many, NORMAL, RETRY_429};

/// Sends a chat request, waits until `mock` got its first call, lingers `linger`, then
/// closes the client connection.
fn leave_after_first_call(addr: SocketAddr, mock: &MockUpstream, body: &str, linger: Duration) {
    let raw = client::request_bytes(
        "POST",
        client::CHAT_PATH,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    let s = Streaming::send(addr, &raw).expect("send");
    assert!(mock.wait_calls(1, ms(2000)), "the first attempt never came");
    thread::sleep(linger);
    s.disconnect();
}

/// A client that leaves during a backoff cancels the wait: no further attempt.
pub(crate) fn client_gone_during_backoff<R: Runtime>() {
    let primary = MockUpstream::start(vec![too_many()]);
    let policy = "on_status_codes:
  - codes: [429]
    strategy: same_model
    max_attempts: 2
backoff:
  apply_to: same_model
  base_ms: 800
  max_ms: 5000
  jitter: false
";
    let yaml = format!(
        "{HEAD}{}",
        provider("openai/gpt-4o", "PRIMARY", NORMAL, Some(policy))
    );
    let gw = start::<R>(&yaml, &[&primary]);
    leave_after_first_call(gw.addr, &primary, &chat_request(), ms(100));
    thread::sleep(ms(1100));
    assert_eq!(
        primary.calls(),
        1,
        "an attempt was made for a client that left"
    );
    // The gateway still serves.
    assert_status(&get(gw.addr, "/healthz"), 200);
}

/// A client that leaves during a Retry-After wait cancels it: no further attempt.
pub(crate) fn client_gone_during_retry_after<R: Runtime>() {
    let primary = MockUpstream::start(vec![too_many().header("retry-after-ms", "800")]);
    let policy = "on_status_codes:
  - codes: [429]
    strategy: same_model
    max_attempts: 2
";
    let yaml = format!(
        "{HEAD}{}",
        provider("openai/gpt-4o", "PRIMARY", NORMAL, Some(policy))
    );
    let gw = start::<R>(&yaml, &[&primary]);
    leave_after_first_call(gw.addr, &primary, &stream_request(), ms(100));
    thread::sleep(ms(1100));
    assert_eq!(
        primary.calls(),
        1,
        "an attempt was made for a client that left"
    );
}

/// A client that leaves mid-stream makes the gateway close the upstream connection.
pub(crate) fn client_gone_mid_stream_closes_upstream<R: Runtime>() {
    let mut events = vec![role_event(), content_event("a")];
    events.extend((0..30).map(|_| content_event("b")));
    events.push(DONE_EVENT.to_owned());
    let mut reply = Reply::sse(&events, ms(100));
    reply.chunks[0].0 = Duration::ZERO;
    reply.chunks[1].0 = Duration::ZERO;
    let primary = MockUpstream::start(vec![reply]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let mut s = Streaming::chat(gw.addr, &stream_request());
    assert_eq!(s.status, 200);
    assert!(s.read_until("\"content\":\"a\""), "no content arrived");
    s.disconnect();
    assert!(
        primary.wait_closed_by_peer(0, ms(5000)),
        "the upstream connection stayed open after the client left"
    );
    assert_eq!(secondary.calls(), 0);
}
