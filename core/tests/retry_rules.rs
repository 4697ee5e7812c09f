//! One example per rule of the spec (§2 routing and surface, §4 retry policy, §6
//! streaming, §7 cancellation), run in the core's simulation with virtual time.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{
    chat_body, chunk, config, error_body, full_stream, provider, retry_policy, sends, sim, SUCCESS,
};
use http::{HeaderMap, HeaderValue, Method};
use switchback_core::machine::{Action, Outcome};
use switchback_core::sim::{Ending, FakeReply, SimResponse, Simulation};

const P: &str = "openai/gpt-4o";
const P2: &str = "openai/gpt-4o-mini";
const S: &str = "anthropic/claude-3-5-sonnet";
const T: &str = "mistral/mistral-large";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A primary `P` with `policy` (unindented lines, "" for `retry_policy: {}`) and the
/// other `models` without policies, in that order.
fn with_policy(timeout: Option<&str>, policy: &str, models: &[&str]) -> Simulation {
    let mut ps = vec![provider(P, 1, &retry_policy(policy))];
    for (i, m) in models.iter().enumerate() {
        ps.push(provider(m, i + 2, ""));
    }
    sim(&config(timeout, &ps))
}

fn ok() -> FakeReply {
    FakeReply::json(200, SUCCESS)
}

fn err(status: u16) -> FakeReply {
    FakeReply::json(status, &error_body(status, "upstream trouble"))
}

fn err_with(status: u16, headers: &[(&str, &str)]) -> FakeReply {
    FakeReply::json_with(status, headers, &error_body(status, "upstream trouble"))
}

fn chat(s: &mut Simulation, model: &str) -> SimResponse {
    s.chat(&chat_body(model, false)).expect("simulation")
}

fn stream_chat(s: &mut Simulation, model: &str) -> SimResponse {
    s.chat(&chat_body(model, true)).expect("simulation")
}

fn sse(events: &[String], gap: Duration, ending: Ending) -> FakeReply {
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    FakeReply::sse(&refs, gap, ending)
}

fn gaps(s: &Simulation, model: &str) -> Vec<Duration> {
    let at = &s.upstream(model).expect("scripted").arrivals;
    at.windows(2).map(|w| w[1] - w[0]).collect()
}

fn get(s: &mut Simulation, method: Method, path: &str, headers: HeaderMap) -> SimResponse {
    s.request(method, path, headers, "", None)
        .expect("simulation")
}

// ---------------------------------------------------------------- routing (§2, §3.2)

fn routing_sim() -> Simulation {
    let yaml = config(
        None,
        &[
            provider(P, 1, ""),
            provider(S, 2, "name: smart"),
            provider(T, 3, ""),
        ],
    );
    let mut s = sim(&yaml);
    for m in [P, S, T] {
        s.script(m, vec![ok()]);
    }
    s
}

#[test]
fn routes_exact_model() {
    let mut s = routing_sim();
    let r = chat(&mut s, T);
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(S), s.calls(T)), (0, 0, 1));
    assert_eq!(r.headers["x-switchback-model"], T);
}

#[test]
fn routes_name_alias() {
    let mut s = routing_sim();
    let r = chat(&mut s, "smart");
    assert_eq!(r.status, 200);
    assert_eq!(s.calls(S), 1);
    // The upstream gets the entry's model id, not the alias.
    let sent: serde_json::Value =
        serde_json::from_slice(&s.upstream(S).unwrap().received[0]).unwrap();
    assert_eq!(sent["model"], "claude-3-5-sonnet");
}

#[test]
fn routes_unique_bare_model_id() {
    let mut s = routing_sim();
    let r = chat(&mut s, "mistral-large");
    assert_eq!(r.status, 200);
    assert_eq!(s.calls(T), 1);
    assert_eq!(r.headers["x-switchback-model"], T);
}

#[test]
fn ambiguous_bare_model_id_goes_to_default() {
    let yaml = config(
        None,
        &[
            provider(P, 1, "default: true"),
            provider("groq/llama", 2, ""),
            provider("together_ai/llama", 3, ""),
        ],
    );
    let mut s = sim(&yaml);
    for m in [P, "groq/llama", "together_ai/llama"] {
        s.script(m, vec![ok()]);
    }
    let r = chat(&mut s, "llama");
    assert_eq!(r.status, 200);
    assert_eq!(s.calls(P), 1, "an ambiguous bare id is not guessed");
}

#[test]
fn unknown_model_goes_to_default_provider() {
    let yaml = config(None, &[provider(P, 1, ""), provider(S, 2, "default: true")]);
    let mut s = sim(&yaml);
    s.script(P, vec![ok()]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, "somebody/unknown-model");
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(S)), (0, 1));
}

#[test]
fn unknown_model_without_default_is_404_listing_models() {
    let mut s = routing_sim();
    let r = chat(&mut s, "somebody/unknown-model");
    assert_eq!(r.status, 404);
    let e = &r.json()["error"];
    assert_eq!(e["code"], "model_not_found");
    let listed = e["available_models"].as_array().expect("a list of models");
    for m in [P, S, T] {
        assert!(listed.iter().any(|v| v == m), "{m} is listed: {e}");
    }
    assert_eq!(s.calls(P) + s.calls(S) + s.calls(T), 0);
}

#[test]
fn invalid_json_is_400_invalid_request_error() {
    let mut s = routing_sim();
    let r = s.chat("{not json").unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert_eq!(s.calls(P), 0);
}

#[test]
fn missing_messages_is_400() {
    let mut s = routing_sim();
    let r = s.chat(r#"{"model":"openai/gpt-4o"}"#).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    let r = s
        .chat(r#"{"messages":[{"role":"user","content":"hi"}]}"#)
        .unwrap();
    assert_eq!(r.status, 400, "missing model");
    assert_eq!(s.calls(P), 0);
}

#[test]
fn healthz_models_unknown_path_and_wrong_method() {
    let mut s = routing_sim();
    let r = get(&mut s, Method::GET, "/healthz", HeaderMap::new());
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"status": "ok"}));

    let r = get(&mut s, Method::GET, "/v1/models", HeaderMap::new());
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    for m in [P, S, T] {
        assert!(ids.contains(&m), "{m} in {ids:?}");
    }

    let r = get(&mut s, Method::GET, "/v1/nothing-here", HeaderMap::new());
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]["message"].is_string());

    let r = get(
        &mut s,
        Method::GET,
        "/v1/chat/completions",
        HeaderMap::new(),
    );
    assert_eq!(r.status, 405);
    assert!(r.json()["error"]["message"].is_string());
    let r = get(&mut s, Method::POST, "/healthz", HeaderMap::new());
    assert_eq!(r.status, 405);
}

#[test]
fn request_id_is_echoed_or_generated() {
    let mut s = routing_sim();
    let mut h = HeaderMap::new();
    h.insert("x-request-id", HeaderValue::from_static("abc-123"));
    let r = get(&mut s, Method::GET, "/healthz", h.clone());
    assert_eq!(r.headers["x-request-id"], "abc-123");
    let r = s
        .request(
            Method::POST,
            "/v1/chat/completions",
            h,
            &chat_body(P, false),
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-request-id"], "abc-123");

    let a = chat(&mut s, P);
    let b = chat(&mut s, P);
    let (a, b) = (&a.headers["x-request-id"], &b.headers["x-request-id"]);
    assert!(!a.is_empty() && !b.is_empty());
    assert_ne!(a, b, "generated ids differ");
    let r = get(&mut s, Method::GET, "/nope", HeaderMap::new());
    assert!(!r.headers["x-request-id"].is_empty());
}

// ---------------------------------------------------------------- classification (§4.1)

#[test]
fn client_errors_pass_through_unchanged() {
    for status in [400, 401, 404, 422] {
        let mut s = with_policy(None, "", &[S]);
        let body = format!(
            r#"{{"error":{{"message":"client problem {status}","type":"invalid_request_error","code":"x"}}}}"#
        );
        s.script(P, vec![FakeReply::json(status, &body)]);
        s.script(S, vec![ok()]);
        let r = chat(&mut s, P);
        assert_eq!(r.status, status);
        assert_eq!(r.body, body.as_bytes(), "{status} body unchanged");
        assert_eq!((s.calls(P), s.calls(S)), (1, 0), "{status} not retried");
    }
}

#[test]
fn default_retriable_statuses_use_the_default_rule() {
    for status in [408, 429, 500, 502, 503, 504, 529] {
        let mut s = with_policy(None, "", &[S]);
        s.script(P, vec![err(status)]);
        s.script(S, vec![ok()]);
        let r = chat(&mut s, P);
        assert_eq!(r.status, 200, "{status} is retried");
        assert_eq!(
            (s.calls(P), s.calls(S)),
            (1, 1),
            "{status}: different_provider"
        );
    }
}

#[test]
fn status_code_ranges_match() {
    let policy = "on_status_codes:\n  - codes: [418, \"500-501\", \"502-504\"]\n    strategy: same_model\n    max_attempts: 1";
    for status in [418, 500, 501, 502, 503, 504] {
        let mut s = with_policy(None, policy, &[S]);
        s.script(P, vec![err(status), ok()]);
        s.script(S, vec![ok()]);
        let r = chat(&mut s, P);
        assert_eq!(r.status, 200, "{status}");
        assert_eq!((s.calls(P), s.calls(S)), (2, 0), "{status}: same_model");
    }
    // 505 is outside every range and not a default: passed through.
    let mut s = with_policy(None, policy, &[S]);
    s.script(P, vec![err(505)]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 505);
    assert_eq!(s.calls(P), 1);
}

#[test]
fn first_matching_entry_wins() {
    let policy = "on_status_codes:\n  - codes: [503]\n    strategy: same_model\n    max_attempts: 1\n  - codes: [\"500-504\"]\n    strategy: different_provider\n    max_attempts: 1";
    let mut s = with_policy(None, policy, &[S]);
    s.script(P, vec![err(503), ok()]);
    s.script(S, vec![ok()]);
    assert_eq!(chat(&mut s, P).status, 200);
    assert_eq!((s.calls(P), s.calls(S)), (2, 0));
    // 502 falls to the second entry.
    let mut s = with_policy(None, policy, &[S]);
    s.script(P, vec![err(502), ok()]);
    s.script(S, vec![ok()]);
    assert_eq!(chat(&mut s, P).status, 200);
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
}

#[test]
fn error_codes_entry_matches_only_that_code() {
    let policy = "on_status_codes:\n  - codes: [400]\n    error_codes: [context_length_exceeded]\n    strategy: different_provider\n    max_attempts: 1";
    let ctx = r#"{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
    let other =
        r#"{"error":{"message":"bad","type":"invalid_request_error","code":"invalid_value"}}"#;

    let mut s = with_policy(None, policy, &[S]);
    s.script(P, vec![FakeReply::json(400, ctx)]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));

    let mut s = with_policy(None, policy, &[S]);
    s.script(P, vec![FakeReply::json(400, other)]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 400);
    assert_eq!(r.body, other.as_bytes());
    assert_eq!((s.calls(P), s.calls(S)), (1, 0));
}

// ---------------------------------------------------------------- counting (§4.2)

#[test]
fn each_rule_counts_its_own_retries() {
    let policy = "on_status_codes:\n  - codes: [503]\n    strategy: different_provider\n    max_attempts: 1\n  - codes: [429]\n    strategy: different_provider\n    max_attempts: 1";
    let mut s = with_policy(None, policy, &[S, T]);
    s.script(P, vec![err(503)]);
    s.script(S, vec![err(429)]);
    s.script(T, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(S), s.calls(T)), (1, 1, 1));
    assert_eq!(r.headers["x-switchback-attempts"], "3");
    assert_eq!(r.headers["x-switchback-model"], T);
}

#[test]
fn a_spent_rule_ends_the_request() {
    let policy =
        "on_status_codes:\n  - codes: [503]\n    strategy: different_provider\n    max_attempts: 1";
    let mut s = with_policy(None, policy, &[S, T]);
    s.script(P, vec![err(503)]);
    s.script(S, vec![err(503)]);
    s.script(T, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 503);
    assert_eq!((s.calls(P), s.calls(S), s.calls(T)), (1, 1, 0));
    assert_eq!(r.json()["error"]["total_attempts"], 2);
}

#[test]
fn max_attempts_zero_never_retries() {
    let policy = "default_max_attempts: 0";
    let mut s = with_policy(None, policy, &[S]);
    let body = error_body(503, "down");
    s.script(P, vec![FakeReply::json(503, &body)]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body,
        body.as_bytes(),
        "the upstream answer passes through"
    );
    assert_eq!(r.headers["x-should-retry"], "false");
    assert_eq!((s.calls(P), s.calls(S)), (1, 0));
}

// ---------------------------------------------------------------- strategies (§4.3)

#[test]
fn same_model_retries_the_failed_model() {
    let policy = "default_strategy: same_model\ndefault_max_attempts: 2";
    let mut s = with_policy(None, policy, &[P2, S]);
    s.script(P, vec![err(503), err(503), ok()]);
    s.script(P2, vec![ok()]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(P2), s.calls(S)), (3, 0, 0));
}

#[test]
fn same_provider_picks_another_model_with_the_prefix() {
    let policy = "default_strategy: same_provider";
    let mut s = with_policy(None, policy, &[S, P2]);
    s.script(P, vec![err(503)]);
    s.script(P2, vec![ok()]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(P2), s.calls(S)), (1, 1, 0));
    assert_eq!(r.headers["x-switchback-model"], P2);
}

#[test]
fn different_provider_skips_models_with_the_prefix() {
    let policy = "default_strategy: different_provider";
    let mut s = with_policy(None, policy, &[P2, S]);
    s.script(P, vec![err(503)]);
    s.script(P2, vec![ok()]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(P2), s.calls(S)), (1, 0, 1));
}

#[test]
fn fallback_models_first_then_config_order() {
    let policy = format!("fallback_models: [{T}]\ndefault_max_attempts: 3");
    let mut s = with_policy(None, &policy, &[S, "groq/llama", T]);
    s.script(P, vec![err(503)]);
    s.script(T, vec![err(503)]);
    s.script(S, vec![err(503)]);
    s.script("groq/llama", vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    let first = |m: &str| s.upstream(m).unwrap().arrivals[0];
    assert!(first(P) <= first(T) && first(T) <= first(S) && first(S) <= first("groq/llama"));
    let models: Vec<String> = r
        .trace
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Send { model, .. } => Some(model.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(models, [P, T, S, "groq/llama"]);
}

#[test]
fn no_candidate_left_ends_the_request() {
    let policy = "default_max_attempts: 3";
    let mut s = with_policy(None, policy, &[S]);
    s.script(P, vec![err(503)]);
    s.script(S, vec![err(502)]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 502);
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
    assert_eq!(r.json()["error"]["type"], "retry_exhausted");
    assert_eq!(r.json()["error"]["total_attempts"], 2);

    // With no other provider at all, the first failure is the answer.
    let mut s = with_policy(None, policy, &[]);
    let body = error_body(503, "down");
    s.script(P, vec![FakeReply::json(503, &body)]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 503);
    assert_eq!(r.body, body.as_bytes());
    assert_eq!(s.calls(P), 1);
}

// ---------------------------------------------------------------- backoff (§4.4)

#[test]
fn backoff_formula_without_jitter() {
    let policy = "default_strategy: same_model\ndefault_max_attempts: 3\nbackoff:\n  apply_to: same_model\n  base_ms: 100\n  max_ms: 250\n  jitter: false";
    let mut s = with_policy(None, policy, &[]);
    s.script(P, vec![err(503), err(503), err(503), ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!(gaps(&s, P), [ms(100), ms(200), ms(250)]);
    assert_eq!(r.elapsed(), ms(550));
}

#[test]
fn backoff_jitter_stays_within_half_to_full() {
    let policy = "default_strategy: same_model\ndefault_max_attempts: 3\nbackoff:\n  apply_to: same_model\n  base_ms: 1000\n  max_ms: 10000\n  jitter: true";
    let mut s = with_policy(None, policy, &[]);
    let mut seen = Vec::new();
    for _ in 0..20 {
        s.script(P, vec![err(503), err(503), err(503), ok()]);
        assert_eq!(chat(&mut s, P).status, 200);
        for (n, gap) in gaps(&s, P).into_iter().enumerate() {
            let full = ms(1000 << n);
            assert!(
                gap >= full / 2 && gap < full,
                "retry {n}: {gap:?} of {full:?}"
            );
            seen.push(gap);
        }
    }
    seen.sort();
    seen.dedup();
    assert!(seen.len() > 10, "jitter varies: {seen:?}");
}

#[test]
fn backoff_apply_to_same_model_skips_failover() {
    let policy =
        "backoff:\n  apply_to: same_model\n  base_ms: 1000\n  max_ms: 5000\n  jitter: false";
    let mut s = with_policy(None, policy, &[S]);
    s.script(P, vec![err(503)]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!(r.elapsed(), Duration::ZERO);
}

#[test]
fn backoff_apply_to_same_provider() {
    let policy = "default_strategy: same_provider\nbackoff:\n  apply_to: same_provider\n  base_ms: 1000\n  max_ms: 5000\n  jitter: false";
    let mut s = with_policy(None, policy, &[S, P2]);
    s.script(P, vec![err(503)]);
    s.script(P2, vec![ok()]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!(s.calls(P2), 1);
    assert_eq!(r.elapsed(), secs(1), "same prefix: backoff applies");

    let policy = "default_strategy: different_provider\nbackoff:\n  apply_to: same_provider\n  base_ms: 1000\n  max_ms: 5000\n  jitter: false";
    let mut s = with_policy(None, policy, &[S, P2]);
    s.script(P, vec![err(503)]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!(s.calls(S), 1);
    assert_eq!(r.elapsed(), Duration::ZERO, "other prefix: no backoff");
}

#[test]
fn backoff_apply_to_global_applies_to_failover() {
    let policy = "backoff:\n  apply_to: global\n  base_ms: 700\n  max_ms: 5000\n  jitter: false";
    let mut s = with_policy(None, policy, &[S]);
    s.script(P, vec![err(503)]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!(r.elapsed(), ms(700));
}

// ---------------------------------------------------------------- pushback (§4.5)

const SAME_MODEL_429: &str =
    "on_status_codes:\n  - codes: [429]\n    strategy: same_model\n    max_attempts: 1";

fn pushback_gap(headers: &[(&str, &str)], extra_policy: &str) -> Duration {
    let mut s = with_policy(None, &format!("{SAME_MODEL_429}\n{extra_policy}"), &[]);
    s.script(P, vec![err_with(429, headers), ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200, "{headers:?}");
    assert_eq!(s.calls(P), 2);
    gaps(&s, P)[0]
}

#[test]
fn pushback_retry_after_ms() {
    assert_eq!(pushback_gap(&[("retry-after-ms", "1500")], ""), ms(1500));
}

#[test]
fn pushback_retry_after_seconds() {
    assert_eq!(pushback_gap(&[("retry-after", "3")], ""), secs(3));
}

#[test]
fn pushback_openai_reset_only_when_remaining_is_zero() {
    let h = [
        ("x-ratelimit-reset-requests", "2s"),
        ("x-ratelimit-remaining-requests", "0"),
    ];
    assert_eq!(pushback_gap(&h, ""), secs(2));
    let h = [
        ("x-ratelimit-reset-requests", "2s"),
        ("x-ratelimit-remaining-requests", "5"),
    ];
    assert_eq!(pushback_gap(&h, ""), Duration::ZERO);
}

#[test]
fn pushback_is_capped() {
    let cap = "retry_after_handling:\n  max_retry_after_seconds: 10";
    assert_eq!(pushback_gap(&[("retry-after", "600")], cap), secs(10));
}

#[test]
fn pushback_scope_provider_blocks_the_prefix() {
    let policy = "retry_after_handling:\n  scope: provider\n  apply_to: global";
    let yaml = config(
        None,
        &[
            provider(P, 1, &retry_policy(policy)),
            provider(P2, 2, &retry_policy("")),
            provider(S, 3, ""),
        ],
    );
    let mut s = sim(&yaml);
    s.script(P, vec![err_with(429, &[("retry-after", "60")])]);
    s.script(P2, vec![ok()]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(P2), s.calls(S)), (1, 0, 1));
    // Another model of the blocked prefix is steered away too.
    let r = chat(&mut s, P2);
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P2), s.calls(S)), (0, 2));
    assert_eq!(r.headers["x-switchback-model"], S);
}

#[test]
fn pushback_global_block_steers_the_next_request() {
    let policy = "retry_after_handling:\n  scope: model\n  apply_to: global";
    let mut s = with_policy(None, policy, &[S]);
    s.script(P, vec![err_with(429, &[("retry-after", "20")]), ok()]);
    s.script(S, vec![ok()]);
    let r1 = chat(&mut s, P);
    assert_eq!(r1.status, 200);
    assert_eq!(r1.elapsed(), Duration::ZERO, "failing over does not wait");
    s.advance(secs(19));
    let r2 = chat(&mut s, P);
    assert_eq!(r2.headers["x-switchback-model"], S);
    assert_eq!((s.calls(P), s.calls(S)), (1, 2));
    s.advance(secs(1));
    let r3 = chat(&mut s, P);
    assert_eq!(r3.headers["x-switchback-model"], P, "the block has ended");
}

/// P and S both answer 429 with long Retry-After values: both end up blocked.
fn both_blocked(timeout: Option<&str>) -> Simulation {
    let mut s = with_policy(timeout, "", &[S]);
    s.script(P, vec![err_with(429, &[("retry-after", "10")]), ok()]);
    s.script(S, vec![err_with(429, &[("retry-after", "20")]), ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 429);
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
    s
}

#[test]
fn every_candidate_blocked_waits_for_the_earliest_expiry() {
    let mut s = both_blocked(None);
    let t0 = s.now;
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(S)), (2, 1));
    assert_eq!(s.upstream(P).unwrap().arrivals[1] - t0, secs(10));
    assert_eq!(r.elapsed(), secs(10));
}

#[test]
fn every_candidate_blocked_past_the_deadline_answers_at_once() {
    let mut s = both_blocked(Some("5s"));
    let r = chat(&mut s, P);
    assert_eq!(r.status, 429);
    assert_eq!(r.elapsed(), Duration::ZERO);
    assert_eq!((s.calls(P), s.calls(S)), (1, 1), "no upstream call");
    assert_eq!(sends(&r.trace), 0);
    assert_eq!(r.headers["retry-after"], "10");
    assert_eq!(r.headers["x-should-retry"], "false");
    let e = &r.json()["error"];
    assert_eq!(e["type"], "retry_exhausted");
    assert_eq!(e["shortest_remaining_block_seconds"], 10);
}

// ---------------------------------------------------------------- latency blocks (§4.6)

fn latency_policy(measure: &str, extra: &str) -> String {
    format!("on_high_latency:\n  threshold_ms: 1000\n  measure: {measure}\n  block_duration_seconds: 60\n  strategy: different_provider\n{extra}")
}

/// An answer whose head comes at once and whose body comes after `body_after`.
fn slow_body(body_after: Duration) -> FakeReply {
    FakeReply::Http {
        delay: Duration::ZERO,
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        chunks: vec![(body_after, Bytes::from_static(SUCCESS.as_bytes()))],
        ending: Ending::End,
    }
}

#[test]
fn latency_measure_total_counts_the_body() {
    let mut s = with_policy(None, &latency_policy("total", ""), &[S]);
    s.script(P, vec![slow_body(ms(1500))]);
    s.script(S, vec![ok()]);
    let r1 = chat(&mut s, P);
    assert_eq!(r1.status, 200, "the slow answer is delivered");
    assert_eq!(r1.headers["x-switchback-model"], P);
    let r2 = chat(&mut s, P);
    assert_eq!(r2.headers["x-switchback-model"], S);
}

#[test]
fn latency_measure_ttfb_ignores_a_slow_body() {
    let mut s = with_policy(None, &latency_policy("ttfb", ""), &[S]);
    s.script(P, vec![slow_body(ms(1500))]);
    s.script(S, vec![ok()]);
    chat(&mut s, P);
    let r2 = chat(&mut s, P);
    assert_eq!(r2.headers["x-switchback-model"], P);
    // A slow head does count.
    let mut s = with_policy(None, &latency_policy("ttfb", ""), &[S]);
    s.script(P, vec![ok().delayed(ms(1500))]);
    s.script(S, vec![ok()]);
    chat(&mut s, P);
    let r2 = chat(&mut s, P);
    assert_eq!(r2.headers["x-switchback-model"], S);
}

#[test]
fn latency_min_triggers_within_the_window() {
    let extra = "  min_triggers: 3\n  trigger_window_seconds: 60";
    let mut s = with_policy(None, &latency_policy("total", extra), &[S]);
    s.script(P, vec![ok().delayed(ms(1500))]);
    s.script(S, vec![ok()]);
    for i in 0..3 {
        let r = chat(&mut s, P);
        assert_eq!(r.headers["x-switchback-model"], P, "slow answer {i}");
    }
    let r = chat(&mut s, P);
    assert_eq!(r.headers["x-switchback-model"], S, "3 slow answers block");

    // Spread beyond the window, three slow answers do not block.
    let mut s = with_policy(None, &latency_policy("total", extra), &[S]);
    s.script(P, vec![ok().delayed(ms(1500))]);
    s.script(S, vec![ok()]);
    for _ in 0..4 {
        let r = chat(&mut s, P);
        assert_eq!(r.headers["x-switchback-model"], P);
        s.advance(secs(40));
    }
}

#[test]
fn latency_blocks_never_leave_a_request_without_a_candidate() {
    let policy = format!("fallback_models: [{S}]\n{}", latency_policy("total", ""));
    let yaml = config(
        None,
        &[
            provider(P, 1, &retry_policy(&policy)),
            provider(S, 2, &retry_policy(&latency_policy("total", ""))),
        ],
    );
    let mut s = sim(&yaml);
    s.script(P, vec![ok().delayed(ms(1500))]);
    s.script(S, vec![ok().delayed(ms(1500))]);
    assert_eq!(chat(&mut s, P).headers["x-switchback-model"], P);
    // P is blocked: S answers (slowly), and is blocked in turn, later than P.
    assert_eq!(chat(&mut s, P).headers["x-switchback-model"], S);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["x-switchback-model"], P,
        "all latency-blocked: the block that ends first"
    );
    assert_eq!(r.elapsed(), ms(1500), "no wait for a latency block");
}

// ---------------------------------------------------------------- deadlines (§4.7)

#[test]
fn listener_timeout_bounds_everything() {
    let p = provider(
        P,
        1,
        &format!("{}timeouts:\n  first_token: \"30s\"", retry_policy("")),
    );
    let mut s = sim(&config(Some("5s"), &[p, provider(S, 2, "")]));
    s.script(P, vec![FakeReply::Hang]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 504);
    assert_eq!(r.elapsed(), secs(5));
    assert_eq!(s.calls(S), 0, "no time left to fail over");
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert!(body.contains("timeout_5000ms"), "{body}");
}

#[test]
fn max_retry_duration_stops_a_retry_past_it() {
    let policy = "default_strategy: same_model\ndefault_max_attempts: 5\nmax_retry_duration_ms: 2500\nbackoff:\n  apply_to: same_model\n  base_ms: 1000\n  max_ms: 10000\n  jitter: false";
    let mut s = with_policy(None, policy, &[]);
    s.script(P, vec![err(503)]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 503);
    // Retry 1 after 1 s fits; retry 2 would start at 3 s, past the 2.5 s budget.
    assert_eq!(s.calls(P), 2);
    assert_eq!(r.elapsed(), secs(1));
    let e = &r.json()["error"];
    assert_eq!(e["retry_budget_exhausted"], true);
    assert_eq!(e["total_attempts"], 2);
}

#[test]
fn a_wait_longer_than_the_time_left_is_never_slept() {
    let mut s = with_policy(Some("5s"), SAME_MODEL_429, &[]);
    s.script(P, vec![err_with(429, &[("retry-after", "10")]), ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 429);
    assert_eq!(r.elapsed(), Duration::ZERO);
    assert_eq!(s.calls(P), 1);
}

// ---------------------------------------------------------------- exhaustion (§4.8)

#[test]
fn exhaustion_body_lists_every_attempt() {
    let p = provider(P, 1, &retry_policy("default_max_attempts: 3"));
    let t = provider(T, 3, "timeouts:\n  first_token: \"1s\"");
    let mut s = sim(&config(None, &[p, provider(S, 2, ""), t]));
    s.script(P, vec![err_with(429, &[("retry-after", "2")])]);
    let s_body = r#"{"error":{"message":"bad gateway upstream","type":"server_error","code":"bad_gateway"}}"#;
    s.script(S, vec![FakeReply::json(502, s_body).delayed(ms(40))]);
    s.script(T, vec![FakeReply::Hang]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 504, "the last attempt timed out");
    assert_eq!(r.headers["x-should-retry"], "false");
    let e = &r.json()["error"];
    assert_eq!(e["type"], "retry_exhausted");
    assert_eq!(e["code"], "retry_exhausted");
    assert_eq!(e["message"], "All retry attempts exhausted");
    assert_eq!(e["total_attempts"], 3);
    assert_eq!(e["retry_budget_exhausted"], false);
    let a = &e["attempts"];
    assert_eq!(a[0]["attempt"], 1);
    assert_eq!(a[0]["model"], P);
    assert_eq!(a[0]["error_type"], "http_429");
    assert_eq!(a[0]["status"], 429);
    assert_eq!(a[0]["latency_ms"], 0);
    assert_eq!(a[0]["retry_after_ms"], 2000);
    assert_eq!(a[1]["attempt"], 2);
    assert_eq!(a[1]["model"], S);
    assert_eq!(a[1]["error_type"], "http_502");
    assert_eq!(a[1]["latency_ms"], 40);
    assert!(a[1].get("retry_after_ms").is_none());
    assert_eq!(a[2]["model"], T);
    assert_eq!(a[2]["error_type"], "timeout_1000ms");
    assert_eq!(a[2]["latency_ms"], 1000);
    assert!(a[2].get("status").is_none());
}

#[test]
fn exhaustion_last_error_is_the_parsed_upstream_body() {
    let mut s = with_policy(None, "", &[S]);
    s.script(P, vec![err(503)]);
    let s_body =
        r#"{"error":{"message":"overloaded, try later","type":"overloaded_error","code":"529"}}"#;
    s.script(S, vec![FakeReply::json(529, s_body)]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 529, "the last attempt's status");
    let last: serde_json::Value = serde_json::from_str(s_body).unwrap();
    assert_eq!(r.json()["error"]["last_error"], last);
    assert_eq!(r.headers["x-should-retry"], "false");
}

// ---------------------------------------------------------------- streaming (§6)

fn start_stream_at(r: &SimResponse) -> Option<std::time::Instant> {
    r.trace
        .iter()
        .find(|(_, a)| matches!(a, Action::StartStream { .. }))
        .map(|(t, _)| *t)
}

#[test]
fn role_only_chunk_is_held_until_content() {
    let mut s = with_policy(None, "", &[S]);
    let events = full_stream("p");
    s.script(P, vec![sse(&events, ms(100), Ending::End)]);
    let r = stream_chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert!(r.streamed);
    assert_eq!(r.body, events.concat().as_bytes());
    // The head goes out with the first content event (the second event, at 200 ms).
    assert_eq!(start_stream_at(&r).unwrap() - r.started, ms(200));
}

#[test]
fn cut_before_commit_is_retried_into_one_clean_stream() {
    let mut s = with_policy(None, "", &[S]);
    let role = chunk("p", r#"{"role":"assistant","content":""}"#, None);
    s.script(P, vec![sse(&[role], ms(10), Ending::Cut)]);
    let good = full_stream("s");
    s.script(S, vec![sse(&good, ms(10), Ending::End)]);
    let r = stream_chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, good.concat().as_bytes(), "only the second attempt");
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
    assert_eq!(r.summary.as_ref().unwrap().outcome, Outcome::Success);
}

#[test]
fn cut_after_commit_ends_with_an_error_event() {
    let mut s = with_policy(None, "", &[S]);
    let events = full_stream("p")[..2].to_vec();
    s.script(P, vec![sse(&events, ms(10), Ending::Cut)]);
    s.script(S, vec![sse(&full_stream("s"), ms(10), Ending::End)]);
    let r = stream_chat(&mut s, P);
    assert_eq!(r.status, 200);
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert!(body.starts_with(&events.concat()), "{body}");
    let tail = &body[events.concat().len()..];
    assert!(tail.starts_with("data: {\"error\":"), "{tail}");
    assert!(!body.contains("[DONE]"));
    assert_eq!(s.calls(S), 0, "no attempt after commit");
    assert_eq!(r.summary.as_ref().unwrap().outcome, Outcome::StreamAborted);
}

#[test]
fn stall_after_commit_past_idle_is_terminal() {
    let p = provider(
        P,
        1,
        &format!("{}timeouts:\n  idle: \"2s\"", retry_policy("")),
    );
    let mut s = sim(&config(None, &[p, provider(S, 2, "")]));
    let events = full_stream("p")[..2].to_vec();
    s.script(P, vec![sse(&events, ms(10), Ending::Stall)]);
    s.script(S, vec![sse(&full_stream("s"), ms(10), Ending::End)]);
    let r = stream_chat(&mut s, P);
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert!(body.contains("data: {\"error\":"), "{body}");
    assert!(!body.contains("[DONE]"));
    assert_eq!(s.calls(S), 0);
    assert_eq!(r.elapsed(), ms(20) + secs(2));
    assert_eq!(r.summary.as_ref().unwrap().outcome, Outcome::StreamAborted);
}

#[test]
fn in_band_error_before_commit_fails_over() {
    let mut s = with_policy(None, "", &[S]);
    let bad = vec![
        chunk("p", r#"{"role":"assistant","content":""}"#, None),
        "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n".to_owned(),
    ];
    s.script(P, vec![sse(&bad, ms(10), Ending::End)]);
    let good = full_stream("s");
    s.script(S, vec![sse(&good, ms(10), Ending::End)]);
    let r = stream_chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, good.concat().as_bytes());
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
}

#[test]
fn non_json_data_event_is_dropped() {
    let mut s = with_policy(None, "", &[S]);
    let mut events = full_stream("p");
    events.insert(2, "data: this is not json\n\n".to_owned());
    s.script(P, vec![sse(&events, ms(10), Ending::End)]);
    let r = stream_chat(&mut s, P);
    let mut expected = events.clone();
    expected.remove(2);
    assert_eq!(r.body, expected.concat().as_bytes());
    assert_eq!(r.summary.as_ref().unwrap().outcome, Outcome::Success);
    assert_eq!(s.calls(S), 0);
}

#[test]
fn clean_end_without_done_after_finish_gets_done() {
    let mut s = with_policy(None, "", &[S]);
    let events = full_stream("p")[..4].to_vec();
    s.script(P, vec![sse(&events, ms(10), Ending::End)]);
    let r = stream_chat(&mut s, P);
    assert_eq!(
        r.body,
        format!("{}data: [DONE]\n\n", events.concat()).as_bytes()
    );
    assert_eq!(r.summary.as_ref().unwrap().outcome, Outcome::Success);
    assert_eq!(r.elapsed(), ms(40), "finished promptly");
}

#[test]
fn end_without_content_or_finish_is_a_failed_attempt() {
    let mut s = with_policy(None, "", &[S]);
    let role = chunk("p", r#"{"role":"assistant","content":""}"#, None);
    s.script(P, vec![sse(&[role], ms(10), Ending::End)]);
    let good = full_stream("s");
    s.script(S, vec![sse(&good, ms(10), Ending::End)]);
    let r = stream_chat(&mut s, P);
    assert_eq!(r.body, good.concat().as_bytes());
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
}

// ---------------------------------------------------------------- cancellation (§7)

#[test]
fn client_gone_during_backoff_cancels_the_wait() {
    let policy = "default_strategy: same_model\nbackoff:\n  apply_to: same_model\n  base_ms: 5000\n  max_ms: 10000\n  jitter: false";
    let mut s = with_policy(None, policy, &[]);
    s.script(P, vec![err(503), ok()]);
    let r = s
        .request(
            Method::POST,
            "/v1/chat/completions",
            HeaderMap::new(),
            &chat_body(P, false),
            Some(secs(1)),
        )
        .unwrap();
    assert_eq!(r.summary.as_ref().unwrap().outcome, Outcome::Cancelled);
    assert_eq!(r.elapsed(), secs(1));
    assert_eq!(sends(&r.trace), 1);
    assert!(matches!(r.trace.last(), Some((_, Action::Finish(_)))));
    assert_eq!(s.calls(P), 1);
}

#[test]
fn client_gone_during_an_attempt_cancels_it() {
    let mut s = with_policy(None, "", &[S]);
    s.script(P, vec![FakeReply::Hang]);
    let r = s
        .request(
            Method::POST,
            "/v1/chat/completions",
            HeaderMap::new(),
            &chat_body(P, false),
            Some(secs(2)),
        )
        .unwrap();
    let send_id = r.trace.iter().find_map(|(_, a)| match a {
        Action::Send { attempt, .. } => Some(*attempt),
        _ => None,
    });
    let cancel = r.trace.iter().find_map(|(t, a)| match a {
        Action::Cancel { attempt } => Some((*t, *attempt)),
        _ => None,
    });
    assert_eq!(cancel, Some((r.started + secs(2), send_id.unwrap())));
    assert_eq!(r.summary.as_ref().unwrap().outcome, Outcome::Cancelled);
    assert_eq!(sends(&r.trace), 1);
    assert!(matches!(r.trace.last(), Some((_, Action::Finish(_)))));
}

// ---------------------------------------------------------------- escalation (§4.9)

const ESCALATE: &str = "on_status_codes:\n  - codes: [429]\n    strategy: same_model\n    max_attempts: 1\n    then:\n      strategy: different_provider\n      max_attempts: 1";

#[test]
fn then_short_pushback_is_waited_for_on_the_same_model() {
    let mut s = with_policy(None, ESCALATE, &[S]);
    s.script(P, vec![err_with(429, &[("retry-after", "2")]), ok()]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(S)), (2, 0));
    assert_eq!(gaps(&s, P), [secs(2)]);
}

#[test]
fn then_long_pushback_fails_over_at_once() {
    let mut s = with_policy(None, ESCALATE, &[S]);
    s.script(P, vec![err_with(429, &[("retry-after", "60")]), ok()]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
    assert_eq!(r.elapsed(), Duration::ZERO);
}

#[test]
fn then_stage_continues_after_the_rule_is_spent() {
    let mut s = with_policy(None, ESCALATE, &[S, T]);
    s.script(P, vec![err_with(429, &[("retry-after", "1")])]);
    s.script(S, vec![err(429)]);
    s.script(T, vec![ok()]);
    let r = chat(&mut s, P);
    // P, P again after 1 s, then the `then` stage's single failover to S; its 429
    // finds the then stage spent too.
    assert_eq!((s.calls(P), s.calls(S), s.calls(T)), (2, 1, 0));
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["total_attempts"], 3);

    let mut s = with_policy(None, ESCALATE, &[S]);
    s.script(P, vec![err_with(429, &[("retry-after", "1")])]);
    s.script(S, vec![ok()]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!((s.calls(P), s.calls(S)), (2, 1));
    assert_eq!(r.headers["x-switchback-attempts"], "3");
}

// ---------------------------------------------------------------- mock provider (§3.4)

fn mock_sim(primary: &str, extra: &str) -> Simulation {
    let yaml = format!(
        "version: v0.3.0\nmodel_providers:\n  - model: {primary}\n    default: true\n    retry_policy:\n      default_strategy: same_provider\n{}  - model: mock/ok\n",
        common::indent(extra, 4)
    );
    sim(&yaml)
}

#[test]
fn mock_rate_limited_fails_over_to_mock_ok() {
    let mut s = mock_sim("mock/rate-limited", "");
    let r = chat(&mut s, "mock/rate-limited");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-switchback-attempts"], "2");
    assert_eq!(r.headers["x-switchback-model"], "mock/ok");
    assert_eq!(sends(&r.trace), 0, "mocks are answered in-process");
    assert!(r.json()["choices"][0]["message"]["content"].is_string());
}

#[test]
fn mock_slow_takes_its_delay() {
    let mut s = mock_sim("mock/slow", "mock:\n  delay: \"3s\"");
    let r = chat(&mut s, "mock/slow");
    assert_eq!(r.status, 200);
    assert_eq!(r.elapsed(), secs(3));
    assert_eq!(r.headers["x-switchback-model"], "mock/slow");
}

#[test]
fn mock_stream_cut_ends_with_an_error_event() {
    let mut s = mock_sim("mock/stream-cut", "");
    let r = stream_chat(&mut s, "mock/stream-cut");
    assert_eq!(r.status, 200);
    assert!(r.streamed);
    let body = String::from_utf8_lossy(&r.body).to_string();
    let last = body.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("data: {\"error\":"), "{body}");
    assert!(!body.contains("[DONE]"));
    assert_eq!(r.summary.as_ref().unwrap().outcome, Outcome::StreamAborted);
}

// ---------------------------------------------------------------- fidelity (§5)

#[test]
fn only_the_model_value_changes_on_every_attempt() {
    let policy = "default_strategy: same_model";
    let mut s = with_policy(None, policy, &[]);
    s.script(P, vec![err(503), ok()]);
    let body = "{ \"temperature\" : 0.70,\n \"model\":\"openai/gpt-4o\", \"x_unknown\": [1, 2.50, {\"b\":1,\"a\":2}], \"messages\": [{\"role\": \"user\", \"content\": \"caf\\u00e9 \u{1f600}\"}] }";
    let r = s.chat(body).unwrap();
    assert_eq!(r.status, 200);
    let expected = body.replace("\"openai/gpt-4o\"", "\"gpt-4o\"");
    for sent in &s.upstream(P).unwrap().received {
        assert_eq!(sent, expected.as_bytes());
    }
    assert_eq!(s.calls(P), 2);
}

fn client_auth() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_static("Bearer client-key"),
    );
    h.insert("x-api-key", HeaderValue::from_static("client-x-key"));
    h
}

#[test]
fn upstream_gets_the_targets_credentials_not_the_clients() {
    let p = provider(P, 1, "headers:\n  x-team: blue\n  x-extra: \"42\"");
    let mut s = sim(&config(None, &[p]));
    s.script(P, vec![ok()]);
    let r = s
        .request(
            Method::POST,
            "/v1/chat/completions",
            client_auth(),
            &chat_body(P, false),
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let h = &s.upstream(P).unwrap().received_headers[0];
    assert_eq!(h["authorization"], "Bearer k1");
    assert!(h.get("x-api-key").is_none());
    assert_eq!(h["x-team"], "blue");
    assert_eq!(h["x-extra"], "42");
}

#[test]
fn passthrough_auth_forwards_the_clients_authorization() {
    let p =
        format!("  - model: {P}\n    base_url: http://127.0.0.1:9\n    passthrough_auth: true\n");
    let mut s = sim(&config(None, &[p]));
    s.script(P, vec![ok()]);
    s.request(
        Method::POST,
        "/v1/chat/completions",
        client_auth(),
        &chat_body(P, false),
        None,
    )
    .unwrap();
    let h = &s.upstream(P).unwrap().received_headers[0];
    assert_eq!(h["authorization"], "Bearer client-key");
    assert!(h.get("x-api-key").is_none());
}

// ---------------------------------------------------------------- more timing rules

#[test]
fn pushback_retry_after_http_date() {
    // The simulation's wall clock reads 1_700_000_000 s = Tue, 14 Nov 2023 22:13:20 GMT.
    let h = [("retry-after", "Tue, 14 Nov 2023 22:13:30 GMT")];
    assert_eq!(pushback_gap(&h, ""), secs(10));
}

#[test]
fn pushback_anthropic_reset() {
    let h = [
        ("anthropic-ratelimit-requests-reset", "2023-11-14T22:13:25Z"),
        ("anthropic-ratelimit-requests-remaining", "0"),
    ];
    assert_eq!(pushback_gap(&h, ""), secs(5));
}

#[test]
fn first_token_counts_until_the_first_content_event() {
    let p = provider(
        P,
        1,
        &format!("{}timeouts:\n  first_token: \"1s\"", retry_policy("")),
    );
    let mut s = sim(&config(None, &[p, provider(S, 2, "")]));
    // The role-only chunk comes in time, the content only after 2 s.
    let slow = FakeReply::Http {
        delay: Duration::ZERO,
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        chunks: full_stream("p")
            .into_iter()
            .enumerate()
            .map(|(i, e)| (if i == 1 { secs(2) } else { ms(10) }, Bytes::from(e)))
            .collect(),
        ending: Ending::End,
    };
    s.script(P, vec![slow]);
    let good = full_stream("s");
    s.script(S, vec![sse(&good, ms(10), Ending::End)]);
    let r = stream_chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, good.concat().as_bytes());
    assert_eq!((s.calls(P), s.calls(S)), (1, 1));
    assert_eq!(s.upstream(S).unwrap().arrivals[0] - r.started, secs(1));
}

#[test]
fn listener_timeout_also_bounds_a_committed_stream() {
    let p = provider(P, 1, &retry_policy(""));
    let mut s = sim(&config(Some("5s"), &[p, provider(S, 2, "")]));
    s.script(P, vec![sse(&full_stream("p"), secs(2), Ending::End)]);
    let r = stream_chat(&mut s, P);
    assert_eq!(r.status, 200);
    assert!(r.streamed);
    assert_eq!(r.elapsed(), secs(5));
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert!(body.contains("data: {\"error\":"), "{body}");
    assert!(!body.contains("[DONE]"));
    assert_eq!(r.summary.as_ref().unwrap().outcome, Outcome::StreamAborted);
}
