//! Reading back what a connection wrote to its client: the requests the client sent (by the
//! same codec the driver uses) and the responses it got, checked against each other.

use http::{Method, Version};
use switchback_core::response::accepted_request_id;
use switchback_core::server::{ReadEvent, RequestReader, ServerLimits};

/// One request head the client sent, as the server codec reads it.
#[derive(Debug)]
pub(crate) struct SentRequest {
    method: Method,
    version: Version,
    id: Option<String>,
}

/// The request heads in the client's bytes, in order.
#[derive(Debug)]
pub(crate) struct RequestsSeen {
    heads: Vec<SentRequest>,
}

impl RequestsSeen {
    /// Reads `sent` with the limits the connection check serves with.
    pub(crate) fn from_client_bytes(sent: &[u8]) -> RequestsSeen {
        let mut reader = RequestReader::new(ServerLimits {
            max_head_bytes: 2048,
            max_headers: 32,
            max_body_bytes: 4096,
            ..ServerLimits::default()
        });
        reader.push(sent);
        let mut heads = Vec::new();
        while let Some(ev) = reader.poll_event() {
            match ev {
                ReadEvent::Head(h) => heads.push(SentRequest {
                    method: h.method.clone(),
                    version: h.version,
                    id: accepted_request_id(&h.headers).map(str::to_owned),
                }),
                ReadEvent::End => reader.next_request(),
                ReadEvent::Body(_) => {}
                ReadEvent::Error(_) => break,
            }
        }
        RequestsSeen { heads }
    }
}

/// Checks every response in `received`: well-formed, in order, in the request's version,
/// carrying the request's id, at most one per request plus one refusal, nothing after a
/// response that closes, and complete unless `client_left`.
pub(crate) fn check_responses(received: &[u8], seen: &RequestsSeen, client_left: bool) {
    let mut rest = received;
    let mut index = 0;
    while !rest.is_empty() {
        let request = seen.heads.get(index);
        let Some((used, response)) = read_response(rest, request, client_left) else {
            return;
        };
        rest = &rest[used..];
        if response.interim {
            continue;
        }
        assert!(
            index <= seen.heads.len(),
            "response {} to {} requests",
            index + 1,
            seen.heads.len()
        );
        // The client's bytes may hold a request the connection never read (it refused a
        // partial head before it arrived): a response that does not carry the request's
        // id must be such a refusal, closing the connection.
        if let Some(req) = request {
            match &req.id {
                Some(id) if response.id.as_deref() == Some(id.as_str()) => {
                    assert_eq!(response.version, req.version, "response {index} version");
                }
                Some(id) => assert!(
                    response.closes,
                    "response {index} answers another request than {id}, and does not close"
                ),
                None => {}
            }
        }
        if response.closes {
            assert!(
                rest.is_empty(),
                "{} bytes after a response that closes the connection",
                rest.len()
            );
        }
        index += 1;
    }
}

struct Parsed {
    interim: bool,
    version: Version,
    id: Option<String>,
    closes: bool,
}

/// Reads one response from the front of `buf`: `None` when it is cut short (allowed only
/// when the client left).
fn read_response(
    buf: &[u8],
    request: Option<&SentRequest>,
    client_left: bool,
) -> Option<(usize, Parsed)> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            assert!(
                client_left,
                "a response head cut short: {:?}",
                String::from_utf8_lossy(buf)
            );
            return None;
        }
        Err(e) => panic!(
            "a malformed response ({e}): {:?}",
            String::from_utf8_lossy(buf)
        ),
    };
    let status = resp.code.unwrap_or(0);
    assert!((100..=599).contains(&status), "status {status}");
    let version = if resp.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let field = |name: &str| {
        resp.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .collect::<Vec<_>>()
    };
    assert!(
        field("content-length").len() <= 1,
        "two Content-Length fields"
    );
    assert!(
        field("content-length").is_empty() || field("transfer-encoding").is_empty(),
        "Content-Length and Transfer-Encoding together"
    );
    if (100..200).contains(&status) {
        assert_eq!(status, 100, "an interim response other than 100 Continue");
        return Some((
            head_len,
            Parsed {
                interim: true,
                version,
                id: None,
                closes: false,
            },
        ));
    }
    let closes = field("connection")
        .iter()
        .any(|v| v.eq_ignore_ascii_case("close"));
    let id = field("x-request-id").into_iter().next();
    assert!(id.is_some(), "a response without x-request-id");
    let body = &buf[head_len..];
    let bodiless =
        request.is_some_and(|r| r.method == Method::HEAD) || status == 204 || status == 304;
    let body_len = if bodiless {
        Some(0)
    } else if let Some(len) = field("content-length").first() {
        let len: usize = len
            .parse()
            .unwrap_or_else(|_| panic!("Content-Length {len:?}"));
        (body.len() >= len).then_some(len)
    } else if field("transfer-encoding").iter().any(|v| v == "chunked") {
        assert_eq!(version, Version::HTTP_11, "a chunked HTTP/1.0 response");
        chunked_len(body)
    } else {
        assert!(
            closes,
            "a close-delimited response without Connection: close"
        );
        Some(body.len())
    };
    let Some(body_len) = body_len else {
        assert!(client_left, "a response body cut short");
        return None;
    };
    Some((
        head_len + body_len,
        Parsed {
            interim: false,
            version,
            id,
            closes,
        },
    ))
}

/// The length of the chunked body at the front of `body`, if it is complete; panics on
/// framing errors.
fn chunked_len(body: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line_end = at + find(&body[at..], b"\r\n")?;
        let size_text = std::str::from_utf8(&body[at..line_end]).expect("chunk size text");
        let size = usize::from_str_radix(size_text, 16)
            .unwrap_or_else(|_| panic!("chunk size {size_text:?}"));
        at = line_end + 2;
        if size == 0 {
            if body.len() < at + 2 {
                return None;
            }
            assert_eq!(&body[at..at + 2], b"\r\n", "the chunked body's last CRLF");
            return Some(at + 2);
        }
        if body.len() < at + size + 2 {
            return None;
        }
        assert_eq!(
            &body[at + size..at + size + 2],
            b"\r\n",
            "CRLF after chunk data"
        );
        at += size + 2;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
