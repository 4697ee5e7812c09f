//! Status rules (spec §4.1, §4.9)

use switchback_tests::client::post_chat;
use switchback_tests::fixtures::*;
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::{MockUpstream, Reply};
use switchback_tests::table::{assert_header, assert_status, ms, start};

use crate::harness::{assert_success_content, ok, pair, too_many, NORMAL, RETRY_429};

/// A 400 is the client's problem: passed through byte for byte, not retried.
pub(crate) fn passthrough_400_untouched<R: Runtime>() {
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
pub(crate) fn error_code_400_fails_over<R: Runtime>() {
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
    max_wait: 20s
    then:
      strategy: different_provider
      max_attempts: 1
";

/// `then`: a same-model rule facing `Retry-After: 60` (beyond `max_wait`) escalates to
/// another provider at once instead of waiting.
pub(crate) fn then_long_retry_after_fails_over_at_once<R: Runtime>() {
    let primary = MockUpstream::start(vec![too_many().header("Retry-After", "60")]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(THEN_POLICY), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    // Far below `max_wait` (20 s) and the Retry-After (60 s): it did not wait.
    assert!(r.elapsed() < ms(10_000), "waited: {:?}", r.elapsed());
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
    assert_header(&r, "x-switchback-model", "anthropic/claude-3-5-sonnet");
}

/// `then`: a short Retry-After (within `max_wait`) is waited out on the same model.
pub(crate) fn then_short_retry_after_retries_same_model<R: Runtime>() {
    let primary = MockUpstream::start(vec![too_many().header("retry-after-ms", "300"), ok()]);
    let secondary = MockUpstream::start(vec![ok()]);
    let gw = start::<R>(&pair(Some(THEN_POLICY), NORMAL), &[&primary, &secondary]);
    let r = post_chat(gw.addr, &chat_request());
    assert_success_content(&r);
    assert!(r.elapsed() >= ms(300), "elapsed {:?}", r.elapsed());
    assert_eq!((primary.calls(), secondary.calls()), (2, 0));
    assert_header(&r, "x-switchback-model", "openai/gpt-4o");
}
