//! Live reload (spec §13) on a virtual clock: a cached gateway follows a replace once,
//! and what a new gateway carries over from the one it succeeds.

use std::sync::Arc;

use switchback_core::block_table::BlockKey;
use switchback_core::config::load_str;
use switchback_core::gateway::Gateway;
use switchback_core::reload::LiveGateway;

fn gateway(model: &str) -> Arc<Gateway> {
    let yaml = format!("model_providers:\n  - model: {model}\n");
    let config = load_str(&yaml, &|_| None).unwrap().config;
    Arc::new(Gateway::new(config).unwrap())
}

#[test]
fn a_cached_gateway_follows_a_replace_once() {
    let live = LiveGateway::new(gateway("mock/ok"));
    let mut cached = live.current();
    let mut seen = live.version();
    assert!(!live.refresh(&mut cached, &mut seen));
    let next = Arc::new(Gateway::succeed(gateway("mock/slow").config().clone(), &cached).unwrap());
    live.replace(next);
    assert!(live.refresh(&mut cached, &mut seen));
    assert_eq!(cached.config().providers[0].model, "mock/slow");
    assert_eq!(cached.generation(), 1);
    assert!(!live.refresh(&mut cached, &mut seen));
}

fn config(yaml: &str) -> switchback_core::config::Config {
    load_str(yaml, &|_| None).unwrap().config
}

/// A starting instant for the tests' virtual clock.
#[allow(clippy::disallowed_methods)]
fn epoch() -> std::time::Instant {
    std::time::Instant::now()
}

const TWO_MODELS: &str = "model_providers:\n  - model: mock/ok\n  - model: mock/slow\n";

#[test]
fn a_block_on_a_dropped_model_goes_and_one_on_a_kept_model_stays() {
    let old = Gateway::new(config(TWO_MODELS)).unwrap();
    let now = epoch();
    let until = now + std::time::Duration::from_secs(60);
    {
        let mut t = old.blocks().lock();
        t.record_pushback(now, BlockKey::Model("mock/ok".into()), until);
        t.record_pushback(now, BlockKey::Model("mock/slow".into()), until);
        t.record_pushback(now, BlockKey::Prefix("mock".into()), until);
    }
    let new = Gateway::succeed(config("model_providers:\n  - model: mock/ok\n"), &old).unwrap();
    let keys: Vec<BlockKey> = new
        .blocks()
        .lock()
        .blocks(now)
        .into_iter()
        .map(|b| b.key)
        .collect();
    assert!(
        keys.contains(&BlockKey::Model("mock/ok".into())),
        "the kept model's block stays: {keys:?}"
    );
    assert!(
        !keys.contains(&BlockKey::Model("mock/slow".into())),
        "the dropped model's block is gone: {keys:?}"
    );
    assert!(keys.contains(&BlockKey::Prefix("mock".into())), "{keys:?}");
}

#[test]
fn a_budget_keeps_its_window_and_refusals_when_its_settings_change() {
    let budgeted = |ratio: &str| {
        config(&format!(
            "model_providers:\n  - model: mock/ok\n    retry_budget: {{ratio: {ratio}, min_per_second: 0}}\n"
        ))
    };
    let old = Gateway::new(budgeted("0")).unwrap();
    let now = epoch();
    let id = old.find_model("mock/ok").unwrap();
    {
        let mut b = old.retry_budget(id).unwrap().lock();
        for _ in 0..10 {
            b.record_first_attempt(now);
        }
        assert!(!b.try_retry(now), "ratio 0 admits nothing");
        assert!(!b.try_retry(now));
    }
    let later = now + std::time::Duration::from_secs(1);
    let own = |gw: &Gateway| {
        gw.budget_statuses(later)
            .into_iter()
            .find(|(name, _)| name == "mock/ok")
            .map(|(_, s)| s)
            .expect("the entry's own budget")
    };
    assert_eq!(own(&old).refused, 2);
    let new = Gateway::succeed(budgeted("0.5"), &old).unwrap();
    let s = own(&new);
    assert_eq!(
        (s.first_attempts, s.retries, s.refused),
        (10, 0, 2),
        "{s:?}"
    );
    assert_eq!(s.allowed, 5, "the new ratio over the old window");
    let id = new.find_model("mock/ok").unwrap();
    assert!(new.retry_budget(id).unwrap().lock().try_retry(later));
}
