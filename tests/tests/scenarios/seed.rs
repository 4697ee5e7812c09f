//! IT-1 .. IT-13: the seed suite

use std::time::{Duration, Instant};

use switchback_tests::client::post_chat;
use switchback_tests::fixtures::*;
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::{Framing, MockUpstream, Reply};
use switchback_tests::table::{assert_header, assert_status, ms, start, HEAD};

use crate::harness::{
    assert_clean_stream, assert_exhausted, assert_success_content, pair, pair_with, provider,
    seed_429, seed_json, seed_ok, stream, NORMAL, RETRY_429, SHORT,
};

/// IT-1: the primary answers 429, the secondary 200: the client gets the 200.
pub(crate) fn it1_basic_429<R: Runtime>() {
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
pub(crate) fn it2_503_different_provider<R: Runtime>() {
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
pub(crate) fn it3_all_exhausted<R: Runtime>() {
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
pub(crate) fn it4_no_retry_policy<R: Runtime>() {
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
pub(crate) fn it5_max_attempts<R: Runtime>() {
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
pub(crate) fn it6_backoff_delay<R: Runtime>() {
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
pub(crate) fn it7_fallback_priority<R: Runtime>() {
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
pub(crate) fn it8_retry_after_honored<R: Runtime>() {
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
pub(crate) fn it9_retry_after_blocks_selection<R: Runtime>() {
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
        t0.elapsed() < ms(10_000),
        "failing over must not wait out Retry-After (60 s)"
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
pub(crate) fn it10_timeout_triggers_retry<R: Runtime>() {
    let primary = MockUpstream::start(vec![seed_ok().delayed(Duration::from_secs(60))]);
    let secondary = MockUpstream::start(vec![seed_ok()]);
    let policy = format!("fallback_models: [anthropic/claude-3-5-sonnet]\n{RETRY_429}on_timeout:\n  strategy: different_provider\n  max_attempts: 2\n");
    let gw = start::<R>(
        &pair_with(Some(&policy), SHORT, NORMAL),
        &[&primary, &secondary],
    );
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert!(r.elapsed() >= ms(300), "elapsed {:?}", r.elapsed());
    // Far below the primary's 60 s: it was not waited for.
    assert!(r.elapsed() < ms(10_000), "elapsed {:?}", r.elapsed());
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
    assert!(
        primary.wait_closed_by_peer(0, ms(5000)),
        "the timed-out attempt's connection was not closed"
    );
}

/// IT-11 (scaled: threshold 200 ms, primary 400 ms late): the slow answer is delivered,
/// and the latency block sends the next request to the secondary.
pub(crate) fn it11_high_latency_failover<R: Runtime>() {
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
    // Far below the block's 60 s: the request went on at once, not after the block.
    assert!(r2.elapsed() < ms(10_000), "elapsed {:?}", r2.elapsed());
}

/// IT-12: a streaming request survives a 429: one clean stream from the secondary,
/// whose mock answers exactly like the seed's (HTTP/1.0 claiming chunked, raw bytes).
pub(crate) fn it12_streaming<R: Runtime>() {
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
pub(crate) fn it13_body_preserved<R: Runtime>() {
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
