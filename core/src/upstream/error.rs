//! Why an upstream exchange failed.

/// Why an [`Exchange`](super::Exchange) could not be built or did not complete.
///
/// Each variant is one thing a runtime may react to differently: `ClosedBeforeResponse` on a
/// pooled connection means "stale connection, retry on a fresh one"; the rest are failed
/// attempts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// The request cannot be encoded (bad path, unsupported method, conflicting headers).
    #[error("upstream request cannot be encoded: {0}")]
    InvalidRequest(String),
    /// The peer closed the connection before sending a single response byte.
    #[error("upstream closed the connection before sending a response")]
    ClosedBeforeResponse,
    /// The status line, a header or the body framing is not valid HTTP/1.x.
    #[error("malformed upstream response: {0}")]
    Malformed(String),
    /// The response header section exceeded the size or field-count bound.
    #[error("upstream response header section exceeds {max_bytes} bytes or {max_fields} fields")]
    HeadTooLarge {
        /// Byte bound on one header section.
        max_bytes: usize,
        /// Bound on the number of header fields.
        max_fields: usize,
    },
    /// The peer closed the connection in the middle of the response header section.
    #[error("upstream closed the connection in the middle of the response head")]
    TruncatedHead,
    /// The peer closed the connection before the end of a length- or chunk-framed body.
    #[error("upstream closed the connection before the end of the response body")]
    TruncatedBody,
}
