//! The mock upstream checked with the raw test client, so it is trustworthy on its own.

use super::*;
use crate::client::{request_bytes, send_raw, Streaming};

fn post(addr: SocketAddr, body: &str) -> crate::client::Response {
    send_raw(
        addr,
        &request_bytes(
            "POST",
            "/v1/chat/completions",
            &[("Authorization", "Bearer k")],
            body.as_bytes(),
        ),
    )
    .expect("request")
}

/// Sends raw requests on one keep-alive connection, reading each response.
fn keep_alive_pair(addr: SocketAddr) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    let mut out = Vec::new();
    for _ in 0..2 {
        s.write_all(req).unwrap();
        let mut buf = Vec::new();
        let mut tmp = [0u8; 4096];
        // Read until the whole Content-Length body arrived.
        loop {
            let n = s.read(&mut tmp).unwrap();
            assert!(n > 0, "closed early");
            buf.extend_from_slice(&tmp[..n]);
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                if buf.len() >= i + 4 + len {
                    break;
                }
            }
        }
        out.push(String::from_utf8_lossy(&buf).into_owned());
    }
    (out.remove(0), out.remove(0))
}

#[test]
fn script_in_order_then_repeats_last_and_records() {
    let m = MockUpstream::start(vec![
        Reply::json(429, r#"{"error":{}}"#).header("Retry-After", "2"),
        Reply::json(200, r#"{"ok":true}"#),
    ]);
    let r1 = post(m.addr(), r#"{"n":1}"#);
    assert_eq!(r1.status, 429);
    assert_eq!(r1.header("retry-after"), Some("2"));
    assert!(r1.complete);
    let r2 = post(m.addr(), r#"{"n":2}"#);
    assert_eq!(r2.status, 200);
    assert_eq!(r2.json()["ok"], true);
    assert_eq!(post(m.addr(), "{}").status, 200);
    assert_eq!(m.calls(), 3);
    let reqs = m.requests();
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    assert_eq!(reqs[1].json()["n"], 2);
    assert_eq!(reqs[0].header("Authorization"), Some("Bearer k"));
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let m = MockUpstream::start(vec![Reply::json(200, "{\"a\":1}")]);
    let (a, b) = keep_alive_pair(m.addr());
    assert!(a.starts_with("HTTP/1.1 200"));
    assert!(b.ends_with("{\"a\":1}"));
    assert_eq!(m.connections().len(), 1);
    assert_eq!(m.connections()[0].requests, 2);
    let reqs = m.requests();
    assert_eq!((reqs[0].conn, reqs[1].conn), (0, 0));
}

#[test]
fn chunked_sse_arrives_in_pieces_with_gaps() {
    let m = MockUpstream::start(vec![Reply::sse(
        &["data: 1\n\n", "data: 2\n\n", "data: [DONE]\n\n"],
        Duration::from_millis(60),
    )]);
    let mut s = Streaming::send(m.addr(), &request_bytes("POST", "/", &[], b"{}")).unwrap();
    s.read_head().unwrap();
    assert_eq!(s.header("content-type"), Some("text/event-stream"));
    let r = s.finish();
    assert!(r.complete);
    assert_eq!(r.text(), "data: 1\n\ndata: 2\n\ndata: [DONE]\n\n");
    assert!(r.chunks.len() >= 3, "{:?}", r.chunks);
    assert!(r.elapsed() >= Duration::from_millis(150));
}

#[test]
fn http10_close_delimited_json_and_false_chunked_sse() {
    let m = MockUpstream::start(vec![
        Reply::json(200, "{\"x\":1}").framing(Framing::Http10),
        Reply::sse(&["data: a\n\n", "data: b\n\n"], Duration::ZERO)
            .framing(Framing::Http10FalseChunked),
    ]);
    let r = post(m.addr(), "{}");
    assert!(r.complete);
    assert!(r.header("content-length").is_none());
    assert_eq!(r.json()["x"], 1);
    // Read the raw bytes: a "chunked" header, but no chunk framing on the wire.
    let mut s = TcpStream::connect(m.addr()).unwrap();
    s.write_all(&request_bytes("POST", "/", &[], b"{}"))
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.0 200"));
    assert!(raw.contains("Transfer-Encoding: chunked"));
    assert!(raw.ends_with("\r\n\r\ndata: a\n\ndata: b\n\n"), "{raw}");
}

#[test]
fn cut_content_length_and_chunked_bodies_are_incomplete() {
    let m = MockUpstream::start(vec![
        Reply::json(200, "{\"partial\":").ending(Ending::Cut),
        Reply::sse(&["data: 1\n\n"], Duration::ZERO).ending(Ending::Cut),
    ]);
    let r = post(m.addr(), "{}");
    assert!(!r.complete);
    assert_eq!(r.text(), "{\"partial\":");
    let r = post(m.addr(), "{}");
    assert!(!r.complete);
    assert_eq!(r.text(), "data: 1\n\n");
    assert!(m.connections().iter().all(|c| c.closed_by_mock));
}

#[test]
fn reset_closes_before_any_byte() {
    let m = MockUpstream::start(vec![Reply::reset()]);
    let mut s = Streaming::send(m.addr(), &request_bytes("POST", "/", &[], b"{}")).unwrap();
    assert!(s.read_head().is_err());
    assert_eq!(m.calls(), 1);
}

#[test]
fn hang_and_stall_notice_the_peer_closing() {
    let m = MockUpstream::start(vec![
        Reply::hang(),
        Reply::sse(&["data: 1\n\n"], Duration::ZERO).ending(Ending::Stall),
    ]);
    let s = Streaming::send(m.addr(), &request_bytes("POST", "/", &[], b"{}")).unwrap();
    assert!(m.wait_calls(1, Duration::from_secs(2)));
    assert!(!m.wait_closed_by_peer(0, Duration::from_millis(100)));
    s.disconnect();
    assert!(m.wait_closed_by_peer(0, Duration::from_secs(2)));

    let mut s = Streaming::send(m.addr(), &request_bytes("POST", "/", &[], b"{}")).unwrap();
    s.read_head().unwrap();
    assert_eq!(s.next_chunk().unwrap(), b"data: 1\n\n");
    assert!(!m.wait_closed_by_peer(1, Duration::from_millis(100)));
    s.disconnect();
    assert!(m.wait_closed_by_peer(1, Duration::from_secs(2)));
}

#[test]
fn delayed_head_is_delayed_and_echo_echoes() {
    let m = MockUpstream::start(vec![Reply::echo().delayed(Duration::from_millis(150))]);
    let body = r#"{"model": "gpt-4o", "temperature": 0.7}"#;
    let r = post(m.addr(), body);
    assert!(r.elapsed() >= Duration::from_millis(150));
    assert_eq!(r.json()["choices"][0]["message"]["content"], body);
}

#[test]
fn chunked_request_bodies_are_decoded() {
    let m = MockUpstream::start(vec![Reply::json(200, "{}")]);
    let raw =
        b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n";
    let r = send_raw(m.addr(), raw).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(m.requests()[0].body, b"abcde");
}

#[test]
fn refused_port_refuses() {
    let port = refused_port();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
