//! The fault matrix: one row per way an upstream can misbehave, with what the client gets
//! (docs/reliability.md has the table). Unless a row says otherwise both providers show the
//! same fault, so the client sees the gateway's verdict on it: the exhaustion error, whose
//! `attempts[].error_type` names how each attempt was classified (spec §4.8), after one
//! retry on the other provider.

use std::time::Duration;

use serde_json::Value;
use switchback_tests::client::{post_chat, Response};
use switchback_tests::fixtures::*;
use switchback_tests::gateway::{GatewayOptions, Runtime};
use switchback_tests::mock_upstream::{
    gzip, refused_port, Drip, Ending, Framing, MockUpstream, Reply,
};
use switchback_tests::table::{assert_header, assert_status, error_of, start, start_ports};

use crate::harness::{
    assert_aborted_stream, assert_clean_stream, assert_exhausted, assert_success_content, ok, pair,
    pair_with, stream, stream_ok, LONG, NORMAL, RETRY_429, SHORT,
};

/// One byte per second: far slower than any per-attempt timeout.
const DRIP: Duration = Duration::from_secs(1);

/// Both upstreams answer with `fault` (the client streams when `streaming`), each with
/// `timeouts`: the response, and the two mocks.
fn both<R: Runtime>(
    fault: &Reply,
    streaming: bool,
    timeouts: &str,
) -> (Response, MockUpstream, MockUpstream) {
    let primary = MockUpstream::start(vec![fault.clone()]);
    let secondary = MockUpstream::start(vec![fault.clone()]);
    let gw = start::<R>(&pair(Some(RETRY_429), timeouts), &[&primary, &secondary]);
    let r = if streaming {
        stream(gw.addr)
    } else {
        post_chat(gw.addr, &chat_request())
    };
    (r, primary, secondary)
}

/// The client got the exhaustion error with `status` after one attempt on each provider,
/// both classified as `error_type`; returns the error object.
fn assert_both_classified(r: &Response, status: u16, error_type: &str) -> Value {
    let e = assert_exhausted(r, status, 2);
    for a in e["attempts"].as_array().into_iter().flatten() {
        assert_eq!(a["error_type"], error_type, "{e}");
    }
    e
}

fn exhausted_as<R: Runtime>(fault: &Reply, streaming: bool, status: u16, error_type: &str) {
    // Short timeouts only where a timeout is what is tested: elsewhere a loaded machine
    // must not turn the fault into a timeout.
    let timeouts = if error_type.starts_with("timeout") {
        SHORT
    } else {
        NORMAL
    };
    let (r, primary, secondary) = both::<R>(fault, streaming, timeouts);
    assert_both_classified(&r, status, error_type);
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
}

/// A status line that is not HTTP: invalid_response, retried, then 502.
pub(crate) fn fault_garbage_status_line<R: Runtime>() {
    let fault = Reply::raw("HELLO WORLD\r\nthis is not http\r\n\r\n");
    exhausted_as::<R>(&fault, false, 502, "invalid_response");
}

/// A response head of 1 MiB (past the 64 KiB bound): invalid_response, retried, then 502.
pub(crate) fn fault_one_mib_upstream_head<R: Runtime>() {
    let fault = ok().header("x-padding", &"a".repeat(1024 * 1024));
    exhausted_as::<R>(&fault, false, 502, "invalid_response");
}

/// A non-streaming body that never ends: cut at the 32 MiB bound, invalid_response.
pub(crate) fn fault_endless_json_body<R: Runtime>() {
    let fault = Reply::json(200, "{\"id\": \"")
        .framing(Framing::Chunked)
        .endless(vec![b'a'; 64 * 1024]);
    exhausted_as::<R>(&fault, false, 502, "invalid_response");
}

/// An SSE line that never ends: past the 1 MiB event bound the attempt fails at once
/// (`invalid_response`, nothing more is read), retried, then 502.
pub(crate) fn fault_endless_sse_line<R: Runtime>() {
    let fault =
        Reply::sse(&["data: {\"choices\": \""], Duration::ZERO).endless(vec![b'x'; 16 * 1024]);
    exhausted_as::<R>(&fault, true, 502, "invalid_response");
}

/// The head dripped at 1 byte/s: `first_token` fires, retried, then 504.
pub(crate) fn fault_drip_head<R: Runtime>() {
    let fault = ok().drip(Drip::Head, DRIP);
    exhausted_as::<R>(&fault, false, 504, "timeout_300ms");
}

/// A JSON body dripped at 1 byte/s after a prompt head: `idle` fires, retried, then 504.
pub(crate) fn fault_drip_body<R: Runtime>() {
    let fault = ok().drip(Drip::Body, DRIP);
    exhausted_as::<R>(&fault, false, 504, "timeout_300ms");
}

/// An SSE body dripped at 1 byte/s: nothing commits within `first_token`, retried, then
/// 504 (a JSON error: no stream was started).
pub(crate) fn fault_drip_stream<R: Runtime>() {
    let fault = Reply::sse(&stream_events(), Duration::ZERO).drip(Drip::Body, DRIP);
    let (r, _, _) = both::<R>(&fault, true, SHORT);
    assert_both_classified(&r, 504, "timeout_300ms");
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{:?}",
        r.headers
    );
}

/// A connection reset (RST) halfway through a JSON body: invalid_response, then 502.
pub(crate) fn fault_reset_mid_body<R: Runtime>() {
    let half = &success_body()[..40];
    let fault = Reply::json(200, half).ending(Ending::Reset);
    exhausted_as::<R>(&fault, false, 502, "invalid_response");
}

/// `Content-Length` promising more than is sent before the close: invalid_response, 502.
pub(crate) fn fault_content_length_longer_than_body<R: Runtime>() {
    let fault = ok().ending(Ending::Cut);
    exhausted_as::<R>(&fault, false, 502, "invalid_response");
}

/// A 200 whose JSON body does not parse: invalid_response, then 502.
pub(crate) fn fault_200_invalid_json<R: Runtime>() {
    let fault = Reply::json(200, "{\"id\": \"chatcmpl-1\", \"choices\": [}");
    exhausted_as::<R>(&fault, false, 502, "invalid_response");
}

/// A 200 `text/html` page to a JSON request (a captive portal, a proxy's error page):
/// invalid_response, then 502.
pub(crate) fn fault_200_text_html<R: Runtime>() {
    let mut fault = Reply::json(200, "<html><body>Service maintenance</body></html>");
    fault.headers = vec![("Content-Type".into(), "text/html; charset=utf-8".into())];
    exhausted_as::<R>(&fault, false, 502, "invalid_response");
}

/// A gzip body the gateway never asked for (it sends no `Accept-Encoding`): not JSON as
/// received, so invalid_response, then 502; the compressed bytes never reach the client.
pub(crate) fn fault_unasked_gzip<R: Runtime>() {
    let mut fault = Reply::json(200, "");
    fault.chunks = vec![(Duration::ZERO, gzip(success_body().as_bytes()))];
    let fault = fault.header("Content-Encoding", "gzip");
    let (r, primary, _) = both::<R>(&fault, false, NORMAL);
    assert_both_classified(&r, 502, "invalid_response");
    assert_eq!(r.header("content-encoding"), None);
    let asked = primary.requests()[0]
        .header("accept-encoding")
        .map(str::to_owned);
    assert_eq!(asked, None, "the gateway asked for an encoding");
}

/// `100 Continue` before the answer: skipped, the answer is delivered (one attempt).
pub(crate) fn fault_100_continue_before_answer<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok().preamble("HTTP/1.1 100 Continue\r\n\r\n")]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_header(&r, "x-switchback-attempts", "1");
    assert_eq!(secondary.calls(), 0);
}

/// A 204 to a chat completion: no body is no answer, so invalid_response, then 502.
pub(crate) fn fault_204_no_content<R: Runtime>() {
    let mut fault = Reply::json(204, "");
    fault.chunks.clear();
    exhausted_as::<R>(&fault, false, 502, "invalid_response");
}

/// A 301: switchback follows no redirect (it would send the request where the config did
/// not say) and passes none on (the client would follow it to the upstream with its own
/// credentials): invalid_response, then 502, and the `Location` stays inside.
pub(crate) fn fault_301_redirect<R: Runtime>() {
    let fault =
        Reply::json(301, "").header("Location", "https://elsewhere.example/v1/chat/completions");
    let (r, _, _) = both::<R>(&fault, false, NORMAL);
    assert_both_classified(&r, 502, "invalid_response");
    assert_eq!(
        r.header("location"),
        None,
        "a redirect leaked: {:?}",
        r.headers
    );
}

/// The upstream closes the connection before any response byte: invalid_response, 502.
pub(crate) fn fault_close_before_any_byte<R: Runtime>() {
    exhausted_as::<R>(&Reply::reset(), false, 502, "invalid_response");
}

/// Nothing listens at either upstream: connect_error, then 502.
pub(crate) fn fault_connection_refused<R: Runtime>() {
    let gw = start_ports::<R>(
        &pair(Some(RETRY_429), SHORT),
        &[refused_port(), refused_port()],
        &GatewayOptions::default(),
    );
    let r = post_chat(gw.addr, &chat_request());
    assert_both_classified(&r, 502, "connect_error");
}

/// An upstream host that does not resolve (`.invalid`, RFC 6761): connect_error; the
/// other provider answers.
pub(crate) fn fault_unresolvable_host<R: Runtime>() {
    let secondary = MockUpstream::start(vec![ok()]);
    let yaml = pair_with(Some(RETRY_429), SHORT, NORMAL).replacen(
        "http://127.0.0.1:${PRIMARY}",
        "http://upstream.switchback-test.invalid:${PRIMARY}",
        1,
    );
    let gw = start_ports::<R>(
        &yaml,
        &[secondary.port(), secondary.port()],
        &GatewayOptions::default(),
    );
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_header(&r, "x-switchback-attempts", "2");
    assert_eq!(secondary.calls(), 1);
}

/// An SSE event over 1 MiB after the commit point ends the stream at once with the in-band
/// error `stream_event_too_large` and no `[DONE]`; nothing past it is relayed.
pub(crate) fn fault_sse_event_over_1_mib_after_commit<R: Runtime>() {
    let huge = content_event(&"z".repeat(1024 * 1024 + 16));
    let events = vec![
        role_event(),
        content_event("Hel"),
        huge,
        content_event("lo"),
        finish_event(),
        DONE_EVENT.to_owned(),
    ];
    let primary = MockUpstream::start(vec![Reply::sse(&events, Duration::ZERO)]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &primary]);
    let r = stream(gw.addr);
    let e = assert_aborted_stream(&r, "Hel");
    assert_eq!(e["code"], "stream_event_too_large", "{e}");
}

/// An SSE event over 1 MiB before the commit point fails the attempt (`invalid_response`)
/// and the request fails over: the client sees only the fallback's clean stream.
pub(crate) fn fault_sse_event_over_1_mib_before_commit<R: Runtime>() {
    let huge = content_event(&"z".repeat(1024 * 1024 + 16));
    let events = vec![role_event(), huge, DONE_EVENT.to_owned()];
    let primary = MockUpstream::start(vec![Reply::sse(&events, Duration::ZERO)]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = stream(gw.addr);
    assert_clean_stream(&r, STREAM_TEXT);
    assert_header(&r, "x-switchback-attempts", "2");
}

/// `"stream": "true"` (a string) is refused with 400 naming the field; nothing goes
/// upstream (forwarded, it would be read as a non-streaming request).
pub(crate) fn fault_stream_as_string_is_refused<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), SHORT), &[&primary, &primary]);
    let body = r#"{"model": "openai/gpt-4o", "stream": "true", "messages": [{"role": "user", "content": "Hi"}]}"#;
    let r = post_chat(gw.addr, body);
    assert_status(&r, 400);
    let e = error_of(&r);
    assert_eq!(e["type"], "invalid_request_error", "{e}");
    assert_eq!(e["param"], "stream", "{e}");
    assert_eq!(primary.calls(), 0);
}

/// A stream whose every event is invalid JSON, then `[DONE]`: not a success (`invalid_response`),
/// retried, then 502 (a client never gets a 200 holding only `data: [DONE]`).
pub(crate) fn fault_all_invalid_json_stream<R: Runtime>() {
    let events = ["data: {not json\n\n", "data: [DONE]\n\n"];
    let fault = Reply::sse(&events, Duration::ZERO);
    exhausted_as::<R>(&fault, true, 502, "invalid_response");
}

/// An unreachable provider is named by its entry in the client's error, never by its address
/// (the log has that).
pub(crate) fn fault_unreachable_error_names_the_entry_not_the_address<R: Runtime>() {
    let port = refused_port();
    let gw = start_ports::<R>(
        &pair(None, SHORT),
        &[port, port],
        &GatewayOptions::default(),
    );
    let r = post_chat(gw.addr, &chat_request());
    let text = r.text();
    assert!(text.contains("openai/gpt-4o"), "{text}");
    assert!(!text.contains("127.0.0.1"), "the address leaked: {text}");
    assert!(!text.contains(&port.to_string()), "the port leaked: {text}");
}

/// With the gateway-wide body memory full (a request holding its body while its upstream
/// hangs), a new request gets 503 with `Retry-After: 1`, and nothing is sent for it.
pub(crate) fn fault_body_memory_full_gets_503<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::hang()]);
    let yaml = format!(
        "limits: {{max_buffered_body_bytes: 48KiB}}\n{}",
        pair(None, LONG)
    );
    let gw = start::<R>(&yaml, &[&primary, &primary]);
    let big = |n: usize| {
        format!(
            r#"{{"model": "openai/gpt-4o", "messages": [{{"role": "user", "content": "{}"}}]}}"#,
            "x".repeat(n)
        )
    };
    let addr = gw.addr;
    let holder = std::thread::spawn(move || post_chat(addr, &big(40 * 1024)));
    assert!(
        primary.wait_calls(1, Duration::from_secs(5)),
        "the first request went upstream"
    );
    let r = post_chat(gw.addr, &big(40 * 1024));
    assert_status(&r, 503);
    assert_header(&r, "retry-after", "1");
    assert_eq!(error_of(&r)["code"], "gateway_overloaded");
    assert_eq!(
        primary.calls(),
        1,
        "nothing was sent for the refused request"
    );
    // Stopping the mock ends the hung answer, and with it the holding request.
    drop(primary);
    let _ = holder.join();
}
