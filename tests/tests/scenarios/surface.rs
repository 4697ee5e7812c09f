//! Client input and the HTTP surface (spec §2)

use switchback_tests::client::{get, post_chat, post_chat_with};
use switchback_tests::fixtures::*;
use switchback_tests::gateway::{GatewayOptions, Runtime};
use switchback_tests::mock_upstream::{Framing, MockUpstream, Reply};
use switchback_tests::table::{assert_header, assert_status, error_of, ms, start, start_ports};

use crate::harness::{
    assert_clean_stream, assert_success_content, ok, pair, seed_ok, stream, NORMAL, RETRY_429,
};

/// Invalid JSON: 400 `invalid_request_error`, nothing sent upstream.
pub(crate) fn invalid_json_400<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, r#"{"model": "openai/gpt-4o", "messages": [}"#);
    assert_status(&r, 400);
    assert_eq!(error_of(&r)["type"], "invalid_request_error");
    assert!(r.header("x-request-id").is_some());
    let r = post_chat(gw.addr, r#"{"model": "openai/gpt-4o"}"#);
    assert_status(&r, 400);
    assert_eq!(error_of(&r)["type"], "invalid_request_error");
    assert_eq!(primary.calls() + secondary.calls(), 0);
}

/// A body over the limit: 413 before any upstream call.
pub(crate) fn oversize_body_413<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let options = GatewayOptions {
        max_request_body: Some(1024),
        ..GatewayOptions::default()
    };
    let gw = start_ports::<R>(
        &pair(None, NORMAL),
        &[primary.port(), primary.port()],
        &options,
    );
    let big = format!(
        r#"{{"model": "openai/gpt-4o", "messages": [{{"role": "user", "content": "{}"}}]}}"#,
        "x".repeat(8 * 1024)
    );
    let r = post_chat(gw.addr, &big);
    assert_status(&r, 413);
    assert_eq!(error_of(&r)["type"], "invalid_request_error");
    assert_eq!(primary.calls(), 0);
    // Just under the limit is fine.
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
}

/// An unknown model with no default provider: 404 `model_not_found` listing the models.
pub(crate) fn unknown_model_404<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let yaml = pair(None, NORMAL).replace("    default: true\n", "");
    let gw = start::<R>(&yaml, &[&primary, &primary]);
    let r = post_chat(
        gw.addr,
        r#"{"model": "nobody/nothing", "messages": [{"role": "user", "content": "Hi"}]}"#,
    );
    assert_status(&r, 404);
    let e = error_of(&r);
    assert_eq!(e["code"], "model_not_found", "{e}");
    let listed = e.to_string();
    assert!(listed.contains("openai/gpt-4o") && listed.contains("anthropic/claude-3-5-sonnet"));
    assert_eq!(primary.calls(), 0);
}

/// `/healthz`, `/v1/models`, and a 404 in OpenAI's shape for anything else.
pub(crate) fn healthz_models_and_unknown_path<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &primary]);
    let r = get(gw.addr, "/healthz");
    assert_status(&r, 200);
    assert_eq!(r.json()["status"], "ok");
    assert!(r.header("x-request-id").is_some());
    let r = get(gw.addr, "/v1/models");
    assert_status(&r, 200);
    let v = r.json();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"openai/gpt-4o"), "{ids:?}");
    assert!(ids.contains(&"anthropic/claude-3-5-sonnet"), "{ids:?}");
    let r = get(gw.addr, "/v1/nothing-here");
    assert_status(&r, 404);
    assert!(error_of(&r)["message"].is_string());
    assert!(r.header("x-request-id").is_some());
    assert_eq!(primary.calls(), 0);
}

/// `x-request-id` is echoed when the client sends one, generated otherwise, on success
/// and on gateway errors alike.
pub(crate) fn request_id_echoed_or_generated<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &primary]);
    let r = post_chat_with(
        gw.addr,
        &chat_request(),
        &[("X-Request-Id", "trace-abc-123")],
    );
    assert_success_content(&r);
    assert_header(&r, "x-request-id", "trace-abc-123");
    let r = post_chat_with(gw.addr, "not json", &[("x-request-id", "trace-def-456")]);
    assert_status(&r, 400);
    assert_header(&r, "x-request-id", "trace-def-456");
    let r1 = post_chat(gw.addr, &chat_request());
    let r2 = post_chat(gw.addr, &chat_request());
    let (a, b) = (r1.header("x-request-id"), r2.header("x-request-id"));
    assert!(a.is_some_and(|a| !a.is_empty()), "{:?}", r1.headers);
    assert_ne!(a, b, "generated request ids repeat");
}

/// A direct success carries the attempt headers; the upstream gets the target's key and
/// model, not the client's credentials.
pub(crate) fn success_headers_and_upstream_request<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_header(&r, "x-switchback-attempts", "1");
    assert_header(&r, "x-switchback-model", "openai/gpt-4o");
    assert!(r.header("x-should-retry").is_none());
    let q = &primary.requests()[0];
    assert_eq!(q.method, "POST");
    assert_eq!(q.path, "/v1/chat/completions");
    assert_eq!(q.header("authorization"), Some("Bearer key-PRIMARY"));
    assert_eq!(q.json()["model"], "gpt-4o");
    assert_eq!(secondary.calls(), 0);
}

/// Upstreams answering HTTP/1.0 without a length (Python's http.server) work for JSON
/// and for SSE that claims chunked framing but is read to close (spec §8).
pub(crate) fn http10_close_delimited_json_and_sse<R: Runtime>() {
    let primary = MockUpstream::start(vec![
        seed_ok(),
        Reply::sse(&stream_events(), ms(10)).framing(Framing::Http10FalseChunked),
        Reply::sse(&stream_events()[..4], ms(10)).framing(Framing::Http10),
    ]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &primary]);
    assert_success_content(&post_chat(gw.addr, &chat_request()));
    assert_clean_stream(&stream(gw.addr), STREAM_TEXT);
    // Close-delimited, no [DONE]: the close after the finish chunk ends it cleanly.
    assert_clean_stream(&stream(gw.addr), STREAM_TEXT);
    assert_eq!(primary.calls(), 3);
}

/// Keep-alive upstream connections are reused for the next request (the idle pool is per
/// worker thread, so the gateway runs one).
pub(crate) fn upstream_connection_reused<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let options = GatewayOptions {
        threads: Some(1),
        ..GatewayOptions::default()
    };
    let gw = start_ports::<R>(
        &pair(None, NORMAL),
        &[primary.port(), primary.port()],
        &options,
    );
    for _ in 0..3 {
        assert_success_content(&post_chat(gw.addr, &chat_request()));
    }
    assert_eq!(primary.calls(), 3);
    assert_eq!(
        primary.connections().len(),
        1,
        "connections: {:?}",
        primary.connections()
    );
}
