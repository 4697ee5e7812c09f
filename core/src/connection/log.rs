//! The one log line per request.

use std::time::Instant;

use http::Method;

/// What the request's log line says about the request itself.
#[derive(Debug)]
pub(crate) struct RequestLog {
    pub(crate) request_id: String,
    pub(crate) method: Method,
    pub(crate) target: String,
    pub(crate) started: Instant,
}

impl RequestLog {
    /// Writes the line at `info`. Never includes headers or bodies (credentials live there).
    pub(crate) fn finish(&self, now: Instant, status: u16, attempts: u32, model: Option<&str>) {
        tracing::info!(
            request_id = %self.request_id,
            method = %self.method,
            path = %self.target,
            status,
            attempts,
            model = model.unwrap_or("-"),
            duration_ms = now.saturating_duration_since(self.started).as_millis() as u64,
            "request finished"
        );
    }
}
