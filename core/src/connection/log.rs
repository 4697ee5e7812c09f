//! The one log line per request.

use std::time::Instant;

use http::Method;

use crate::recovery::RecoverySummary;

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
    /// `recovery` is what stream recovery did, when a committed stream failed (spec §12).
    pub(crate) fn finish(
        &self,
        now: Instant,
        status: u16,
        attempts: u32,
        model: Option<&str>,
        recovery: Option<&RecoverySummary>,
    ) {
        tracing::info!(
            request_id = %self.request_id,
            method = %self.method,
            path = %self.target,
            status,
            attempts,
            model = model.unwrap_or("-"),
            duration_ms = now.saturating_duration_since(self.started).as_millis() as u64,
            recovery = recovery.map(tracing::field::display),
            "request finished"
        );
    }
}
