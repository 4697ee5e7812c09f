//! Live reload (spec §13): new requests use the new config; in-flight ones finish on the
//! old; blocks of models that still exist survive, and so do the counters; a reload that
//! would rebind a listener or change the shared state is refused with the old config
//! still serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use switchback_tests::client::{get, post_chat, Streaming, CHAT_PATH};
use switchback_tests::fixtures::{
    chat_request, stream_content, stream_events, stream_request, STREAM_TEXT,
};
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::{MockUpstream, Reply};

use crate::harness::{failover_config, ok, pushback, scrape, series, start, FAILED_OVER};

/// The failover config with the fallback's upstream on `${TERTIARY}` instead.
fn moved_fallback() -> String {
    failover_config("").replace(
        "http://127.0.0.1:${SECONDARY}",
        "http://127.0.0.1:${TERTIARY}",
    )
}

/// A valid reload: the block on the primary survives (it still exists), the counters go
/// on from where they were, and new requests reach the fallback's new upstream.
pub(crate) fn reload_keeps_blocks_and_counters<R: Runtime>() {
    let primary = MockUpstream::start(vec![pushback()]);
    let secondary = MockUpstream::start(vec![ok()]);
    let tertiary = MockUpstream::start(vec![ok()]);
    let ports = [primary.port(), secondary.port(), tertiary.port()];
    let gw = start::<R>(&failover_config(""), &ports);
    assert_eq!(post_chat(gw.addr, &chat_request()).status, 200);
    gw.reload(&moved_fallback(), &ports)
        .expect("a valid reload");
    let r = post_chat(gw.addr, &chat_request());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-switchback-attempts"),
        Some("1"),
        "still blocked"
    );
    assert_eq!(primary.calls(), 1);
    assert_eq!(secondary.calls(), 1);
    assert_eq!(tertiary.calls(), 1);
    let text = scrape(gw.addr);
    assert_eq!(series(&text, FAILED_OVER), Some(1.0), "{text}");
    assert_eq!(
        series(&text, r#"switchback_config_reloads_total{result="ok"}"#),
        Some(1.0)
    );
    assert_eq!(get(gw.addr, "/v1/status").json()["generation"], 1);
}

/// A reload that changes a listener is refused; the old config keeps serving.
pub(crate) fn reload_refuses_a_listener_change<R: Runtime>() {
    let secondary = MockUpstream::start(vec![ok()]);
    let tertiary = MockUpstream::start(vec![ok()]);
    let ports = [secondary.port(), secondary.port(), tertiary.port()];
    let gw = start::<R>(&failover_config(""), &ports);
    let renamed = moved_fallback().replace("name: model_listener", "name: renamed");
    let e = gw.reload(&renamed, &ports).expect_err("a listener change");
    assert!(e.contains("restart"), "{e}");
    // The shared-state session is opened at start: a reload cannot add or change it.
    let shared = format!(
        "{}\nstate:\n  redis:\n    url: redis://127.0.0.1:1/0\n",
        moved_fallback()
    );
    let e = gw.reload(&shared, &ports).expect_err("a state change");
    assert!(e.contains("`state`") && e.contains("restart"), "{e}");
    assert_eq!(post_chat(gw.addr, &chat_request()).status, 200);
    assert_eq!((secondary.calls(), tertiary.calls()), (1, 0));
    let text = scrape(gw.addr);
    assert_eq!(
        series(&text, r#"switchback_config_reloads_total{result="failed"}"#),
        Some(2.0)
    );
}

/// One HTTP/1.1 request on a kept-alive connection; returns the response head and body.
fn exchange(conn: &mut TcpStream, body: &str) -> String {
    let raw = format!(
        "POST {CHAT_PATH} HTTP/1.1\r\nHost: switchback.test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(raw.as_bytes()).expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = conn.read(&mut buf).expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return text.into_owned();
            }
        }
    }
}

/// A connection kept alive across the reload sends its next request by the new config.
pub(crate) fn reload_reaches_kept_alive_connections<R: Runtime>() {
    let secondary = MockUpstream::start(vec![ok()]);
    let tertiary = MockUpstream::start(vec![ok()]);
    let ports = [secondary.port(), secondary.port(), tertiary.port()];
    // The fallback is the default here, so a request for it goes there directly.
    let body = r#"{"model": "anthropic/claude-3-5-sonnet", "messages": [{"role": "user", "content": "Hi"}]}"#;
    let gw = start::<R>(&failover_config(""), &ports);
    let mut conn = TcpStream::connect(gw.addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(exchange(&mut conn, body).starts_with("HTTP/1.1 200"));
    gw.reload(&moved_fallback(), &ports)
        .expect("a valid reload");
    assert!(exchange(&mut conn, body).starts_with("HTTP/1.1 200"));
    assert_eq!((secondary.calls(), tertiary.calls()), (1, 1));
}

/// A stream in flight during a reload finishes from the upstream it started on, whole;
/// the next request goes by the new config.
pub(crate) fn reload_mid_stream_finishes_on_the_old_config<R: Runtime>() {
    let slow = Reply::sse(&stream_events(), Duration::from_millis(150));
    let secondary = MockUpstream::start(vec![slow]);
    let tertiary = MockUpstream::start(vec![Reply::sse(&stream_events(), Duration::ZERO)]);
    let ports = [secondary.port(), secondary.port(), tertiary.port()];
    let body = stream_request().replace("openai/gpt-4o", "anthropic/claude-3-5-sonnet");
    let gw = start::<R>(&failover_config(""), &ports);
    let mut s = Streaming::chat(gw.addr, &body);
    assert_eq!(s.status, 200);
    assert!(s.read_until("Hello"), "the stream committed");
    gw.reload(&moved_fallback(), &ports)
        .expect("a valid reload");
    let r = s.finish();
    assert!(r.complete, "the stream was cut: {}", r.text());
    assert_eq!(stream_content(&r.sse_data()), STREAM_TEXT);
    assert_eq!(r.sse_data().last().map(String::as_str), Some("[DONE]"));
    let next = Streaming::chat(gw.addr, &body).finish();
    assert_eq!(stream_content(&next.sse_data()), STREAM_TEXT);
    assert_eq!((secondary.calls(), tertiary.calls()), (1, 1));
    let text = scrape(gw.addr);
    assert_eq!(
        series(&text, "switchback_streams_open"),
        Some(0.0),
        "{text}"
    );
}
