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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    const CLIENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const STATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

    fn upstream_headers(client: &[(&'static str, &str)]) -> HeaderMap {
        let config = load_str(
            "model_providers:\n  - model: mock/ok\ntracing:\n  random_sampling: 100\n  otlp_http_endpoint: http://127.0.0.1:4318\n",
            &|_| None,
        )
        .unwrap()
        .config;
        let mut headers = HeaderMap::new();
        for (k, v) in client {
            headers.append(*k, HeaderValue::from_str(v).unwrap());
        }
        #[allow(clippy::disallowed_methods)]
        let (now, wall) = (Instant::now(), SystemTime::now());
        let p = Propagation::start(
            config.tracing.as_ref(),
            &headers,
            "POST",
            "/v1/chat/completions",
            7,
            now,
            wall,
        )
        .expect("a propagation");
        assert!(matches!(p, Propagation::Traced { .. }), "sampled");
        // The request's own headers, as the machine forwards them, then decorated.
        let mut out = headers.clone();
        p.decorate(AttemptId(1), &mut out);
        out
    }

    #[test]
    fn a_traced_request_forwards_the_clients_tracestate_unchanged() {
        let out = upstream_headers(&[(TRACEPARENT, CLIENT), (TRACESTATE, STATE)]);
        assert_eq!(out.get(TRACESTATE).unwrap(), STATE);
        let sent = out.get(TRACEPARENT).unwrap().to_str().unwrap();
        assert!(
            sent.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
            "{sent}"
        );
        assert_ne!(sent, CLIENT, "the attempt's own span is the parent");
    }

    #[test]
    fn a_tracestate_in_several_fields_goes_on_as_one_list() {
        let out = upstream_headers(&[
            (TRACEPARENT, CLIENT),
            (TRACESTATE, "congo=t61rcWkgMzE"),
            (TRACESTATE, "rojo=00f067aa0ba902b7"),
        ]);
        let sent: Vec<_> = out.get_all(TRACESTATE).iter().collect();
        assert_eq!(sent, [STATE]);
    }

    #[test]
    fn a_trace_the_gateway_starts_sends_no_tracestate() {
        let out = upstream_headers(&[(TRACEPARENT, "garbage"), (TRACESTATE, STATE)]);
        assert!(out.get(TRACESTATE).is_none());
        let out = upstream_headers(&[(TRACESTATE, STATE)]);
        assert!(out.get(TRACESTATE).is_none());
        assert!(out.get(TRACEPARENT).is_some());
    }
}
