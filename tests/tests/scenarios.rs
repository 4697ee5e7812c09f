//! The scenario table: every scenario runs over real loopback sockets against each
//! runtime built in (features `smol`, `tokio`), as `smol_<scenario>` and
//! `tokio_<scenario>`. Each scenario scripts its mock upstreams, starts a gateway on an
//! ephemeral port with a config naming the mocks' ports, acts as a client and asserts
//! what the client saw and what each mock received.
//!
//! IT-1 .. IT-13 are the seed suite's scenarios (`../shared/seed/`), with its mocks'
//! HTTP/1.0 framing and its assertions, and its long waits scaled down.

#![cfg_attr(
    not(any(feature = "smol", feature = "tokio")),
    allow(dead_code, unused_imports)
)]

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchback_tests::client::{self, get, post_chat, post_chat_with, Response, Streaming};
use switchback_tests::fixtures::*;
use switchback_tests::gateway::{load_config, GatewayOptions, RunningGateway, Runtime};
use switchback_tests::mock_upstream::{refused_port, Ending, Framing, MockUpstream, Reply};

#[cfg(feature = "smol")]
use switchback_tests::gateway::Smol;
#[cfg(feature = "tokio")]
use switchback_tests::gateway::Tokio;

/// Expands the table: one `#[test]` per scenario and runtime. An entry may carry extra
/// attributes for one runtime, e.g. `name smol(ignore = "why")`.
macro_rules! scenarios {
    ($( $name:ident $( smol($($sattr:tt)*) )? $( tokio($($tattr:tt)*) )? ),* $(,)?) => {
        paste::paste! {
            $(
                #[cfg(feature = "smol")]
                #[test]
                $( #[$($sattr)*] )?
                fn [<smol_ $name>]() {
                    $name::<Smol>();
                }

                #[cfg(feature = "tokio")]
                #[test]
                $( #[$($tattr)*] )?
                fn [<tokio_ $name>]() {
                    $name::<Tokio>();
                }
            )*
        }
    };
}

scenarios! {
    it1_basic_429,
    it2_503_different_provider,
    it3_all_exhausted,
    it4_no_retry_policy,
    it5_max_attempts,
    it6_backoff_delay,
    it7_fallback_priority,
    it8_retry_after_honored,
    it9_retry_after_blocks_selection,
    it10_timeout_triggers_retry,
    it11_high_latency_failover,
    it12_streaming,
    it13_body_preserved,
    connect_refused_fails_over,
    reset_before_headers_fails_over,
    truncated_json_fails_over,
    first_token_timeouts_exhaust,
    timeout_error_type_names_the_timeout,
    stream_cut_before_commit_retried,
    stream_cut_after_commit_ends_with_error,
    stream_stall_after_commit_ends_with_error,
    inband_error_before_commit_fails_over,
    malformed_sse_event_dropped,
    missing_done_appended,
    passthrough_400_untouched,
    error_code_400_fails_over,
    then_long_retry_after_fails_over_at_once,
    then_short_retry_after_retries_same_model,
    client_gone_during_backoff,
    client_gone_during_retry_after,
    client_gone_mid_stream_closes_upstream,
    invalid_json_400,
    oversize_body_413,
    unknown_model_404,
    healthz_models_and_unknown_path,
    request_id_echoed_or_generated,
    success_headers_and_upstream_request,
    http10_close_delimited_json_and_sse,
    upstream_connection_reused,
    all_blocked_answers_at_once,
    listener_deadline_bounds_request,
    no_policy_transport_error_is_gateway_error,
    concurrent_requests_are_served_in_parallel,
    slow_client_head_times_out,
    malformed_http_400 tokio(ignore = "runtime-tokio: hyper answers unparsable HTTP with its own 400 and an empty body, not an OpenAI-shaped error (runtime contract)"),
}

// ---------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------

/// A gateway for one scenario; shut down when dropped.
struct Gw {
    running: Option<Box<dyn RunningGateway>>,
    addr: SocketAddr,
}

impl Drop for Gw {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

/// Starts `yaml` with `${PRIMARY}`, `${SECONDARY}`, `${TERTIARY}` set to the mocks' ports.
fn start<R: Runtime>(yaml: &str, mocks: &[&MockUpstream]) -> Gw {
    let ports: Vec<u16> = mocks.iter().map(|m| m.port()).collect();
    start_ports::<R>(yaml, &ports, &GatewayOptions::default())
}

fn start_ports<R: Runtime>(yaml: &str, ports: &[u16], options: &GatewayOptions) -> Gw {
    let vars: Vec<(&str, String)> = ["PRIMARY", "SECONDARY", "TERTIARY"]
        .into_iter()
        .zip(ports.iter().map(u16::to_string))
        .collect();
    let config = load_config(yaml, &vars);
    let running = R::start(config, options);
    let addr = running.addr();
    Gw {
        running: Some(running),
        addr,
    }
}

const HEAD: &str = "version: v0.3.0
listeners:
  - type: model
    name: model_listener
    port: 12000
    timeout: 10s
model_providers:
";

/// Per-attempt timeouts for scenarios that do not test them (a stuck gateway still
/// fails fast).
const NORMAL: &str = "{first_token: 2s, idle: 2s}";
/// Per-attempt timeouts for scenarios that do.
const SHORT: &str = "{first_token: 300ms, idle: 300ms}";

/// The seed's retry policy of IT-1, IT-3, IT-12, IT-13: 429 fails over, twice.
const RETRY_429: &str = "default_strategy: different_provider
default_max_attempts: 2
on_status_codes:
  - codes: [429]
    strategy: different_provider
    max_attempts: 2
";

fn indent(text: &str, by: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(by)))
        .collect()
}

/// One provider entry. `policy` is the body of its `retry_policy` (unindented).
fn provider(model: &str, port_var: &str, timeouts: &str, policy: Option<&str>) -> String {
    let mut y = format!(
        "  - model: {model}\n    base_url: http://127.0.0.1:${{{port_var}}}\n    access_key: key-{port_var}\n    timeouts: {timeouts}\n"
    );
    if model.starts_with("anthropic/") {
        // The mocks speak the OpenAI wire format.
        y.push_str("    provider_interface: openai\n");
    }
    if model == "openai/gpt-4o" {
        y.push_str("    default: true\n");
    }
    if let Some(p) = policy {
        y.push_str("    retry_policy:\n");
        y.push_str(&indent(p, 6));
    }
    y
}

/// The seed's two-provider layout: `openai/gpt-4o` (default, with `policy`) on
/// `${PRIMARY}` and `anthropic/claude-3-5-sonnet` on `${SECONDARY}`.
fn pair(policy: Option<&str>, timeouts: &str) -> String {
    format!(
        "{HEAD}{}{}",
        provider("openai/gpt-4o", "PRIMARY", timeouts, policy),
        provider("anthropic/claude-3-5-sonnet", "SECONDARY", timeouts, None)
    )
}

/// A JSON reply framed like the seed's Python mocks (HTTP/1.0, close-delimited).
fn seed_json(status: u16, body: &str) -> Reply {
    Reply::json(status, body).framing(Framing::Http10)
}

fn seed_429() -> Reply {
    seed_json(429, &error_body(429, "Rate limit exceeded"))
}

fn seed_ok() -> Reply {
    seed_json(200, &success_body())
}

fn ok() -> Reply {
    Reply::json(200, success_body())
}

fn too_many() -> Reply {
    Reply::json(429, error_body(429, "Rate limit exceeded"))
}

fn stream_ok() -> Reply {
    Reply::sse(&stream_events(), Duration::from_millis(10))
}

fn assert_status(r: &Response, status: u16) {
    assert_eq!(r.status, status, "unexpected status; body: {}", r.text());
}

fn assert_success_content(r: &Response) {
    assert_status(r, 200);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        SUCCESS_CONTENT,
        "body: {}",
        r.text()
    );
}

fn assert_header(r: &Response, name: &str, value: &str) {
    assert_eq!(
        r.header(name),
        Some(value),
        "header {name}; all: {:?}",
        r.headers
    );
}

/// The `error` object of a gateway error body.
fn error_of(r: &Response) -> Value {
    let v = r.json();
    assert!(
        v["error"].is_object(),
        "not an OpenAI error body: {}",
        r.text()
    );
    v["error"].clone()
}

fn assert_exhausted(r: &Response, status: u16, attempts: usize) -> Value {
    assert_status(r, status);
    let e = error_of(r);
    assert_eq!(e["type"], "retry_exhausted", "{e}");
    assert_eq!(e["code"], "retry_exhausted", "{e}");
    assert_eq!(e["message"], "All retry attempts exhausted", "{e}");
    assert_eq!(e["total_attempts"], attempts, "{e}");
    assert_eq!(
        e["attempts"].as_array().map(Vec::len),
        Some(attempts),
        "{e}"
    );
    assert_eq!(e["retry_budget_exhausted"], false, "{e}");
    assert_header(r, "x-should-retry", "false");
    e
}

fn stream(addr: SocketAddr) -> Response {
    let s = Streaming::chat(addr, &stream_request());
    s.finish()
}

/// A stream that ended cleanly with exactly the text `text`, one role, and `[DONE]` last.
fn assert_clean_stream(r: &Response, text: &str) {
    assert_status(r, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream")),
        "content-type: {:?}",
        r.header("content-type")
    );
    assert!(
        r.complete,
        "the stream body did not end cleanly: {}",
        r.text()
    );
    let data = r.sse_data();
    assert_eq!(stream_content(&data), text, "events: {data:?}");
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "events: {data:?}"
    );
    assert_eq!(
        data.iter().filter(|d| d.as_str() == "[DONE]").count(),
        1,
        "events: {data:?}"
    );
    assert!(
        !data.iter().any(|d| d.contains("\"error\"")),
        "an error event in a clean stream: {data:?}"
    );
    let roles = data
        .iter()
        .filter(|d| d.contains("\"role\":\"assistant\""))
        .count();
    assert_eq!(roles, 1, "one stream, one role chunk: {data:?}");
}

/// A committed stream that ended with a terminal error event and no `[DONE]`.
fn assert_aborted_stream(r: &Response, text_before: &str) -> Value {
    assert_status(r, 200);
    let data = r.sse_data();
    assert_eq!(stream_content(&data), text_before, "events: {data:?}");
    assert!(
        !data.iter().any(|d| d == "[DONE]"),
        "a failed stream must not end with [DONE]: {data:?}"
    );
    let last: Value = data
        .last()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    assert!(
        last["error"]["message"].is_string(),
        "the last event is not an error event: {data:?}"
    );
    last["error"].clone()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------------
// IT-1 .. IT-13: the seed suite
// ---------------------------------------------------------------------------------

/// IT-1: the primary answers 429, the secondary 200: the client gets the 200.
fn it1_basic_429<R: Runtime>() {
    let primary = MockUpstream::start(vec![seed_429()]);
    let secondary = MockUpstream::start(vec![seed_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_eq!(primary.calls(), 1);
    assert_eq!(secondary.calls(), 1);
    assert_header(&r, "x-switchback-attempts", "2");
    assert_header(&r, "x-switchback-model", "anthropic/claude-3-5-sonnet");
}

/// IT-2: 503 fails over to a different provider.
fn it2_503_different_provider<R: Runtime>() {
    let primary = MockUpstream::start(vec![seed_json(
        503,
        &error_body(503, "Service Unavailable"),
    )]);
    let secondary = MockUpstream::start(vec![seed_ok()]);
    let policy = RETRY_429.replace("[429]", "[503]");
    let gw = start::<R>(&pair(Some(&policy), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_eq!(primary.calls(), 1);
    assert_eq!(secondary.calls(), 1);
}

/// IT-3: every provider answers 429: the exhaustion error lists both attempts and
/// keeps the last upstream error.
fn it3_all_exhausted<R: Runtime>() {
    let primary = MockUpstream::start(vec![seed_429()]);
    let secondary = MockUpstream::start(vec![seed_json(
        429,
        &error_body(429, "Secondary rate limit"),
    )]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    let e = assert_exhausted(&r, 429, 2);
    let a = &e["attempts"];
    assert_eq!(a[0]["attempt"], 1);
    assert_eq!(a[0]["model"], "openai/gpt-4o");
    assert_eq!(a[0]["error_type"], "http_429");
    assert_eq!(a[0]["status"], 429);
    assert!(a[0]["latency_ms"].is_u64());
    assert_eq!(a[1]["attempt"], 2);
    assert_eq!(a[1]["model"], "anthropic/claude-3-5-sonnet");
    assert_eq!(a[1]["error_type"], "http_429");
    assert_eq!(
        e["last_error"]["error"]["message"], "Secondary rate limit",
        "{e}"
    );
    assert_eq!(primary.calls(), 1);
    assert_eq!(secondary.calls(), 1);
}

/// IT-4: without a retry_policy the 429 passes through unchanged and nothing else is
/// called.
fn it4_no_retry_policy<R: Runtime>() {
    let body = error_body(429, "Rate limit exceeded");
    let primary = MockUpstream::start(vec![seed_json(429, &body)]);
    let secondary = MockUpstream::start(vec![seed_ok()]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_status(&r, 429);
    assert_eq!(r.text(), body, "the upstream body passes through unchanged");
    assert_eq!(primary.calls(), 1);
    assert_eq!(secondary.calls(), 0);
}

/// IT-5: `max_attempts: 1` is one retry: primary, secondary, then the error; the
/// tertiary (next in config order) is never called.
fn it5_max_attempts<R: Runtime>() {
    let primary = MockUpstream::start(vec![seed_429()]);
    let secondary = MockUpstream::start(vec![seed_429()]);
    let tertiary = MockUpstream::start(vec![seed_ok()]);
    let policy = RETRY_429.replace("max_attempts: 2", "max_attempts: 1");
    let yaml = format!(
        "{}{}",
        pair(Some(&policy), NORMAL),
        provider("mistral/mistral-large", "TERTIARY", NORMAL, None)
    );
    let gw = start::<R>(&yaml, &[&primary, &secondary, &tertiary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_exhausted(&r, 429, 2);
    assert_eq!(primary.calls(), 1);
    assert_eq!(secondary.calls(), 1);
    assert_eq!(tertiary.calls(), 0);
}

/// IT-6 (scaled: base 100 ms instead of 500): same-model retries back off 100 ms, then
/// 200 ms.
fn it6_backoff_delay<R: Runtime>() {
    let primary = MockUpstream::start(vec![seed_429(), seed_429(), seed_ok()]);
    let policy = "default_strategy: same_model
default_max_attempts: 3
on_status_codes:
  - codes: [429]
    strategy: same_model
    max_attempts: 3
backoff:
  apply_to: same_model
  base_ms: 100
  max_ms: 5000
  jitter: false
";
    let yaml = format!(
        "{HEAD}{}",
        provider("openai/gpt-4o", "PRIMARY", NORMAL, Some(policy))
    );
    let gw = start::<R>(&yaml, &[&primary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert!(r.elapsed() >= ms(300), "elapsed {:?}", r.elapsed());
    assert_eq!(primary.calls(), 3);
    let at: Vec<Instant> = primary.requests().iter().map(|q| q.at).collect();
    assert!(
        at[1] - at[0] >= ms(100),
        "first backoff {:?}",
        at[1] - at[0]
    );
    assert!(
        at[2] - at[1] >= ms(200),
        "second backoff {:?}",
        at[2] - at[1]
    );
    assert_header(&r, "x-switchback-attempts", "3");
}

/// IT-7: fallback_models are tried in their order.
fn it7_fallback_priority<R: Runtime>() {
    let primary = MockUpstream::start(vec![seed_429()]);
    let fallback1 = MockUpstream::start(vec![seed_429()]);
    let fallback2 = MockUpstream::start(vec![seed_ok()]);
    let policy = "fallback_models: [anthropic/claude-3-5-sonnet, mistral/mistral-large]
default_strategy: different_provider
default_max_attempts: 3
on_status_codes:
  - codes: [429]
    strategy: different_provider
    max_attempts: 3
";
    // Config order puts mistral before anthropic: fallback_models must win.
    let yaml = format!(
        "{HEAD}{}{}{}",
        provider("openai/gpt-4o", "PRIMARY", NORMAL, Some(policy)),
        provider("mistral/mistral-large", "TERTIARY", NORMAL, None),
        provider("anthropic/claude-3-5-sonnet", "SECONDARY", NORMAL, None),
    );
    let gw = start::<R>(&yaml, &[&primary, &fallback1, &fallback2]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_eq!(primary.calls(), 1);
    assert_eq!(fallback1.calls(), 1);
    assert_eq!(fallback2.calls(), 1);
    assert!(primary.requests()[0].at <= fallback1.requests()[0].at);
    assert!(fallback1.requests()[0].at <= fallback2.requests()[0].at);
    assert_header(&r, "x-switchback-model", "mistral/mistral-large");
}

/// IT-8 (scaled: `Retry-After: 1` instead of 2): a same-model retry waits out the
/// Retry-After.
fn it8_retry_after_honored<R: Runtime>() {
    let primary = MockUpstream::start(vec![seed_429().header("Retry-After", "1"), seed_ok()]);
    let policy = "default_strategy: same_model
default_max_attempts: 2
on_status_codes:
  - codes: [429]
    strategy: same_model
    max_attempts: 2
retry_after_handling:
  scope: model
  apply_to: request
  max_retry_after_seconds: 300
";
    let yaml = format!(
        "{HEAD}{}",
        provider("openai/gpt-4o", "PRIMARY", NORMAL, Some(policy))
    );
    let gw = start::<R>(&yaml, &[&primary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert!(r.elapsed() >= ms(1000), "elapsed {:?}", r.elapsed());
    assert_eq!(primary.calls(), 2);
    let q = primary.requests();
    assert!(q[1].at - q[0].at >= ms(1000), "gap {:?}", q[1].at - q[0].at);
}

/// IT-9: a global Retry-After block steers the next request straight to the secondary.
fn it9_retry_after_blocks_selection<R: Runtime>() {
    let primary = MockUpstream::start(vec![seed_429().header("Retry-After", "60"), seed_ok()]);
    let secondary = MockUpstream::start(vec![seed_ok()]);
    let policy = "fallback_models: [anthropic/claude-3-5-sonnet]
default_strategy: different_provider
default_max_attempts: 2
on_status_codes:
  - codes: [429]
    strategy: different_provider
    max_attempts: 2
retry_after_handling:
  scope: model
  apply_to: global
  max_retry_after_seconds: 300
";
    let gw = start::<R>(&pair(Some(policy), NORMAL), &[&primary, &secondary]);
    let t0 = Instant::now();
    let r1 = post_chat(gw.addr, &chat_request());
    assert_success_content(&r1);
    assert!(
        t0.elapsed() < ms(2000),
        "failing over must not wait out Retry-After"
    );
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
    let r2 = post_chat(
        gw.addr,
        r#"{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Second request"}]}"#,
    );
    assert_success_content(&r2);
    assert_eq!(primary.calls(), 1, "the blocked primary was called again");
    assert_eq!(secondary.calls(), 2);
    assert_header(&r2, "x-switchback-attempts", "1");
}

/// IT-10 (scaled: `first_token` 300 ms): a primary that never answers in time is
/// abandoned (its connection closed) and the secondary answers.
fn it10_timeout_triggers_retry<R: Runtime>() {
    let primary = MockUpstream::start(vec![seed_ok().delayed(Duration::from_secs(60))]);
    let secondary = MockUpstream::start(vec![seed_ok()]);
    let policy = format!("fallback_models: [anthropic/claude-3-5-sonnet]\n{RETRY_429}on_timeout:\n  strategy: different_provider\n  max_attempts: 2\n");
    let gw = start::<R>(&pair(Some(&policy), SHORT), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert!(r.elapsed() >= ms(300), "elapsed {:?}", r.elapsed());
    assert!(r.elapsed() < ms(2000), "elapsed {:?}", r.elapsed());
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
    assert!(
        primary.wait_closed_by_peer(0, ms(1000)),
        "the timed-out attempt's connection was not closed"
    );
}

/// IT-11 (scaled: threshold 200 ms, primary 400 ms late): the slow answer is delivered,
/// and the latency block sends the next request to the secondary.
fn it11_high_latency_failover<R: Runtime>() {
    let primary = MockUpstream::start(vec![seed_ok().delayed(ms(400))]);
    let secondary = MockUpstream::start(vec![seed_ok()]);
    let policy = format!(
        "fallback_models: [anthropic/claude-3-5-sonnet]\n{RETRY_429}on_high_latency:
  threshold_ms: 200
  measure: total
  min_triggers: 1
  strategy: different_provider
  max_attempts: 2
  block_duration_seconds: 60
  scope: model
  apply_to: global
"
    );
    let gw = start::<R>(&pair(Some(&policy), NORMAL), &[&primary, &secondary]);
    let r1 = post_chat(gw.addr, &chat_request());
    assert_success_content(&r1);
    assert_header(&r1, "x-switchback-model", "openai/gpt-4o");
    assert_eq!((primary.calls(), secondary.calls()), (1, 0));
    let r2 = post_chat(gw.addr, &chat_request());
    assert_success_content(&r2);
    assert_eq!(
        primary.calls(),
        1,
        "the latency-blocked primary was called again"
    );
    assert_eq!(secondary.calls(), 1);
    assert!(r2.elapsed() < ms(400), "elapsed {:?}", r2.elapsed());
}

/// IT-12: a streaming request survives a 429: one clean stream from the secondary,
/// whose mock answers exactly like the seed's (HTTP/1.0 claiming chunked, raw bytes).
fn it12_streaming<R: Runtime>() {
    let primary = MockUpstream::start(vec![seed_429()]);
    let secondary = MockUpstream::start(vec![
        Reply::sse(&stream_events(), ms(50)).framing(Framing::Http10FalseChunked)
    ]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = stream(gw.addr);
    assert_clean_stream(&r, STREAM_TEXT);
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
    assert_header(&r, "x-switchback-attempts", "2");
    assert_header(&r, "x-switchback-model", "anthropic/claude-3-5-sonnet");
    // Relayed as it arrives: the events are spread over the mock's 50 ms gaps.
    let first = r.chunks.first().map(|c| c.0);
    let last = r.chunks.last().map(|c| c.0);
    assert!(
        matches!((first, last), (Some(a), Some(b)) if b - a >= ms(100)),
        "the stream was buffered: {:?}",
        r.chunks.iter().map(|c| c.0 - r.started).collect::<Vec<_>>()
    );
}

/// IT-13: every attempt sends the client's bytes with only `model` replaced.
fn it13_body_preserved<R: Runtime>() {
    let primary = MockUpstream::start(vec![seed_429()]);
    let secondary = MockUpstream::start(vec![Reply::echo().framing(Framing::Http10)]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let body = r#"{"model": "openai/gpt-4o",  "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Tell me about retry mechanisms."}], "temperature": 0.7, "max_tokens": 100, "z_unknown": {"b": 1, "a": 1.50}}"#;
    let r = post_chat(gw.addr, body);
    assert_status(&r, 200);
    let sent = |model: &str| body.replace("\"openai/gpt-4o\"", &format!("\"{model}\""));
    assert_eq!(primary.requests()[0].text(), sent("gpt-4o"));
    assert_eq!(secondary.requests()[0].text(), sent("claude-3-5-sonnet"));
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        sent("claude-3-5-sonnet")
    );
}

// ---------------------------------------------------------------------------------
// Transport failures
// ---------------------------------------------------------------------------------

/// Connection refused is a failed attempt: fail over.
fn connect_refused_fails_over<R: Runtime>() {
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start_ports::<R>(
        &pair(Some(RETRY_429), NORMAL),
        &[refused_port(), secondary.port()],
        &GatewayOptions::default(),
    );
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_eq!(secondary.calls(), 1);
    assert_header(&r, "x-switchback-attempts", "2");
}

/// A connection closed before any response byte (on a fresh connection) is a failed
/// attempt: fail over, without re-sending to the same upstream.
fn reset_before_headers_fails_over<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::reset()]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_eq!(primary.calls(), 1);
    assert_eq!(secondary.calls(), 1);
}

/// A 200 whose body is cut short is a failed attempt, never relayed.
fn truncated_json_fails_over<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::json(
        200,
        r#"{"id": "chatcmpl-x", "choices": [{"#,
    )
    .ending(Ending::Cut)]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
}

/// No answer within `first_token` anywhere: 504 exhaustion with `timeout_<ms>ms`
/// attempts, well before the listener deadline.
fn first_token_timeouts_exhaust<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::hang()]);
    let secondary = MockUpstream::start(vec![Reply::hang()]);
    let policy =
        format!("{RETRY_429}on_timeout:\n  strategy: different_provider\n  max_attempts: 2\n");
    let gw = start::<R>(&pair(Some(&policy), SHORT), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    let e = assert_exhausted(&r, 504, 2);
    for a in e["attempts"].as_array().into_iter().flatten() {
        let t = a["error_type"].as_str().unwrap_or_default();
        let n: u64 = t
            .strip_prefix("timeout_")
            .and_then(|t| t.strip_suffix("ms"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a timeout error_type: {a}"));
        assert!((300..1000).contains(&n), "{a}");
    }
    assert!(r.elapsed() >= ms(600), "elapsed {:?}", r.elapsed());
    assert!(r.elapsed() < ms(2500), "elapsed {:?}", r.elapsed());
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
    assert!(primary.wait_closed_by_peer(0, ms(1000)));
    assert!(secondary.wait_closed_by_peer(0, ms(1000)));
}

/// Spec §4.8: `error_type` names the timeout that fired (`timeout_300ms` for a 300 ms
/// `first_token`); `latency_ms` carries the measured time.
fn timeout_error_type_names_the_timeout<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::hang()]);
    let secondary = MockUpstream::start(vec![Reply::hang()]);
    let policy =
        format!("{RETRY_429}on_timeout:\n  strategy: different_provider\n  max_attempts: 2\n");
    let gw = start::<R>(&pair(Some(&policy), SHORT), &[&primary, &secondary]);
    // Several requests, so a timer that fires a millisecond late shows up.
    for _ in 0..3 {
        let r = post_chat(gw.addr, &chat_request());
        let e = assert_exhausted(&r, 504, 2);
        for a in e["attempts"].as_array().into_iter().flatten() {
            assert_eq!(a["error_type"], "timeout_300ms", "{a}");
            assert!(a["latency_ms"].as_u64().is_some_and(|l| l >= 300), "{a}");
        }
    }
}

// ---------------------------------------------------------------------------------
// Streaming (spec §6)
// ---------------------------------------------------------------------------------

/// A stream cut before its first content event is retried: the client sees one clean
/// stream, from the fallback only.
fn stream_cut_before_commit_retried<R: Runtime>() {
    let primary =
        MockUpstream::start(vec![Reply::sse(&[role_event()], ms(10)).ending(Ending::Cut)]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = stream(gw.addr);
    assert_clean_stream(&r, STREAM_TEXT);
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
}

/// A stream cut after content was relayed: a terminal error event, no `[DONE]`, and no
/// second provider spliced in.
fn stream_cut_after_commit_ends_with_error<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::sse(
        &[role_event(), content_event("Hel"), content_event("lo")],
        ms(10),
    )
    .ending(Ending::Cut)]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = stream(gw.addr);
    assert_aborted_stream(&r, "Hello");
    assert!(r.complete, "the response body should still end properly");
    assert_eq!(secondary.calls(), 0);
}

/// A committed stream that stalls past `idle` ends with a terminal error event, and the
/// stalled upstream connection is closed.
fn stream_stall_after_commit_ends_with_error<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::sse(
        &[role_event(), content_event("Hi")],
        ms(10),
    )
    .ending(Ending::Stall)]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), SHORT), &[&primary, &secondary]);
    let r = stream(gw.addr);
    let e = assert_aborted_stream(&r, "Hi");
    assert_eq!(e["code"], "stream_timeout", "{e}");
    assert!(r.elapsed() >= ms(300), "elapsed {:?}", r.elapsed());
    assert!(r.elapsed() < ms(2000), "elapsed {:?}", r.elapsed());
    assert_eq!(secondary.calls(), 0);
    assert!(
        primary.wait_closed_by_peer(0, ms(1000)),
        "the stalled upstream connection was not closed"
    );
}

/// An in-band error event before any content is a failed attempt: fail over.
fn inband_error_before_commit_fails_over<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::sse(
        &[role_event(), error_event("overloaded")],
        ms(10),
    )]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = stream(gw.addr);
    assert_clean_stream(&r, STREAM_TEXT);
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
}

/// An event whose data is not JSON is dropped; the stream otherwise completes.
fn malformed_sse_event_dropped<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::sse(
        &[
            role_event(),
            content_event("Hi"),
            "data: this is not json\n\n".to_owned(),
            content_event(" there"),
            finish_event(),
            DONE_EVENT.to_owned(),
        ],
        ms(5),
    )]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = stream(gw.addr);
    assert_clean_stream(&r, "Hi there");
    assert!(!r.text().contains("not json"), "relayed: {}", r.text());
    assert_eq!((primary.calls(), secondary.calls()), (1, 0));
}

/// An upstream stream that ends cleanly after its finish chunk but without `[DONE]` is
/// finished promptly with `[DONE]`.
fn missing_done_appended<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::sse(
        &[role_event(), content_event("Hi"), finish_event()],
        ms(5),
    )]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = stream(gw.addr);
    assert_clean_stream(&r, "Hi");
    assert!(r.elapsed() < ms(1000), "not prompt: {:?}", r.elapsed());
    assert_eq!((primary.calls(), secondary.calls()), (1, 0));
}

// ---------------------------------------------------------------------------------
// Status rules (spec §4.1, §4.9)
// ---------------------------------------------------------------------------------

/// A 400 is the client's problem: passed through byte for byte, not retried.
fn passthrough_400_untouched<R: Runtime>() {
    let body = r#"{"error": {"message": "messages: field required", "type": "invalid_request_error", "param": "messages", "code": null}}"#;
    let primary = MockUpstream::start(vec![
        Reply::json(400, body).header("x-upstream-note", "kept")
    ]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_status(&r, 400);
    assert_eq!(r.text(), body);
    assert_header(&r, "x-upstream-note", "kept");
    assert_eq!((primary.calls(), secondary.calls()), (1, 0));
}

/// `error_codes: [context_length_exceeded]` fails that 400 over, while another 400
/// still passes through.
fn error_code_400_fails_over<R: Runtime>() {
    let other = coded_error_body("bad temperature", "invalid_request_error", "invalid_value");
    let primary = MockUpstream::start(vec![
        Reply::json(
            400,
            coded_error_body(
                "This model's maximum context length is 8192 tokens.",
                "invalid_request_error",
                "context_length_exceeded",
            ),
        ),
        Reply::json(400, other.clone()),
    ]);
    let secondary = MockUpstream::start(vec![ok()]);
    let policy = format!("{RETRY_429}  - codes: [400]\n    error_codes: [context_length_exceeded]\n    strategy: different_provider\n    max_attempts: 1\n");
    let gw = start::<R>(&pair(Some(&policy), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
    let r = post_chat(gw.addr, &chat_request());
    assert_status(&r, 400);
    assert_eq!(r.text(), other);
    assert_eq!((primary.calls(), secondary.calls()), (2, 1));
}

const THEN_POLICY: &str = "on_status_codes:
  - codes: [429]
    strategy: same_model
    max_attempts: 2
    max_wait: 2s
    then:
      strategy: different_provider
      max_attempts: 1
";

/// `then`: a same-model rule facing `Retry-After: 60` (beyond `max_wait`) escalates to
/// another provider at once instead of waiting.
fn then_long_retry_after_fails_over_at_once<R: Runtime>() {
    let primary = MockUpstream::start(vec![too_many().header("Retry-After", "60")]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(THEN_POLICY), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert!(r.elapsed() < ms(1000), "waited: {:?}", r.elapsed());
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
    assert_header(&r, "x-switchback-model", "anthropic/claude-3-5-sonnet");
}

/// `then`: a short Retry-After (within `max_wait`) is waited out on the same model.
fn then_short_retry_after_retries_same_model<R: Runtime>() {
    let primary = MockUpstream::start(vec![too_many().header("retry-after-ms", "300"), ok()]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(THEN_POLICY), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert!(r.elapsed() >= ms(300), "elapsed {:?}", r.elapsed());
    assert_eq!((primary.calls(), secondary.calls()), (2, 0));
    assert_header(&r, "x-switchback-model", "openai/gpt-4o");
}

// ---------------------------------------------------------------------------------
// Cancellation (spec §7)
// ---------------------------------------------------------------------------------

/// Sends a chat request, waits until `mock` got its first call, lingers `linger`, then
/// closes the client connection.
fn leave_after_first_call(addr: SocketAddr, mock: &MockUpstream, body: &str, linger: Duration) {
    let raw = client::request_bytes(
        "POST",
        client::CHAT_PATH,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    let s = Streaming::send(addr, &raw).expect("send");
    assert!(mock.wait_calls(1, ms(2000)), "the first attempt never came");
    thread::sleep(linger);
    s.disconnect();
}

/// A client that leaves during a backoff cancels the wait: no further attempt.
fn client_gone_during_backoff<R: Runtime>() {
    let primary = MockUpstream::start(vec![too_many()]);
    let policy = "on_status_codes:
  - codes: [429]
    strategy: same_model
    max_attempts: 2
backoff:
  apply_to: same_model
  base_ms: 800
  max_ms: 5000
  jitter: false
";
    let yaml = format!(
        "{HEAD}{}",
        provider("openai/gpt-4o", "PRIMARY", NORMAL, Some(policy))
    );
    let gw = start::<R>(&yaml, &[&primary]);
    leave_after_first_call(gw.addr, &primary, &chat_request(), ms(100));
    thread::sleep(ms(1100));
    assert_eq!(
        primary.calls(),
        1,
        "an attempt was made for a client that left"
    );
    // The gateway still serves.
    assert_status(&get(gw.addr, "/healthz"), 200);
}

/// A client that leaves during a Retry-After wait cancels it: no further attempt.
fn client_gone_during_retry_after<R: Runtime>() {
    let primary = MockUpstream::start(vec![too_many().header("retry-after-ms", "800")]);
    let policy = "on_status_codes:
  - codes: [429]
    strategy: same_model
    max_attempts: 2
";
    let yaml = format!(
        "{HEAD}{}",
        provider("openai/gpt-4o", "PRIMARY", NORMAL, Some(policy))
    );
    let gw = start::<R>(&yaml, &[&primary]);
    leave_after_first_call(gw.addr, &primary, &stream_request(), ms(100));
    thread::sleep(ms(1100));
    assert_eq!(
        primary.calls(),
        1,
        "an attempt was made for a client that left"
    );
}

/// A client that leaves mid-stream makes the gateway close the upstream connection.
fn client_gone_mid_stream_closes_upstream<R: Runtime>() {
    let mut events = vec![role_event(), content_event("a")];
    events.extend((0..30).map(|_| content_event("b")));
    events.push(DONE_EVENT.to_owned());
    let mut reply = Reply::sse(&events, ms(100));
    reply.chunks[0].0 = Duration::ZERO;
    reply.chunks[1].0 = Duration::ZERO;
    let primary = MockUpstream::start(vec![reply]);
    let secondary = MockUpstream::start(vec![stream_ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let mut s = Streaming::chat(gw.addr, &stream_request());
    assert_eq!(s.status, 200);
    assert!(s.read_until("\"content\":\"a\""), "no content arrived");
    s.disconnect();
    assert!(
        primary.wait_closed_by_peer(0, ms(1500)),
        "the upstream connection stayed open after the client left"
    );
    assert_eq!(secondary.calls(), 0);
}

// ---------------------------------------------------------------------------------
// Client input and the HTTP surface (spec §2)
// ---------------------------------------------------------------------------------

/// Invalid JSON: 400 `invalid_request_error`, nothing sent upstream.
fn invalid_json_400<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, r#"{"model": "openai/gpt-4o", "messages": [}"#);
    assert_status(&r, 400);
    assert_eq!(error_of(&r)["type"], "invalid_request_error");
    assert!(r.header("x-request-id").is_some());
    let r = post_chat(gw.addr, r#"{"model": "openai/gpt-4o"}"#);
    assert_status(&r, 400);
    assert_eq!(error_of(&r)["type"], "invalid_request_error");
    assert_eq!(primary.calls() + secondary.calls(), 0);
}

/// A body over the limit: 413 before any upstream call.
fn oversize_body_413<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let options = GatewayOptions {
        max_request_body: Some(1024),
        ..GatewayOptions::default()
    };
    let gw = start_ports::<R>(
        &pair(None, NORMAL),
        &[primary.port(), primary.port()],
        &options,
    );
    let big = format!(
        r#"{{"model": "openai/gpt-4o", "messages": [{{"role": "user", "content": "{}"}}]}}"#,
        "x".repeat(8 * 1024)
    );
    let r = post_chat(gw.addr, &big);
    assert_status(&r, 413);
    assert_eq!(error_of(&r)["type"], "invalid_request_error");
    assert_eq!(primary.calls(), 0);
    // Just under the limit is fine.
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
}

/// An unknown model with no default provider: 404 `model_not_found` listing the models.
fn unknown_model_404<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let yaml = pair(None, NORMAL).replace("    default: true\n", "");
    let gw = start::<R>(&yaml, &[&primary, &primary]);
    let r = post_chat(
        gw.addr,
        r#"{"model": "nobody/nothing", "messages": [{"role": "user", "content": "Hi"}]}"#,
    );
    assert_status(&r, 404);
    let e = error_of(&r);
    assert_eq!(e["code"], "model_not_found", "{e}");
    let listed = e.to_string();
    assert!(listed.contains("openai/gpt-4o") && listed.contains("anthropic/claude-3-5-sonnet"));
    assert_eq!(primary.calls(), 0);
}

/// `/healthz`, `/v1/models`, and a 404 in OpenAI's shape for anything else.
fn healthz_models_and_unknown_path<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &primary]);
    let r = get(gw.addr, "/healthz");
    assert_status(&r, 200);
    assert_eq!(r.json()["status"], "ok");
    assert!(r.header("x-request-id").is_some());
    let r = get(gw.addr, "/v1/models");
    assert_status(&r, 200);
    let v = r.json();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"openai/gpt-4o"), "{ids:?}");
    assert!(ids.contains(&"anthropic/claude-3-5-sonnet"), "{ids:?}");
    let r = get(gw.addr, "/v1/nothing-here");
    assert_status(&r, 404);
    assert!(error_of(&r)["message"].is_string());
    assert!(r.header("x-request-id").is_some());
    assert_eq!(primary.calls(), 0);
}

/// `x-request-id` is echoed when the client sends one, generated otherwise, on success
/// and on gateway errors alike.
fn request_id_echoed_or_generated<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &primary]);
    let r = post_chat_with(
        gw.addr,
        &chat_request(),
        &[("X-Request-Id", "trace-abc-123")],
    );
    assert_success_content(&r);
    assert_header(&r, "x-request-id", "trace-abc-123");
    let r = post_chat_with(gw.addr, "not json", &[("x-request-id", "trace-def-456")]);
    assert_status(&r, 400);
    assert_header(&r, "x-request-id", "trace-def-456");
    let r1 = post_chat(gw.addr, &chat_request());
    let r2 = post_chat(gw.addr, &chat_request());
    let (a, b) = (r1.header("x-request-id"), r2.header("x-request-id"));
    assert!(a.is_some_and(|a| !a.is_empty()), "{:?}", r1.headers);
    assert_ne!(a, b, "generated request ids repeat");
}

/// A direct success carries the attempt headers; the upstream gets the target's key and
/// model, not the client's credentials.
fn success_headers_and_upstream_request<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert_header(&r, "x-switchback-attempts", "1");
    assert_header(&r, "x-switchback-model", "openai/gpt-4o");
    assert!(r.header("x-should-retry").is_none());
    let q = &primary.requests()[0];
    assert_eq!(q.method, "POST");
    assert_eq!(q.path, "/v1/chat/completions");
    assert_eq!(q.header("authorization"), Some("Bearer key-PRIMARY"));
    assert_eq!(q.json()["model"], "gpt-4o");
    assert_eq!(secondary.calls(), 0);
}

/// Upstreams answering HTTP/1.0 without a length (Python's http.server) work for JSON
/// and for SSE that claims chunked framing but is read to close (spec §8).
fn http10_close_delimited_json_and_sse<R: Runtime>() {
    let primary = MockUpstream::start(vec![
        seed_ok(),
        Reply::sse(&stream_events(), ms(10)).framing(Framing::Http10FalseChunked),
        Reply::sse(&stream_events()[..4], ms(10)).framing(Framing::Http10),
    ]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &primary]);
    assert_success_content(&post_chat(gw.addr, &chat_request()));
    assert_clean_stream(&stream(gw.addr), STREAM_TEXT);
    // Close-delimited, no [DONE]: the close after the finish chunk ends it cleanly.
    assert_clean_stream(&stream(gw.addr), STREAM_TEXT);
    assert_eq!(primary.calls(), 3);
}

/// Keep-alive upstream connections are reused for the next request.
fn upstream_connection_reused<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &primary]);
    for _ in 0..3 {
        assert_success_content(&post_chat(gw.addr, &chat_request()));
    }
    assert_eq!(primary.calls(), 3);
    assert_eq!(
        primary.connections().len(),
        1,
        "connections: {:?}",
        primary.connections()
    );
}

// ---------------------------------------------------------------------------------
// Blocks, deadlines, concurrency and client protection
// ---------------------------------------------------------------------------------

/// With every candidate blocked far past the deadline, the next request is answered at
/// once: exhaustion, `Retry-After`, and no upstream call.
fn all_blocked_answers_at_once<R: Runtime>() {
    let primary = MockUpstream::start(vec![too_many().header("Retry-After", "60")]);
    let secondary = MockUpstream::start(vec![too_many().header("Retry-After", "60")]);
    let gw = start::<R>(&pair(Some(RETRY_429), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    let e = assert_exhausted(&r, 429, 2);
    assert_eq!(e["attempts"][0]["retry_after_ms"], 60_000, "{e}");
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
    let r = post_chat(gw.addr, &chat_request());
    assert_status(&r, 429);
    let e = error_of(&r);
    assert_eq!(e["type"], "retry_exhausted", "{e}");
    assert_header(&r, "x-should-retry", "false");
    let secs: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers));
    assert!((55..=60).contains(&secs), "Retry-After {secs}");
    assert!(e["shortest_remaining_block_seconds"].is_u64(), "{e}");
    assert!(r.elapsed() < ms(1000), "elapsed {:?}", r.elapsed());
    assert_eq!(
        (primary.calls(), secondary.calls()),
        (1, 1),
        "a blocked upstream was called"
    );
}

/// The listener `timeout` bounds the whole request, even when `first_token` is longer.
fn listener_deadline_bounds_request<R: Runtime>() {
    let primary = MockUpstream::start(vec![Reply::hang()]);
    let secondary = MockUpstream::start(vec![Reply::hang()]);
    let policy =
        format!("{RETRY_429}on_timeout:\n  strategy: different_provider\n  max_attempts: 2\n");
    let yaml = pair(Some(&policy), NORMAL).replace("timeout: 10s", "timeout: 500ms");
    let gw = start::<R>(&yaml, &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_status(&r, 504);
    assert!(r.elapsed() >= ms(450), "elapsed {:?}", r.elapsed());
    assert!(
        r.elapsed() < ms(1500),
        "the deadline was not kept: {:?}",
        r.elapsed()
    );
    assert_eq!(
        secondary.calls(),
        0,
        "no time was left for a second attempt"
    );
    assert!(primary.wait_closed_by_peer(0, ms(1000)));
}

/// Without a retry_policy, a transport failure gets a gateway-made error in OpenAI's
/// shape with `x-should-retry: false`.
fn no_policy_transport_error_is_gateway_error<R: Runtime>() {
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start_ports::<R>(
        &pair(None, NORMAL),
        &[refused_port(), secondary.port()],
        &GatewayOptions::default(),
    );
    let r = post_chat(gw.addr, &chat_request());
    assert!(
        r.status == 502 || r.status == 503,
        "status {}: {}",
        r.status,
        r.text()
    );
    let e = error_of(&r);
    assert_eq!(e["error_type"], "connect_error", "{e}");
    assert_header(&r, "x-should-retry", "false");
    assert_eq!(secondary.calls(), 0);
}

/// Requests are served concurrently: eight 200 ms upstream answers take far less than
/// 8 x 200 ms.
fn concurrent_requests_are_served_in_parallel<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok().delayed(ms(200))]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &primary]);
    let addr = gw.addr;
    let t0 = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            thread::spawn(move || {
                let id = format!("parallel-{i}");
                let r = post_chat_with(addr, &chat_request(), &[("x-request-id", &id)]);
                (id, r)
            })
        })
        .collect();
    for h in handles {
        let (id, r) = h.join().expect("client thread");
        assert_success_content(&r);
        assert_header(&r, "x-request-id", &id);
    }
    assert!(t0.elapsed() < ms(1200), "serialized: {:?}", t0.elapsed());
    assert_eq!(primary.calls(), 8);
}

/// A client that never finishes its request head is cut off after the header read
/// timeout (408 or a close).
fn slow_client_head_times_out<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let options = GatewayOptions {
        header_read_timeout: Some(ms(300)),
        ..GatewayOptions::default()
    };
    let gw = start_ports::<R>(
        &pair(None, NORMAL),
        &[primary.port(), primary.port()],
        &options,
    );
    let t0 = Instant::now();
    let mut s = Streaming::send(
        gw.addr,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n",
    )
    .expect("connect");
    match s.read_head() {
        Ok(()) => assert_eq!(s.status, 408, "headers: {:?}", s.headers),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}"),
    }
    assert!(t0.elapsed() < ms(2000), "elapsed {:?}", t0.elapsed());
    assert_eq!(primary.calls(), 0);
    assert_status(&get(gw.addr, "/healthz"), 200);
}

/// Bytes that are not HTTP get a 400 (never a crash); the gateway keeps serving.
fn malformed_http_400<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(None, NORMAL), &[&primary, &primary]);
    let r = client::send_raw(gw.addr, b"THIS IS NOT HTTP\r\n\r\n").expect("a response");
    assert_status(&r, 400);
    assert_eq!(error_of(&r)["type"], "invalid_request_error");
    assert_status(&get(gw.addr, "/healthz"), 200);
    assert_eq!(primary.calls(), 0);
}
