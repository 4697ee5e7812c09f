//! Writing one response in the framing its request allows (RFC 9112 §6).

use bytes::{BufMut, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, Version};

/// The interim response sent before reading a body announced with `Expect: 100-continue`.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What follows a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A whole body of this many bytes (sent with `Content-Length`).
    Full(usize),
    /// A body of unknown length, written as it comes (chunked for HTTP/1.1 clients,
    /// close-delimited for HTTP/1.0 ones).
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Not decided yet (no head written).
    Unset,
    /// No body bytes follow (HEAD request, 1xx, 204, 304).
    Empty,
    Length,
    Chunked,
    /// The body ends when the connection closes.
    Close,
}

/// Encodes one response. Create it per response, write the head once, then the body, then
/// the end; the bytes are appended to the caller's output buffer.
#[derive(Debug)]
pub struct ResponseEncoder {
    version: Version,
    head_request: bool,
    keep_alive: bool,
    framing: Framing,
}

impl ResponseEncoder {
    /// An encoder for the response to a request of `version` (`HEAD` when `head_request`).
    /// `keep_alive`: the connection may carry another request after this response (the
    /// client allows it and the server wants it); the encoder turns it off when the framing
    /// needs the close.
    pub fn new(version: Version, head_request: bool, keep_alive: bool) -> Self {
        ResponseEncoder {
            version,
            head_request,
            keep_alive,
            framing: Framing::Unset,
        }
    }

    /// Whether the connection may carry another request once this response is written.
    pub fn keeps_alive(&self) -> bool {
        self.keep_alive
    }

    /// Writes the status line and header fields. Framing and connection headers in `headers`
    /// are replaced by the encoder's own; `date` is added unless `headers` has one. Any
    /// status is written with its number as is (529 stays 529).
    pub fn write_head(
        &mut self,
        out: &mut BytesMut,
        status: StatusCode,
        headers: &HeaderMap,
        body: BodyKind,
        date: &HeaderValue,
    ) {
        let no_body_status = status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        self.framing = match body {
            _ if no_body_status => Framing::Empty,
            BodyKind::Full(_) if self.head_request => Framing::Empty,
            BodyKind::Full(_) => Framing::Length,
            BodyKind::Stream if self.version == Version::HTTP_10 => Framing::Close,
            BodyKind::Stream if self.head_request => Framing::Empty,
            BodyKind::Stream => Framing::Chunked,
        };
        if self.framing == Framing::Close {
            self.keep_alive = false;
        }
        let version = if self.version == Version::HTTP_10 {
            &b"HTTP/1.0 "[..]
        } else {
            &b"HTTP/1.1 "[..]
        };
        out.reserve(128 + headers.len() * 48);
        out.put_slice(version);
        out.put_slice(status.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
        out.put_slice(b"\r\n");
        for (name, value) in headers {
            if is_framing_header(name.as_str()) {
                continue;
            }
            put_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
        if !headers.contains_key(http::header::DATE) {
            put_field(out, b"date", date.as_bytes());
        }
        match body {
            BodyKind::Full(len) if !no_body_status => {
                let mut digits = itoa::Buffer::new();
                put_field(out, b"content-length", digits.format(len).as_bytes());
            }
            _ => {}
        }
        if self.framing == Framing::Chunked {
            put_field(out, b"transfer-encoding", b"chunked");
        }
        if !self.keep_alive {
            put_field(out, b"connection", b"close");
        } else if self.version == Version::HTTP_10 {
            put_field(out, b"connection", b"keep-alive");
        }
        out.put_slice(b"\r\n");
    }

    /// Whether body bytes are written as they are (no framing to add): then the caller may
    /// queue them without copying.
    pub fn body_is_raw(&self) -> bool {
        matches!(self.framing, Framing::Length | Framing::Close)
    }

    /// Whether the response carries no body bytes at all (HEAD, 1xx, 204, 304).
    pub fn body_is_empty(&self) -> bool {
        self.framing == Framing::Empty
    }

    /// Appends body bytes in the response's framing (a chunk for chunked responses; nothing
    /// for bodiless ones).
    pub fn write_body(&self, out: &mut BytesMut, data: &[u8]) {
        match self.framing {
            Framing::Empty | Framing::Unset => {}
            Framing::Length | Framing::Close => out.put_slice(data),
            Framing::Chunked if data.is_empty() => {}
            Framing::Chunked => {
                out.reserve(data.len() + 20);
                let mut hex = [0_u8; 16];
                out.put_slice(hex_len(data.len(), &mut hex));
                out.put_slice(b"\r\n");
                out.put_slice(data);
                out.put_slice(b"\r\n");
            }
        }
    }

    /// Appends the end of the body (the last chunk for chunked responses).
    pub fn write_end(&self, out: &mut BytesMut) {
        if self.framing == Framing::Chunked {
            out.put_slice(b"0\r\n\r\n");
        }
    }
}

/// Headers the encoder owns: the message's framing and the connection's persistence.
fn is_framing_header(name: &str) -> bool {
    matches!(
        name,
        "content-length" | "transfer-encoding" | "connection" | "keep-alive"
    )
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// `n` in lower-case hex, without leading zeros.
fn hex_len(mut n: usize, buf: &mut [u8; 16]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 || i == 0 {
            break;
        }
    }
    &buf[i..]
}
