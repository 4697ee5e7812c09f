//! Traces (spec §13): Plano's `tracing` section honoured, sans-IO.
//!
//! A sampled request gets a [`RequestTrace`] (`span.rs`): its trace id (the client's,
//! from `traceparent`, or a new one), its span and one child span per attempt, each
//! attempt sending `traceparent` upstream. When the request ends, the connection driver
//! hands the finished [`SpanRecord`]s to the runtime (`Connection::take_spans`), which
//! queues them in a bounded [`SpanQueue`] (a full queue drops and counts, never waits)
//! and exports batches off the request path as OTLP protobuf ([`encode_export`]), over
//! HTTP/1.1 (or gRPC) as the config says.

pub mod context;
pub mod grpc;
pub mod otlp;
mod span;

pub use context::{client_tracestate, SpanContext, TRACEPARENT, TRACESTATE};
pub use span::{AttrValue, RequestTrace, SpanKind, SpanRecord, MAX_TRACE_STATE_BYTES};

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

/// Spans one worker thread holds for its exporter at most; past it new spans are
/// dropped (and counted in `switchback_trace_spans_dropped_total`).
pub const QUEUE_SPANS: usize = 4096;
/// Spans sent in one export call at most.
pub const BATCH_SPANS: usize = 512;

/// A bounded queue of finished spans. See the module docs.
#[derive(Debug)]
pub struct SpanQueue {
    spans: VecDeque<SpanRecord>,
    capacity: usize,
}

impl Default for SpanQueue {
    fn default() -> Self {
        SpanQueue::new(QUEUE_SPANS)
    }
}

impl SpanQueue {
    /// A queue holding `capacity` spans at most.
    pub fn new(capacity: usize) -> SpanQueue {
        SpanQueue {
            spans: VecDeque::new(),
            capacity,
        }
    }

    /// Queues `spans`; returns how many did not fit and were dropped. A request's spans
    /// go in whole or not at all, so a trace is never exported half.
    pub fn push(&mut self, spans: Vec<SpanRecord>) -> usize {
        if self.spans.len() + spans.len() > self.capacity {
            return spans.len();
        }
        self.spans.extend(spans);
        0
    }

    /// Up to `max` spans, oldest first.
    pub fn take_batch(&mut self, max: usize) -> Vec<SpanRecord> {
        let n = self.spans.len().min(max);
        self.spans.drain(..n).collect()
    }

    /// Spans waiting.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn key_value(key: &str, value: otlp::any_value::Value) -> otlp::KeyValue {
    otlp::KeyValue {
        key: key.to_owned(),
        value: Some(otlp::AnyValue { value: Some(value) }),
    }
}

fn attribute((key, value): &(String, AttrValue)) -> otlp::KeyValue {
    use otlp::any_value::Value;
    let v = match value {
        AttrValue::Str(s) => Value::StringValue(s.clone()),
        AttrValue::Int(i) => Value::IntValue(*i),
    };
    key_value(key, v)
}

fn span(s: &SpanRecord) -> otlp::Span {
    let remote = if s.parent_span_id.is_some() {
        otlp::FLAG_HAS_IS_REMOTE
            | if s.parent_is_remote {
                otlp::FLAG_IS_REMOTE
            } else {
                0
            }
    } else {
        0
    };
    otlp::Span {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        trace_state: s.trace_state.clone(),
        parent_span_id: s.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        flags: 1 | remote,
        name: s.name.clone(),
        kind: match s.kind {
            SpanKind::Server => otlp::SPAN_KIND_SERVER,
            SpanKind::Client => otlp::SPAN_KIND_CLIENT,
        },
        start_time_unix_nano: unix_nanos(s.start),
        end_time_unix_nano: unix_nanos(s.end),
        attributes: s.attributes.iter().map(attribute).collect(),
        dropped_attributes_count: 0,
        status: s.error.as_ref().map(|m| otlp::Status {
            message: m.clone(),
            code: otlp::STATUS_CODE_ERROR,
        }),
    }
}

/// An `ExportTraceServiceRequest` for `spans`, protobuf-encoded, from the resource
/// `service.name = switchback` (and its version).
pub fn encode_export(spans: &[SpanRecord]) -> Vec<u8> {
    use otlp::any_value::Value;
    let version = env!("CARGO_PKG_VERSION");
    let request = otlp::ExportTraceServiceRequest {
        resource_spans: vec![otlp::ResourceSpans {
            resource: Some(otlp::Resource {
                attributes: vec![
                    key_value("service.name", Value::StringValue("switchback".into())),
                    key_value("service.version", Value::StringValue(version.into())),
                ],
                dropped_attributes_count: 0,
            }),
            scope_spans: vec![otlp::ScopeSpans {
                scope: Some(otlp::InstrumentationScope {
                    name: "switchback".into(),
                    version: version.into(),
                }),
                spans: spans.iter().map(span).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    request.encode_to_vec()
}

/// How many spans a collector's `ExportTraceServiceResponse` says it rejected (0 for
/// an empty or undecodable body, which a collector sends on full success).
pub fn rejected_spans(body: &[u8]) -> u64 {
    otlp::ExportTraceServiceResponse::decode(body)
        .ok()
        .and_then(|r| r.partial_success)
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(n: usize, name: &str) -> Vec<SpanRecord> {
        (0..n)
            .map(|i| SpanRecord {
                trace_id: [1; 16],
                span_id: [i as u8 + 1; 8],
                parent_span_id: None,
                parent_is_remote: false,
                trace_state: String::new(),
                name: name.to_owned(),
                kind: SpanKind::Server,
                start: UNIX_EPOCH,
                end: UNIX_EPOCH,
                attributes: Vec::new(),
                error: None,
            })
            .collect()
    }

    #[test]
    fn a_full_queue_drops_a_requests_spans_whole_and_says_how_many() {
        let mut q = SpanQueue::new(4);
        assert_eq!(q.push(spans(3, "first")), 0);
        assert_eq!(q.push(spans(2, "second")), 2, "3 + 2 > 4: dropped whole");
        assert_eq!(q.len(), 3, "nothing of the second request went in");
        assert_eq!(q.push(spans(1, "third")), 0, "one still fits");
        assert_eq!(q.push(spans(1, "fourth")), 1, "full");
        let batch = q.take_batch(10);
        let names: Vec<&str> = batch.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["first", "first", "first", "third"]);
        assert!(q.is_empty());
        assert_eq!(q.push(spans(4, "after")), 0, "room again once drained");
        assert_eq!(q.take_batch(3).len(), 3, "batches are bounded");
        assert_eq!(q.len(), 1);
    }
}
