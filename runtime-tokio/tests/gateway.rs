//! The tokio runtime end to end on loopback: mock providers, a canned upstream, limits,
//! client disconnects and graceful shutdown.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{chat, gateway, read_response, request, CannedUpstream};
use switchback_tokio::Options;

const MOCKS: &str = r#"
listeners:
  - type: model
    name: test
    port: 12000
model_providers:
  - model: mock/rate-limited
    retry_policy:
      fallback_models: [mock/ok]
      default_strategy: same_provider
      default_max_attempts: 2
  - model: mock/ok
    default: true
  - model: mock/slow
    mock:
      delay: 300ms
  - model: mock/stream-cut
"#;

fn mocks() -> (switchback_tokio::Running, std::net::SocketAddr) {
    gateway(MOCKS, Options::default())
}

#[test]
fn healthz_and_models() {
    let (_gw, addr) = mocks();
    let r = request(addr, "GET", "/healthz", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"{"status":"ok"}"#);
    assert!(r.header("x-request-id").is_some());

    let r = request(addr, "GET", "/v1/models", "");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][1]["id"], "mock/ok");
}

#[test]
fn unknown_path_is_404_in_openai_shape() {
    let (_gw, addr) = mocks();
    let r = request(addr, "GET", "/nope", "");
    assert_eq!(r.status, 404);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"]["code"], "unknown_url");
}

#[test]
fn non_streaming_answer() {
    let (_gw, addr) = mocks();
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &chat("mock/ok", false),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from the switchback mock provider."
    );
    assert_eq!(r.header("x-switchback-model"), Some("mock/ok"));
    assert_eq!(r.header("x-switchback-attempts"), Some("1"));
}

#[test]
fn streaming_answer_arrives_in_chunks() {
    let (_gw, addr) = mocks();
    let r = request(addr, "POST", "/v1/chat/completions", &chat("mock/ok", true));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(r.chunks >= 3, "only {} chunks", r.chunks);
    let text = r.text();
    assert!(text.contains("switchback"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}

#[test]
fn rate_limited_fails_over_to_ok() {
    let (_gw, addr) = mocks();
    let body = chat("mock/rate-limited", false);
    let r = request(addr, "POST", "/v1/chat/completions", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchback-attempts"), Some("2"));
    assert_eq!(r.header("x-switchback-model"), Some("mock/ok"));
}

#[test]
fn oversize_body_is_413() {
    let options = Options {
        max_request_body: 64,
        ..Options::default()
    };
    let (_gw, addr) = gateway(MOCKS, options);
    let big = format!(r#"{{"model":"mock/ok","pad":"{}"}}"#, "x".repeat(200));
    let r = request(addr, "POST", "/v1/chat/completions", &big);
    assert_eq!(r.status, 413);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"]["code"], "request_too_large");
    assert!(r.header("x-request-id").is_some());

    // Without a Content-Length the limit applies while reading.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    )
    .unwrap();
    let r = read_response(&mut BufReader::new(s));
    assert_eq!(r.status, 413);
}

const CANNED_BODY: &str = r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"content":"canned!"}}]}"#;

fn canned_json() -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{CANNED_BODY}",
        CANNED_BODY.len()
    )
}

fn upstream_config(port: u16) -> String {
    format!(
        r#"
listeners:
  - type: model
    name: test
    port: 12000
model_providers:
  - model: openai/canned
    base_url: http://127.0.0.1:{port}
    access_key: test-key
    default: true
"#
    )
}

#[test]
fn real_upstream_call_reuses_the_connection() {
    let up = CannedUpstream::start(canned_json());
    let (_gw, addr) = gateway(&upstream_config(up.addr.port()), Options::default());
    for _ in 0..3 {
        let r = request(
            addr,
            "POST",
            "/v1/chat/completions",
            &chat("openai/canned", false),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("canned!"));
        assert_eq!(r.header("x-switchback-model"), Some("openai/canned"));
    }
    assert_eq!(up.requests.load(Ordering::SeqCst), 3);
    assert_eq!(up.connections.load(Ordering::SeqCst), 1, "keep-alive reuse");
}

#[test]
fn stale_pooled_connection_is_retried_transparently() {
    // Answers one request per connection, then closes without saying so.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let canned = canned_json();
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            read_request(&mut BufReader::new(stream.try_clone().unwrap()));
            stream.write_all(canned.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let (_gw, addr) = gateway(&upstream_config(port), Options::default());
    for _ in 0..2 {
        let r = request(
            addr,
            "POST",
            "/v1/chat/completions",
            &chat("openai/canned", false),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-switchback-attempts"), Some("1"));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads a request head and its sized body; false at EOF.
fn read_request(r: &mut impl BufRead) -> bool {
    let mut len = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            if n.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).is_ok()
}

/// An upstream that reads one request, writes `prefix`, then waits; it reports when the
/// gateway closed the connection.
fn stalling_upstream(prefix: String) -> (u16, mpsc::Receiver<Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut r = BufReader::new(stream.try_clone().unwrap());
        read_request(&mut r);
        stream.write_all(prefix.as_bytes()).unwrap();
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
        let _ = tx.send(Instant::now());
    });
    (port, rx)
}

/// An SSE response head and one chunk carrying a content event (which commits the stream).
fn sse_head_and_first_event() -> String {
    let event = r#"data: {"id":"s","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#;
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{event}\n\n\r\n",
        event.len() + 2
    )
}

fn send_chat(addr: std::net::SocketAddr, body: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s
}

#[test]
fn client_disconnect_mid_stream_closes_the_upstream() {
    let (port, closed) = stalling_upstream(sse_head_and_first_event());
    let (_gw, addr) = gateway(&upstream_config(port), Options::default());
    let s = send_chat(addr, &chat("openai/canned", true));
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let mut seen = String::new();
    while !seen.contains("\"Hi\"") {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0);
        seen.push_str(&line);
    }
    let dropped = Instant::now();
    drop(r);
    let at = closed
        .recv_timeout(Duration::from_secs(5))
        .expect("upstream connection closed after the client left");
    assert!(at.duration_since(dropped) < Duration::from_secs(5));
    // The gateway still serves.
    assert_eq!(request(addr, "GET", "/healthz", "").status, 200);
}

#[test]
fn client_disconnect_before_the_head_closes_the_upstream() {
    let (port, closed) = stalling_upstream(String::new());
    let (_gw, addr) = gateway(&upstream_config(port), Options::default());
    let s = send_chat(addr, &chat("openai/canned", false));
    std::thread::sleep(Duration::from_millis(300));
    drop(s);
    closed
        .recv_timeout(Duration::from_secs(5))
        .expect("upstream connection closed after the client left");
    assert_eq!(request(addr, "GET", "/healthz", "").status, 200);
}

#[test]
fn client_disconnect_from_mock_stream_does_not_hang() {
    let (_gw, addr) = mocks();
    for model in ["mock/slow", "mock/ok", "mock/stream-cut"] {
        let mut s = send_chat(addr, &chat(model, true));
        let mut buf = [0; 64];
        let _ = s.read(&mut buf);
        drop(s);
    }
    assert_eq!(request(addr, "GET", "/healthz", "").status, 200);
}

#[test]
fn stream_cut_after_commit_ends_without_done() {
    let (_gw, addr) = mocks();
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &chat("mock/stream-cut", true),
    );
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.contains("\"error\""), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
}

#[test]
fn shutdown_drains_in_flight_requests() {
    let (gw, addr) = mocks();
    let client = std::thread::spawn(move || {
        request(
            addr,
            "POST",
            "/v1/chat/completions",
            &chat("mock/slow", false),
        )
    });
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    gw.shutdown();
    let r = client.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(TcpStream::connect(addr).is_err(), "no longer accepting");
}

#[test]
fn bind_error_names_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = switchback_core::config::load_str(MOCKS, &|_| None)
        .unwrap()
        .config;
    config.listeners[0].address = "127.0.0.1".parse().unwrap();
    config.listeners[0].port = taken.local_addr().unwrap().port();
    let err = switchback_tokio::start(config, Options::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains(&taken.local_addr().unwrap().to_string()),
        "{err}"
    );
}

#[test]
fn slow_request_head_is_cut_off() {
    let options = Options {
        header_read_timeout: Duration::from_millis(200),
        ..Options::default()
    };
    let (_gw, addr) = gateway(MOCKS, options);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let t = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(t.elapsed() < Duration::from_secs(3), "connection kept open");
    let text = String::from_utf8_lossy(&rest);
    assert!(
        rest.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}
