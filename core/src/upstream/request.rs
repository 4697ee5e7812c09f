//! A fully built upstream request and its HTTP/1.1 encoding.

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, EXPECT, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Method};

use super::error::ExchangeError;
use super::target::Origin;

/// A fully built upstream HTTP request: where it goes and every byte it carries.
///
/// `headers` are sent as given except for the framing headers the codec owns: any
/// `Content-Length`, `Transfer-Encoding` and `Expect` in them are replaced (see
/// [`Exchange::new`](super::Exchange::new)); a `Host` in them is kept (a provider's
/// `http_host`), otherwise `Host` comes from the origin.
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

fn invalid(what: impl std::fmt::Display) -> ExchangeError {
    ExchangeError::InvalidRequest(what.to_string())
}

/// Encodes `req` as an HTTP/1.1 request head followed by its body: the wire pieces in order
/// (one piece when the body is small).
pub(super) fn encode(req: &UpstreamHttpRequest) -> Result<Vec<Bytes>, ExchangeError> {
    if req.method == Method::CONNECT {
        return Err(invalid("CONNECT is not supported"));
    }
    let target = req.path_and_query.as_bytes();
    if target.first() != Some(&b'/') {
        return Err(invalid(format_args!(
            "request target {:?} must start with '/'",
            req.path_and_query
        )));
    }
    if !target.iter().all(|b| (0x21..0x7f).contains(b)) {
        return Err(invalid(format_args!(
            "request target {:?} has characters a request line cannot carry",
            req.path_and_query
        )));
    }
    let sends_body =
        !req.body.is_empty() || matches!(req.method, Method::POST | Method::PUT | Method::PATCH);
    let coalesce = req.body.len() <= COALESCE_BODY_BYTES;
    let mut head =
        BytesMut::with_capacity(head_size_hint(req) + if coalesce { req.body.len() } else { 0 });
    head.put_slice(req.method.as_str().as_bytes());
    head.put_u8(b' ');
    head.put_slice(target);
    head.put_slice(b" HTTP/1.1\r\n");
    let mut has_host = false;
    for (name, value) in &req.headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == EXPECT {
            continue;
        }
        has_host |= name == HOST;
        put_field(&mut head, name.as_str().as_bytes(), value.as_bytes());
    }
    if !has_host {
        head.put_slice(b"host: ");
        put_host(&mut head, &req.origin);
        head.put_slice(b"\r\n");
    }
    if sends_body {
        let mut digits = itoa::Buffer::new();
        put_field(
            &mut head,
            b"content-length",
            digits.format(req.body.len()).as_bytes(),
        );
    }
    head.put_slice(b"\r\n");
    if coalesce {
        // One write (one syscall, one TCP segment) for the whole request.
        head.put_slice(&req.body);
        return Ok(vec![head.freeze()]);
    }
    Ok(vec![head.freeze(), req.body.clone()])
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// `host[:port]`, the port omitted when it is the scheme's default, IPv6 in brackets.
fn put_host(out: &mut BytesMut, origin: &Origin) {
    let ipv6 = origin.host.contains(':');
    if ipv6 {
        out.put_u8(b'[');
    }
    out.put_slice(origin.host.as_bytes());
    if ipv6 {
        out.put_u8(b']');
    }
    if origin.port != origin.scheme.default_port() {
        let mut digits = itoa::Buffer::new();
        out.put_u8(b':');
        out.put_slice(digits.format(origin.port).as_bytes());
    }
}

/// An output buffer size that holds the whole request head.
fn head_size_hint(req: &UpstreamHttpRequest) -> usize {
    let headers: usize = req
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    req.method.as_str().len() + req.path_and_query.len() + req.origin.host.len() + headers + 64
}
