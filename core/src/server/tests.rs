//! The server codec's rules, one test each, and properties over arbitrary input and splits.

use bytes::BytesMut;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use proptest::prelude::*;

use super::*;

fn limits() -> ServerLimits {
    ServerLimits {
        max_body_bytes: 1024,
        ..ServerLimits::default()
    }
}

/// Every event the reader makes of `input` fed in one piece, `next_request` called after
/// each `End`, as comparable text.
fn events(input: &[u8]) -> Vec<String> {
    events_split(&[input])
}

fn events_split(pieces: &[&[u8]]) -> Vec<String> {
    let mut r = RequestReader::new(limits());
    let mut out = Vec::new();
    let mut body = Vec::new();
    for piece in pieces {
        r.push(piece);
        while let Some(ev) = r.poll_event() {
            match ev {
                ReadEvent::Head(h) => out.push(format!(
                    "head {} {} {:?} {:?} keep={} continue={}",
                    h.method, h.target, h.version, h.framing, h.keep_alive, h.expect_continue
                )),
                ReadEvent::Body(b) => body.extend_from_slice(&b),
                ReadEvent::End => {
                    out.push(format!("body {:?}", String::from_utf8_lossy(&body)));
                    body.clear();
                    out.push("end".into());
                    r.next_request();
                }
                ReadEvent::Error(e) => out.push(format!("error {}", e.status.as_u16())),
            }
        }
    }
    out
}

fn head_of(input: &[u8]) -> Result<RequestHead, HttpError> {
    let mut r = RequestReader::new(limits());
    r.push(input);
    match r.poll_event() {
        Some(ReadEvent::Head(h)) => Ok(h),
        Some(ReadEvent::Error(e)) => Err(e),
        other => panic!("unexpected {other:?}"),
    }
}

fn error_status(input: &[u8]) -> u16 {
    let evs = events(input);
    let last = evs.last().cloned().unwrap_or_default();
    last.strip_prefix("error ")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no error for {:?}: {evs:?}", String::from_utf8_lossy(input)))
}

#[test]
fn a_simple_get_and_a_post_with_a_length() {
    let evs = events(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPOST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(
        evs,
        [
            "head GET /healthz HTTP/1.1 None keep=true continue=false",
            "body \"\"",
            "end",
            "head POST /v1/x HTTP/1.1 Length(5) keep=true continue=false",
            "body \"hello\"",
            "end"
        ]
    );
}

#[test]
fn pipelined_requests_wait_for_next_request() {
    let mut r = RequestReader::new(limits());
    r.push(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(matches!(r.poll_event(), Some(ReadEvent::Head(h)) if h.target == "/a"));
    assert!(matches!(r.poll_event(), Some(ReadEvent::End)));
    assert!(r.poll_event().is_none(), "the second request waits");
    assert!(r.buffered() > 0);
    r.next_request();
    assert!(matches!(r.poll_event(), Some(ReadEvent::Head(h)) if h.target == "/b"));
}

#[test]
fn chunked_bodies_are_decoded() {
    let evs = events(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;e=1\r\nde\r\n0\r\n\r\n");
    assert_eq!(evs[1], "body \"abcde\"");
}

#[test]
fn no_framing_headers_means_no_body() {
    let h = head_of(b"POST /x HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(h.framing, BodyFraming::None);
    assert!(!h.has_body());
}

#[test]
fn http10_keep_alive_rules() {
    let h = head_of(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(h.version, Version::HTTP_10);
    assert!(!h.keep_alive, "HTTP/1.0 closes unless asked");
    let h = head_of(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
    assert!(h.keep_alive);
    let h = head_of(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    assert!(!h.keep_alive);
}

#[test]
fn smuggling_defences() {
    // Content-Length with Transfer-Encoding.
    assert_eq!(
        error_status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
        400
    );
    // Two differing lengths, in two fields or in one list.
    assert_eq!(
        error_status(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"
        ),
        400
    );
    assert_eq!(
        error_status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\n"),
        400
    );
    // A list in one field, even of equal lengths, is refused.
    assert_eq!(
        error_status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc"),
        400
    );
    assert_eq!(
        error_status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1,1\r\n\r\na"),
        400
    );
    // Equal repeated fields are one length.
    let h =
        head_of(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n")
            .unwrap();
    assert_eq!(h.framing, BodyFraming::Length(3));
    // Not a number, a sign, a space inside.
    for bad in ["+3", "-1", "3 3", "0x10", ""] {
        let req = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {bad}\r\n\r\n");
        assert_eq!(error_status(req.as_bytes()), 400, "{bad:?}");
    }
    // chunked not last, or twice; Transfer-Encoding on HTTP/1.0.
    assert_eq!(
        error_status(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
        400
    );
    assert_eq!(
        error_status(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
        400
    );
    assert_eq!(
        error_status(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        400
    );
    // An empty list element, before or after chunked (hyper refuses these too).
    for te in ["chunked,", ", chunked", "chunked,,", ","] {
        let req = format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(error_status(req.as_bytes()), 400, "{te:?}");
    }
    // An unsupported coding before chunked.
    assert_eq!(
        error_status(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        501
    );
    // Obsolete line folding and a space before the colon.
    assert_eq!(
        error_status(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n"),
        400
    );
    assert_eq!(error_status(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);
}

#[test]
fn host_is_required_once_on_http11() {
    assert_eq!(error_status(b"GET / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(
        error_status(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        400
    );
    assert!(head_of(b"GET / HTTP/1.0\r\n\r\n").is_ok());
}

#[test]
fn head_limits_give_431() {
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..101 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(error_status(many.as_bytes()), 431);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    assert_eq!(error_status(big.as_bytes()), 431);
    // An unfinished head past the limit is refused without waiting for its end.
    let unfinished = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(65 * 1024));
    assert_eq!(error_status(unfinished.as_bytes()), 431);
}

#[test]
fn body_limit_gives_413() {
    assert_eq!(
        error_status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n"),
        413
    );
    let mut chunked =
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n".to_vec();
    chunked.extend(std::iter::repeat_n(b'a', 2048));
    assert_eq!(error_status(&chunked), 413);
}

#[test]
fn versions_and_garbage() {
    assert_eq!(error_status(b"GET / HTTP/2.0\r\n\r\n"), 505);
    assert_eq!(error_status(b"THIS IS NOT HTTP\r\n\r\n"), 400);
    assert_eq!(
        error_status(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
        400
    );
}

#[test]
fn expect_continue_is_noticed_only_with_a_body() {
    let h =
        head_of(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
            .unwrap();
    assert!(h.expect_continue);
    let h = head_of(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n").unwrap();
    assert!(!h.expect_continue);
    assert_eq!(
        error_status(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n"),
        417
    );
}

#[test]
fn targets_in_absolute_and_asterisk_form() {
    let h = head_of(b"GET http://gw.example/v1/models?x=1 HTTP/1.1\r\nHost: gw.example\r\n\r\n")
        .unwrap();
    assert_eq!(h.target, "/v1/models?x=1");
    assert_eq!(h.path(), "/v1/models");
    let h = head_of(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(h.target, "*");
    assert_eq!(
        error_status(b"CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
        400
    );
    let h = head_of(b"GET http://gw.example?x=1 HTTP/1.1\r\nHost: gw.example\r\n\r\n").unwrap();
    assert_eq!(h.target, "/?x=1", "an empty path is /");
}

#[test]
fn targets_that_are_not_uris_are_refused() {
    for bad in [
        &b"GET /v1/models?x=\"1\" HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET http://h\"x/p HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http:///p HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET , HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        assert_eq!(error_status(bad), 400, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn a_head_incomplete_at_exactly_the_limit_is_refused_at_once() {
    let limits = limits();
    for piece in [1, 4096, 16 * 1024] {
        let mut r = RequestReader::new(limits);
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        head.resize(limits.max_head_bytes, b'a');
        let mut status = None;
        for chunk in head.chunks(piece) {
            r.push(chunk);
            while let Some(ev) = r.poll_event() {
                if let ReadEvent::Error(e) = ev {
                    status = Some(e.status.as_u16());
                }
            }
        }
        // A caller that reads no more than the limit must still get its answer.
        assert_eq!(status, Some(431), "split {piece}");
    }
}

#[test]
fn a_failed_reader_holds_no_further_input() {
    let mut r = RequestReader::new(limits());
    r.push(b"BAD\x00 / HTTP/1.1\r\n\r\n");
    assert!(matches!(r.poll_event(), Some(ReadEvent::Error(_))));
    for _ in 0..64 {
        r.push(&[b'x'; 1024]);
        assert!(r.poll_event().is_none());
    }
    assert_eq!(r.buffered(), 0, "input after an error is dropped, not held");
}

fn encode(
    version: Version,
    head: bool,
    keep: bool,
    status: u16,
    body: BodyKind,
    chunks: &[&[u8]],
) -> String {
    let mut e = ResponseEncoder::new(version, head, keep);
    let mut out = BytesMut::new();
    let mut headers = HeaderMap::new();
    headers.insert("x-request-id", HeaderValue::from_static("req_1"));
    headers.insert("content-length", HeaderValue::from_static("999"));
    headers.insert("connection", HeaderValue::from_static("keep-alive"));
    let date = HeaderValue::from_static("Tue, 01 Dec 2026 08:00:00 GMT");
    e.write_head(
        &mut out,
        StatusCode::from_u16(status).unwrap(),
        &headers,
        body,
        &date,
    );
    for c in chunks {
        e.write_body(&mut out, c);
    }
    e.write_end(&mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

#[test]
fn responses_are_framed_for_their_request() {
    let full = encode(
        Version::HTTP_11,
        false,
        true,
        200,
        BodyKind::Full(2),
        &[b"{}"],
    );
    assert_eq!(
        full,
        "HTTP/1.1 200 OK\r\nx-request-id: req_1\r\ndate: Tue, 01 Dec 2026 08:00:00 GMT\r\ncontent-length: 2\r\n\r\n{}"
    );
    let stream = encode(
        Version::HTTP_11,
        false,
        true,
        200,
        BodyKind::Stream,
        &[b"data: 1\n\n"],
    );
    assert!(
        stream.contains("transfer-encoding: chunked\r\n"),
        "{stream}"
    );
    assert!(
        stream.ends_with("\r\n\r\n9\r\ndata: 1\n\n\r\n0\r\n\r\n"),
        "{stream}"
    );
    // HTTP/1.0: no chunked; a stream is close-delimited.
    let old = encode(
        Version::HTTP_10,
        false,
        true,
        200,
        BodyKind::Stream,
        &[b"data: 1\n\n"],
    );
    assert!(old.starts_with("HTTP/1.0 200 OK\r\n"), "{old}");
    assert!(!old.contains("chunked"), "{old}");
    assert!(old.contains("connection: close\r\n"), "{old}");
    assert!(old.ends_with("\r\n\r\ndata: 1\n\n"), "{old}");
    let kept = encode(
        Version::HTTP_10,
        false,
        true,
        200,
        BodyKind::Full(2),
        &[b"{}"],
    );
    assert!(kept.contains("connection: keep-alive\r\n"), "{kept}");
    // Statuses outside the registry are sent as they are.
    let overloaded = encode(Version::HTTP_11, false, false, 529, BodyKind::Full(0), &[]);
    assert!(overloaded.starts_with("HTTP/1.1 529 \r\n"), "{overloaded}");
    assert!(overloaded.contains("connection: close\r\n"), "{overloaded}");
    // HEAD: the length of the body that is not sent.
    let head = encode(
        Version::HTTP_11,
        true,
        true,
        200,
        BodyKind::Full(2),
        &[b"{}"],
    );
    assert!(head.ends_with("content-length: 2\r\n\r\n"), "{head}");
    // 204: neither a body nor a length.
    let empty = encode(Version::HTTP_11, false, true, 204, BodyKind::Full(0), &[]);
    assert!(!empty.contains("content-length"), "{empty}");
}

/// A well-formed request stream, for the split property.
fn valid_stream() -> impl Strategy<Value = Vec<u8>> {
    let one = prop_oneof![
        Just(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        "[a-z]{0,40}".prop_map(|body| format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()),
        "[a-z]{1,30}".prop_map(|body| format!(
            "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\nT: 1\r\n\r\n",
            body.len()
        )
        .into_bytes()),
        Just(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_vec()),
    ];
    prop::collection::vec(one, 1..5).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The events do not depend on how the bytes were split into reads.
    #[test]
    fn splits_do_not_matter(stream in valid_stream(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let whole = events(&stream);
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        at.sort_unstable();
        let mut pieces = Vec::new();
        let mut from = 0;
        for cut in at {
            pieces.push(&stream[from..cut]);
            from = cut;
        }
        pieces.push(&stream[from..]);
        prop_assert_eq!(events_split(&pieces), whole);
    }

    /// Arbitrary bytes never panic the reader, and it never holds more than the head
    /// limit plus one read of unparsed head bytes.
    #[test]
    fn arbitrary_input_is_safe(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2048), 0..8)) {
        let mut r = RequestReader::new(limits());
        for c in &chunks {
            r.push(c);
            while let Some(ev) = r.poll_event() {
                if let ReadEvent::End = ev {
                    r.next_request();
                }
            }
            prop_assert!(r.buffered() <= limits().max_head_bytes + 2048 + 1024);
        }
    }

    /// Arbitrary text after a valid request line never panics the head parser, and a
    /// head it accepts has a framing it can state.
    #[test]
    fn arbitrary_headers_are_safe(fields in prop::collection::vec(("[A-Za-z-]{1,12}", "[ -~]{0,20}"), 0..12)) {
        let mut req = String::from("POST /x HTTP/1.1\r\nHost: x\r\n");
        for (k, v) in &fields {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut r = RequestReader::new(limits());
        r.push(req.as_bytes());
        if let Some(ReadEvent::Head(h)) = r.poll_event() {
            prop_assert!(h.method == Method::POST);
        }
    }
}
