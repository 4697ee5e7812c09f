//! Response framing corrections on top of ureq-proto (RFC 9112 §6.1 and §6.3).
//!
//! ureq-proto decides how a response body is delimited from `Content-Length` and from whether
//! `chunked` appears anywhere in `Transfer-Encoding`. It gets the common cases right, including
//! HTTP/1.0 without `Content-Length` (read to close). It differs from RFC 9112 in three cases,
//! which this module detects so the exchange can override it:
//!
//! 1. An HTTP/1.0 response with `Transfer-Encoding` (§6.1: "MUST treat the message as if the
//!    framing is faulty, even if a Content-Length is present, and close the connection after
//!    processing the message"). ureq-proto ignores the header on HTTP/1.0 but still honours a
//!    `Content-Length` next to it; we read to close. This is what Python's `http.server` based
//!    mocks send for SSE: `HTTP/1.0 200`, `Transfer-Encoding: chunked`, then raw, unchunked
//!    bytes and a close.
//! 2. An HTTP/1.1 response whose final transfer coding is not `chunked` (§6.3 rule 4: the body
//!    is read until the server closes). ureq-proto dechunks whenever `chunked` appears at all,
//!    or uses `Content-Length` when it does not.
//! 3. An HTTP/1.1 response with both `Transfer-Encoding: chunked` and `Content-Length` (§6.3
//!    rule 3: chunked wins, but the message "ought to be handled as an error"). ureq-proto
//!    dechunks, which we keep, but the connection is not reused.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, StatusCode, Version};

/// How the exchange must deviate from ureq-proto's framing for one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Correction {
    /// Ignore ureq-proto's body reader and read the body until the peer closes.
    pub(super) read_to_close: bool,
    /// Never reuse the connection after this response.
    pub(super) must_close: bool,
}

/// Whether a response to `method` with `status` may carry a body at all (RFC 9110 §6.4.1).
pub(super) fn body_allowed(method: &Method, status: StatusCode) -> bool {
    !(method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || (method == Method::CONNECT && status.is_success()))
}

/// The correction for a final response, from its request method, status, version and headers.
pub(super) fn correction(
    method: &Method,
    status: StatusCode,
    version: Version,
    headers: &HeaderMap,
) -> Correction {
    if !body_allowed(method, status) || !headers.contains_key(TRANSFER_ENCODING) {
        return Correction::default();
    }
    if version == Version::HTTP_10 {
        return Correction {
            read_to_close: true,
            must_close: true,
        };
    }
    if !final_coding_is_chunked(headers) {
        return Correction {
            read_to_close: true,
            must_close: true,
        };
    }
    Correction {
        read_to_close: false,
        must_close: headers.contains_key(CONTENT_LENGTH),
    }
}

/// Whether the last coding listed across all `Transfer-Encoding` lines is `chunked`.
fn final_coding_is_chunked(headers: &HeaderMap) -> bool {
    let mut last = None;
    for value in headers.get_all(TRANSFER_ENCODING) {
        let Ok(text) = value.to_str() else {
            return false;
        };
        for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            last = Some(coding);
        }
    }
    last.is_some_and(|c| c.eq_ignore_ascii_case("chunked"))
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

    #[test]
    fn no_transfer_encoding_needs_no_correction() {
        let h = headers(&[("content-length", "3")]);
        assert_eq!(
            correction(&Method::POST, OK, Version::HTTP_10, &h),
            Correction::default()
        );
    }

    #[test]
    fn http10_with_transfer_encoding_reads_to_close() {
        for h in [
            headers(&[("transfer-encoding", "chunked")]),
            headers(&[("transfer-encoding", "chunked"), ("content-length", "5")]),
        ] {
            let c = correction(&Method::POST, OK, Version::HTTP_10, &h);
            assert!(c.read_to_close && c.must_close);
        }
    }

    #[test]
    fn http11_final_coding_decides() {
        let chunked = headers(&[("transfer-encoding", "gzip, Chunked")]);
        assert_eq!(
            correction(&Method::POST, OK, Version::HTTP_11, &chunked),
            Correction::default()
        );
        for h in [
            headers(&[("transfer-encoding", "chunked, gzip")]),
            headers(&[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "gzip"),
            ]),
            headers(&[("transfer-encoding", "gzip"), ("content-length", "4")]),
        ] {
            let c = correction(&Method::POST, OK, Version::HTTP_11, &h);
            assert!(c.read_to_close && c.must_close, "{h:?}");
        }
    }

    #[test]
    fn chunked_with_content_length_is_not_reused() {
        let h = headers(&[("transfer-encoding", "chunked"), ("content-length", "4")]);
        let c = correction(&Method::POST, OK, Version::HTTP_11, &h);
        assert!(!c.read_to_close && c.must_close);
    }

    #[test]
    fn bodiless_responses_are_left_alone() {
        let h = headers(&[("transfer-encoding", "chunked")]);
        for (method, status) in [
            (Method::HEAD, OK),
            (Method::POST, StatusCode::NO_CONTENT),
            (Method::GET, StatusCode::NOT_MODIFIED),
        ] {
            assert_eq!(
                correction(&method, status, Version::HTTP_10, &h),
                Correction::default()
            );
        }
    }
}
