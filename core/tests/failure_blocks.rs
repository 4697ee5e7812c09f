//! Failure blocks (spec §11, `on_failures`): the circuit of one key in the block table,
//! then whole requests in the simulation, then concurrent requests around a half-open
//! circuit, driven by hand.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use common::{chat_body, config, error_body, provider, retry_policy, sim, SUCCESS};
use http::{HeaderMap, HeaderValue, Method};
use switchback_core::block_table::{BlockKey, BlockTable};
use switchback_core::config::BlockScope;
use switchback_core::failure_blocks::{FailureGate, FailureTrigger, PROBE_RECHECK};
use switchback_core::gateway::{ClientRequest, Gateway, Reply, RequestContext};
use switchback_core::machine::{Action, AttemptId, Event, Outcome, RetryMachine};
use switchback_core::sim::{FakeReply, SimResponse, Simulation};

const P: &str = "openai/gpt-4o";
const S: &str = "anthropic/claude-3-5-sonnet";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn trigger(consecutive: u32) -> FailureTrigger {
    FailureTrigger {
        consecutive,
        window: secs(30),
        block_duration: secs(10),
    }
}

fn key() -> BlockKey {
    BlockKey::for_scope(BlockScope::Model, P)
}

// ---------------------------------------------------------------- the circuit

#[test]
fn consecutive_failures_in_the_window_open_the_circuit() {
    let t0 = common::epoch();
    let mut t = BlockTable::new();
    assert_eq!(t.record_failure(t0, P, Some((key(), trigger(3)))), None);
    assert_eq!(t.record_failure(t0, P, Some((key(), trigger(3)))), None);
    assert_eq!(t.failure_until(t0, P), None, "two are not enough");
    let opened = t.record_failure(t0 + secs(1), P, Some((key(), trigger(3))));
    assert_eq!(opened, Some(t0 + secs(11)));
    assert_eq!(t.failure_until(t0 + secs(5), P), Some(t0 + secs(11)));
    assert_eq!(t.failure_until(t0, S), None, "other models are not blocked");
}

#[test]
fn a_success_clears_the_run_and_old_failures_fall_out_of_the_window() {
    let t0 = common::epoch();
    let mut t = BlockTable::new();
    t.record_failure(t0, P, Some((key(), trigger(2))));
    t.record_success(t0, P);
    assert_eq!(t.record_failure(t0, P, Some((key(), trigger(2)))), None);
    // 31 s later the earlier failure no longer counts.
    assert_eq!(
        t.record_failure(t0 + secs(31), P, Some((key(), trigger(2)))),
        None
    );
    assert!(t
        .record_failure(t0 + secs(32), P, Some((key(), trigger(2))))
        .is_some());
}

#[test]
fn when_the_block_ends_one_probe_goes_first() {
    let t0 = common::epoch();
    let mut t = BlockTable::new();
    t.record_failure(t0, P, Some((key(), trigger(1))));
    let end = t0 + secs(10);
    assert_eq!(t.claim_attempt(t0, P, end), FailureGate::Blocked(end));
    // The block ended: the first claim is the probe, the next is held back.
    let lease = end + secs(30);
    let FailureGate::Probe(ticket) = t.claim_attempt(end, P, lease) else {
        panic!("the first request after the block must be the probe");
    };
    assert_eq!(
        t.claim_attempt(end, P, lease),
        FailureGate::Blocked(end + PROBE_RECHECK),
        "others look again shortly"
    );
    // A probe that ends without an outcome hands the turn on.
    t.end_probe(P, ticket);
    let FailureGate::Probe(second) = t.claim_attempt(end, P, lease) else {
        panic!("the next request probes");
    };
    // A stale ticket cannot take the turn from the current probe.
    t.end_probe(P, ticket);
    assert!(matches!(
        t.claim_attempt(end, P, lease),
        FailureGate::Blocked(_)
    ));
    // The probe succeeds: closed.
    t.record_success(end, P);
    assert_eq!(t.claim_attempt(end, P, lease), FailureGate::Free);
    let _ = second;
}

#[test]
fn a_failed_probe_reopens_for_another_block_duration() {
    let t0 = common::epoch();
    let mut t = BlockTable::new();
    t.record_failure(t0, P, Some((key(), trigger(1))));
    let end = t0 + secs(10);
    assert!(matches!(
        t.claim_attempt(end, P, end + secs(30)),
        FailureGate::Probe(_)
    ));
    // Any retriable failure on the model resolves the probe, with or without a trigger.
    assert_eq!(t.record_failure(end, P, None), Some(end + secs(10)));
    assert_eq!(t.failure_until(end, P), Some(end + secs(10)));
}

#[test]
fn a_probe_whose_outcome_never_comes_lapses_at_its_lease() {
    let t0 = common::epoch();
    let mut t = BlockTable::new();
    t.record_failure(t0, P, Some((key(), trigger(1))));
    let end = t0 + secs(10);
    let lease = end + secs(2);
    assert!(matches!(
        t.claim_attempt(end, P, lease),
        FailureGate::Probe(_)
    ));
    assert!(matches!(
        t.claim_attempt(lease - Duration::from_millis(1), P, lease),
        FailureGate::Blocked(_)
    ));
    assert!(matches!(
        t.claim_attempt(lease, P, lease),
        FailureGate::Probe(_)
    ));
}

#[test]
fn success_does_not_lift_a_block_in_force() {
    let t0 = common::epoch();
    let mut t = BlockTable::new();
    t.record_failure(t0, P, Some((key(), trigger(1))));
    t.record_success(t0 + secs(1), P);
    assert_eq!(t.failure_until(t0 + secs(1), P), Some(t0 + secs(10)));
}

#[test]
fn scope_provider_blocks_the_prefix() {
    let t0 = common::epoch();
    let mut t = BlockTable::new();
    let prefix = BlockKey::for_scope(BlockScope::Provider, P);
    t.record_failure(t0, P, Some((prefix, trigger(1))));
    assert!(t.failure_until(t0, "openai/gpt-4o-mini").is_some());
    assert!(t.failure_until(t0, S).is_none());
}

// ---------------------------------------------------------------- requests

fn chat(s: &mut Simulation) -> SimResponse {
    s.chat(&chat_body(P, false)).expect("simulation")
}

fn unavailable() -> FakeReply {
    FakeReply::json(503, &error_body(503, "down"))
}

fn ok() -> FakeReply {
    FakeReply::json(200, SUCCESS)
}

/// P (with `on_failures: {consecutive: 3, block_duration_seconds: 10}`, failing over
/// once) and S, plus `more` policy lines.
fn failing_over(more: &str) -> Simulation {
    let policy = retry_policy(&format!(
        "default_max_attempts: 1\non_failures: {{consecutive: 3, window_seconds: 30, block_duration_seconds: 10}}\n{more}"
    ));
    sim(&config(
        None,
        &[provider(P, 1, &policy), provider(S, 2, "")],
    ))
}

#[test]
fn a_blocked_model_is_skipped_from_the_first_attempt_then_probed() {
    let mut s = failing_over("");
    s.script(P, vec![unavailable()]);
    s.script(S, vec![ok()]);
    for _ in 0..3 {
        assert_eq!(chat(&mut s).headers["x-switchback-model"], S);
    }
    assert_eq!(s.calls(P), 3);
    // Blocked: requests go straight to S, with one attempt.
    let r = chat(&mut s);
    assert_eq!(r.headers["x-switchback-model"], S);
    assert_eq!(r.headers["x-switchback-attempts"], "1");
    assert_eq!(s.calls(P), 3);
    // The block ends; the probe fails; P is blocked again at once.
    s.advance(secs(10));
    assert_eq!(chat(&mut s).headers["x-switchback-model"], S);
    assert_eq!(s.calls(P), 4, "one probe");
    assert_eq!(chat(&mut s).headers["x-switchback-model"], S);
    assert_eq!(s.calls(P), 4, "reopened after one failed probe");
    // P recovers: the next probe closes the circuit and traffic returns.
    s.script(P, vec![ok()]);
    s.advance(secs(10));
    for _ in 0..3 {
        assert_eq!(chat(&mut s).headers["x-switchback-model"], P);
    }
    assert_eq!(s.calls(P), 3);
}

#[test]
fn a_client_error_neither_counts_nor_clears() {
    let mut s = failing_over("");
    s.script(
        P,
        vec![
            unavailable(),
            unavailable(),
            FakeReply::json(400, "{}"),
            unavailable(),
        ],
    );
    s.script(S, vec![ok()]);
    for _ in 0..4 {
        chat(&mut s);
    }
    // 503, 503, 400 (passed through, not counted), 503: the third failure opens it.
    assert_eq!(chat(&mut s).headers["x-switchback-model"], S);
    assert_eq!(s.calls(P), 4);
}

#[test]
fn only_one_candidate_waits_for_the_block_then_probes() {
    let policy = retry_policy(
        "default_strategy: same_model\ndefault_max_attempts: 0\non_failures: {consecutive: 1, block_duration_seconds: 5}",
    );
    let mut s = sim(&config(None, &[provider(P, 1, &policy)]));
    s.script(P, vec![unavailable(), ok()]);
    assert_eq!(chat(&mut s).status, 503);
    let t0 = s.now;
    let r = chat(&mut s);
    assert_eq!(r.status, 200, "waited for the block, then probed");
    assert_eq!(r.elapsed(), secs(5));
    assert_eq!(s.upstream(P).unwrap().arrivals[1] - t0, secs(5));
}

#[test]
fn a_block_past_the_deadline_is_answered_at_once() {
    let policy = retry_policy(
        "default_strategy: same_model\ndefault_max_attempts: 0\non_failures: {consecutive: 1, block_duration_seconds: 60}",
    );
    let mut s = sim(&config(Some("10s"), &[provider(P, 1, &policy)]));
    s.script(P, vec![unavailable()]);
    chat(&mut s);
    let r = chat(&mut s);
    assert_eq!(r.status, 429);
    assert_eq!(r.elapsed(), Duration::ZERO);
    assert_eq!(r.headers["retry-after"], "60");
    assert_eq!(r.json()["error"]["shortest_remaining_block_seconds"], 60);
    assert_eq!(s.calls(P), 1);
}

#[test]
fn policy_less_requests_ignore_failure_blocks() {
    let policy = retry_policy("default_max_attempts: 0\non_failures: {consecutive: 1}");
    let mut s = sim(&config(
        None,
        &[provider(P, 1, &policy), provider(S, 2, "")],
    ));
    s.script(P, vec![unavailable()]);
    s.script(S, vec![ok()]);
    chat(&mut s);
    // A request routed to S directly (no policy) while P is blocked is unaffected, and
    // P's block stands.
    assert_eq!(s.chat(&chat_body(S, false)).unwrap().status, 200);
    assert_eq!(chat(&mut s).headers["x-switchback-model"], S);
}

// ---------------------------------------------------------------- concurrent requests

struct Hand {
    gw: Arc<Gateway>,
    now: Instant,
}

impl Hand {
    /// P alone (`same_model` when `alone`) or P and S, P with a 1-failure, 5 s block
    /// that is already in force.
    fn new(alone: bool) -> Hand {
        let strategy = if alone {
            "same_model"
        } else {
            "different_provider"
        };
        let policy = retry_policy(&format!(
            "default_strategy: {strategy}\ndefault_max_attempts: 0\non_failures: {{consecutive: 1, block_duration_seconds: 5}}"
        ));
        let mut providers = vec![provider(P, 1, &policy)];
        if !alone {
            providers.push(provider(S, 2, ""));
        }
        let mut s = sim(&config(None, &providers));
        s.script(P, vec![unavailable()]);
        chat(&mut s);
        Hand {
            gw: Arc::clone(&s.gateway),
            now: s.now,
        }
    }

    fn start(&self) -> RetryMachine {
        let req = ClientRequest {
            method: Method::POST,
            path: "/v1/chat/completions".into(),
            headers: HeaderMap::new(),
            body: Bytes::from(chat_body(P, false)),
        };
        let ctx = RequestContext {
            now: self.now,
            wall: UNIX_EPOCH,
            timeout: secs(60),
            random: 7,
        };
        let Reply::Chat(mut m) = self.gw.handle(req, ctx) else {
            panic!("a chat request");
        };
        m.handle(self.now, Event::Start);
        *m
    }
}

/// The models the machine's queued actions send to.
fn sent_to(m: &mut RetryMachine) -> Vec<String> {
    std::iter::from_fn(|| m.poll_action())
        .filter_map(|a| match a {
            Action::Send { model, .. } => Some(model),
            _ => None,
        })
        .collect()
}

fn succeed(m: &mut RetryMachine, now: Instant, attempt: u32) -> Vec<Action> {
    let attempt = AttemptId(attempt);
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    m.handle(
        now,
        Event::UpstreamHead {
            attempt,
            status: 200,
            headers,
        },
    );
    m.handle(
        now,
        Event::UpstreamData {
            attempt,
            data: Bytes::from_static(SUCCESS.as_bytes()),
        },
    );
    m.handle(now, Event::UpstreamEnd { attempt });
    std::iter::from_fn(|| m.poll_action()).collect()
}

#[test]
fn concurrent_requests_fail_over_while_the_probe_is_out() {
    let mut h = Hand::new(false);
    h.now += secs(5);
    let mut a = h.start();
    assert_eq!(
        sent_to(&mut a),
        [P],
        "the first request after the block probes P"
    );
    let mut b = h.start();
    assert_eq!(
        sent_to(&mut b),
        [S],
        "the second is steered away while the probe is out"
    );
    let done = succeed(&mut a, h.now, 0);
    assert!(done
        .iter()
        .any(|x| matches!(x, Action::Finish(f) if f.outcome == Outcome::Success)));
    let mut c = h.start();
    assert_eq!(
        sent_to(&mut c),
        [P],
        "the probe succeeded: P is open to everyone"
    );
}

#[test]
fn with_one_candidate_others_wait_and_look_again() {
    let mut h = Hand::new(true);
    h.now += secs(5);
    let mut a = h.start();
    assert_eq!(sent_to(&mut a), [P]);
    let mut b = h.start();
    assert!(sent_to(&mut b).is_empty(), "b waits while a probes");
    assert_eq!(b.poll_timeout(), Some(h.now + PROBE_RECHECK));
    succeed(&mut a, h.now, 0);
    b.handle(h.now + PROBE_RECHECK, Event::Timer);
    assert_eq!(sent_to(&mut b), [P], "b goes once the probe succeeded");
}

#[test]
fn a_cancelled_probe_hands_the_turn_on() {
    let mut h = Hand::new(true);
    h.now += secs(5);
    let mut a = h.start();
    assert_eq!(sent_to(&mut a), [P]);
    let mut b = h.start();
    assert!(sent_to(&mut b).is_empty());
    a.handle(h.now, Event::ClientGone);
    b.handle(h.now + PROBE_RECHECK, Event::Timer);
    assert_eq!(sent_to(&mut b), [P], "b probes in a's place");
    // Dropping a machine mid-probe hands the turn on too.
    drop(b);
    let mut c = h.start();
    assert_eq!(sent_to(&mut c), [P]);
}
