//! The upstream HTTP/1.1 codec never panics on any response bytes, in any split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchback_core::upstream::{parse_base_url, Exchange, UpstreamHttpRequest};

fuzz_target!(|data: &[u8]| {
    let Ok((origin, path)) = parse_base_url("http://127.0.0.1:8080/v1") else { return };
    let req = UpstreamHttpRequest {
        origin,
        method: http::Method::POST,
        path_and_query: format!("{path}/chat/completions"),
        headers: http::HeaderMap::new(),
        body: bytes::Bytes::from_static(b"{}"),
    };
    let Ok(mut ex) = Exchange::new(&req) else { return };
    while ex.poll_transmit().is_some() {}
    let split = data.first().map_or(1, |b| usize::from(*b).max(1));
    for piece in data.chunks(split) {
        ex.handle_input(piece);
        while ex.poll_event().is_some() {}
    }
    ex.handle_eof();
    while ex.poll_event().is_some() {}
});
