//! How an upstream response body is delimited (RFC 9112 §6.3), and whether the connection
//! may carry another exchange afterwards.
//!
//! The rules, in order:
//!
//! 1. A response that cannot have a body (to HEAD; 1xx, 204, 304) has none, whatever its
//!    headers say.
//! 2. `Transfer-Encoding` on an HTTP/1.0 response: the framing is faulty (§6.1: "MUST treat
//!    the message as if the framing is faulty, even if a Content-Length is present, and close
//!    the connection after processing the message"): read to close. This is what Python's
//!    `http.server` based mocks send for SSE: `HTTP/1.0 200`, `Transfer-Encoding: chunked`,
//!    then raw, unchunked bytes and a close.
//! 3. `Transfer-Encoding` whose final coding is `chunked`: dechunk; with a `Content-Length`
//!    beside it (§6.3 rule 3: "ought to be handled as an error") the connection is not
//!    reused. Any other final coding: read to close (§6.3 rule 4).
//! 4. `Content-Length`: that many bytes (repeated equal values are one; differing or invalid
//!    ones are a malformed response).
//! 5. Otherwise: read to close.

use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, StatusCode, Version};

/// How one response's body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyPlan {
    /// No body bytes.
    None,
    /// Exactly this many bytes.
    Length(u64),
    Chunked,
    /// Until the peer closes the connection.
    ToClose,
}

/// The body plan, and whether the connection may be reused after a complete body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Framing {
    pub(super) body: BodyPlan,
    pub(super) reusable: bool,
}

/// Whether a response to `method` with `status` may carry a body at all (RFC 9110 §6.4.1).
pub(super) fn body_allowed(method: &Method, status: StatusCode) -> bool {
    !(method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || (method == Method::CONNECT && status.is_success()))
}

/// The framing of a final response; `Err` names what makes it malformed.
pub(super) fn decide(
    method: &Method,
    status: StatusCode,
    version: Version,
    headers: &HeaderMap,
) -> Result<Framing, &'static str> {
    let keep_alive = keep_alive(version, headers) && status != StatusCode::SWITCHING_PROTOCOLS;
    if !body_allowed(method, status) {
        return Ok(Framing {
            body: BodyPlan::None,
            reusable: keep_alive,
        });
    }
    let to_close = Framing {
        body: BodyPlan::ToClose,
        reusable: false,
    };
    if headers.contains_key(TRANSFER_ENCODING) {
        if version == Version::HTTP_10 || !final_coding_is_chunked(headers) {
            return Ok(to_close);
        }
        return Ok(Framing {
            body: BodyPlan::Chunked,
            reusable: keep_alive && !headers.contains_key(CONTENT_LENGTH),
        });
    }
    match content_length(headers)? {
        Some(n) => Ok(Framing {
            body: BodyPlan::Length(n),
            reusable: keep_alive,
        }),
        None => Ok(to_close),
    }
}

/// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
fn keep_alive(version: Version, headers: &HeaderMap) -> bool {
    let mut close = false;
    let mut keep = false;
    for value in headers.get_all(CONNECTION) {
        for token in value.as_bytes().split(|b| *b == b',') {
            let token = token.trim_ascii();
            close |= token.eq_ignore_ascii_case(b"close");
            keep |= token.eq_ignore_ascii_case(b"keep-alive");
        }
    }
    !close && (version != Version::HTTP_10 || keep)
}

/// Whether the last coding listed across all `Transfer-Encoding` lines is `chunked`.
fn final_coding_is_chunked(headers: &HeaderMap) -> bool {
    let mut last: Option<&[u8]> = None;
    for value in headers.get_all(TRANSFER_ENCODING) {
        for coding in value.as_bytes().split(|b| *b == b',') {
            let coding = coding.trim_ascii();
            if !coding.is_empty() {
                last = Some(coding);
            }
        }
    }
    last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
}

/// The `Content-Length`, if any: every value (and list item) must be the same `1*DIGIT`.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, &'static str> {
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for item in value.as_bytes().split(|b| *b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
                return Err("invalid Content-Length");
            }
            let n: u64 = std::str::from_utf8(item)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("invalid Content-Length")?;
            if length.is_some_and(|prev| prev != n) {
                return Err("differing Content-Length values");
            }
            length = Some(n);
        }
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    const OK: StatusCode = StatusCode::OK;

    fn plan(version: Version, h: &[(&'static str, &'static str)]) -> Framing {
        decide(&Method::POST, OK, version, &headers(h)).unwrap()
    }

    #[test]
    fn length_and_keep_alive() {
        assert_eq!(
            plan(Version::HTTP_11, &[("content-length", "3")]),
            Framing {
                body: BodyPlan::Length(3),
                reusable: true
            }
        );
        assert!(!plan(Version::HTTP_10, &[("content-length", "3")]).reusable);
        assert!(
            plan(
                Version::HTTP_10,
                &[("content-length", "3"), ("connection", "keep-alive")]
            )
            .reusable
        );
        assert!(
            !plan(
                Version::HTTP_11,
                &[("content-length", "3"), ("connection", "close")]
            )
            .reusable
        );
    }

    #[test]
    fn http10_with_transfer_encoding_reads_to_close() {
        for h in [
            &[("transfer-encoding", "chunked")][..],
            &[("transfer-encoding", "chunked"), ("content-length", "5")],
        ] {
            assert_eq!(plan(Version::HTTP_10, h).body, BodyPlan::ToClose);
        }
    }

    #[test]
    fn http11_final_coding_decides() {
        assert_eq!(
            plan(Version::HTTP_11, &[("transfer-encoding", "gzip, Chunked")]).body,
            BodyPlan::Chunked
        );
        for h in [
            &[("transfer-encoding", "chunked, gzip")][..],
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "gzip"),
            ],
            &[("transfer-encoding", "gzip"), ("content-length", "4")],
        ] {
            let f = plan(Version::HTTP_11, h);
            assert!(f.body == BodyPlan::ToClose && !f.reusable, "{h:?}");
        }
    }

    #[test]
    fn chunked_with_content_length_is_not_reused() {
        let f = plan(
            Version::HTTP_11,
            &[("transfer-encoding", "chunked"), ("content-length", "4")],
        );
        assert_eq!(f.body, BodyPlan::Chunked);
        assert!(!f.reusable);
    }

    #[test]
    fn bodiless_responses_are_left_alone() {
        let h = headers(&[("transfer-encoding", "chunked"), ("content-length", "9")]);
        for (method, status) in [
            (Method::HEAD, OK),
            (Method::POST, StatusCode::NO_CONTENT),
            (Method::GET, StatusCode::NOT_MODIFIED),
        ] {
            assert_eq!(
                decide(&method, status, Version::HTTP_11, &h).unwrap().body,
                BodyPlan::None
            );
        }
    }

    #[test]
    fn bad_lengths_are_malformed() {
        for v in ["-1", "1,2", "", "0x1", "99999999999999999999"] {
            assert!(
                decide(
                    &Method::POST,
                    OK,
                    Version::HTTP_11,
                    &headers(&[("content-length", v)])
                )
                .is_err(),
                "{v:?}"
            );
        }
        assert_eq!(
            plan(Version::HTTP_11, &[("content-length", "7, 7")]).body,
            BodyPlan::Length(7)
        );
    }
}
