//! Traces of a failover, received by an OTLP collector over HTTP and over gRPC: one
//! request span (a child of the client's `traceparent`) with one child span per attempt,
//! each attempt's `traceparent` sent upstream naming that attempt's span, with the
//! client's `tracestate` unchanged.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

use switchback_tests::client::post_chat_with;
use switchback_tests::fixtures::chat_request;
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::MockUpstream;

use crate::harness::{failover_config, ok, pushback, scrape, series, start, wait_series};
use crate::otlp::{grpc_receiver, http_receiver, Receiver};

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
        .map(|v| match v {
            Value::StringValue(s) => s.clone(),
            Value::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}

fn failover_spans<R: Runtime>(tracing: &str, receiver: &Receiver) {
    let primary = MockUpstream::start(vec![pushback()]);
    let secondary = MockUpstream::start(vec![ok(), ok()]);
    let yaml = format!("{}tracing:\n{tracing}", failover_config(""));
    let gw = start::<R>(&yaml, &[primary.port(), secondary.port()]);
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
    let r = post_chat_with(
        gw.addr,
        &chat_request(),
        &[("traceparent", &traceparent), ("tracestate", tracestate)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let spans = receiver.wait_spans(3);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert!(spans.iter().all(|s| hex(&s.trace_id) == CLIENT_TRACE));
    // Every span continues the client's context, so it carries the client's tracestate.
    assert!(
        spans.iter().all(|s| s.trace_state == tracestate),
        "{spans:#?}"
    );
    let request = spans.iter().find(|s| s.kind == 2).expect("a server span");
    assert_eq!(hex(&request.parent_span_id), CLIENT_SPAN);
    assert_eq!(request.name, "POST /v1/chat/completions");
    assert_eq!(
        attr(request, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attr(request, "switchback.attempts").as_deref(), Some("2"));
    assert_eq!(
        attr(request, "switchback.model").as_deref(),
        Some("anthropic/claude-3-5-sonnet")
    );
    let mut attempts: Vec<&Span> = spans.iter().filter(|s| s.kind == 3).collect();
    attempts.sort_by_key(|s| attr(s, "switchback.attempt"));
    assert_eq!(attempts.len(), 2);
    for a in &attempts {
        assert_eq!(a.parent_span_id, request.span_id);
        assert!(a.start_time_unix_nano >= request.start_time_unix_nano);
        assert!(a.end_time_unix_nano <= request.end_time_unix_nano);
    }
    let (first, second) = (attempts[0], attempts[1]);
    assert_eq!(
        attr(first, "switchback.model").as_deref(),
        Some("openai/gpt-4o")
    );
    assert_eq!(attr(first, "error.type").as_deref(), Some("http_429"));
    assert_eq!(
        attr(first, "http.response.status_code").as_deref(),
        Some("429")
    );
    assert_eq!(
        attr(first, "switchback.retry_after_ms").as_deref(),
        Some("30000")
    );
    assert_eq!(first.status.as_ref().map(|s| s.code), Some(2));
    assert_eq!(
        attr(second, "switchback.model").as_deref(),
        Some("anthropic/claude-3-5-sonnet")
    );
    assert_eq!(attr(second, "switchback.error_type").as_deref(), Some("ok"));
    assert!(attr(second, "switchback.wait_ms").is_some());
    assert!(second.status.as_ref().is_none_or(|s| s.code != 2));
    // Each upstream got the traceparent of its own attempt span, and the client's
    // tracestate unchanged.
    for (mock, span) in [(&primary, first), (&secondary, second)] {
        let sent = mock.requests()[0].header("traceparent").map(str::to_owned);
        let expected = format!("00-{CLIENT_TRACE}-{}-01", hex(&span.span_id));
        assert_eq!(sent.as_deref(), Some(expected.as_str()));
        assert_eq!(mock.requests()[0].header("tracestate"), Some(tracestate));
    }
    assert!(receiver
        .resource()
        .iter()
        .any(|a| a.contains("service.name") && a.contains("switchback")));
    let text = wait_series(gw.addr, "switchback_trace_spans_exported_total", 3.0);
    assert_eq!(
        series(&text, "switchback_trace_spans_exported_total"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        series(&text, "switchback_trace_spans_dropped_total"),
        Some(0.0)
    );

    // A client that says "not sampled" is not traced; its traceparent goes on unchanged.
    let unsampled = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-00");
    let r = post_chat_with(gw.addr, &chat_request(), &[("traceparent", &unsampled)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        secondary.requests()[1].header("traceparent"),
        Some(unsampled.as_str())
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(receiver.spans().len(), 3);
}

/// OTLP/HTTP (`otlp_http_endpoint`): spans arrive on `/v1/traces`.
pub(crate) fn traces_of_a_failover_over_otlp_http<R: Runtime>() {
    let receiver = http_receiver();
    let tracing = format!(
        "  random_sampling: 100\n  otlp_http_endpoint: http://{}\n",
        receiver.addr
    );
    failover_spans::<R>(&tracing, &receiver);
    assert!(
        receiver.paths().iter().all(|p| p == "/v1/traces"),
        "{:?}",
        receiver.paths()
    );
}

/// OTLP/gRPC (Plano's `opentracing_grpc_endpoint`): spans arrive by `TraceService/Export`.
pub(crate) fn traces_of_a_failover_over_otlp_grpc<R: Runtime>() {
    let receiver = grpc_receiver();
    let tracing = format!(
        "  random_sampling: 100\n  opentracing_grpc_endpoint: http://{}\n",
        receiver.addr
    );
    failover_spans::<R>(&tracing, &receiver);
    assert!(
        receiver
            .paths()
            .iter()
            .all(|p| p == "/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
        "{:?}",
        receiver.paths()
    );
}

/// A collector that is down costs the request nothing: it is answered, the spans are
/// dropped and counted.
pub(crate) fn a_collector_that_is_down_drops_and_counts<R: Runtime>() {
    let secondary = MockUpstream::start(vec![ok()]);
    let dead = switchback_tests::mock_upstream::refused_port();
    let yaml = format!(
        "{}tracing:\n  random_sampling: 100\n  otlp_http_endpoint: http://127.0.0.1:{dead}\n",
        failover_config("")
    );
    let gw = start::<R>(&yaml, &[secondary.port(), secondary.port()]);
    let r = post_chat_with(gw.addr, &chat_request(), &[]);
    assert_eq!(r.status, 200);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = scrape(gw.addr);
        if series(&text, "switchback_trace_spans_dropped_total") == Some(2.0) {
            assert_eq!(
                series(&text, "switchback_trace_export_failures_total"),
                Some(1.0)
            );
            break;
        }
        assert!(std::time::Instant::now() < until, "{text}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
