//! Differential test of the server codec against hyper's HTTP/1 server: the same request
//! byte streams go to `switchback_core::server::RequestReader` and to hyper (over an
//! in-memory connection, with a service that records every request it is given), and the
//! parsed requests must agree: method, target, version, headers and body of each, and
//! whether the stream was refused. Where switchback deliberately differs, the case says so
//! and why (docs/runtimes.md, "Differences from hyper's parser"); the test asserts the
//! difference, so a change on either side shows up.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use proptest::prelude::*;
use switchback_core::server::{ReadEvent, RequestReader, ServerLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as a parser understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    method: Method,
    /// Origin form (`/path?query`); an absolute-form target is compared by its path.
    target: String,
    version: Version,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// The body ended as framed (false: the input ran out first).
    complete: bool,
}

/// Everything a parser made of one byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    requests: Vec<Parsed>,
    /// The parser refused the bytes after the last request (an error answer and a close).
    refused: bool,
}

fn headers_of(map: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    map.iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

fn switchback(input: &[u8]) -> Outcome {
    let mut reader = RequestReader::new(ServerLimits::default());
    reader.push(input);
    let mut requests: Vec<Parsed> = Vec::new();
    let mut refused = false;
    let mut keep_alive = true;
    while let Some(ev) = reader.poll_event() {
        match ev {
            ReadEvent::Head(h) => {
                keep_alive = h.keep_alive;
                requests.push(Parsed {
                    method: h.method.clone(),
                    target: h.target.clone(),
                    version: h.version,
                    headers: headers_of(&h.headers),
                    body: Vec::new(),
                    complete: false,
                });
            }
            ReadEvent::Body(b) => {
                if let Some(r) = requests.last_mut() {
                    r.body.extend_from_slice(&b);
                }
            }
            ReadEvent::End => {
                if let Some(r) = requests.last_mut() {
                    r.complete = true;
                }
                // The connection ends after a request that does not keep it alive.
                if !keep_alive {
                    break;
                }
                reader.next_request();
            }
            ReadEvent::Error(_) => {
                refused = true;
                // A request refused mid-body is not a request either parser serves.
                if requests.last().is_some_and(|r| !r.complete) {
                    requests.pop();
                }
                break;
            }
        }
    }
    Outcome { requests, refused }
}

fn hyper(input: &[u8]) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let seen: Arc<Mutex<Vec<Parsed>>> = Arc::default();
    let input = input.to_vec();
    let record = Arc::clone(&seen);
    let body_refused: Arc<Mutex<bool>> = Arc::default();
    let body_flag = Arc::clone(&body_refused);
    let refused = runtime.block_on(async move {
        let (mut client, server) = tokio::io::duplex(4 << 20);
        let service = service_fn(move |req: Request<Incoming>| {
            let record = Arc::clone(&record);
            let body_refused = Arc::clone(&body_flag);
            async move {
                let (parts, body) = req.into_parts();
                // An absolute-form target with an empty path is `/` (RFC 9112 §3.2.2),
                // which hyper leaves to the application.
                // A scheme other than http(s), or an empty host (RFC 9110 §4.2.1: to be
                // rejected), is kept whole: it names no origin form.
                let foreign = parts.uri.scheme_str().is_some_and(|s| {
                    !s.eq_ignore_ascii_case("http") && !s.eq_ignore_ascii_case("https")
                }) || parts.uri.authority().is_some_and(|a| a.host().is_empty());
                let target = match parts.uri.path_and_query().map(|p| p.as_str()) {
                    _ if foreign => parts.uri.to_string(),
                    Some(p) if p.starts_with('?') => format!("/{p}"),
                    Some(p) => p.to_owned(),
                    None => parts.uri.to_string(),
                };
                let mut parsed = Parsed {
                    method: parts.method,
                    target,
                    version: parts.version,
                    headers: headers_of(&parts.headers),
                    body: Vec::new(),
                    complete: false,
                };
                let index = {
                    let mut r = record.lock().expect("lock");
                    r.push(parsed.clone());
                    r.len() - 1
                };
                let mut body = body;
                loop {
                    match body.frame().await {
                        Some(Ok(frame)) => {
                            if let Some(data) = frame.data_ref() {
                                parsed.body.extend_from_slice(data);
                            }
                        }
                        // A body hyper cannot decode is a refusal (input that ran out
                        // is not).
                        Some(Err(e)) => {
                            if !e.is_incomplete_message() && !ran_out(&e) {
                                *body_refused.lock().expect("lock") = true;
                            }
                            break;
                        }
                        None => {
                            parsed.complete = true;
                            break;
                        }
                    }
                }
                record.lock().expect("lock")[index] = parsed;
                Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
            }
        });
        let conn = http1::Builder::new()
            .half_close(true)
            .serve_connection(TokioIo::new(server), service);
        let server = tokio::spawn(conn);
        let _ = client.write_all(&input).await;
        let _ = client.shutdown().await;
        let mut sink = Vec::new();
        let _ = client.read_to_end(&mut sink).await;
        match server.await {
            Ok(Ok(())) => false,
            // Anything but input that simply ran out is a refusal (a head or a chunked
            // body hyper cannot read).
            Ok(Err(e)) => !e.is_incomplete_message(),
            Err(_) => true,
        }
    });
    let refused = refused || *body_refused.lock().expect("lock");
    let mut requests = seen.lock().expect("lock").clone();
    // A request whose body did not arrive whole, then refused, is dropped as above.
    if refused && requests.last().is_some_and(|r| !r.complete) {
        requests.pop();
    }
    Outcome { requests, refused }
}

/// Whether a hyper body error is the input running out (an unexpected EOF), not a refusal.
fn ran_out(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// What a case expects of the two parsers.
enum Expect {
    Same,
    /// switchback refuses what hyper accepts, for this reason.
    SwitchbackRefuses(&'static str),
    /// The same requests, except that switchback keeps repeated header fields hyper folds.
    FieldsAsReceived(&'static str),
}

/// `outcome` with repeated identical header fields folded into one, as hyper does.
fn folded(mut outcome: Outcome) -> Outcome {
    for r in &mut outcome.requests {
        let mut seen: Vec<(String, Vec<u8>)> = Vec::new();
        r.headers.retain(|h| {
            let dup = seen.contains(h);
            seen.push(h.clone());
            !dup
        });
    }
    outcome
}

/// The corpus: valid requests and edge cases, each named.
fn corpus() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use Expect::*;
    let v = |s: &str| s.as_bytes().to_vec();
    vec![
        ("simple GET", v("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"), Same),
        (
            "POST with a length",
            v("POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"),
            Same,
        ),
        (
            "chunked with extensions and trailers",
            v("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6;a;b=\"q\"\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"),
            Same,
        ),
        (
            "absolute-form target",
            v("GET http://example.com/v1/models?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"),
            Same,
        ),
        ("HTTP/1.0 without Host", v("GET /healthz HTTP/1.0\r\n\r\n"), Same),
        (
            "HTTP/1.0 keep-alive with a body",
            v("POST /x HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi"),
            Same,
        ),
        (
            "pipelined pair",
            v("POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: a\r\n\r\n"),
            Same,
        ),
        (
            "repeated equal Content-Length",
            v("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
            FieldsAsReceived("hyper folds equal repeated Content-Length fields into one; switchback keeps the fields as they arrived (the framing is the same, and the gateway never forwards them)"),
        ),
        (
            "differing Content-Length",
            v("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
            Same,
        ),
        (
            "a list of equal lengths in one Content-Length",
            v("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\na"),
            Same,
        ),
        (
            "Content-Length with a sign",
            v("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc"),
            Same,
        ),
        (
            "obs-fold",
            v("GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n"),
            Same,
        ),
        (
            "bare LF line endings in the head",
            v("GET / HTTP/1.1\nHost: a\n\n"),
            Same,
        ),
        ("a space before the colon", v("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), Same),
        (
            "an empty element in Transfer-Encoding",
            v("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n1\r\na\r\n0\r\n\r\n"),
            Same,
        ),
        (
            "an empty element before chunked",
            v("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"),
            SwitchbackRefuses("RFC 9110 §5.6.1 lets a list skip an empty element, but a framing field with one is refused wherever it is"),
        ),
        ("not HTTP", v("HELLO\r\n\r\n"), Same),
        ("HTTP/2 preface", v("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Same),
        ("an incomplete head", v("GET / HTTP/1.1\r\nHost: a\r\n"), Same),
        (
            "an incomplete body",
            v("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"),
            Same,
        ),
        (
            "chunked, the last chunk missing",
            v("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"),
            Same,
        ),
        (
            "HTTP/1.1 without Host",
            v("GET /healthz HTTP/1.1\r\n\r\n"),
            SwitchbackRefuses("RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without Host"),
        ),
        (
            "two Host fields",
            v("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            SwitchbackRefuses("RFC 9112 §3.2: more than one Host is a 400"),
        ),
        (
            "Content-Length and Transfer-Encoding",
            v("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            SwitchbackRefuses("RFC 9112 §6.3: the pair is how requests are smuggled; refused outright, never resolved in favour of chunked"),
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            v("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            Same,
        ),
        (
            "bare LF in chunked framing",
            v("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n"),
            Same,
        ),
        (
            "a control byte in a chunk extension",
            v("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;\u{1}x\r\nabc\r\n0\r\n\r\n"),
            SwitchbackRefuses("RFC 9112 §7.1.1: an extension is tokens and quoted strings; control bytes in framing are refused, not skipped"),
        ),
        (
            "a target in no request-target form",
            v("GET , HTTP/1.1\r\nHost: a\r\n\r\n"),
            SwitchbackRefuses("RFC 9112 §3.2: origin, absolute, authority (CONNECT) or asterisk form; anything else is a 400"),
        ),
        (
            "a quote in the target",
            v("GET /v1/models?x=\"1\" HTTP/1.1\r\nHost: a\r\n\r\n"),
            Same,
        ),
        (
            "an absolute-form target with an empty path",
            v("GET http://h.example?x=1 HTTP/1.1\r\nHost: h.example\r\n\r\n"),
            Same,
        ),
        (
            "an empty Host",
            v("GET / HTTP/1.1\r\nHost:\r\n\r\n"),
            Same,
        ),
        (
            "Expect: 100-continue",
            v("POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"),
            Same,
        ),
    ]
}

#[test]
fn the_corpus_parses_as_hyper_parses_it_or_differs_as_documented() {
    let mut report = Vec::new();
    for (name, bytes, expect) in corpus() {
        let ours = switchback(&bytes);
        let theirs = hyper(&bytes);
        match expect {
            Expect::Same if ours == theirs => {}
            Expect::Same => {
                report.push(format!("{name}: switchback {ours:?}\n    hyper {theirs:?}"))
            }
            Expect::FieldsAsReceived(why) => {
                if ours == theirs || folded(ours.clone()) != theirs {
                    report.push(format!(
                        "{name} (expected: fields as received: {why}): switchback {ours:?}\n    hyper {theirs:?}"
                    ));
                }
            }
            Expect::SwitchbackRefuses(why) => {
                let agrees_until = ours.requests
                    == theirs.requests[..ours.requests.len().min(theirs.requests.len())];
                if !(ours.refused && !theirs.refused && agrees_until) {
                    report.push(format!(
                        "{name} (expected: switchback refuses, hyper accepts: {why}): switchback {ours:?}\n    hyper {theirs:?}"
                    ));
                }
            }
        }
    }
    assert!(report.is_empty(), "divergences:\n{}", report.join("\n"));
}

/// A valid request: method, target, version, extra headers, and a body framed by length
/// or chunked in random pieces (with an extension now and then).
fn request() -> impl Strategy<Value = Vec<u8>> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);
    let target = prop::sample::select(vec![
        "/",
        "/v1/chat/completions",
        "/v1/models?limit=2&x=%20",
        "http://h.example/p?q",
        "/a/b/c;x",
    ]);
    let version = prop::bool::ANY;
    let headers = prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,10}", "[ -~]{0,24}"), 0..6);
    let body = prop::collection::vec(any::<u8>(), 0..300);
    let chunked = prop::bool::ANY;
    let splits = prop::collection::vec(1usize..64, 1..8);
    (method, target, version, headers, body, chunked, splits).prop_map(
        |(method, target, http11, headers, body, chunked, splits)| {
            let mut out = format!(
                "{method} {target} HTTP/1.{}\r\nHost: h.example\r\n",
                u8::from(http11)
            );
            for (k, v) in headers {
                let k = k.to_ascii_lowercase();
                if [
                    "host",
                    "content-length",
                    "transfer-encoding",
                    "connection",
                    "expect",
                ]
                .contains(&k.as_str())
                {
                    continue;
                }
                out.push_str(&format!("{k}: {}\r\n", v.trim()));
            }
            let mut bytes;
            if chunked && http11 {
                out.push_str("Transfer-Encoding: chunked\r\n\r\n");
                bytes = out.into_bytes();
                let mut rest = &body[..];
                let mut i = 0;
                while !rest.is_empty() {
                    let n = splits[i % splits.len()].min(rest.len());
                    let ext = if i % 3 == 1 { ";ext=1" } else { "" };
                    bytes.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
                    bytes.extend_from_slice(&rest[..n]);
                    bytes.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                    i += 1;
                }
                bytes.extend_from_slice(b"0\r\n\r\n");
            } else {
                if !body.is_empty() || method == "POST" {
                    out.push_str(&format!("Content-Length: {}\r\n", body.len()));
                }
                if !http11 {
                    out.push_str("Connection: keep-alive\r\n");
                }
                out.push_str("\r\n");
                bytes = out.into_bytes();
                bytes.extend_from_slice(&body);
            }
            bytes
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Generated streams of one to three valid pipelined requests parse alike.
    #[test]
    fn generated_request_streams_parse_alike(reqs in prop::collection::vec(request(), 1..4)) {
        let bytes: Vec<u8> = reqs.concat();
        let ours = switchback(&bytes);
        let theirs = hyper(&bytes);
        prop_assert_eq!(ours, theirs);
    }
}

/// Whether `ours` differs from `theirs` only as docs/runtimes.md says switchback may: it
/// refuses a request hyper served (the requests before it agree), and that request lacks
/// exactly one `Host` on HTTP/1.1, carries both `Content-Length` and `Transfer-Encoding`,
/// is chunked (switchback allows no control bytes in chunk extensions), has an empty
/// element in `Transfer-Encoding` (`,chunked`, `chunked,`), or has a target in no
/// request-target form; or it keeps repeated fields hyper folds.
fn documented_difference(ours: &Outcome, theirs: &Outcome) -> bool {
    if folded(ours.clone()) == *theirs {
        return true;
    }
    let n = ours.requests.len();
    if !ours.refused || theirs.requests.len() <= n || ours.requests[..] != theirs.requests[..n] {
        return false;
    }
    let refused = &theirs.requests[n];
    let count = |name: &str| refused.headers.iter().filter(|(k, _)| k == name).count();
    let chunked = refused
        .headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case(b"chunked"));
    let empty_coding = refused.headers.iter().any(|(k, v)| {
        k == "transfer-encoding" && v.split(|b| *b == b',').any(|e| e.trim_ascii().is_empty())
    });
    (refused.version == Version::HTTP_11 && count("host") != 1)
        || (count("content-length") > 0 && count("transfer-encoding") > 0)
        || chunked
        || empty_coding
        || !(refused.target.starts_with('/') || refused.target == "*")
}

/// Bytes that break HTTP framing in interesting ways.
const MUTATIONS: &[u8] = &[
    b'\r', b'\n', b' ', b':', b';', b'0', b'a', b',', b'\t', 0, 0x7f, 0x80, b'-', b'"',
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Valid streams with one or two bytes replaced: both parsers read the same requests
    /// and refuse at the same point, or differ only as documented.
    #[test]
    fn mutated_request_streams_parse_alike_or_as_documented(
        req in request(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(MUTATIONS)), 1..3),
    ) {
        let mut bytes = req;
        for (at, b) in mutations {
            let at = at.index(bytes.len());
            bytes[at] = b;
        }
        let ours = switchback(&bytes);
        let theirs = hyper(&bytes);
        prop_assert!(
            ours == theirs || documented_difference(&ours, &theirs),
            "{:?}\n  switchback {:?}\n  hyper {:?}",
            String::from_utf8_lossy(&bytes),
            ours,
            theirs
        );
    }
}
