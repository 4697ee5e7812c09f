//! Gateway-made error responses in OpenAI's shape: `{"error": {"message", "type", "code", ...}}`.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};

use crate::response::ClientResponse;

/// An OpenAI-shaped error body with `message`, `type` and `code`, plus `extra` fields
/// merged into the `error` object.
pub fn error_body(message: &str, kind: &str, code: Option<&str>, extra: Value) -> Bytes {
    let mut error = json!({ "message": message, "type": kind, "code": code });
    if let (Some(obj), Value::Object(more)) = (error.as_object_mut(), extra) {
        obj.extend(more);
    }
    Bytes::from(json!({ "error": error }).to_string())
}

/// A complete gateway-made error response with a JSON content type.
pub fn error_response(
    status: StatusCode,
    message: &str,
    kind: &str,
    code: Option<&str>,
    extra: Value,
) -> ClientResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    ClientResponse {
        status,
        headers,
        body: error_body(message, kind, code, extra),
    }
}

/// 400 `invalid_request_error` for a body the gateway cannot use.
pub fn invalid_request(message: &str, code: Option<&str>) -> ClientResponse {
    error_response(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        code,
        Value::Null,
    )
}

/// 400 `invalid_request_error` about one request field, named in `param` (as OpenAI's
/// own errors do).
pub fn invalid_request_param(
    message: &str,
    code: Option<&str>,
    param: Option<&str>,
) -> ClientResponse {
    error_response(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        code,
        json!({ "param": param }),
    )
}

/// 413 for a request body over `limit` bytes.
pub fn payload_too_large(limit: usize) -> ClientResponse {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("Request body is larger than the limit of {limit} bytes."),
        "invalid_request_error",
        Some("request_too_large"),
        Value::Null,
    )
}

/// 404 for a path the gateway does not serve.
pub fn not_found(method: &str, path: &str) -> ClientResponse {
    error_response(
        StatusCode::NOT_FOUND,
        &format!("Unknown request URL: {method} {path}. Use POST /v1/chat/completions, /v1/messages, /v1/messages/count_tokens, /v1/responses or /v1/embeddings, GET /v1/models or GET /healthz."),
        "invalid_request_error",
        Some("unknown_url"),
        Value::Null,
    )
}

/// 405 for a known path with the wrong method.
pub fn method_not_allowed(method: &str, path: &str, allowed: &str) -> ClientResponse {
    let mut r = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("Method {method} is not allowed on {path}; use {allowed}."),
        "invalid_request_error",
        Some("method_not_allowed"),
        Value::Null,
    );
    if let Ok(v) = HeaderValue::from_str(allowed) {
        r.headers.insert(http::header::ALLOW, v);
    }
    r
}

/// 404 `model_not_found` listing the configured models.
pub fn model_not_found(model: &str, configured: &[String]) -> ClientResponse {
    error_response(
        StatusCode::NOT_FOUND,
        &format!(
            "The model '{model}' is not configured and there is no default provider. Configured models: {}.",
            configured.join(", ")
        ),
        "invalid_request_error",
        Some("model_not_found"),
        json!({ "param": "model", "available_models": configured }),
    )
}

/// 503 with `Retry-After: 1` when the gateway holds as many buffered body bytes as
/// `limits.max_buffered_body_bytes` allows: the request was not started (or could not
/// finish) and may be sent again in a moment.
pub fn overloaded() -> ClientResponse {
    let mut r = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "The gateway is holding as much request and response data as its memory limit allows; retry in a moment.",
        "server_error",
        Some("gateway_overloaded"),
        Value::Null,
    );
    r.headers
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// 408 when the client did not send its request in time.
pub fn request_timeout() -> ClientResponse {
    error_response(
        StatusCode::REQUEST_TIMEOUT,
        "The request was not received in time.",
        "invalid_request_error",
        Some("request_timeout"),
        Value::Null,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_openai_errors() {
        let r = model_not_found("x/y", &["openai/gpt-4o".into()]);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["available_models"][0], "openai/gpt-4o");
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = payload_too_large(10);
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
