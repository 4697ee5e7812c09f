//! Parsing one request head and deciding how its body is framed (RFC 9112 §3, §6).

use bytes::BytesMut;
use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Method, StatusCode, Version};

use super::error::HttpError;
use super::limits::ServerLimits;
use crate::head_fields::FieldSpans;

/// The most header fields a head may carry, whatever [`ServerLimits::max_headers`] says.
pub(crate) const HEADER_SLOTS: usize = 128;

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (neither `Content-Length` nor `Transfer-Encoding`).
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: Method,
    /// The request target in origin form (`/path?query`); an absolute-form target
    /// (`http://host/path`) is reduced to its path and query, `*` is kept as is.
    pub target: String,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// Header fields as received (names lower-cased).
    pub headers: HeaderMap,
    /// How the body is framed.
    pub framing: BodyFraming,
    /// The client allows the connection to carry another request after this one:
    /// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request with a body.
    pub expect_continue: bool,
}

impl RequestHead {
    /// The path without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// Whether a body follows the head.
    pub fn has_body(&self) -> bool {
        match self.framing {
            BodyFraming::None | BodyFraming::Length(0) => false,
            BodyFraming::Length(_) | BodyFraming::Chunked => true,
        }
    }
}

/// Parses a complete head at the start of `buf` and takes its bytes out of it: `Ok(Some)`,
/// `Ok(None)` when more bytes are needed (nothing is taken), or the error to answer. Header
/// values share the head's bytes. Never panics.
pub(crate) fn parse(
    buf: &mut BytesMut,
    limits: &ServerLimits,
) -> Result<Option<RequestHead>, HttpError> {
    let too_large = || HttpError::head_too_large(limits.max_head_bytes, limits.max_headers);
    let mut slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
    let allowed = limits.max_headers.min(HEADER_SLOTS);
    let mut req = httparse::Request::new(&mut slots[..allowed]);
    let len = match req.parse(&buf[..]) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(too_large()),
        Err(httparse::Error::Version) if names_other_http_version(buf) => {
            return Err(HttpError::new(
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "http_version_not_supported",
                "Only HTTP/1.0 and HTTP/1.1 are served.",
            ))
        }
        Err(e) => return Err(HttpError::malformed(e)),
    };
    if len > limits.max_head_bytes {
        return Err(too_large());
    }
    let method = req
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or_else(|| HttpError::malformed("invalid method"))?;
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let target = origin_form(req.path.unwrap_or(""), &method)?;
    let spans = FieldSpans::record(&buf[..], req.headers);
    let head_bytes = buf.split_to(len).freeze();
    let headers = spans.into_map(&head_bytes).map_err(HttpError::malformed)?;
    let framing = framing(&headers, version)?;
    let host_count = headers.get_all(HOST).iter().count();
    if host_count > 1 || (version == Version::HTTP_11 && host_count == 0) {
        return Err(HttpError::malformed(
            "an HTTP/1.1 request needs exactly one Host header",
        ));
    }
    let (close, keep) = connection_tokens(&headers);
    let keep_alive = !close && (version == Version::HTTP_11 || keep);
    let expect_continue = expects_continue(&headers)?
        && version == Version::HTTP_11
        && framing != BodyFraming::None
        && framing != BodyFraming::Length(0);
    Ok(Some(RequestHead {
        method,
        target,
        version,
        headers,
        framing,
        keep_alive,
        expect_continue,
    }))
}

/// Whether the request line ends in a well-formed `HTTP/d.d` that is not 1.0 or 1.1 (505);
/// anything else in that place is simply not HTTP (400).
fn names_other_http_version(buf: &[u8]) -> bool {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    let version = line
        .trim_ascii()
        .rsplit(|b| *b == b' ')
        .next()
        .unwrap_or_default();
    matches!(version, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
        if major.is_ascii_digit() && minor.is_ascii_digit())
}

/// The target in origin form. RFC 9112 §3.2: origin-form (`/p?q`), absolute-form
/// (`http://h/p?q`, which a server must accept), asterisk-form for `OPTIONS`; authority-form
/// (CONNECT) is not served. The target must be a valid URI reference as the `http` crate
/// reads one (RFC 3986, leniently: no `"`, no control bytes, a well-formed authority), the same
/// check hyper applies; an absolute-form target with an empty path becomes `/`.
fn origin_form(raw: &str, method: &Method) -> Result<String, HttpError> {
    let invalid = || HttpError::malformed(format_args!("invalid request target {raw:?}"));
    if raw.starts_with('/') {
        http::uri::PathAndQuery::try_from(raw).map_err(|_| invalid())?;
        return Ok(raw.to_owned());
    }
    if raw == "*" && method == Method::OPTIONS {
        return Ok(raw.to_owned());
    }
    let lower = raw
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(HttpError::malformed(format_args!(
            "unsupported request target {raw:?}"
        )));
    }
    let uri = http::Uri::try_from(raw).map_err(|_| invalid())?;
    if uri.authority().is_none_or(|a| a.host().is_empty()) {
        return Err(invalid());
    }
    let path = uri.path();
    let path = if path.is_empty() { "/" } else { path };
    Ok(match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    })
}

/// The body framing, refusing every combination that two parsers could read differently.
fn framing(headers: &HeaderMap, version: Version) -> Result<BodyFraming, HttpError> {
    let has_te = headers.contains_key(TRANSFER_ENCODING);
    let has_cl = headers.contains_key(CONTENT_LENGTH);
    if has_te {
        if has_cl {
            return Err(HttpError::ambiguous_framing(
                "Content-Length and Transfer-Encoding together",
            ));
        }
        if version == Version::HTTP_10 {
            return Err(HttpError::ambiguous_framing(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        let mut codings = Vec::new();
        for value in headers.get_all(TRANSFER_ENCODING) {
            let text = value
                .to_str()
                .map_err(|_| HttpError::malformed("invalid Transfer-Encoding"))?;
            for coding in text.split(',').map(|c| c.trim().to_ascii_lowercase()) {
                // An empty element (`chunked,`) is refused, as hyper does: a framing field
                // is read one strict way so no other parser in front can read it another.
                if coding.is_empty() {
                    return Err(HttpError::ambiguous_framing(
                        "empty element in Transfer-Encoding",
                    ));
                }
                codings.push(coding);
            }
        }
        let chunked = codings.iter().filter(|c| *c == "chunked").count();
        return match codings.last().map(String::as_str) {
            Some("chunked") if chunked == 1 && codings.len() == 1 => Ok(BodyFraming::Chunked),
            Some("chunked") if chunked == 1 => Err(HttpError::new(
                StatusCode::NOT_IMPLEMENTED,
                "unsupported_transfer_coding",
                format!(
                    "Transfer-Encoding {} is not supported; send the body chunked only.",
                    codings.join(", ")
                ),
            )),
            _ => Err(HttpError::ambiguous_framing(
                "Transfer-Encoding must end with exactly one chunked",
            )),
        };
    }
    if !has_cl {
        return Ok(BodyFraming::None);
    }
    // Each field is one length: a list (`3, 3`, which RFC 9110 §8.6 lets a recipient
    // either refuse or fold) is refused, as hyper and nginx do, so no proxy in front can
    // read the framing differently. Repeated fields with the same length are one length.
    let mut length: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let item = value.as_bytes().trim_ascii();
        let n = parse_length(item).ok_or_else(|| {
            HttpError::malformed(format_args!(
                "invalid Content-Length {:?}",
                String::from_utf8_lossy(item)
            ))
        })?;
        match length {
            Some(prev) if prev != n => {
                return Err(HttpError::ambiguous_framing(
                    "differing Content-Length values",
                ))
            }
            _ => length = Some(n),
        }
    }
    Ok(length.map_or(BodyFraming::None, BodyFraming::Length))
}

/// `1*DIGIT` as a u64; `None` for anything else (signs, spaces, overflow, empty).
fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Whether the `Connection` header lists `close`, and whether it lists `keep-alive`.
fn connection_tokens(headers: &HeaderMap) -> (bool, bool) {
    let mut close = false;
    let mut keep = false;
    for value in headers.get_all(CONNECTION) {
        for token in value.as_bytes().split(|b| *b == b',') {
            let token = token.trim_ascii();
            close |= token.eq_ignore_ascii_case(b"close");
            keep |= token.eq_ignore_ascii_case(b"keep-alive");
        }
    }
    (close, keep)
}

/// `Expect: 100-continue` (true), none (false), or an expectation the server cannot meet
/// (417, RFC 9110 §10.1.1).
fn expects_continue(headers: &HeaderMap) -> Result<bool, HttpError> {
    let mut found = false;
    for value in headers.get_all(EXPECT) {
        for item in value.as_bytes().split(|b| *b == b',') {
            let item = item.trim_ascii();
            if item.eq_ignore_ascii_case(b"100-continue") {
                found = true;
            } else if !item.is_empty() {
                return Err(HttpError::new(
                    StatusCode::EXPECTATION_FAILED,
                    "expectation_failed",
                    "Only the expectation 100-continue is supported.",
                ));
            }
        }
    }
    Ok(found)
}
