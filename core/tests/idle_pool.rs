//! The keep-alive policy: newest first, bounded per origin, expired ones closed.

mod common;

use std::time::Duration;

use switchback_core::upstream::{parse_base_url, IdlePool, MAX_IDLE_PER_ORIGIN, MAX_IDLE_TIME};

#[test]
fn reuses_the_newest_and_forgets_the_expired() {
    let t0 = common::epoch();
    let (a, _) = parse_base_url("http://127.0.0.1:1").unwrap();
    let (b, _) = parse_base_url("https://example.com").unwrap();
    let mut pool = IdlePool::new();
    pool.put(&a, "a1", t0);
    pool.put(&a, "a2", t0 + Duration::from_secs(1));
    assert_eq!(pool.take(&b, t0), None, "origins are separate");
    assert_eq!(pool.take(&a, t0 + Duration::from_secs(2)), Some("a2"));
    let late = t0 + MAX_IDLE_TIME + Duration::from_secs(1);
    assert_eq!(pool.take(&a, late), None, "a1 idled too long");
    assert!(pool.is_empty());
}

#[test]
fn holds_at_most_the_limit_per_origin() {
    let t0 = common::epoch();
    let (a, _) = parse_base_url("http://127.0.0.1:1").unwrap();
    let mut pool = IdlePool::new();
    for i in 0..MAX_IDLE_PER_ORIGIN + 5 {
        pool.put(&a, i, t0);
    }
    assert_eq!(pool.len(), MAX_IDLE_PER_ORIGIN);
    assert_eq!(pool.take(&a, t0), Some(MAX_IDLE_PER_ORIGIN + 4));
}
