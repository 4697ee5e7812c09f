//! `upstream_exchange`: the upstream HTTP/1.1 codec over any response bytes.

use switchback_core::upstream::{parse_base_url, Exchange, ExchangeEvent, UpstreamHttpRequest};

/// The first byte sets the split size. Never panics; events come in a legal order (one
/// head, body bytes, then at most one end or failure, nothing after it).
pub fn check(data: &[u8]) {
    let Ok((origin, path)) = parse_base_url("http://127.0.0.1:8080/v1") else {
        return;
    };
    let req = UpstreamHttpRequest {
        origin,
        method: http::Method::POST,
        path_and_query: format!("{path}/chat/completions"),
        headers: http::HeaderMap::new(),
        body: bytes::Bytes::from_static(b"{}"),
    };
    let Ok(mut ex) = Exchange::new(&req) else {
        return;
    };
    while ex.poll_transmit().is_some() {}
    let mut order = Order::default();
    let split = data.first().map_or(1, |b| usize::from(*b).max(1));
    for piece in data.chunks(split) {
        ex.handle_input(piece);
        while let Some(ev) = ex.poll_event() {
            order.see(&ev);
        }
    }
    ex.handle_eof();
    while let Some(ev) = ex.poll_event() {
        order.see(&ev);
    }
}

#[derive(Default)]
struct Order {
    head: bool,
    over: bool,
}

impl Order {
    fn see(&mut self, ev: &ExchangeEvent) {
        assert!(!self.over, "an event after the end: {ev:?}");
        match ev {
            ExchangeEvent::Head { .. } => {
                assert!(!self.head, "a second head");
                self.head = true;
            }
            ExchangeEvent::Body(b) => {
                assert!(self.head, "body bytes before the head");
                assert!(!b.is_empty(), "an empty body event");
            }
            ExchangeEvent::End { .. } => {
                assert!(self.head, "an end before the head");
                self.over = true;
            }
            ExchangeEvent::Failed(_) => self.over = true,
        }
    }
}
