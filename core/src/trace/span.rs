//! One request's trace (spec §13): the sampling decision, the span ids (from the
//! request's seed, so a test sees the same ids every run), the `traceparent` each attempt
//! sends upstream, and at the end the request span with one child span per attempt.

use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderValue};

use super::context::{client_tracestate, SpanContext, TRACEPARENT};
use crate::config::TracingSettings;
use crate::machine::{Outcome, Summary};

/// A span attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
}

/// What kind of span: the request as the gateway served it, or one upstream attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Server,
    Client,
}

/// A finished span, ready for the exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    /// The parent came from the client's `traceparent`.
    pub parent_is_remote: bool,
    /// The W3C `tracestate` of the span's context: the client's, when the trace
    /// continues the client's, else empty.
    pub trace_state: String,
    pub name: String,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(String, AttrValue)>,
    /// `Some(message)`: the span's status is error.
    pub error: Option<String>,
}

/// The longest `tracestate` a span keeps: W3C trace-context's 512 characters, which
/// every participant must be able to carry.
pub const MAX_TRACE_STATE_BYTES: usize = 512;

/// The client's `tracestate` ([`client_tracestate`]) for the spans; empty when it is
/// longer than [`MAX_TRACE_STATE_BYTES`] (so a large header cannot fill the span queue:
/// every span of the request holds a copy).
fn client_trace_state(headers: &HeaderMap) -> String {
    client_tracestate(headers)
        .and_then(|v| v.to_str().ok().map(str::to_owned))
        .filter(|s| s.len() <= MAX_TRACE_STATE_BYTES)
        .unwrap_or_default()
}

/// SplitMix64: span ids from the request's seed.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn nonzero(v: u64) -> u64 {
    if v == 0 {
        1
    } else {
        v
    }
}

/// One traced request, from its arrival to its summary. See the module docs.
#[derive(Debug, Clone)]
pub struct RequestTrace {
    /// The request span's context (trace id, its span id, sampled).
    context: SpanContext,
    /// The client's span, when it sent a `traceparent`.
    parent: Option<[u8; 8]>,
    /// The client's `tracestate` when `parent` is set and it sent one (else empty).
    trace_state: String,
    seed: u64,
    started: Instant,
    started_wall: SystemTime,
    name: String,
    attributes: Vec<(String, AttrValue)>,
}

impl RequestTrace {
    /// Starts the trace of a request that arrived at `started` (`wall` then) with
    /// `headers`. Sampled when the client's `traceparent` says so, or, without one, for
    /// `random_sampling` percent of requests, drawn from `seed`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        settings: &TracingSettings,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        seed: u64,
        started: Instant,
        wall: SystemTime,
    ) -> RequestTrace {
        let client = headers.get(TRACEPARENT).and_then(SpanContext::parse);
        let trace_id = match client {
            Some(c) => c.trace_id,
            None => {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&nonzero(mix(seed ^ 0x7472_6163)).to_be_bytes());
                id[8..].copy_from_slice(&mix(seed ^ 0x6964_7331).to_be_bytes());
                id
            }
        };
        let sampled = match client {
            Some(c) => c.sampled,
            None => mix(seed ^ 0x7361_6d70) % 100 < u64::from(settings.sampling_percent),
        };
        let trace_state = client.map_or_else(String::new, |_| client_trace_state(headers));
        let path = path.split('?').next().unwrap_or("");
        let mut attributes = vec![
            (
                "http.request.method".to_owned(),
                AttrValue::Str(method.to_owned()),
            ),
            ("url.path".to_owned(), AttrValue::Str(path.to_owned())),
        ];
        attributes.extend(
            settings
                .static_attributes
                .iter()
                .map(|(k, v)| (k.clone(), AttrValue::Str(v.clone()))),
        );
        for (name, value) in headers {
            let name = name.as_str();
            if let Some(p) = settings
                .header_prefixes
                .iter()
                .find(|p| name.starts_with(p.as_str()))
            {
                if let Ok(v) = value.to_str() {
                    let key = name[p.len()..].replace('-', ".");
                    attributes.retain(|(k, _)| *k != key);
                    attributes.push((key, AttrValue::Str(v.to_owned())));
                }
            }
        }
        RequestTrace {
            context: SpanContext {
                trace_id,
                span_id: nonzero(mix(seed ^ 0x7370_616e)).to_be_bytes(),
                sampled,
            },
            parent: client.map(|c| c.span_id),
            trace_state,
            seed,
            started,
            started_wall: wall,
            name: format!("{method} {path}"),
            attributes,
        }
    }

    /// Whether the trace continues the client's (its `traceparent` parsed), so the
    /// client's `tracestate` belongs to it and goes on upstream.
    pub fn continues_client_trace(&self) -> bool {
        self.parent.is_some()
    }

    /// Whether this request's spans are recorded and exported.
    pub fn sampled(&self) -> bool {
        self.context.sampled
    }

    /// The trace id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.context.trace_id
    }

    /// The span id of attempt `n` (0 for the first).
    pub fn attempt_span_id(&self, n: u32) -> [u8; 8] {
        nonzero(mix(
            self.seed ^ (u64::from(n) + 1).wrapping_mul(0xA24B_AED4_963E_E407)
        ))
        .to_be_bytes()
    }

    /// The `traceparent` attempt `n` sends upstream: this trace, the attempt's span.
    pub fn attempt_traceparent(&self, n: u32) -> HeaderValue {
        SpanContext {
            span_id: self.attempt_span_id(n),
            ..self.context
        }
        .header()
    }

    fn wall(&self, offset: Duration) -> SystemTime {
        self.started_wall + offset
    }

    /// The request span and one child per attempt, for a request that ended at `now`.
    pub fn finish(&self, now: Instant, summary: &Summary, request_id: &str) -> Vec<SpanRecord> {
        let total = now.saturating_duration_since(self.started);
        let mut attributes = self.attributes.clone();
        let int = |n: u64| AttrValue::Int(i64::try_from(n).unwrap_or(i64::MAX));
        let str = |s: &str| AttrValue::Str(s.to_owned());
        attributes.push((
            "http.response.status_code".into(),
            int(u64::from(summary.status)),
        ));
        attributes.push(("switchback.request_id".into(), str(request_id)));
        attributes.push((
            "switchback.attempts".into(),
            int(u64::from(summary.attempts)),
        ));
        attributes.push((
            "switchback.outcome".into(),
            str(crate::metrics::labels::outcome(summary.outcome)),
        ));
        if let Some(m) = &summary.model {
            attributes.push(("switchback.model".into(), str(m)));
        }
        let error = (summary.outcome != Outcome::Success)
            .then(|| crate::metrics::labels::outcome(summary.outcome).to_owned());
        let mut spans = vec![SpanRecord {
            trace_id: self.context.trace_id,
            span_id: self.context.span_id,
            parent_span_id: self.parent,
            parent_is_remote: self.parent.is_some(),
            trace_state: self.trace_state.clone(),
            name: self.name.clone(),
            kind: SpanKind::Server,
            start: self.started_wall,
            end: self.wall(total),
            attributes,
            error,
        }];
        let mut previous_end = Duration::ZERO;
        for (i, r) in summary.records.iter().enumerate() {
            let wait = r.started.saturating_sub(previous_end);
            previous_end = r.started + r.latency;
            let mut attributes = vec![
                ("switchback.attempt".to_owned(), int(i as u64 + 1)),
                ("switchback.model".to_owned(), str(&r.model)),
                ("switchback.error_type".to_owned(), str(&r.error_type)),
                (
                    "switchback.wait_ms".to_owned(),
                    int(wait.as_millis() as u64),
                ),
            ];
            if let Some(s) = r.status {
                attributes.push(("http.response.status_code".into(), int(u64::from(s))));
            }
            if let Some(ra) = r.retry_after {
                attributes.push((
                    "switchback.retry_after_ms".into(),
                    int(ra.as_millis() as u64),
                ));
            }
            let failed = r.error_type != "ok";
            if failed {
                attributes.push(("error.type".into(), str(&r.error_type)));
            }
            spans.push(SpanRecord {
                trace_id: self.context.trace_id,
                span_id: self.attempt_span_id(i as u32),
                parent_span_id: Some(self.context.span_id),
                parent_is_remote: false,
                trace_state: self.trace_state.clone(),
                name: format!("attempt {}", r.model),
                kind: SpanKind::Client,
                start: self.wall(r.started),
                end: self.wall(previous_end),
                attributes,
                error: failed.then(|| r.error_type.clone()),
            });
        }
        spans
    }
}
