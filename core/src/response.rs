//! Responses to the client and the headers switchback adds to them (spec §2).

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// The request id header, echoed or generated.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Upstream attempts made for this response.
pub const ATTEMPTS: HeaderName = HeaderName::from_static("x-switchback-attempts");
/// The `provider/model` that answered.
pub const MODEL: HeaderName = HeaderName::from_static("x-switchback-model");
/// `false` on gateway-made errors after retries, so client SDKs do not retry on top.
pub const SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");

/// A complete response for the client: status, headers and the whole body.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ClientResponse {
    /// A 200 JSON response.
    pub fn json(body: impl Into<Bytes>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        ClientResponse {
            status: StatusCode::OK,
            headers,
            body: body.into(),
        }
    }

    /// Sets the `x-request-id` header.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        set_request_id(&mut self.headers, request_id);
        self
    }
}

/// Headers that describe one hop and must not be relayed (RFC 9110 §7.6.1), plus the
/// framing headers the runtime sets itself.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

/// The upstream's response headers fit to relay: hop-by-hop and framing headers removed,
/// and any header the `Connection` header names.
pub fn relayable_headers(upstream: &HeaderMap) -> HeaderMap {
    let named_by_connection: Vec<String> = upstream
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    // Room for the headers the gateway adds (request id, attempts, model, content type).
    let mut out = HeaderMap::with_capacity(upstream.len() + 4);
    for (name, value) in upstream {
        if is_hop_by_hop(name) || named_by_connection.iter().any(|n| n == name.as_str()) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Sets `x-request-id` (ids are checked to be header-safe when accepted).
pub fn set_request_id(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, v);
    }
}

/// Sets `x-switchback-attempts` and, when known, `x-switchback-model`.
pub fn set_attempt_headers(headers: &mut HeaderMap, attempts: u32, model: Option<&str>) {
    const SMALL: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    let count = match SMALL.get(attempts as usize) {
        Some(digits) => HeaderValue::from_static(digits),
        None => HeaderValue::from(attempts),
    };
    headers.insert(ATTEMPTS, count);
    if let Some(v) = model.and_then(|m| HeaderValue::from_str(m).ok()) {
        headers.insert(MODEL, v);
    }
}

/// The client's `x-request-id` when it is a sensible id (1..=128 visible ASCII
/// characters), so it can be echoed safely.
pub fn accepted_request_id(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(REQUEST_ID)?.to_str().ok()?;
    let ok = !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic());
    ok.then_some(v)
}

/// A fresh request id from 64 random bits supplied by the runtime.
pub fn generate_request_id(random: u64) -> String {
    format!("req_{random:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("close, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("content-length", HeaderValue::from_static("12"));
        h.insert(
            "x-ratelimit-remaining-requests",
            HeaderValue::from_static("4"),
        );
        let out = relayable_headers(&h);
        assert_eq!(out.len(), 1);
        assert!(out.contains_key("x-ratelimit-remaining-requests"));
    }

    #[test]
    fn request_ids_are_echoed_only_when_sane() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(accepted_request_id(&h), Some("abc-123"));
        h.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        assert_eq!(accepted_request_id(&h), None);
        assert_eq!(generate_request_id(255), "req_00000000000000ff");
    }
}
