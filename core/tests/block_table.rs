//! Block table rules (spec §4.5, §4.6).

mod common;

use std::time::{Duration, Instant};

use switchback_core::block_table::{BlockKey, BlockTable, LatencyTrigger};
use switchback_core::config::BlockScope;

fn t0() -> Instant {
    common::epoch()
}

#[test]
fn pushback_never_shortens() {
    let now = t0();
    let mut t = BlockTable::new();
    let key = BlockKey::Model("openai/gpt-4o".into());
    t.record_pushback(now, key.clone(), now + Duration::from_secs(60));
    t.record_pushback(now, key, now + Duration::from_secs(2));
    assert_eq!(
        t.pushback_until(now, "openai/gpt-4o"),
        Some(now + Duration::from_secs(60))
    );
}

#[test]
fn prefix_block_covers_every_model_of_the_prefix() {
    let now = t0();
    let mut t = BlockTable::new();
    t.record_pushback(
        now,
        BlockKey::for_scope(BlockScope::Provider, "openai/gpt-4o"),
        now + Duration::from_secs(5),
    );
    assert!(t.pushback_until(now, "openai/gpt-4o-mini").is_some());
    assert!(t.pushback_until(now, "anthropic/claude").is_none());
    assert!(t
        .pushback_until(now + Duration::from_secs(5), "openai/gpt-4o")
        .is_none());
}

#[test]
fn latency_block_needs_min_triggers_inside_the_window() {
    let now = t0();
    let mut t = BlockTable::new();
    let trig = LatencyTrigger {
        min_triggers: 3,
        window: Some(Duration::from_secs(60)),
        block_duration: Duration::from_secs(300),
    };
    let key = BlockKey::Model("m/a".into());
    assert!(t.record_latency_event(now, key.clone(), trig).is_none());
    // The first event falls out of the window before the third arrives.
    let later = now + Duration::from_secs(61);
    assert!(t.record_latency_event(later, key.clone(), trig).is_none());
    assert!(t
        .record_latency_event(later + Duration::from_secs(1), key.clone(), trig)
        .is_none());
    let until = t.record_latency_event(later + Duration::from_secs(2), key, trig);
    assert_eq!(until, Some(later + Duration::from_secs(302)));
    assert!(t
        .latency_until(later + Duration::from_secs(3), "m/a")
        .is_some());
    assert!(t.pushback_until(later, "m/a").is_none());
}

#[test]
fn expired_entries_are_pruned() {
    let now = t0();
    let mut t = BlockTable::new();
    t.record_pushback(
        now,
        BlockKey::Model("a/b".into()),
        now + Duration::from_secs(1),
    );
    t.prune(now + Duration::from_secs(2));
    assert!(t.is_empty());
}
