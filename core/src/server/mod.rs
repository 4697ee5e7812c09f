//! The client-facing HTTP/1.1 server codec (spec §8), sans-IO: bytes a client sent go in,
//! typed request heads and body bytes come out; responses are encoded into bytes to write.
//!
//! - [`RequestReader`] frames requests from a byte stream: heads bounded by
//!   [`ServerLimits`] (431 beyond), `Content-Length` and chunked bodies (413 past the body
//!   limit), the request-smuggling defences of RFC 9112 §6.3 (`Content-Length` together with
//!   `Transfer-Encoding`, or differing `Content-Length`s: 400 and close), HTTP/1.0 and 1.1,
//!   and pipelined requests (bytes after one request stay buffered until the caller asks
//!   for the next).
//! - [`ResponseEncoder`] writes one response in the framing the request allows:
//!   `Content-Length`, chunked for HTTP/1.1 streams, close-delimited for HTTP/1.0 streams;
//!   any status 100-599 is written as is.
//!
//! Timeouts (head, body idle) belong to the connection driver (`crate::connection`), which
//! owns the clock readings; this module has no notion of time.
//!
//! Built on `httparse` (the parser under `ureq-proto` and hyper) rather than `ureq-proto`'s
//! server half, which treats a POST without framing headers as chunked, resolves
//! `Content-Length` plus `Transfer-Encoding` by ignoring the length instead of refusing the
//! request, and hex-dumps every request head (credentials included) to its trace log.

mod encoder;
mod error;
mod head;
mod limits;
mod reader;

#[cfg(test)]
mod tests;

pub use encoder::{BodyKind, ResponseEncoder, CONTINUE_100};
pub use error::HttpError;
pub use head::{BodyFraming, RequestHead};
pub use limits::ServerLimits;
pub use reader::{ReadEvent, RequestReader};
