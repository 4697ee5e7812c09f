//! The block table stays bounded when the client names the keys: under a wildcard entry
//! (`model: openai/*`) every `openai/<id>` a client sends can become a key. Ended blocks,
//! stale trigger histories and half-open circuits nobody probes are pruned on every
//! recording call, and the keys the config does not name are capped
//! (`key_cap::MAX_DERIVED_KEYS` per kind of entry), a configured key never evicted.

mod common;

use std::time::{Duration, Instant};

use common::{chat_body, config, epoch, provider, retry_policy, sim};
use proptest::prelude::*;
use switchback_core::block_table::{BlockKey, BlockTable, LatencyTrigger};
use switchback_core::failure_blocks::{FailureGate, FailureTrigger};
use switchback_core::key_cap::MAX_DERIVED_KEYS;
use switchback_core::sim::FakeReply;

const CONFIGURED: &str = "openai/gpt-4o";

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn model(m: &str) -> BlockKey {
    BlockKey::Model(m.to_string())
}

fn failures(consecutive: u32, window: u64, block: u64) -> FailureTrigger {
    FailureTrigger {
        consecutive,
        window: s(window),
        block_duration: s(block),
    }
}

fn latency(min_triggers: u32, window: Option<u64>, block: u64) -> LatencyTrigger {
    LatencyTrigger {
        min_triggers,
        window: window.map(s),
        block_duration: s(block),
    }
}

#[test]
fn a_half_open_circuit_nobody_probes_is_forgotten_after_one_block_duration() {
    let now = epoch();
    let mut t = BlockTable::new();
    let m = "openai/random-1";
    let until = t.record_failure(now, m, Some((model(m), failures(1, 30, 10))));
    assert_eq!(until, Some(now + s(10)));
    t.prune(now + s(15));
    assert_eq!(t.len(), 1, "half-open, waiting for its probe");
    t.prune(now + s(19));
    assert_eq!(t.len(), 1, "still within a block duration of its end");
    t.prune(now + s(20));
    assert!(
        t.is_empty(),
        "nobody probed for a block duration: forgotten"
    );
    // With nothing pending, the next failure starts a fresh count.
    let again = t.record_failure(now + s(21), m, Some((model(m), failures(2, 30, 10))));
    assert_eq!(
        again, None,
        "one failure of two: counting again, not reopened"
    );
}

#[test]
fn a_probe_out_keeps_its_circuit_until_its_lease_lapses() {
    let now = epoch();
    let mut t = BlockTable::new();
    let m = "openai/random-2";
    t.record_failure(now, m, Some((model(m), failures(1, 30, 10))));
    let gate = t.claim_attempt(now + s(10), m, now + s(100));
    assert!(matches!(gate, FailureGate::Probe(_)), "{gate:?}");
    t.prune(now + s(60));
    assert_eq!(t.len(), 1, "a probe is out: the circuit stays");
    t.prune(now + s(109));
    assert_eq!(
        t.len(),
        1,
        "the lease lapsed at 100 s; waiting for the next probe"
    );
    t.prune(now + s(110));
    assert!(t.is_empty());
}

#[test]
fn a_probe_that_resolves_nothing_leaves_a_circuit_that_is_forgotten_later() {
    let now = epoch();
    let mut t = BlockTable::new();
    let m = "openai/random-3";
    t.record_failure(now, m, Some((model(m), failures(1, 30, 10))));
    let FailureGate::Probe(ticket) = t.claim_attempt(now + s(12), m, now + s(100)) else {
        panic!("no probe");
    };
    t.end_probe(m, ticket);
    t.prune(now + s(21));
    assert_eq!(t.len(), 1, "free for a probe since 12 s");
    t.prune(now + s(22));
    assert!(t.is_empty());
}

#[test]
fn stale_latency_events_go_at_prune_without_a_new_event_on_their_key() {
    let now = epoch();
    let mut t = BlockTable::new();
    let key = model("openai/slow");
    assert_eq!(
        t.record_latency_event(now, key.clone(), latency(3, Some(5), 60)),
        None
    );
    t.prune(now + s(5));
    assert_eq!(t.len(), 1, "inside its window");
    t.prune(now + s(6));
    assert!(t.is_empty(), "older than its window: forgotten");
}

#[test]
fn a_failure_on_one_key_prunes_the_stale_runs_of_others() {
    let now = epoch();
    let mut t = BlockTable::new();
    for i in 0..50 {
        let m = format!("openai/run-{i}");
        t.record_failure(now, &m, Some((model(&m), failures(5, 10, 30))));
    }
    assert_eq!(t.len(), 50);
    let m = "openai/later";
    t.record_failure(now + s(11), m, Some((model(m), failures(5, 10, 30))));
    assert_eq!(t.len(), 1, "only the new run is left");
}

#[test]
fn derived_keys_are_capped_and_a_configured_block_is_never_evicted() {
    let now = epoch();
    let mut t = BlockTable::new();
    t.set_configured_models([CONFIGURED.to_string()]);
    t.set_derived_key_limit(8);
    t.record_pushback(now, model(CONFIGURED), now + s(3600));
    t.record_failure(
        now,
        CONFIGURED,
        Some((model(CONFIGURED), failures(1, 30, 3600))),
    );
    for i in 0..100u64 {
        let m = format!("openai/flood-{i}");
        let at = now + Duration::from_millis(i);
        t.record_pushback(at, model(&m), at + s(600 + i));
        t.record_failure(at, &m, Some((model(&m), failures(1, 30, 600))));
        t.record_latency_event(at, model(&m), latency(3, None, 60));
    }
    // 2 configured entries, and 8 per kind of derived entry.
    assert_eq!(t.len(), 2 + 3 * 8);
    let later = now + s(1);
    assert_eq!(t.pushback_until(later, CONFIGURED), Some(now + s(3600)));
    assert_eq!(t.failure_until(later, CONFIGURED), Some(now + s(3600)));
    // The newest derived keys are the ones kept.
    assert!(t.pushback_until(later, "openai/flood-99").is_some());
    assert!(t.pushback_until(later, "openai/flood-0").is_none());
}

#[test]
fn the_default_cap_holds_a_long_flood_of_client_named_models() {
    let now = epoch();
    let mut t = BlockTable::new();
    t.set_configured_models([CONFIGURED.to_string()]);
    let n = MAX_DERIVED_KEYS as u64 * 2;
    for i in 0..n {
        let m = format!("openai/{i:x}");
        let at = now + Duration::from_millis(i);
        t.record_failure(at, &m, Some((model(&m), failures(2, 60, 60))));
        t.record_latency_event(at, model(&m), latency(4, Some(60), 60));
    }
    assert_eq!(t.len(), 2 * MAX_DERIVED_KEYS);
    t.prune(now + s(3600));
    assert!(t.is_empty());
}

/// One thing a client or another replica can make the table record.
#[derive(Debug, Clone)]
enum Op {
    Pushback(usize, u64),
    Latency(usize, u32, Option<u64>, u64),
    Failure(usize, u32, u64, u64),
    Success(usize),
    Claim(usize),
    Remote(usize, u64),
}

fn op() -> impl Strategy<Value = Op> {
    let m = 0usize..400;
    prop_oneof![
        (m.clone(), 1u64..120).prop_map(|(m, b)| Op::Pushback(m, b)),
        (
            m.clone(),
            1u32..5,
            proptest::option::of(1u64..60),
            1u64..120
        )
            .prop_map(|(m, n, w, b)| Op::Latency(m, n, w, b)),
        (m.clone(), 1u32..4, 1u64..60, 1u64..120).prop_map(|(m, n, w, b)| Op::Failure(m, n, w, b)),
        m.clone().prop_map(Op::Success),
        m.clone().prop_map(Op::Claim),
        (m, 1u64..120).prop_map(|(m, b)| Op::Remote(m, b)),
    ]
}

/// Model 0 is the configured one; the rest are what a client sent under `openai/*`.
fn model_name(i: usize) -> String {
    if i == 0 {
        CONFIGURED.to_string()
    } else {
        format!("openai/client-{i}")
    }
}

fn apply(t: &mut BlockTable, now: Instant, op: &Op) {
    match op {
        Op::Pushback(m, b) => t.record_pushback(now, model(&model_name(*m)), now + s(*b)),
        Op::Latency(m, n, w, b) => {
            t.record_latency_event(now, model(&model_name(*m)), latency(*n, *w, *b));
        }
        Op::Failure(m, n, w, b) => {
            let name = model_name(*m);
            t.record_failure(now, &name, Some((model(&name), failures(*n, *w, *b))));
        }
        Op::Success(m) => t.record_success(now, &model_name(*m)),
        Op::Claim(m) => {
            t.claim_attempt(now, &model_name(*m), now + s(30));
        }
        Op::Remote(m, b) => t.apply_remote(
            now,
            &switchback_core::shared_state::BlockRecord::Failures {
                key: model(&model_name(*m)),
                until: now + s(*b),
                reopen_for: s(*b),
            },
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Over a long virtual-time run of random client-named models, the table never holds
    /// more than the configured keys plus the cap per kind of entry, and once every
    /// block, window and lease has passed, pruning leaves it empty.
    #[test]
    fn the_table_stays_bounded_over_a_long_run(
        ops in proptest::collection::vec((op(), 0u64..3000), 1..1500),
    ) {
        const LIMIT: usize = 16;
        let start = epoch();
        let mut now = start;
        let mut t = BlockTable::new();
        t.set_configured_models([CONFIGURED.to_string()]);
        t.set_derived_key_limit(LIMIT);
        let mut windowless = std::collections::BTreeSet::new();
        for (op, gap_ms) in &ops {
            now += Duration::from_millis(*gap_ms);
            apply(&mut t, now, op);
            if let Op::Latency(m, n, None, _) = op {
                if *n > 1 {
                    windowless.insert(*m);
                }
            }
            // The configured model and the `openai` prefix in each of the four maps.
            prop_assert!(t.len() <= 2 * 4 + 4 * LIMIT, "{} entries", t.len());
        }
        // The longest block, window, lease and half-open grace are each under 5 minutes;
        // only latency histories without a window never expire (the cap bounds them).
        t.prune(now + s(600));
        prop_assert!(
            t.len() <= windowless.len().min(LIMIT + 1),
            "{} entries left, {} windowless histories",
            t.len(),
            windowless.len()
        );
    }
}

#[test]
fn a_wildcard_flood_during_an_outage_keeps_the_gateway_table_bounded() {
    let policy = retry_policy(
        "on_failures:\n  consecutive: 2\n  window_seconds: 60\n  block_duration_seconds: 60\n",
    );
    let mut g = sim(&config(
        None,
        &[
            provider(CONFIGURED, 1, &format!("default: true\n{policy}")),
            provider("openai/*", 2, &policy),
        ],
    ));
    let failing = || {
        FakeReply::json(503, r#"{"error":{"message":"down"}}"#).delayed(Duration::from_millis(5))
    };
    // The configured model is blocked first.
    g.script(CONFIGURED, vec![failing(), failing()]);
    for _ in 0..2 {
        let r = g.chat(&chat_body(CONFIGURED, false)).expect("simulation");
        assert_eq!(r.status, 503);
    }
    let blocked = g.gateway.blocks().lock().failure_until(g.now, CONFIGURED);
    assert!(blocked.is_some(), "the configured model is blocked");
    let n = MAX_DERIVED_KEYS + 200;
    for i in 0..n {
        let m = format!("openai/flood-{i}");
        g.script(&m, vec![failing()]);
        let r = g.chat(&chat_body(&m, false)).expect("simulation");
        assert_eq!(r.status, 503, "{m}");
        g.advance(Duration::from_millis(10));
    }
    let table = g.gateway.blocks();
    let t = table.lock();
    let now = g.now;
    // Each client-named model failed once inside the window: a failure run each, capped.
    assert!(
        t.len() <= 4 * 2 + MAX_DERIVED_KEYS,
        "{} entries for {n} client-named models",
        t.len()
    );
    assert!(
        t.len() >= MAX_DERIVED_KEYS,
        "the flood did record: {} entries",
        t.len()
    );
    assert_eq!(
        t.failure_until(now, CONFIGURED),
        blocked,
        "the configured model's block survives the flood"
    );
}
