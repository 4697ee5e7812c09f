//! What a request carries upstream of its trace context: the attempt's own
//! `traceparent` when the request is traced, else the client's `traceparent` unchanged,
//! so a trace the gateway does not record still joins up. The client's `tracestate`
//! goes on unchanged in both cases when its `traceparent` was valid (W3C trace-context:
//! a participant that continues a trace propagates its `tracestate`); when the gateway
//! starts a trace of its own it sends none.

use std::time::{Instant, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::TracingSettings;
use crate::machine::{AttemptId, Summary};
use crate::trace::{client_tracestate, RequestTrace, SpanRecord, TRACEPARENT, TRACESTATE};

/// One request's trace propagation. See the module docs.
#[derive(Debug)]
pub(crate) enum Propagation {
    /// Sampled: spans are recorded, each attempt sends its own span as parent, and the
    /// client's `tracestate` when the trace continues the client's.
    Traced {
        trace: Box<RequestTrace>,
        tracestate: Option<HeaderValue>,
    },
    /// Not recorded here: the client's headers go on unchanged.
    Client {
        traceparent: HeaderValue,
        tracestate: Option<HeaderValue>,
    },
}

impl Propagation {
    /// Decides for a request with `headers` that arrived at `started`: traced when
    /// `tracing` is on and the request is sampled; otherwise the client's context, if
    /// it sent one, is passed through.
    pub(crate) fn start(
        tracing: Option<&TracingSettings>,
        headers: &HeaderMap,
        method: &str,
        target: &str,
        seed: u64,
        started: Instant,
        wall: SystemTime,
    ) -> Option<Propagation> {
        if let Some(settings) = tracing {
            let trace = RequestTrace::start(settings, headers, method, target, seed, started, wall);
            if trace.sampled() {
                let tracestate = trace
                    .continues_client_trace()
                    .then(|| client_tracestate(headers))
                    .flatten();
                return Some(Propagation::Traced {
                    trace: Box::new(trace),
                    tracestate,
                });
            }
        }
        let traceparent = headers.get(TRACEPARENT)?.clone();
        Some(Propagation::Client {
            traceparent,
            tracestate: client_tracestate(headers),
        })
    }

    /// Adds the trace headers attempt `attempt` sends upstream.
    pub(crate) fn decorate(&self, attempt: AttemptId, headers: &mut HeaderMap) {
        let name = HeaderName::from_static(TRACEPARENT);
        match self {
            Propagation::Traced { trace, tracestate } => {
                headers.insert(name, trace.attempt_traceparent(attempt.0));
                headers.remove(TRACESTATE);
                if let Some(ts) = tracestate {
                    headers.insert(HeaderName::from_static(TRACESTATE), ts.clone());
                }
            }
            Propagation::Client {
                traceparent,
                tracestate,
            } => {
                headers.insert(name, traceparent.clone());
                if let Some(ts) = tracestate {
                    headers.insert(HeaderName::from_static(TRACESTATE), ts.clone());
                }
            }
        }
    }

    /// The spans of a request that ended at `now` (none when it was not traced).
    pub(crate) fn finish(
        &self,
        now: Instant,
        summary: &Summary,
        request_id: &str,
    ) -> Vec<SpanRecord> {
        match self {
            Propagation::Traced { trace, .. } => trace.finish(now, summary, request_id),
            Propagation::Client { .. } => Vec::new(),
        }
    }
}
