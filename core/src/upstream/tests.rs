//! Tests for the upstream codec: request encoding, response framing, and split-invariance.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use proptest::prelude::*;

use super::*;

fn request(method: Method, path: &str, body: &'static [u8]) -> UpstreamHttpRequest {
    let (origin, _) = parse_base_url("http://127.0.0.1:8080").unwrap();
    UpstreamHttpRequest {
        origin,
        method,
        path_and_query: path.to_string(),
        headers: HeaderMap::new(),
        body: Bytes::from_static(body),
    }
}

fn transmitted(exchange: &mut Exchange) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = exchange.poll_transmit() {
        out.extend_from_slice(&chunk);
    }
    out
}

fn drain(exchange: &mut Exchange, into: &mut Vec<ExchangeEvent>) {
    while let Some(event) = exchange.poll_event() {
        into.push(event);
    }
}

/// Feed `input` in pieces cut at `cuts` (sorted or not, out-of-range ignored), then EOF if
/// `eof`, draining events after every step.
fn run(method: Method, input: &[u8], cuts: &[usize], eof: bool) -> Vec<ExchangeEvent> {
    let mut exchange = Exchange::new(&request(method, "/v1/chat/completions", b"{}")).unwrap();
    transmitted(&mut exchange);
    let mut cuts: Vec<usize> = cuts.iter().copied().filter(|&c| c <= input.len()).collect();
    cuts.sort_unstable();
    cuts.push(input.len());
    let mut events = Vec::new();
    let mut start = 0;
    for cut in cuts {
        exchange.handle_input(&input[start..cut]);
        start = cut;
        drain(&mut exchange, &mut events);
        assert!(exchange.buffered_bytes() <= MAX_HEAD_BYTES + 64 * 1024);
    }
    if eof {
        exchange.handle_eof();
        drain(&mut exchange, &mut events);
    }
    check_well_formed(&events);
    events
}

/// One `Head` at most, `Body` only after it, a terminal event only last.
fn check_well_formed(events: &[ExchangeEvent]) {
    let mut seen_head = false;
    for (i, event) in events.iter().enumerate() {
        match event {
            ExchangeEvent::Head { .. } => {
                assert!(!seen_head, "two heads: {events:?}");
                seen_head = true;
            }
            ExchangeEvent::Body(b) => assert!(seen_head && !b.is_empty(), "{events:?}"),
            ExchangeEvent::End { .. } => {
                assert!(seen_head && i + 1 == events.len(), "{events:?}")
            }
            ExchangeEvent::Failed(_) => assert_eq!(i + 1, events.len(), "{events:?}"),
        }
    }
}

/// Merge adjacent `Body` events so results from different splits compare equal.
fn normalize(events: Vec<ExchangeEvent>) -> Vec<ExchangeEvent> {
    let mut out: Vec<ExchangeEvent> = Vec::new();
    for event in events {
        if let (Some(ExchangeEvent::Body(prev)), ExchangeEvent::Body(next)) =
            (out.last_mut(), &event)
        {
            let mut joined = prev.to_vec();
            joined.extend_from_slice(next);
            *prev = Bytes::from(joined);
        } else {
            out.push(event);
        }
    }
    out
}

fn head(status: u16, headers: &[(&'static str, &'static str)]) -> ExchangeEvent {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(*name, HeaderValue::from_static(value));
    }
    ExchangeEvent::Head {
        status: StatusCode::from_u16(status).unwrap(),
        headers: map,
    }
}

fn body(bytes: &'static [u8]) -> ExchangeEvent {
    ExchangeEvent::Body(Bytes::from_static(bytes))
}

fn end(reusable: bool) -> ExchangeEvent {
    ExchangeEvent::End { reusable }
}

fn failed(error: ExchangeError) -> ExchangeEvent {
    ExchangeEvent::Failed(error)
}

/// The Python `http.server` streaming mock: HTTP/1.0, `Transfer-Encoding: chunked`, raw SSE.
const PYTHON_SSE: &[u8] = b"HTTP/1.0 200 OK\r\nServer: BaseHTTP/0.6 Python/3.12.3\r\n\
Date: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: text/event-stream\r\n\
Transfer-Encoding: chunked\r\n\r\n\
data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n";

struct Case {
    name: &'static str,
    method: Method,
    input: &'static [u8],
    eof: bool,
    expected: Vec<ExchangeEvent>,
}

fn cases() -> Vec<Case> {
    let post = || Method::POST;
    vec![
        Case {
            name: "content-length",
            method: post(),
            input: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            eof: false,
            expected: vec![
                head(200, &[("content-length", "5")]),
                body(b"hello"),
                end(true),
            ],
        },
        Case {
            name: "content-length zero",
            method: post(),
            input: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            eof: false,
            expected: vec![head(200, &[("content-length", "0")]), end(true)],
        },
        Case {
            name: "chunked with extensions and trailers",
            method: post(),
            input: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\nX-More: 2\r\n\r\n",
            eof: false,
            expected: vec![
                head(200, &[("transfer-encoding", "chunked")]),
                body(b"hello world"),
                end(true),
            ],
        },
        Case {
            name: "204 no content",
            method: post(),
            input: b"HTTP/1.1 204 No Content\r\n\r\n",
            eof: false,
            expected: vec![head(204, &[]), end(true)],
        },
        Case {
            name: "304 ignores content-length",
            method: Method::GET,
            input: b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
            eof: false,
            expected: vec![head(304, &[("content-length", "10")]), end(true)],
        },
        Case {
            name: "HEAD ignores content-length",
            method: Method::HEAD,
            input: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            eof: false,
            expected: vec![head(200, &[("content-length", "10")]), end(true)],
        },
        Case {
            name: "1xx skipped",
            method: post(),
            input:
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
                HTTP/1.1 100 Continue\r\nX-Odd: header\r\n\r\n\
                HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            eof: false,
            expected: vec![
                head(200, &[("content-length", "2")]),
                body(b"ok"),
                end(true),
            ],
        },
        Case {
            name: "HTTP/1.0 close-delimited",
            method: post(),
            input: b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nabc\r\ndef",
            eof: true,
            expected: vec![
                head(200, &[("content-type", "text/plain")]),
                body(b"abc\r\ndef"),
                end(false),
            ],
        },
        Case {
            name: "HTTP/1.0 keep-alive with content-length",
            method: post(),
            input: b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
            eof: false,
            expected: vec![
                head(
                    200,
                    &[("connection", "keep-alive"), ("content-length", "2")],
                ),
                body(b"ok"),
                end(true),
            ],
        },
        Case {
            name: "HTTP/1.0 without keep-alive is not reusable",
            method: post(),
            input: b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
            eof: false,
            expected: vec![
                head(200, &[("content-length", "2")]),
                body(b"ok"),
                end(false),
            ],
        },
        Case {
            name: "HTTP/1.0 with transfer-encoding: python SSE mock",
            method: post(),
            input: PYTHON_SSE,
            eof: true,
            expected: vec![
                head(
                    200,
                    &[
                        ("server", "BaseHTTP/0.6 Python/3.12.3"),
                        ("date", "Mon, 01 Jan 2024 00:00:00 GMT"),
                        ("content-type", "text/event-stream"),
                        ("transfer-encoding", "chunked"),
                    ],
                ),
                body(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n"),
                end(false),
            ],
        },
        Case {
            name: "HTTP/1.0 with transfer-encoding and content-length reads to close",
            method: post(),
            input: b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n\
                more than two bytes",
            eof: true,
            expected: vec![
                head(
                    200,
                    &[("transfer-encoding", "chunked"), ("content-length", "2")],
                ),
                body(b"more than two bytes"),
                end(false),
            ],
        },
        Case {
            name: "HTTP/1.1 connection close without length",
            method: post(),
            input: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\ndata: x\n\n",
            eof: true,
            expected: vec![
                head(200, &[("connection", "close")]),
                body(b"data: x\n\n"),
                end(false),
            ],
        },
        Case {
            name: "HTTP/1.1 connection close with length",
            method: post(),
            input: b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad",
            eof: false,
            expected: vec![
                head(500, &[("connection", "close"), ("content-length", "3")]),
                body(b"bad"),
                end(false),
            ],
        },
        Case {
            name: "HTTP/1.1 non-final chunked reads to close",
            method: post(),
            input: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello",
            eof: true,
            expected: vec![
                head(200, &[("transfer-encoding", "chunked, gzip")]),
                body(b"5\r\nhello"),
                end(false),
            ],
        },
        Case {
            name: "chunked with content-length is dechunked, not reused",
            method: post(),
            input: b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n\
                2\r\nok\r\n0\r\n\r\n",
            eof: false,
            expected: vec![
                head(
                    200,
                    &[("content-length", "99"), ("transfer-encoding", "chunked")],
                ),
                body(b"ok"),
                end(false),
            ],
        },
        Case {
            name: "chunked closed after the last chunk",
            method: post(),
            input: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n",
            eof: true,
            expected: vec![
                head(200, &[("transfer-encoding", "chunked")]),
                body(b"ok"),
                end(false),
            ],
        },
        Case {
            name: "truncated content-length body",
            method: post(),
            input: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel",
            eof: true,
            expected: vec![
                head(200, &[("content-length", "10")]),
                body(b"hel"),
                failed(ExchangeError::TruncatedBody),
            ],
        },
        Case {
            name: "truncated chunked body",
            method: post(),
            input: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            eof: true,
            expected: vec![
                head(200, &[("transfer-encoding", "chunked")]),
                body(b"hel"),
                failed(ExchangeError::TruncatedBody),
            ],
        },
        Case {
            name: "EOF before any byte",
            method: post(),
            input: b"",
            eof: true,
            expected: vec![failed(ExchangeError::ClosedBeforeResponse)],
        },
        Case {
            name: "EOF in the head",
            method: post(),
            input: b"HTTP/1.1 200 OK\r\nContent-Le",
            eof: true,
            expected: vec![failed(ExchangeError::TruncatedHead)],
        },
        Case {
            name: "EOF after an informational response",
            method: post(),
            input: b"HTTP/1.1 100 Continue\r\n\r\n",
            eof: true,
            expected: vec![failed(ExchangeError::TruncatedHead)],
        },
    ]
}

#[test]
fn every_case_whole() {
    for case in cases() {
        let events = normalize(run(case.method.clone(), case.input, &[], case.eof));
        assert_eq!(events, case.expected, "case {:?}", case.name);
    }
}

#[test]
fn every_case_in_every_two_way_split_and_byte_by_byte() {
    for case in cases() {
        for cut in 0..=case.input.len() {
            let events = normalize(run(case.method.clone(), case.input, &[cut], case.eof));
            assert_eq!(events, case.expected, "case {:?} cut at {cut}", case.name);
        }
        let all: Vec<usize> = (0..=case.input.len()).collect();
        let events = normalize(run(case.method.clone(), case.input, &all, case.eof));
        assert_eq!(events, case.expected, "case {:?} byte by byte", case.name);
    }
}

fn malformed(events: &[ExchangeEvent]) -> bool {
    matches!(
        events.last(),
        Some(ExchangeEvent::Failed(ExchangeError::Malformed(_)))
    )
}

#[test]
fn garbage_is_malformed() {
    for input in [
        &b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..],
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let events = run(Method::POST, input, &[], false);
        assert!(malformed(&events), "{input:?} gave {events:?}");
        let all: Vec<usize> = (0..=input.len()).collect();
        let events = run(Method::POST, input, &all, false);
        assert!(malformed(&events), "{input:?} byte by byte gave {events:?}");
    }
}

#[test]
fn garbage_without_newline_is_caught_early() {
    let events = run(Method::POST, b"<html>", &[1, 2, 3], false);
    assert!(malformed(&events), "{events:?}");
}

#[test]
fn chunk_extensions_are_read_up_to_the_line_bound() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        2;a-rather-long-extension=value\r\nok\r\n0\r\n\r\n";
    assert_eq!(
        normalize(run(Method::POST, input, &[], false)),
        vec![
            head(200, &[("transfer-encoding", "chunked")]),
            body(b"ok"),
            end(true)
        ]
    );
    let mut endless = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=".to_vec();
    endless.extend(std::iter::repeat_n(b'a', 5000));
    endless.extend_from_slice(b"\r\nok\r\n0\r\n\r\n");
    assert!(malformed(&run(Method::POST, &endless, &[], false)));
}

#[test]
fn oversized_head_fails_with_bounded_memory() {
    let mut exchange = Exchange::new(&request(Method::POST, "/", b"")).unwrap();
    exchange.handle_input(b"HTTP/1.1 200 OK\r\n");
    let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut events = Vec::new();
    for _ in 0..2000 {
        exchange.handle_input(line);
        drain(&mut exchange, &mut events);
        assert!(exchange.buffered_bytes() <= MAX_HEAD_BYTES);
    }
    // 128 fields are reached before 64 KiB.
    assert_eq!(
        events,
        vec![failed(ExchangeError::HeadTooLarge {
            max_bytes: MAX_HEAD_BYTES,
            max_fields: MAX_HEAD_FIELDS,
        })]
    );

    let mut exchange = Exchange::new(&request(Method::POST, "/", b"")).unwrap();
    exchange.handle_input(b"HTTP/1.1 200 OK\r\nX-Long: ");
    let mut events = Vec::new();
    for _ in 0..100 {
        exchange.handle_input(&[b'a'; 1024]);
        drain(&mut exchange, &mut events);
        assert!(exchange.buffered_bytes() <= MAX_HEAD_BYTES);
    }
    assert!(matches!(
        events.as_slice(),
        [ExchangeEvent::Failed(ExchangeError::HeadTooLarge { .. })]
    ));
}

#[test]
fn endless_chunk_size_line_fails_with_bounded_memory() {
    let mut exchange = Exchange::new(&request(Method::POST, "/", b"")).unwrap();
    exchange.handle_input(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r");
    let mut events = Vec::new();
    for _ in 0..100 {
        exchange.handle_input(&[b'x'; 1024]);
        drain(&mut exchange, &mut events);
        assert!(exchange.buffered_bytes() <= 64 * 1024 + 1024);
    }
    assert!(malformed(&events), "{events:?}");
}

/// Body bytes come out as soon as they arrive, before the body is complete.
#[test]
fn body_is_streamed_as_it_arrives() {
    let heads: [&[u8]; 4] = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    ];
    for (i, head_bytes) in heads.iter().enumerate() {
        let chunked = i == 0;
        let mut exchange = Exchange::new(&request(Method::POST, "/", b"{}")).unwrap();
        exchange.handle_input(head_bytes);
        assert!(matches!(
            exchange.poll_event(),
            Some(ExchangeEvent::Head { .. })
        ));
        assert_eq!(exchange.poll_event(), None);
        for event in ["data: {\"a\":1}\n\n", "data: {\"b\":2}\n\n"] {
            let wire = if chunked {
                format!("{:x}\r\n{event}\r\n", event.len())
            } else {
                event.to_string()
            };
            // Cut the wire piece in two: the first half must come out at once.
            let (a, b) = wire.as_bytes().split_at(wire.len() / 2);
            let mut got = Vec::new();
            exchange.handle_input(a);
            let before = got.len();
            drain(&mut exchange, &mut got);
            assert!(
                got.len() > before,
                "case {i}: nothing streamed from a partial piece"
            );
            exchange.handle_input(b);
            drain(&mut exchange, &mut got);
            assert_eq!(
                normalize(got),
                vec![ExchangeEvent::Body(Bytes::from(event))]
            );
        }
    }
}

#[test]
fn bytes_past_the_end_make_the_connection_single_use() {
    let events = run(
        Method::POST,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
        &[],
        false,
    );
    assert_eq!(events.last(), Some(&end(false)));
    let events = run(
        Method::POST,
        b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n",
        &[],
        false,
    );
    assert_eq!(events.last(), Some(&end(false)));
}

#[test]
fn nothing_after_the_end() {
    let mut exchange = Exchange::new(&request(Method::POST, "/", b"")).unwrap();
    exchange.handle_input(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let mut events = Vec::new();
    drain(&mut exchange, &mut events);
    exchange.handle_input(b"more");
    exchange.handle_eof();
    exchange.handle_eof();
    assert_eq!(exchange.poll_event(), None);
    assert_eq!(events.len(), 2);
}

#[test]
fn a_host_header_from_the_caller_is_kept() {
    // A provider's `http_host` reaches the wire as `Host`; the connection still goes to
    // the origin.
    let mut req = request(Method::POST, "/v1/chat/completions", b"{}");
    req.headers
        .insert("host", HeaderValue::from_static("internal.example"));
    let mut exchange = Exchange::new(&req).unwrap();
    let wire = String::from_utf8(transmitted(&mut exchange)).unwrap();
    assert!(wire.contains("host: internal.example\r\n"), "{wire}");
    assert_eq!(wire.matches("host:").count(), 1, "{wire}");
}

#[test]
fn post_request_is_encoded_with_host_and_content_length() {
    let mut req = request(
        Method::POST,
        "/openai/v1/chat/completions",
        b"{\"model\":\"m\"}",
    );
    req.headers
        .insert("authorization", HeaderValue::from_static("Bearer k"));
    req.headers
        .insert("content-type", HeaderValue::from_static("application/json"));
    // Framing headers from the caller are replaced.
    req.headers
        .insert("transfer-encoding", HeaderValue::from_static("chunked"));
    req.headers
        .insert("expect", HeaderValue::from_static("100-continue"));
    req.headers
        .insert("content-length", HeaderValue::from_static("1"));
    let mut exchange = Exchange::new(&req).unwrap();
    let wire = String::from_utf8(transmitted(&mut exchange)).unwrap();
    assert_eq!(
        wire,
        "POST /openai/v1/chat/completions HTTP/1.1\r\n\
         authorization: Bearer k\r\n\
         content-type: application/json\r\n\
         host: 127.0.0.1:8080\r\n\
         content-length: 13\r\n\
         \r\n\
         {\"model\":\"m\"}"
    );
    assert_eq!(exchange.poll_transmit(), None);
}

#[test]
fn host_header_omits_default_port_and_brackets_ipv6() {
    for (url, host) in [
        ("https://api.example.test", "host: api.example.test\r\n"),
        ("http://[::1]:9000", "host: [::1]:9000\r\n"),
        ("http://[::1]", "host: [::1]\r\n"),
    ] {
        let mut req = request(Method::POST, "/x", b"{}");
        req.origin = parse_base_url(url).unwrap().0;
        let wire = String::from_utf8(transmitted(&mut Exchange::new(&req).unwrap())).unwrap();
        assert!(wire.contains(host), "{url}: {wire:?}");
    }
}

#[test]
fn bodiless_requests() {
    let wire = transmitted(&mut Exchange::new(&request(Method::GET, "/models?x=1", b"")).unwrap());
    assert_eq!(
        wire,
        b"GET /models?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n"
    );
    let wire = transmitted(&mut Exchange::new(&request(Method::POST, "/p", b"")).unwrap());
    assert_eq!(
        wire,
        b"POST /p HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-length: 0\r\n\r\n"
    );
    let method = Method::from_bytes(b"PURGE").unwrap();
    let wire = transmitted(&mut Exchange::new(&request(method, "/c", b"x")).unwrap());
    assert_eq!(
        wire,
        b"PURGE /c HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-length: 1\r\n\r\nx"
    );
}

#[test]
fn unencodable_requests_are_rejected() {
    for req in [
        request(Method::POST, "no-slash", b""),
        request(Method::POST, "/with space", b""),
        request(Method::CONNECT, "/", b""),
    ] {
        assert!(matches!(
            Exchange::new(&req),
            Err(ExchangeError::InvalidRequest(_))
        ));
    }
}

/// Random cut points, as a sorted list of offsets.
fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0usize..400, 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Every case yields the same events however its bytes are split.
    #[test]
    fn splits_do_not_change_events(index in 0usize..22, cuts in cuts()) {
        let all = cases();
        let case = &all[index % all.len()];
        let events = normalize(run(case.method.clone(), case.input, &cuts, case.eof));
        prop_assert_eq!(events, case.expected.clone(), "case {:?}", case.name);
    }

    /// Arbitrary bytes, after an optional valid head, never panic, never leave a malformed
    /// event sequence and never hold more than the bounds.
    #[test]
    fn arbitrary_input_never_panics(
        prefix in 0usize..4,
        noise in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in cuts(),
        eof in any::<bool>(),
    ) {
        let heads: [&[u8]; 4] = [
            b"",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n",
        ];
        let mut input = heads[prefix].to_vec();
        input.extend_from_slice(&noise);
        run(Method::POST, &input, &cuts, eof);
    }

    /// Chunked bodies with random chunk sizes decode to the original bytes in any split.
    #[test]
    fn chunked_roundtrip(
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        sizes in proptest::collection::vec(1usize..50, 1..20),
        cuts in cuts(),
    ) {
        let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut rest = payload.as_slice();
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            wire.extend_from_slice(format!("{n:X}\r\n").as_bytes());
            wire.extend_from_slice(&rest[..n]);
            wire.extend_from_slice(b"\r\n");
            rest = &rest[n..];
            i += 1;
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let events = normalize(run(Method::POST, &wire, &cuts, false));
        let mut expected = vec![head(200, &[("transfer-encoding", "chunked")])];
        if !payload.is_empty() {
            expected.push(ExchangeEvent::Body(Bytes::from(payload)));
        }
        expected.push(end(true));
        prop_assert_eq!(events, expected);
    }
}
