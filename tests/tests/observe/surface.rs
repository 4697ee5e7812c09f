//! `/metrics` and `/v1/status` over real sockets, and the admin listener.

use switchback_tests::client::{get, post_chat};
use switchback_tests::fixtures::chat_request;
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::MockUpstream;

use crate::harness::{failover_config, ok, pushback, scrape, series, start, FAILED_OVER};

/// After one failover (429 with Retry-After, then 200 from the fallback) the counters
/// moved as they should, and the status page shows the block.
pub(crate) fn metrics_after_a_failover<R: Runtime>() {
    let primary = MockUpstream::start(vec![pushback()]);
    let secondary = MockUpstream::start(vec![ok(), ok()]);
    let gw = start::<R>(&failover_config(""), &[primary.port(), secondary.port()]);
    let before = scrape(gw.addr);
    assert_eq!(series(&before, FAILED_OVER), None, "{before}");
    let r = post_chat(gw.addr, &chat_request());
    assert_eq!(r.status, 200, "{}", r.text());
    let text = scrape(gw.addr);
    let at = |s: &str| series(&text, s);
    assert_eq!(at(FAILED_OVER), Some(1.0), "{text}");
    assert_eq!(
        at(
            r#"switchback_requests_total{api="chat_completions",model="anthropic/claude-3-5-sonnet",status_class="2xx",outcome="success"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        at(r#"switchback_upstream_attempts_total{provider="openai/gpt-4o",error_type="http_429"}"#),
        Some(1.0)
    );
    assert_eq!(
        at(
            r#"switchback_upstream_attempts_total{provider="anthropic/claude-3-5-sonnet",error_type="ok"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        at(r#"switchback_retries_total{model="openai/gpt-4o"}"#),
        Some(1.0)
    );
    assert_eq!(
        at(r#"switchback_blocks_active{model="openai/gpt-4o",scope="model",kind="retry_after"}"#),
        Some(1.0)
    );
    assert_eq!(at("switchback_requests_in_flight"), Some(0.0));
    assert_eq!(
        at(r#"switchback_request_duration_seconds_count{model="anthropic/claude-3-5-sonnet"}"#),
        Some(1.0)
    );

    // Blocked: the next request goes straight to the fallback, no retry, no failover.
    let r = post_chat(gw.addr, &chat_request());
    assert_eq!(r.status, 200);
    let text = scrape(gw.addr);
    assert_eq!(series(&text, FAILED_OVER), Some(1.0));
    assert_eq!(primary.calls(), 1);

    let status = get(gw.addr, "/v1/status").json();
    assert_eq!(status["blocks"][0]["model"], "openai/gpt-4o", "{status}");
    assert_eq!(status["blocks"][0]["kind"], "retry_after");
    assert!(status["blocks"][0]["remaining_ms"].as_u64().unwrap() > 20_000);
    assert_eq!(status["retry_budgets"][0]["budget"], "gateway");
    assert_eq!(status["providers"][0]["failovers_from"], 1);
}

/// With `admin_port`, the observability routes are on the admin listener only.
pub(crate) fn admin_port_serves_metrics_off_the_model_listener<R: Runtime>() {
    let primary = MockUpstream::start(vec![ok()]);
    let yaml = failover_config("    admin_port: 9901\n    admin_address: 127.0.0.1\n");
    let gw = start::<R>(&yaml, &[primary.port(), primary.port()]);
    assert_ne!(gw.admin(), gw.addr);
    assert_eq!(get(gw.addr, "/metrics").status, 404);
    assert_eq!(get(gw.addr, "/v1/status").status, 404);
    assert_eq!(get(gw.addr, "/healthz").status, 200);
    let text = scrape(gw.admin());
    assert!(
        text.contains("# TYPE switchback_requests_total counter"),
        "{text}"
    );
    assert_eq!(get(gw.admin(), "/v1/status").status, 200);
    assert_eq!(get(gw.admin(), "/healthz").status, 200);
    assert_eq!(post_chat(gw.admin(), &chat_request()).status, 404);
    assert_eq!(primary.calls(), 0);
}
