//! The smol runtime on loopback: a gateway on an ephemeral port, answered by the built-in mock
//! provider or a tiny upstream on a thread.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use switchback_smol::{start, Options, Running};

fn gateway(yaml: &str, options: Options) -> (Running, SocketAddr) {
    let mut config = switchback_core::config::load_str(yaml, &|_| None)
        .expect("config loads")
        .config;
    // The loader wants a real port; 0 asks for an ephemeral one.
    config.listeners[0].port = 0;
    let running = start(config, options).expect("gateway starts");
    let addr = running.local_addrs()[0];
    (running, addr)
}

const MOCK: &str = r#"
listeners:
  - type: model
    name: test
    port: 12999
model_providers:
  - model: mock/rate-limited
    retry_policy:
      default_strategy: same_provider
  - model: mock/ok
    default: true
"#;

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request with `Connection: close` and reads the whole answer (de-chunked).
fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').unwrap();
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let size = usize::from_str_radix(line.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        r.read_to_end(&mut body).unwrap();
    }
    Reply {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

#[test]
fn healthz_and_unknown_paths() {
    let (gw, addr) = gateway(MOCK, Options::default());
    let r = request(addr, "GET", "/healthz", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, r#"{"status":"ok"}"#);
    assert!(r.header("x-request-id").is_some());
    let r = request(addr, "GET", "/nope", "");
    assert_eq!(r.status, 404);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    gw.shutdown();
}

#[test]
fn non_streaming_failover_to_the_ok_mock() {
    let (gw, addr) = gateway(MOCK, Options::default());
    let body = r#"{"model":"mock/rate-limited","messages":[{"role":"user","content":"hi"}]}"#;
    let r = request(addr, "POST", "/v1/chat/completions", body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-switchback-attempts"), Some("2"));
    assert_eq!(r.header("x-switchback-model"), Some("mock/ok"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    gw.shutdown();
}

#[test]
fn streaming_ends_with_done() {
    let (gw, addr) = gateway(MOCK, Options::default());
    let body = r#"{"model":"mock/ok","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = request(addr, "POST", "/v1/chat/completions", body);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(r.body.contains("\"content\":\"Hello\""), "{}", r.body);
    assert!(r.body.trim_end().ends_with("data: [DONE]"), "{}", r.body);
    gw.shutdown();
}

#[test]
fn oversize_body_gets_413() {
    let options = Options {
        max_request_body: 1024,
        ..Options::default()
    };
    let (gw, addr) = gateway(MOCK, options);
    let big = format!(
        r#"{{"model":"mock/ok","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "a".repeat(4096)
    );
    let r = request(addr, "POST", "/v1/chat/completions", &big);
    assert_eq!(r.status, 413);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"]["code"], "request_too_large");
    gw.shutdown();
}

#[test]
fn relays_an_upstream_answer_and_reuses_its_connection() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    // One connection serving two keep-alive exchanges proves the pool reused it.
    let server = std::thread::spawn(move || {
        let (s, _) = upstream.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut auths = Vec::new();
        for _ in 0..2 {
            let mut len = 0;
            let mut line = String::new();
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                let l = line.trim_end().to_ascii_lowercase();
                if l.is_empty() {
                    break;
                }
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if let Some(v) = l.strip_prefix("authorization:") {
                    auths.push(v.trim().to_string());
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let answer = r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;
            write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
        }
        auths
    });
    let yaml = format!(
        r#"
listeners:
  - type: model
    name: test
    port: 12999
model_providers:
  - model: openai/gpt-4o
    base_url: http://127.0.0.1:{port}
    access_key: sk-test
    default: true
"#
    );
    let (gw, addr) = gateway(&yaml, Options::default());
    let body = r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    for _ in 0..2 {
        let r = request(addr, "POST", "/v1/chat/completions", body);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("x-switchback-model"), Some("openai/gpt-4o"));
        assert!(r.body.contains("\"content\":\"hi\""));
    }
    assert_eq!(
        server.join().unwrap(),
        vec!["bearer sk-test", "bearer sk-test"]
    );
    gw.shutdown();
}

/// Reads one request head and body from `r`; false at EOF.
fn read_request(r: &mut BufReader<TcpStream>) -> bool {
    let mut len = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    true
}

#[test]
fn a_stale_pooled_connection_is_retried_on_a_fresh_one() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    let answer = r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;
    // Each connection answers one request as keep-alive, then closes: the pooled one is stale.
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (s, _) = upstream.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            assert!(read_request(&mut r));
            let mut w = s;
            write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
            w.flush().unwrap();
            drop(r);
            drop(w);
        }
    });
    let yaml = format!(
        r#"
listeners:
  - type: model
    name: test
    port: 12999
model_providers:
  - model: openai/gpt-4o
    base_url: http://127.0.0.1:{port}
    access_key: sk-test
    default: true
"#
    );
    let (gw, addr) = gateway(&yaml, Options::default());
    let body = r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    for _ in 0..2 {
        let r = request(addr, "POST", "/v1/chat/completions", body);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("x-switchback-attempts"), Some("1"));
        std::thread::sleep(Duration::from_millis(100));
    }
    server.join().unwrap();
    gw.shutdown();
}

#[test]
fn a_slow_request_head_gets_408_and_garbage_gets_400() {
    let options = Options {
        header_read_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let (gw, addr) = gateway(MOCK, options);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");

    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"NOT HTTP AT ALL\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(out.contains("invalid_request_error"), "{out}");
    gw.shutdown();
}
