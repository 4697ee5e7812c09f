//! A small request leaves in one write; a large body is handed over without a copy.

use bytes::Bytes;
use switchback_core::upstream::{parse_base_url, Exchange, UpstreamHttpRequest};

fn transmits(body_len: usize) -> Vec<Bytes> {
    let (origin, _) = parse_base_url("http://127.0.0.1:8080").unwrap();
    let req = UpstreamHttpRequest {
        origin,
        method: http::Method::POST,
        path_and_query: "/v1/chat/completions".into(),
        headers: http::HeaderMap::new(),
        body: Bytes::from(vec![b'x'; body_len]),
    };
    let mut ex = Exchange::new(&req).unwrap();
    std::iter::from_fn(|| ex.poll_transmit()).collect()
}

#[test]
fn small_requests_are_one_write() {
    let t = transmits(500);
    assert_eq!(t.len(), 1);
    assert!(t[0].starts_with(b"POST /v1/chat/completions HTTP/1.1\r\n"));
    assert!(t[0].ends_with(&[b'x'; 500]));
}

#[test]
fn large_bodies_are_sent_as_they_are() {
    let t = transmits(1 << 20);
    assert_eq!(t.len(), 2);
    assert_eq!(t[1].len(), 1 << 20);
}
