//! The retry budget (spec §11), in the simulation with virtual time: what a request that
//! meets a spent budget gets, per-entry budgets, switching it off, and property tests
//! over random traffic (the budget alone, and whole requests through the machine).

mod common;

use std::time::{Duration, Instant};

use common::{chat_body, config, error_body, provider, retry_policy, sim, SUCCESS};
use proptest::prelude::*;
use switchback_core::config::RetryBudgetSettings;
use switchback_core::machine::Action;
use switchback_core::retry_budget::RetryBudget;
use switchback_core::sim::{FakeReply, SimResponse, Simulation};

const P: &str = "openai/gpt-4o";
const Q: &str = "openai/gpt-4o-mini";
const S: &str = "anthropic/claude-3-5-sonnet";

fn chat(s: &mut Simulation, model: &str) -> SimResponse {
    s.chat(&chat_body(model, false)).expect("simulation")
}

fn unavailable() -> FakeReply {
    FakeReply::json(503, &error_body(503, "overloaded"))
}

/// `budget` (a top-level `retry_budget:` line, or "") and P retrying itself once.
fn same_model_sim(budget: &str) -> Simulation {
    let policy = retry_policy("default_strategy: same_model\ndefault_max_attempts: 1");
    let yaml = format!("{budget}{}", config(None, &[provider(P, 1, &policy)]));
    let mut s = sim(&yaml);
    s.script(P, vec![unavailable()]);
    s
}

#[test]
fn a_spent_budget_ends_the_request_with_the_failure_it_has() {
    // Floor only: one retry per second, 10 per window.
    let mut s = same_model_sim("retry_budget: {ratio: 0, min_per_second: 1}\n");
    for i in 0..10 {
        let r = chat(&mut s, P);
        assert_eq!(r.status, 503);
        assert_eq!(
            r.json()["error"]["total_attempts"],
            2,
            "request {i} retried"
        );
        assert_eq!(r.json()["error"]["retry_budget_exhausted"], false);
    }
    assert_eq!(s.calls(P), 20);
    let r = chat(&mut s, P);
    assert_eq!(s.calls(P), 21, "the refused retry is not made");
    assert_eq!(r.status, 503, "the status of the failure the request has");
    assert_eq!(r.headers["x-should-retry"], "false");
    assert_eq!(r.headers["x-switchback-attempts"], "1");
    let e = &r.json()["error"];
    assert_eq!(e["type"], "retry_exhausted");
    assert_eq!(e["retry_budget_exhausted"], true, "{e}");
    assert_eq!(e["total_attempts"], 1);
    assert_eq!(e["last_error"]["error"]["message"], "overloaded");
    // The window slides: ten seconds (and the half-second bucket) later retries resume.
    s.advance(Duration::from_millis(10_500));
    let r = chat(&mut s, P);
    assert_eq!(r.json()["error"]["total_attempts"], 2);
}

#[test]
fn first_attempts_earn_retries_at_the_ratio() {
    // No floor: every five requests earn one retry.
    let mut s = same_model_sim("retry_budget: {ratio: 0.2, min_per_second: 0}\n");
    let mut retried = 0;
    for _ in 0..50 {
        let r = chat(&mut s, P);
        if r.json()["error"]["total_attempts"] == 2 {
            retried += 1;
        }
    }
    assert_eq!(retried, 10, "0.2 x 50 first attempts");
    assert_eq!(s.calls(P), 60);
}

#[test]
fn the_default_budget_is_on() {
    let mut s = same_model_sim("");
    let mut retried = 0;
    for _ in 0..150 {
        if chat(&mut s, P).json()["error"]["total_attempts"] == 2 {
            retried += 1;
        }
    }
    // 100 from the floor (10/s x 10 s), and 0.2 per first attempt (150 x 0.2 = 30),
    // less the ones the floor already covered.
    assert!(
        (100..=130).contains(&retried),
        "{retried} of 150 requests retried"
    );
}

#[test]
fn a_disabled_budget_never_refuses() {
    let mut s = same_model_sim("retry_budget: {enabled: false}\n");
    for _ in 0..300 {
        assert_eq!(chat(&mut s, P).json()["error"]["total_attempts"], 2);
    }
}

#[test]
fn an_entry_with_its_own_budget_counts_only_its_own_requests() {
    let policy = retry_policy("default_strategy: same_model\ndefault_max_attempts: 1");
    let q = provider(
        Q,
        2,
        &format!("{policy}retry_budget: {{ratio: 0, min_per_second: 0}}"),
    );
    let yaml = format!(
        "retry_budget: {{ratio: 0, min_per_second: 1}}\n{}",
        config(None, &[provider(P, 1, &policy), q])
    );
    let mut s = sim(&yaml);
    s.script(P, vec![unavailable()]);
    s.script(Q, vec![unavailable()]);
    // Q's own budget allows nothing; P's requests still have the gateway's ten.
    let r = chat(&mut s, Q);
    assert_eq!(r.json()["error"]["retry_budget_exhausted"], true);
    for _ in 0..10 {
        assert_eq!(chat(&mut s, P).json()["error"]["total_attempts"], 2);
    }
    assert_eq!(chat(&mut s, P).json()["error"]["total_attempts"], 1);
    assert_eq!((s.calls(P), s.calls(Q)), (21, 1));
}

#[test]
fn a_failover_is_a_retry_too() {
    let policy = retry_policy("default_strategy: different_provider\ndefault_max_attempts: 1");
    let yaml = format!(
        "retry_budget: {{ratio: 0, min_per_second: 0}}\n{}",
        config(None, &[provider(P, 1, &policy), provider(S, 2, "")])
    );
    let mut s = sim(&yaml);
    s.script(P, vec![unavailable()]);
    s.script(S, vec![FakeReply::json(200, SUCCESS)]);
    let r = chat(&mut s, P);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["retry_budget_exhausted"], true);
    assert_eq!(s.calls(S), 0, "no budget, no failover");
}

// ---------------------------------------------------------------- properties

/// `ratio` as the budget keeps it: whole millionths.
fn ppm(ratio: f64) -> u64 {
    (ratio * 1_000_000.0).floor() as u64
}

/// For every retry at `t` in `retries`: the retries in `(t - 10 s, t]` are at most
/// `ratio` × the first attempts in `(t - 10 s, t]` plus `min_per_second` × 10.
fn check_windows(
    firsts: &[Instant],
    retries: &[Instant],
    ratio: f64,
    min_per_second: u32,
) -> Result<(), TestCaseError> {
    let window = Duration::from_secs(10);
    let inside = |at: Instant, t: Instant| at <= t && t.saturating_duration_since(at) < window;
    for &t in retries {
        let r = retries.iter().filter(|at| inside(**at, t)).count() as u64;
        let f = firsts.iter().filter(|at| inside(**at, t)).count() as u64;
        let allowed = ppm(ratio) * f + u64::from(min_per_second) * 10 * 1_000_000;
        prop_assert!(
            r * 1_000_000 <= allowed,
            "{r} retries against {f} first attempts in the 10 s up to a retry (ratio {ratio}, floor {min_per_second}/s)"
        );
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    First,
    Retry,
}

fn arb_ops() -> impl Strategy<Value = Vec<(u64, Op)>> {
    prop::collection::vec(
        (
            prop_oneof![3 => 0u64..20, 1 => 0u64..3_000],
            prop_oneof![Just(Op::First), Just(Op::Retry)],
        ),
        0..600,
    )
}

fn arb_ratio() -> impl Strategy<Value = f64> {
    prop::sample::select(vec![0.0, 0.1, 0.2, 0.25, 0.5, 1.0, 2.5])
}

/// Upstream answers for the machine-level property: failures of every kind the
/// budget must count, and successes. No Retry-After and no backoff, so a retry is sent
/// the moment it is admitted.
fn arb_reply() -> impl Strategy<Value = FakeReply> {
    prop_oneof![
        3 => Just(unavailable()),
        2 => Just(FakeReply::json(429, &error_body(429, "slow down"))),
        1 => Just(FakeReply::Refuse),
        1 => Just(FakeReply::Hang),
        2 => Just(FakeReply::json(200, SUCCESS)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Over random traffic, the budget never admits more retries than it may.
    #[test]
    fn the_budget_never_admits_more_than_it_may(
        ops in arb_ops(),
        ratio in arb_ratio(),
        min_per_second in 0u32..4,
    ) {
        let mut budget = RetryBudget::new(ratio, min_per_second);
        let mut now = common::epoch();
        let (mut firsts, mut retries) = (Vec::new(), Vec::new());
        for (gap, op) in ops {
            now += Duration::from_millis(gap);
            match op {
                Op::First => {
                    budget.record_first_attempt(now);
                    firsts.push(now);
                }
                Op::Retry => {
                    if budget.try_retry(now) {
                        retries.push(now);
                    }
                }
            }
        }
        check_windows(&firsts, &retries, ratio, min_per_second)?;
    }

    /// Whole requests through the machine: every `Send` after a request's first is a
    /// retry, and over any 10 s window up to a retry the bound holds.
    #[test]
    fn requests_never_retry_past_the_budget(
        ratio in arb_ratio(),
        min_per_second in 0u32..3,
        same_model in any::<bool>(),
        max_attempts in 0u32..4,
        p_replies in prop::collection::vec(arb_reply(), 1..8),
        s_replies in prop::collection::vec(arb_reply(), 1..8),
        gaps in prop::collection::vec(prop_oneof![3 => 0u64..50, 1 => 0u64..4_000], 1..60),
    ) {
        let strategy = if same_model { "same_model" } else { "different_provider" };
        let policy = retry_policy(&format!(
            "default_strategy: {strategy}\ndefault_max_attempts: {max_attempts}\non_timeout: {{strategy: {strategy}, max_attempts: {}}}",
            max_attempts.max(1)
        ));
        let p = provider(P, 1, &format!("{policy}timeouts: {{first_token: 2s}}"));
        let s_entry = provider(S, 2, "timeouts: {first_token: 2s}");
        let yaml = format!(
            "retry_budget: {{ratio: {ratio}, min_per_second: {min_per_second}}}\n{}",
            config(None, &[p, s_entry])
        );
        let mut s = sim(&yaml);
        s.script(P, p_replies);
        s.script(S, s_replies);
        let (mut firsts, mut retries) = (Vec::new(), Vec::new());
        for gap in gaps {
            s.advance(Duration::from_millis(gap));
            let r = chat(&mut s, P);
            for (at, action) in &r.trace {
                if let Action::Send { attempt, .. } = action {
                    if attempt.0 == 0 {
                        firsts.push(*at);
                    } else {
                        retries.push(*at);
                    }
                }
            }
        }
        check_windows(&firsts, &retries, ratio, min_per_second)?;
    }
}

// ---------------------------------------------------------------- the budget alone

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

#[test]
fn the_floor_alone_allows_min_per_second_times_ten() {
    let t0 = epoch();
    let mut b = RetryBudget::new(0.2, 10);
    let admitted = (0..150).filter(|_| b.try_retry(t0)).count();
    assert_eq!(admitted, 100);
}

#[test]
fn first_attempts_add_ratio_retries() {
    let t0 = epoch();
    let mut b = RetryBudget::new(0.2, 0);
    for _ in 0..50 {
        b.record_first_attempt(t0);
    }
    let admitted = (0..50).filter(|_| b.try_retry(t0)).count();
    assert_eq!(admitted, 10, "0.2 x 50");
}

#[test]
fn retries_age_out_of_the_window() {
    let t0 = epoch();
    let mut b = RetryBudget::new(0.0, 1);
    assert_eq!((0..20).filter(|_| b.try_retry(t0)).count(), 10);
    assert!(!b.try_retry(at(t0, 9_999)), "still inside the window");
    // Bucketing keeps retries up to half a second longer than the window.
    assert!(!b.try_retry(at(t0, 10_400)));
    assert!(b.try_retry(at(t0, 10_500)), "the first bucket has aged out");
}

#[test]
fn first_attempts_stop_counting_before_the_window_ends() {
    let t0 = epoch();
    let mut b = RetryBudget::new(1.0, 0);
    for _ in 0..4 {
        b.record_first_attempt(t0);
    }
    assert_eq!(b.window(at(t0, 9_999)).0, 4);
    assert_eq!(
        b.window(at(t0, 10_000)).0,
        0,
        "gone once the bucket leaves the window"
    );
    assert!(!b.try_retry(at(t0, 10_000)));
}

#[test]
fn a_disabled_budget_is_none() {
    let mut s = RetryBudgetSettings::default();
    assert!(RetryBudget::from_settings(&s).is_some());
    s.enabled = false;
    assert!(RetryBudget::from_settings(&s).is_none());
}

#[test]
fn an_earlier_now_counts_in_the_latest_bucket() {
    let t0 = epoch();
    let mut b = RetryBudget::new(0.0, 1);
    assert!(b.try_retry(at(t0, 5_000)));
    for _ in 0..9 {
        assert!(b.try_retry(t0));
    }
    assert!(!b.try_retry(t0));
    assert_eq!(b.window(at(t0, 5_000)).1, 10);
}

#[test]
fn memory_stays_one_window_under_traffic() {
    let t0 = epoch();
    let mut b = RetryBudget::new(0.2, 10);
    for i in 0..100_000u64 {
        b.record_first_attempt(at(t0, i));
        let _ = b.try_retry(at(t0, i));
    }
    let (firsts, _) = b.window(at(t0, 100_000));
    assert!(firsts <= 10_000, "only the last window counts: {firsts}");
}
