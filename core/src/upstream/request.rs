//! A fully built upstream request and its HTTP/1.1 encoding (through `ureq-proto`).

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, EXPECT, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, Request, Uri, Version};
use ureq_proto::client::state::RecvResponse;
use ureq_proto::client::{Call, SendRequestResult};

use super::error::ExchangeError;
use super::target::Origin;

/// A fully built upstream HTTP request: where it goes and every byte it carries.
///
/// `headers` are sent as given except for the framing headers the codec owns: any
/// `Content-Length`, `Transfer-Encoding` and `Expect` in them are replaced (see
/// [`Exchange::new`](super::Exchange::new)). A `Host` in them is kept (a provider's
/// `http_host`); without one, `Host` is the origin's.
#[derive(Debug, Clone)]
pub struct UpstreamHttpRequest {
    /// Where the request goes; also the connection-pool key.
    pub origin: Origin,
    /// The method; `POST` for chat completions. `CONNECT` is not supported.
    pub method: Method,
    /// Origin-form request target, starting with `/` (e.g. `/openai/v1/chat/completions`).
    pub path_and_query: String,
    /// Headers to send (credentials, content type, ...).
    pub headers: HeaderMap,
    /// The whole request body, sent with `Content-Length`.
    pub body: Bytes,
}

/// Bodies up to this size are sent in the same buffer as the head; larger ones are
/// handed over as they are, without a copy.
const COALESCE_BODY_BYTES: usize = 64 * 1024;

/// The encoded request: the wire pieces in order, and the ureq-proto call ready to read the
/// response.
pub(super) struct Encoded {
    pub(super) transmit: Vec<Bytes>,
    pub(super) call: Call<RecvResponse>,
}

fn invalid(what: impl std::fmt::Display) -> ExchangeError {
    ExchangeError::InvalidRequest(what.to_string())
}

/// Encode `req` as an HTTP/1.1 request head followed by its body.
///
/// The head is written by ureq-proto; the body is passed through untouched (it is announced with
/// `Content-Length`, so there is nothing to encode).
pub(super) fn encode(req: &UpstreamHttpRequest) -> Result<Encoded, ExchangeError> {
    if req.method == Method::CONNECT {
        return Err(invalid("CONNECT is not supported"));
    }
    if !req.path_and_query.starts_with('/') {
        return Err(invalid(format_args!(
            "request target {:?} must start with '/'",
            req.path_and_query
        )));
    }
    let uri = Uri::builder()
        .scheme(req.origin.scheme.as_str())
        .authority(format!(
            "{}:{}",
            req.origin.bracketed_host(),
            req.origin.port
        ))
        .path_and_query(req.path_and_query.as_str())
        .build()
        .map_err(invalid)?;

    let mut request = Request::builder()
        .method(req.method.clone())
        .uri(uri)
        .version(Version::HTTP_11)
        .body(())
        .map_err(invalid)?;
    *request.headers_mut() = framed_headers(req)?;

    let mut call = Call::new(request).map_err(invalid)?;
    call.allow_non_standard_methods(true);
    if !req.body.is_empty() {
        // ureq-proto refuses a body on HEAD unless forced; the caller asked for one, so send it.
        call.force_send_body();
    }
    let mut call = call.proceed();

    let mut head = vec![0_u8; head_size_hint(req)];
    let mut written = Vec::new();
    while !call.can_proceed() {
        let n = call.write(&mut head).map_err(invalid)?;
        if n == 0 {
            return Err(invalid("request head did not fit the output buffer"));
        }
        written.extend_from_slice(&head[..n]);
    }
    let mut transmit = vec![Bytes::from(written)];

    let call = match call.proceed().map_err(invalid)? {
        Some(SendRequestResult::RecvResponse(call)) if req.body.is_empty() => call,
        Some(SendRequestResult::SendBody(mut call)) if !req.body.is_empty() => {
            // The body is sized, so ureq-proto would only copy it; hand it over as it is.
            call.consume_direct_write(req.body.len()).map_err(invalid)?;
            if req.body.len() <= COALESCE_BODY_BYTES {
                // One write (one syscall, one TCP segment) for the whole request.
                let mut whole = Vec::with_capacity(transmit[0].len() + req.body.len());
                whole.extend_from_slice(&transmit[0]);
                whole.extend_from_slice(&req.body);
                transmit[0] = Bytes::from(whole);
            } else {
                transmit.push(req.body.clone());
            }
            call.proceed()
                .ok_or_else(|| invalid("request body length disagrees with Content-Length"))?
        }
        _ => return Err(invalid("unexpected request body state")),
    };
    Ok(Encoded { transmit, call })
}

/// The caller's headers with `Host` and the framing headers set by the codec.
fn framed_headers(req: &UpstreamHttpRequest) -> Result<HeaderMap, ExchangeError> {
    let mut headers = req.headers.clone();
    for name in [CONTENT_LENGTH, TRANSFER_ENCODING, EXPECT] {
        headers.remove(name);
    }
    if !headers.contains_key(HOST) {
        let host = HeaderValue::from_str(&req.origin.host_header()).map_err(invalid)?;
        headers.insert(HOST, host);
    }
    let sends_body =
        !req.body.is_empty() || matches!(req.method, Method::POST | Method::PUT | Method::PATCH);
    if sends_body {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(req.body.len()));
    }
    Ok(headers)
}

/// An output buffer size that holds the whole request head, so it is written in one pass.
fn head_size_hint(req: &UpstreamHttpRequest) -> usize {
    let headers: usize = req
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    req.method.as_str().len() + req.path_and_query.len() + req.origin.host.len() + headers + 256
}
