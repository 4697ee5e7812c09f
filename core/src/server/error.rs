//! Why a request cannot be read: each is answered by the gateway, then the connection closes.

use http::StatusCode;

use crate::errors;
use crate::response::ClientResponse;

/// A request the server codec refuses. The connection is closed after the answer: once
/// framing is in doubt, no later byte on it can be trusted to start a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct HttpError {
    /// The status to answer with (400, 408, 413, 417, 431, 501 or 505).
    pub status: StatusCode,
    /// A sentence for the client.
    pub message: String,
    /// OpenAI-style error `code`.
    pub code: &'static str,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        HttpError {
            status,
            message: message.into(),
            code,
        }
    }

    /// 400 for bytes that are not a well-formed HTTP/1.x request.
    pub(crate) fn malformed(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed_request",
            format!("The request is not valid HTTP/1.1: {what}."),
        )
    }

    /// 400 for framing that could be read two ways (RFC 9112 §6.3: request smuggling).
    pub(crate) fn ambiguous_framing(what: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ambiguous_framing",
            format!("The request's body framing is ambiguous: {what}."),
        )
    }

    /// 431 for a head over the limits.
    pub(crate) fn head_too_large(max_bytes: usize, max_headers: usize) -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_header_fields_too_large",
            format!(
                "The request head is larger than {max_bytes} bytes or has more than {max_headers} header fields."
            ),
        )
    }

    /// 413 for a body over the limit.
    pub(crate) fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("Request body is larger than the limit of {limit} bytes."),
        )
    }

    /// 408 for a head or body that did not arrive in time.
    pub(crate) fn timeout(what: &str) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("The request {what} was not received in time."),
        )
    }

    /// The error as an OpenAI-shaped response (the caller adds `x-request-id`).
    pub fn to_response(&self) -> ClientResponse {
        errors::error_response(
            self.status,
            &self.message,
            "invalid_request_error",
            Some(self.code),
            serde_json::Value::Null,
        )
    }
}
