//! Span contexts (spec §13): spans that continue a client's trace carry the client's
//! `tracestate`; a trace the gateway starts itself (no `traceparent`, or one that does
//! not parse) carries none, even when the client sent a `tracestate`.

use std::time::{Duration, Instant, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use switchback_core::config::{OtlpProtocol, TracingSettings};
use switchback_core::gateway::ProviderId;
use switchback_core::machine::{Outcome, Summary};
use switchback_core::trace::{
    RequestTrace, SpanRecord, MAX_TRACE_STATE_BYTES, TRACEPARENT, TRACESTATE,
};

const CLIENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const STATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

fn spans(client: &[(&'static str, &str)]) -> Vec<SpanRecord> {
    let settings = TracingSettings {
        sampling_percent: 100,
        protocol: OtlpProtocol::HttpProtobuf,
        endpoint: "http://127.0.0.1:4318".into(),
        static_attributes: Vec::new(),
        header_prefixes: Vec::new(),
    };
    let mut headers = HeaderMap::new();
    for (k, v) in client {
        headers.append(*k, HeaderValue::from_str(v).unwrap());
    }
    // A virtual clock: any origin will do, the trace only takes differences.
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let trace = RequestTrace::start(
        &settings,
        &headers,
        "POST",
        "/v1/chat/completions",
        7,
        start,
        UNIX_EPOCH,
    );
    assert!(trace.sampled());
    let summary = Summary {
        outcome: Outcome::Success,
        status: 200,
        attempts: 0,
        model: None,
        primary: ProviderId(0),
        target: None,
        records: Vec::new(),
        recovery: None,
    };
    trace.finish(start + Duration::from_millis(3), &summary, "req-1")
}

#[test]
fn spans_that_continue_the_clients_trace_carry_its_tracestate() {
    let spans = spans(&[(TRACEPARENT, CLIENT), (TRACESTATE, STATE)]);
    assert!(!spans.is_empty());
    assert!(spans.iter().all(|s| s.trace_state == STATE), "{spans:#?}");
}

#[test]
fn a_trace_the_gateway_starts_carries_no_tracestate() {
    for client in [
        &[(TRACESTATE, STATE)][..],
        &[(TRACEPARENT, "garbage"), (TRACESTATE, STATE)][..],
    ] {
        let spans = spans(client);
        assert!(spans.iter().all(|s| s.trace_state.is_empty()), "{spans:#?}");
    }
}

#[test]
fn a_client_trace_without_tracestate_carries_an_empty_one() {
    let spans = spans(&[(TRACEPARENT, CLIENT)]);
    assert!(spans.iter().all(|s| s.trace_state.is_empty()));
}

#[test]
fn several_tracestate_fields_are_joined_and_an_oversized_one_is_dropped() {
    let one = spans(&[(TRACEPARENT, CLIENT), (TRACESTATE, "congo=t61rcWkgMzE")]);
    assert!(one.iter().all(|s| s.trace_state == "congo=t61rcWkgMzE"));
    let joined = spans(&[
        (TRACEPARENT, CLIENT),
        (TRACESTATE, "congo=t61rcWkgMzE"),
        (TRACESTATE, "rojo=00f067aa0ba902b7"),
    ]);
    assert!(joined.iter().all(|s| s.trace_state == STATE), "{joined:#?}");
    let big = format!("a={}", "x".repeat(MAX_TRACE_STATE_BYTES));
    let dropped = spans(&[(TRACEPARENT, CLIENT), (TRACESTATE, &big)]);
    assert!(dropped.iter().all(|s| s.trace_state.is_empty()));
}
