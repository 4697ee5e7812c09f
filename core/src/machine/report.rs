//! What the client is told when a request ends without a success (spec §4.8, §2).

use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};

use crate::classify::{Failure, TransportFailure};
use crate::errors;
use crate::gateway::ProviderId;
use crate::response::{relayable_headers, ClientResponse, SHOULD_RETRY};

/// One upstream attempt of a request: a line of the exhaustion body's `attempts` list,
/// and what metrics and traces are made of ([`Summary::records`](super::Summary)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub model: String,
    /// The target the attempt went to.
    pub target: ProviderId,
    /// `http_429`, `timeout_30000ms`, ...; for the request's last attempt when it did not
    /// fail: `ok` (it answered), `stream_aborted` (it failed after its stream committed)
    /// or `cancelled` (the client left, or the gateway stopped, while it ran).
    pub error_type: String,
    pub status: Option<u16>,
    /// When it was sent, counted from the request's start.
    pub started: Duration,
    pub latency: Duration,
    pub retry_after: Option<Duration>,
}

/// Why the request ended without an answer, beyond the last failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndReason {
    /// A budget stopped a retry: `max_retry_duration_ms`, or the retry budget (§11).
    pub budget_exhausted: bool,
    /// Blocks stopped the request; how long until the shortest one ends.
    pub shortest_block: Option<Duration>,
}

/// The upstream's error response, unchanged but for hop-by-hop headers (spec §4.1).
pub fn pass_through(status: u16, headers: &HeaderMap, body: bytes::Bytes) -> ClientResponse {
    ClientResponse {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        headers: relayable_headers(headers),
        body,
    }
}

/// A gateway-made error for a transport failure on the only attempt. The text names the
/// provider entry (`model`) and the kind of failure, never the upstream's address: the
/// detail a runtime reported goes to the log only.
pub fn transport_error(model: &str, failure: &Failure) -> ClientResponse {
    let (message, code) = match failure {
        Failure::Transport(TransportFailure::Timeout { after }) => (
            format!(
                "The upstream {model} did not answer within {} ms.",
                after.as_millis()
            ),
            "upstream_timeout",
        ),
        Failure::Transport(TransportFailure::Connect { .. }) => (
            format!("Could not connect to the upstream {model}."),
            "upstream_unreachable",
        ),
        Failure::Transport(TransportFailure::InvalidResponse { reason, .. }) => (
            format!("The upstream {model} sent an unusable response: {reason}."),
            "upstream_invalid_response",
        ),
        Failure::Transport(TransportFailure::StreamError { .. }) => (
            format!("The upstream {model} reported an error before answering."),
            "upstream_stream_error",
        ),
        Failure::Http { status, .. } => (
            format!("The upstream {model} answered {status}."),
            "upstream_error",
        ),
    };
    let status = StatusCode::from_u16(failure.gateway_status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut r = errors::error_response(
        status,
        &message,
        "upstream_error",
        Some(code),
        json!({"error_type": failure.error_type()}),
    );
    r.headers
        .insert(SHOULD_RETRY, HeaderValue::from_static("false"));
    r
}

/// The exhaustion error (spec §4.8): every attempt, the last upstream error unmasked,
/// `x-should-retry: false`, and `Retry-After` when blocks ended the request.
pub fn exhausted(
    records: &[AttemptRecord],
    last: Option<&Failure>,
    reason: EndReason,
) -> ClientResponse {
    let attempts: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut a = json!({
                "attempt": i + 1,
                "model": r.model,
                "error_type": r.error_type,
                "latency_ms": r.latency.as_millis() as u64,
            });
            if let Some(s) = r.status {
                a["status"] = json!(s);
            }
            if let Some(ra) = r.retry_after {
                a["retry_after_ms"] = json!(ra.as_millis() as u64);
            }
            a
        })
        .collect();
    let mut extra = json!({
        "total_attempts": records.len(),
        "retry_budget_exhausted": reason.budget_exhausted,
        "attempts": attempts,
    });
    if let Some(f) = last {
        extra["last_error"] = last_error(f);
    }
    let retry_after_secs = reason
        .shortest_block
        .map(|d| d.as_millis().div_ceil(1000).max(1) as u64);
    if let Some(secs) = retry_after_secs {
        extra["shortest_remaining_block_seconds"] = json!(secs);
    }
    let status = match last {
        Some(f) => f.gateway_status(),
        None => 429,
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut r = errors::error_response(
        status,
        "All retry attempts exhausted",
        "retry_exhausted",
        Some("retry_exhausted"),
        extra,
    );
    r.headers
        .insert(SHOULD_RETRY, HeaderValue::from_static("false"));
    if let Some(secs) = retry_after_secs {
        r.headers
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// The last upstream error, parsed if JSON so its reason is not masked.
fn last_error(f: &Failure) -> Value {
    match f {
        Failure::Http { body, status, .. } => serde_json::from_slice(body).unwrap_or_else(|_| {
            json!({"status": status, "body": String::from_utf8_lossy(&body[..body.len().min(4096)])})
        }),
        Failure::Transport(TransportFailure::StreamError { data }) => {
            serde_json::from_str(data).unwrap_or_else(|_| json!({"message": data}))
        }
        Failure::Transport(TransportFailure::Timeout { after }) => {
            json!({"message": format!("timed out after {} ms", after.as_millis())})
        }
        Failure::Transport(TransportFailure::Connect { .. }) => {
            json!({"message": "could not connect to the upstream"})
        }
        Failure::Transport(TransportFailure::InvalidResponse { reason, .. }) => {
            json!({"message": reason})
        }
    }
}
