//! The HTTP/1.1 server codec and the connection driver over real sockets (spec §8):
//! pipelining, HTTP/1.0 clients, statuses outside the usual set, client timeouts and
//! refusals, the upstream attempt rules (early answers, stale pooled connections), the
//! graceful drain, the built-in mock provider and start errors.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use switchback_tests::client::{post_chat, post_chat_with, Streaming, READ_TIMEOUT};
use switchback_tests::fixtures::*;
use switchback_tests::gateway::{load_config, GatewayOptions, Runtime};
use switchback_tests::mock_upstream::{Ending, MockUpstream, Reply};
use switchback_tests::table::{assert_header, assert_status, ms, start, start_ports, HEAD};

use crate::harness::{assert_success_content, ok, pair, LONG, NORMAL};

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One response read off a raw connection.
#[derive(Debug)]
struct RawResponse {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A raw client connection.
fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the gateway");
    s.set_read_timeout(Some(READ_TIMEOUT))
        .expect("read timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Reads until the gateway closes the connection (true) or the read times out (false).
fn read_to_close(s: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut all = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (all, true),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (all, true),
            Err(_) => return (all, false),
        }
    }
}

/// Reads exactly one response framed by `Content-Length` (or with no body).
fn read_one(s: &mut TcpStream) -> RawResponse {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            let (status_line, headers) = parse_head(&raw[..end]);
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            while raw.len() < end + 4 + len {
                let n = s.read(&mut buf).expect("read a response body");
                assert!(n > 0, "closed mid-body");
                raw.extend_from_slice(&buf[..n]);
            }
            assert_eq!(raw.len(), end + 4 + len, "bytes after the response");
            return RawResponse {
                status_line,
                headers,
                body: raw[end + 4..].to_vec(),
            };
        }
        let n = s.read(&mut buf).expect("read a response head");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
    }
}

/// Splits a byte stream into `Content-Length`-framed responses.
fn split_responses(mut raw: &[u8]) -> Vec<RawResponse> {
    let mut out = Vec::new();
    while let Some(end) = find(raw, b"\r\n\r\n") {
        let (status_line, headers) = parse_head(&raw[..end]);
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let body = raw[end + 4..end + 4 + len].to_vec();
        raw = &raw[end + 4 + len..];
        out.push(RawResponse {
            status_line,
            headers,
            body,
        });
    }
    assert!(
        raw.is_empty(),
        "trailing bytes: {:?}",
        String::from_utf8_lossy(raw)
    );
    out
}

fn parse_head(head: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers)
}

fn chat_bytes(version: &str, extra: &str, body: &str) -> String {
    format!(
        "POST /v1/chat/completions {version}\r\nHost: gw\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Three requests written at once on one connection (a slow chat, a health check, a
/// chat) are answered in order, each with its own request id.
pub(crate) fn http_pipelined_requests_in_order<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok().delayed(ms(100)), ok()]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &primary]);
    let mut s = connect(gw.addr);
    let all = format!(
        "{}GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Request-Id: two\r\n\r\n{}",
        chat_bytes("HTTP/1.1", "X-Request-Id: one\r\n", &chat_request()),
        chat_bytes(
            "HTTP/1.1",
            "X-Request-Id: three\r\nConnection: close\r\n",
            &chat_request()
        ),
    );
    s.write_all(all.as_bytes()).expect("write the pipeline");
    let (raw, closed) = read_to_close(&mut s);
    assert!(closed, "the connection stays open after Connection: close");
    let responses = split_responses(&raw);
    let ids: Vec<_> = responses.iter().map(|r| r.header("x-request-id")).collect();
    assert_eq!(ids, [Some("one"), Some("two"), Some("three")]);
    for r in &responses {
        assert!(
            r.status_line.starts_with("HTTP/1.1 200"),
            "{}",
            r.status_line
        );
    }
    assert!(String::from_utf8_lossy(&responses[0].body).contains(SUCCESS_CONTENT));
    assert_eq!(primary.calls(), 2);
}

/// An HTTP/1.0 client is answered in HTTP/1.0 and the connection closed; with
/// `Connection: keep-alive` it stays open for the next request.
pub(crate) fn http_http10_client_framing<R: Runtime>() {
    let gw = start_ports::<R>(&pair(None, NORMAL), &[1, 1], &GatewayOptions::default());
    let mut s = connect(gw.addr);
    s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
        .expect("write");
    let (raw, closed) = read_to_close(&mut s);
    assert!(
        closed,
        "an HTTP/1.0 connection without keep-alive stays open"
    );
    let r = &split_responses(&raw)[0];
    assert!(
        r.status_line.starts_with("HTTP/1.0 200"),
        "{}",
        r.status_line
    );
    assert_eq!(r.header("transfer-encoding"), None);

    let mut s = connect(gw.addr);
    for _ in 0..2 {
        s.write_all(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .expect("write");
        let r = read_one(&mut s);
        assert!(
            r.status_line.starts_with("HTTP/1.0 200"),
            "{}",
            r.status_line
        );
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
}

/// A 529 (Anthropic's overloaded) with no retry policy reaches the client as 529.
pub(crate) fn http_529_passes_through<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::json(529, error_body(529, "Overloaded"))]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &primary]);
    let mut s = connect(gw.addr);
    s.write_all(chat_bytes("HTTP/1.1", "Connection: close\r\n", &chat_request()).as_bytes())
        .expect("write");
    let (raw, _) = read_to_close(&mut s);
    let r = &split_responses(&raw)[0];
    assert!(
        r.status_line.starts_with("HTTP/1.1 529 "),
        "{}",
        r.status_line
    );
    assert!(String::from_utf8_lossy(&r.body).contains("Overloaded"));
}

/// A request body that stops arriving: 408 after the body idle timeout, then close.
pub(crate) fn http_body_idle_timeout_408<R: Runtime>() {
    let options = GatewayOptions {
        body_idle_timeout: Some(ms(200)),
        ..GatewayOptions::default()
    };
    let gw = start_ports::<R>(&pair(None, NORMAL), &[1, 1], &options);
    let mut s = connect(gw.addr);
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n{\"model\":",
    )
    .expect("write");
    let (raw, closed) = read_to_close(&mut s);
    assert!(closed);
    let r = &split_responses(&raw)[0];
    assert!(
        r.status_line.starts_with("HTTP/1.1 408"),
        "{}",
        r.status_line
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.header("x-request-id").is_some());
}

/// `Content-Length` with `Transfer-Encoding` (request smuggling): 400 and close, and the
/// bytes after it are never read as a request.
pub(crate) fn http_cl_and_te_400_and_close<R: Runtime>() {
    let gw = start_ports::<R>(&pair(None, NORMAL), &[1, 1], &GatewayOptions::default());
    let mut s = connect(gw.addr);
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .expect("write");
    let (raw, closed) = read_to_close(&mut s);
    assert!(closed);
    let responses = split_responses(&raw);
    assert_eq!(responses.len(), 1, "the smuggled request was answered");
    assert!(
        responses[0].status_line.starts_with("HTTP/1.1 400"),
        "{}",
        responses[0].status_line
    );
    let e: serde_json::Value = serde_json::from_slice(&responses[0].body).expect("JSON error");
    assert_eq!(e["error"]["code"], "ambiguous_framing", "{e}");
}

/// A request head over 64 KiB: 431.
pub(crate) fn http_oversized_head_431<R: Runtime>() {
    let gw = start_ports::<R>(&pair(None, NORMAL), &[1, 1], &GatewayOptions::default());
    let mut s = connect(gw.addr);
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    // The gateway may answer and close before it has read everything: ignore write errors.
    let _ = s.write_all(head.as_bytes());
    let r = read_one(&mut s);
    assert!(
        r.status_line.starts_with("HTTP/1.1 431"),
        "{}",
        r.status_line
    );
}

/// The upstream answers 413 while the gateway is still writing a large request body, then
/// closes: the client gets the 413 (passed through, not retried).
pub(crate) fn http_early_upstream_answer_413<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::json(
        413,
        error_body(413, "Request entity too large"),
    )
    .early()]);
    // Writing 16 MiB upstream takes a while on a loaded machine: the answer, not a
    // timeout, is what is tested.
    let gw = start::<R>(&pair(None, LONG), &[&primary, &primary]);
    let filler = "x".repeat(16 * 1024 * 1024);
    let body = format!(
        r#"{{"model": "openai/gpt-4o", "messages": [{{"role": "user", "content": "{filler}"}}]}}"#
    );
    let r = post_chat(gw.addr, &body);
    assert_status(&r, 413);
    assert!(
        r.text().contains("Request entity too large"),
        "{}",
        r.text()
    );
    assert_eq!(primary.calls(), 1);
}

/// The upstream closes an idle keep-alive connection; the next request finds it stale and
/// is sent once more on a fresh connection: it succeeds, and counts one attempt.
pub(crate) fn http_stale_pooled_connection_resent_once<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok().idle_close(ms(30)), ok()]);
    let options = GatewayOptions {
        threads: Some(1),
        ..GatewayOptions::default()
    };
    let gw = start_ports::<R>(
        &pair(None, NORMAL),
        &[primary.port(), primary.port()],
        &options,
    );
    assert_success_content(&post_chat(gw.addr, &chat_request()));
    // The mock closes the idle connection 30 ms after the answer.
    assert!(
        primary.wait_closed_by_mock(0, ms(5000)),
        "{:?}",
        primary.connections()
    );
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_header(&r, "x-switchback-attempts", "1");
    assert_eq!(primary.calls(), 2);
    assert_eq!(
        primary.connections().len(),
        2,
        "{:?}",
        primary.connections()
    );
}

/// A stream still open when the drain timeout ends: the in-band error event with code
/// `gateway_shutdown`, no `[DONE]`, and the chunked body properly terminated.
pub(crate) fn http_drain_cuts_stream_with_gateway_shutdown<R: Runtime>() {
    let events = vec![role_event(), content_event("Hel")];
    let primary = MockUpstream::start(vec![
        Reply::sse(&events, Duration::ZERO).ending(Ending::Stall)
    ]);
    let options = GatewayOptions {
        drain_timeout: Some(ms(200)),
        ..GatewayOptions::default()
    };
    let yaml = pair(None, "{first_token: 2s, idle: 5s}");
    let gw = start_ports::<R>(&yaml, &[primary.port(), primary.port()], &options);
    let mut s = Streaming::chat(gw.addr, &stream_request());
    assert!(s.read_until("Hel"), "the stream did not start");
    let stopping = thread::spawn(move || gw.shutdown());
    let r = s.finish();
    stopping.join().expect("shutdown");
    assert!(
        r.complete,
        "the chunked body was not terminated: {:?}",
        r.text()
    );
    let data = r.sse_data();
    assert!(!data.iter().any(|d| d == "[DONE]"), "{data:?}");
    let last: serde_json::Value = serde_json::from_str(data.last().expect("events")).expect("JSON");
    assert_eq!(last["error"]["code"], "gateway_shutdown", "{data:?}");
    assert_eq!(stream_content(&data), "Hel");
}

/// A graceful shutdown lets a non-streaming request in flight finish.
pub(crate) fn http_graceful_shutdown_finishes_in_flight<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok().delayed(ms(300))]);
    let options = GatewayOptions {
        drain_timeout: Some(ms(3000)),
        ..GatewayOptions::default()
    };
    let gw = start_ports::<R>(
        &pair(None, NORMAL),
        &[primary.port(), primary.port()],
        &options,
    );
    let addr = gw.addr;
    let client = thread::spawn(move || post_chat(addr, &chat_request()));
    assert!(primary.wait_calls(1, ms(5000)), "the request never arrived");
    gw.shutdown();
    let r = client.join().expect("client");
    assert_success_content(&r);
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
}

/// The built-in `mock/` provider answers, streaming or not, with no upstream at all.
pub(crate) fn http_mock_provider_answers<R: Runtime>() {
    let yaml = format!("{HEAD}  - model: mock/ok\n    default: true\n");
    let gw = start_ports::<R>(&yaml, &[], &GatewayOptions::default());
    let body = r#"{"model": "mock/ok", "messages": [{"role": "user", "content": "Hi"}]}"#;
    let r = post_chat_with(gw.addr, body, &[]);
    assert_status(&r, 200);
    let content = r.json()["choices"][0]["message"]["content"].clone();
    assert!(
        content.as_str().is_some_and(|c| c.contains("mock")),
        "{}",
        r.text()
    );
    assert_header(&r, "x-switchback-model", "mock/ok");
    let stream_body =
        r#"{"model": "mock/ok", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}"#;
    let s = Streaming::chat(gw.addr, stream_body).finish();
    assert_status(&s, 200);
    assert_eq!(s.sse_data().last().map(String::as_str), Some("[DONE]"));
    assert!(stream_content(&s.sse_data()).contains("mock"));
}

/// A listener port already in use: the start error names the address.
pub(crate) fn http_listener_port_in_use_names_the_address<R: Runtime>() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("address").port();
    let mut config = load_config(
        &pair(None, NORMAL),
        &[("PRIMARY", "1".into()), ("SECONDARY", "1".into())],
    );
    config.listeners[0].port = port;
    let err = R::start(config, GatewayOptions::default().options())
        .expect_err("started on a port in use");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    drop(taken);
}

/// After a response that closes the connection the gateway shuts its write side at once, so
/// the client reads the end of the stream (what ends an HTTP/1.0 close-delimited body)
/// without waiting for the gateway's linger (2 s) to drop the socket.
pub(crate) fn http_close_reaches_the_client_at_once<R: Runtime>() {
    let gw = start_ports::<R>(&pair(None, NORMAL), &[1, 1], &GatewayOptions::default());
    let mut s = connect(gw.addr);
    s.set_read_timeout(Some(ms(1500))).expect("read timeout");
    s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
        .expect("write");
    let (raw, closed) = read_to_close(&mut s);
    assert!(
        closed,
        "no end of stream within 1.5 s of the response: {:?}",
        String::from_utf8_lossy(&raw)
    );
    assert!(split_responses(&raw)[0]
        .status_line
        .starts_with("HTTP/1.0 200"));
}
