//! Blocks shared across replicas (spec §14), in the table: what it emits, how it merges
//! what other replicas send ("never shorten a block"), the bounded outbox, and the wire
//! format's rules. The property: any interleaving of local and remote records gives the
//! same blocks as applying every record in expiry order.

mod common;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use switchback_core::block_table::{BlockKey, BlockTable, LatencyTrigger};
use switchback_core::failure_blocks::{FailureGate, FailureTrigger};
use switchback_core::shared_state::{BlockRecord, RecordKind, RemoteRules, OUTBOX_CAPACITY};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn model(m: &str) -> BlockKey {
    BlockKey::Model(m.to_string())
}

fn sharing() -> BlockTable {
    let mut t = BlockTable::new();
    t.enable_sharing();
    t
}

fn latency_trigger(min_triggers: u32) -> LatencyTrigger {
    LatencyTrigger {
        min_triggers,
        window: Some(Duration::from_secs(60)),
        block_duration: Duration::from_secs(300),
    }
}

#[test]
fn a_pushback_is_emitted_once_and_merged_by_key() {
    let now = common::epoch();
    let mut t = sharing();
    t.record_pushback(now, model("openai/gpt-4o"), now + ms(2_000));
    t.record_pushback(now, model("openai/gpt-4o"), now + ms(60_000));
    t.record_pushback(now, model("openai/gpt-4o"), now + ms(5_000)); // shorter: nothing new
    assert_eq!(t.shared_pending(), 1);
    assert_eq!(
        t.take_shared(10),
        vec![BlockRecord::RetryAfter {
            key: model("openai/gpt-4o"),
            until: now + ms(60_000)
        }]
    );
    t.record_pushback(now, model("openai/gpt-4o"), now + ms(30_000));
    assert!(t.take_shared(10).is_empty(), "a shorter block is no news");
}

#[test]
fn tables_without_sharing_and_remote_records_emit_nothing() {
    let now = common::epoch();
    let mut request_table = BlockTable::new();
    request_table.record_pushback(now, model("openai/gpt-4o"), now + ms(60_000));
    assert!(request_table.take_shared(10).is_empty());
    let mut t = sharing();
    t.apply_remote(
        now,
        &BlockRecord::RetryAfter {
            key: model("openai/gpt-4o"),
            until: now + ms(60_000),
        },
    );
    assert_eq!(
        t.pushback_until(now, "openai/gpt-4o"),
        Some(now + ms(60_000))
    );
    assert_eq!(
        t.shared_pending(),
        0,
        "a remote record is never shared again"
    );
}

#[test]
fn remote_records_never_shorten_a_block() {
    let now = common::epoch();
    let mut t = sharing();
    t.record_pushback(now, model("a/x"), now + ms(60_000));
    t.apply_remote(
        now,
        &BlockRecord::RetryAfter {
            key: model("a/x"),
            until: now + ms(1_000),
        },
    );
    assert_eq!(t.pushback_until(now, "a/x"), Some(now + ms(60_000)));
    t.apply_remote(
        now,
        &BlockRecord::RetryAfter {
            key: model("a/x"),
            until: now + ms(90_000),
        },
    );
    assert_eq!(t.pushback_until(now, "a/x"), Some(now + ms(90_000)));
    // An ended block changes nothing.
    t.apply_remote(
        now + ms(100_000),
        &BlockRecord::Latency {
            key: model("a/x"),
            until: now + ms(99_000),
        },
    );
    assert!(t.is_empty());
}

#[test]
fn latency_events_count_across_replicas() {
    let now = common::epoch();
    let (mut a, mut b) = (sharing(), sharing());
    let key = model("openai/gpt-4o");
    // min_triggers 3: one slow answer on A, one on B: no block yet anywhere.
    assert_eq!(
        a.record_latency_event(now, key.clone(), latency_trigger(3)),
        None
    );
    let from_a = a.take_shared(10);
    assert_eq!(
        from_a,
        vec![BlockRecord::LatencyEvent {
            key: key.clone(),
            trigger: latency_trigger(3),
            count: 1
        }]
    );
    assert_eq!(
        b.record_latency_event(now, key.clone(), latency_trigger(3)),
        None
    );
    let from_b = b.take_shared(10);
    b.apply_remote(now, &from_a[0]);
    a.apply_remote(now, &from_b[0]);
    assert_eq!(a.latency_until(now, "openai/gpt-4o"), None);
    // The third, on A, blocks A and is shared as the block.
    let until = a.record_latency_event(now + ms(10), key.clone(), latency_trigger(3));
    assert_eq!(until, Some(now + ms(10) + Duration::from_secs(300)));
    let third = a.take_shared(10);
    assert_eq!(
        third,
        vec![BlockRecord::Latency {
            key: key.clone(),
            until: until.unwrap()
        }]
    );
    b.apply_remote(now + ms(11), &third[0]);
    assert_eq!(b.latency_until(now + ms(11), "openai/gpt-4o"), until);
}

#[test]
fn a_remote_latency_event_can_complete_a_local_trigger() {
    let now = common::epoch();
    let mut b = sharing();
    let key = model("openai/gpt-4o");
    b.record_latency_event(now, key.clone(), latency_trigger(2));
    b.take_shared(10);
    b.apply_remote(
        now + ms(5),
        &BlockRecord::LatencyEvent {
            key,
            trigger: latency_trigger(2),
            count: 1,
        },
    );
    assert_eq!(
        b.latency_until(now + ms(5), "openai/gpt-4o"),
        Some(now + ms(5) + Duration::from_secs(300))
    );
    assert!(b.take_shared(10).is_empty());
}

#[test]
fn failure_blocks_are_shared_and_the_probe_stays_local() {
    let now = common::epoch();
    let (mut a, mut b) = (sharing(), sharing());
    let trigger = FailureTrigger {
        consecutive: 2,
        window: Duration::from_secs(30),
        block_duration: Duration::from_secs(10),
    };
    let m = "openai/gpt-4o";
    a.record_failure(now, m, Some((model(m), trigger)));
    assert!(a.take_shared(10).is_empty(), "a failure run is not shared");
    a.record_failure(now, m, Some((model(m), trigger)));
    let opened = a.take_shared(10);
    assert_eq!(
        opened,
        vec![BlockRecord::Failures {
            key: model(m),
            until: now + Duration::from_secs(10),
            reopen_for: Duration::from_secs(10)
        }]
    );
    b.apply_remote(now, &opened[0]);
    assert_eq!(b.failure_until(now, m), Some(now + Duration::from_secs(10)));
    // After the block each replica hands out its own probe.
    let later = now + Duration::from_secs(10);
    assert!(matches!(
        a.claim_attempt(later, m, later + ms(100)),
        FailureGate::Probe(_)
    ));
    assert!(matches!(
        b.claim_attempt(later, m, later + ms(100)),
        FailureGate::Probe(_)
    ));
    // A's probe fails: the reopened block reaches B while B's probe is out.
    a.record_failure(later, m, None);
    let reopened = a.take_shared(10);
    assert_eq!(reopened.len(), 1);
    b.apply_remote(later + ms(1), &reopened[0]);
    assert_eq!(
        b.failure_until(later + ms(1), m),
        Some(later + Duration::from_secs(10))
    );
}

#[test]
fn live_blocks_can_be_shared_again() {
    let now = common::epoch();
    let mut t = sharing();
    t.record_pushback(now, model("a/x"), now + ms(1_000));
    t.record_latency_event(now, BlockKey::Prefix("b".into()), latency_trigger(1));
    t.take_shared(10);
    t.share_live_blocks(now + ms(500));
    let kinds: Vec<RecordKind> = t.take_shared(10).iter().map(BlockRecord::kind).collect();
    assert_eq!(kinds, vec![RecordKind::RetryAfter, RecordKind::Latency]);
    t.share_live_blocks(now + ms(1_000));
    assert_eq!(
        t.take_shared(10).len(),
        1,
        "the ended pushback is not shared"
    );
}

#[test]
fn the_outbox_is_bounded_and_drops_the_oldest() {
    let now = common::epoch();
    let mut t = sharing();
    for i in 0..OUTBOX_CAPACITY + 10 {
        t.record_pushback(now, model(&format!("a/m{i}")), now + ms(60_000));
    }
    assert_eq!(t.shared_pending(), OUTBOX_CAPACITY);
    let first = t.take_shared(1);
    assert_eq!(
        first[0].key(),
        &model("a/m10"),
        "the ten oldest were dropped"
    );
    assert_eq!(t.take_shared(usize::MAX).len(), OUTBOX_CAPACITY - 1);
}

// ---------------------------------------------------------------- the wire

fn rules() -> RemoteRules {
    RemoteRules::new(["openai/gpt-4o", "anthropic/*"], Duration::from_secs(300))
}

#[test]
fn records_round_trip_on_the_wire_as_time_left() {
    use switchback_core::shared_state::wire::{encode_message, encode_stored, redis_key};
    let now = common::epoch();
    let records = [
        BlockRecord::RetryAfter {
            key: model("openai/gpt-4o"),
            until: now + ms(60_000),
        },
        BlockRecord::Latency {
            key: BlockKey::Prefix("anthropic".into()),
            until: now + ms(1_500),
        },
        BlockRecord::Failures {
            key: model("anthropic/claude-3-5-sonnet"),
            until: now + ms(30_000),
            reopen_for: ms(30_000),
        },
        BlockRecord::LatencyEvent {
            key: model("openai/gpt-4o"),
            trigger: latency_trigger(3),
            count: 2,
        },
    ];
    for r in &records {
        let json = encode_message(r, 0xabc, now).unwrap();
        // Received 7 ms later by another replica's clock: the block ends 7 ms later there.
        let got = rules().decode(json.as_bytes(), now + ms(7), None).unwrap();
        assert_eq!(got.from, Some(0xabc));
        let expected = match r.clone() {
            BlockRecord::RetryAfter { key, until } => BlockRecord::RetryAfter {
                key,
                until: until + ms(7),
            },
            BlockRecord::Latency { key, until } => BlockRecord::Latency {
                key,
                until: until + ms(7),
            },
            BlockRecord::Failures {
                key,
                until,
                reopen_for,
            } => BlockRecord::Failures {
                key,
                until: until + ms(7),
                reopen_for,
            },
            other => other,
        };
        assert_eq!(got.record, expected, "{json}");
    }
    let (stored, px) = encode_stored(&records[0], now + ms(1_000)).unwrap();
    assert_eq!(px, 59_000);
    assert!(
        !stored.contains("\"ms\"") && !stored.contains("from"),
        "{stored}"
    );
    let loaded = rules().decode(stored.as_bytes(), now, Some(px)).unwrap();
    assert_eq!(loaded.from, None);
    assert_eq!(loaded.record.until(), Some(now + ms(59_000)));
    assert_eq!(
        redis_key("sb", RecordKind::RetryAfter, &model("openai/gpt-4o")),
        "sb:block:retry_after:model:openai/gpt-4o"
    );
    assert!(
        encode_stored(&records[3], now).is_none(),
        "events are not stored"
    );
    assert!(
        encode_message(&records[0], 1, now + ms(60_000)).is_none(),
        "ended"
    );
}

#[test]
fn the_rules_refuse_what_this_gateway_cannot_use() {
    let now = common::epoch();
    let decode = |json: &str| rules().decode(json.as_bytes(), now, None);
    let ok = r#"{"v":1,"kind":"retry_after","scope":"model","name":"openai/gpt-4o","ms":1000}"#;
    assert!(decode(ok).is_some());
    for bad in [
        r#"{"v":2,"kind":"retry_after","scope":"model","name":"openai/gpt-4o","ms":1000}"#,
        r#"{"v":1,"kind":"retry_after","scope":"model","name":"openai/other","ms":1000}"#,
        r#"{"v":1,"kind":"retry_after","scope":"provider","name":"mistral","ms":1000}"#,
        r#"{"v":1,"kind":"retry_after","scope":"model","name":"openai","ms":1000}"#,
        r#"{"v":1,"kind":"retry_after","scope":"model","name":"openai/gpt-4o","ms":0}"#,
        r#"{"v":1,"kind":"retry_after","scope":"model","name":"openai/gpt-4o"}"#,
        r#"{"v":1,"kind":"banned","scope":"model","name":"openai/gpt-4o","ms":1000}"#,
        r#"{"v":1,"kind":"failures","scope":"model","name":"openai/gpt-4o","ms":1000}"#,
        r#"{"v":1,"kind":"latency_event","scope":"model","name":"openai/gpt-4o","count":1,"block_ms":5}"#,
        r#"{"v":1,"from":"zz","kind":"retry_after","scope":"model","name":"openai/gpt-4o","ms":1}"#,
        r#"not json"#,
    ] {
        assert_eq!(decode(bad), None, "{bad}");
    }
    // Any model under a wildcard entry; blocks cut to the longest this config records.
    let wild =
        r#"{"v":1,"kind":"latency","scope":"model","name":"anthropic/claude-x","ms":999999999}"#;
    assert_eq!(
        decode(wild).unwrap().record.until(),
        Some(now + Duration::from_secs(300))
    );
    let prefix = r#"{"v":1,"kind":"latency","scope":"provider","name":"openai","ms":10}"#;
    assert!(decode(prefix).is_some());
}

// ---------------------------------------------------------------- the property

const MODELS: [&str; 3] = ["a/x", "a/y", "b/z"];

fn key_of(i: usize) -> BlockKey {
    match i % 5 {
        0..=2 => model(MODELS[i % 5]),
        3 => BlockKey::Prefix("a".into()),
        _ => BlockKey::Prefix("b".into()),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Pushback {
        key: usize,
        dur: u64,
    },
    Latency {
        key: usize,
        dur: u64,
    },
    Failure {
        model: usize,
        provider: bool,
        dur: u64,
    },
    Remote {
        kind: u8,
        key: usize,
        dur: u64,
        reopen: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..5usize, 1..60_000u64).prop_map(|(key, dur)| Op::Pushback { key, dur }),
        (0..5usize, 1..60_000u64).prop_map(|(key, dur)| Op::Latency { key, dur }),
        (0..3usize, any::<bool>(), 1..60_000u64).prop_map(|(model, provider, dur)| Op::Failure {
            model,
            provider,
            dur
        }),
        (0..3u8, 0..5usize, 1..60_000u64, 1..60_000u64).prop_map(|(kind, key, dur, reopen)| {
            Op::Remote {
                kind,
                key,
                dur,
                reopen,
            }
        }),
    ]
}

fn remote_record(kind: u8, key: BlockKey, until: Instant, reopen: u64) -> BlockRecord {
    match kind {
        0 => BlockRecord::RetryAfter { key, until },
        1 => BlockRecord::Latency { key, until },
        _ => BlockRecord::Failures {
            key,
            until,
            reopen_for: ms(reopen),
        },
    }
}

/// Every block each model sees at `at`.
fn view(t: &BlockTable, at: Instant) -> Vec<(Option<Instant>, Option<Instant>, Option<Instant>)> {
    MODELS
        .iter()
        .map(|m| {
            (
                t.pushback_until(at, m),
                t.latency_until(at, m),
                t.failure_until(at, m),
            )
        })
        .collect()
}

fn query_times(end: Instant) -> Vec<Instant> {
    [0, 1, 500, 5_000, 20_000, 59_000, 61_000, 200_000]
        .into_iter()
        .map(|d| end + ms(d))
        .collect()
}

fn in_expiry_order(start: Instant, mut records: Vec<BlockRecord>) -> BlockTable {
    records.sort_by_key(|r| r.until());
    let mut t = BlockTable::new();
    for r in &records {
        t.apply_remote(start, r);
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Local records (what the table emitted) and remote ones, applied as they came,
    /// give the blocks that every record applied in expiry order gives.
    #[test]
    fn interleaved_local_and_remote_records_equal_expiry_order(
        steps in prop::collection::vec((0..3_000u64, op()), 1..40),
    ) {
        let start = common::epoch();
        let mut now = start;
        let mut t = sharing();
        let mut records = Vec::new();
        for (dt, op) in steps {
            now += ms(dt);
            match op {
                Op::Pushback { key, dur } => t.record_pushback(now, key_of(key), now + ms(dur)),
                Op::Latency { key, dur } => {
                    let trigger = LatencyTrigger { min_triggers: 1, window: None, block_duration: ms(dur) };
                    t.record_latency_event(now, key_of(key), trigger);
                }
                Op::Failure { model: m, provider, dur } => {
                    let key = if provider { BlockKey::Prefix(MODELS[m][..1].into()) } else { model(MODELS[m]) };
                    let trigger = FailureTrigger { consecutive: 1, window: ms(30_000), block_duration: ms(dur) };
                    t.record_failure(now, MODELS[m], Some((key, trigger)));
                }
                Op::Remote { kind, key, dur, reopen } => {
                    let r = remote_record(kind, key_of(key), now + ms(dur), reopen);
                    t.apply_remote(now, &r);
                    records.push(r);
                }
            }
            records.extend(t.take_shared(usize::MAX));
        }
        let expected = in_expiry_order(start, records);
        for at in query_times(now) {
            prop_assert_eq!(view(&t, at), view(&expected, at));
        }
    }

    /// The same remote records in any order give the same blocks.
    #[test]
    fn any_order_of_remote_records_gives_the_same_blocks(
        records in prop::collection::vec((0..3u8, 0..5usize, 1..60_000u64, 1..60_000u64), 1..30),
        order in any::<u64>(),
    ) {
        let start = common::epoch();
        let records: Vec<BlockRecord> = records
            .into_iter()
            .map(|(kind, key, dur, reopen)| remote_record(kind, key_of(key), start + ms(dur), reopen))
            .collect();
        let mut shuffled = records.clone();
        fastrand::Rng::with_seed(order).shuffle(&mut shuffled);
        let mut t = BlockTable::new();
        for (i, r) in shuffled.iter().enumerate() {
            t.apply_remote(start + ms(i as u64), r);
        }
        let expected = in_expiry_order(start, records);
        for at in query_times(start + ms(100)) {
            prop_assert_eq!(view(&t, at), view(&expected, at));
        }
    }
}
