//! OpenAI Embeddings (`POST /v1/embeddings`): routed and retried like chat, never streamed,
//! passed through to OpenAI-interface targets with only `model` replaced.
//!
//! Anthropic has no embeddings API, and the built-in mock provider has none either. A request
//! whose model resolves to such a provider is answered at once with [`not_served`] (400, no
//! upstream call); such providers are skipped as failover candidates
//! ([`upstream_api_for`](super::upstream_api_for) returns `None` for them).

use http::StatusCode;
use serde_json::{json, Value};

use crate::errors;
use crate::response::ClientResponse;

/// The 400 for an embeddings request routed to `model`, whose provider has no embeddings
/// endpoint.
pub fn not_served(model: &str) -> ClientResponse {
    errors::error_response(
        StatusCode::BAD_REQUEST,
        &format!(
            "The model '{model}' is served over an API without embeddings (Anthropic Messages or the built-in mock); configure an OpenAI-compatible provider for embeddings."
        ),
        "invalid_request_error",
        Some("embeddings_not_supported"),
        json!({ "param": "model" }),
    )
}

/// Whether a 2xx embeddings body is usable: a JSON object with a `data` array.
pub fn is_well_formed(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("data").is_some_and(Value::is_array))
}
