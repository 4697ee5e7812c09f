//! Why a body could not be translated.

/// Why a body could not be translated. The `Display` text is written for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The body is not a JSON object.
    #[error("the request body is not a valid JSON object")]
    InvalidJson,
    /// The body is JSON but not a well-formed request (the text says what is wrong).
    #[error("{0}")]
    InvalidRequest(String),
    /// The request uses a feature the target's API has no equivalent for.
    #[error("{0}")]
    Unsupported(String),
    /// The upstream's response body is not a well-formed answer of its API.
    #[error("the upstream response is not valid: {0}")]
    InvalidResponse(String),
}

impl TranslateError {
    /// The error `code` to report this error with in a 400 response.
    pub fn code(&self) -> &'static str {
        match self {
            TranslateError::InvalidJson => "invalid_json",
            TranslateError::InvalidRequest(_) => "invalid_request",
            TranslateError::Unsupported(_) => "unsupported_parameter",
            TranslateError::InvalidResponse(_) => "invalid_upstream_response",
        }
    }
}
