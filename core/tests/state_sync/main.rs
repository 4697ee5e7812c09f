//! The state-sync session (spec §14) against a fake Redis on a virtual clock: sharing
//! between replicas, the load on (re)connect, outages (served locally, logged once,
//! reconnected with capped backoff, converging after), credentials, and a broken or
//! hostile server.

#[path = "../common/mod.rs"]
mod common;
mod fake_redis;
mod net;

use std::time::Duration;

use net::Net;
use switchback_core::block_table::{BlockKey, LatencyTrigger};
use switchback_core::shared_state::{
    LinkId, RemoteRules, HEALTH_INTERVAL, RECONNECT_MAX, REPLY_TIMEOUT,
};

const GPT: &str = "openai/gpt-4o";
const CLAUDE: &str = "anthropic/claude-3-5-sonnet";
const KEY: &str = "sb:block:retry_after:model:openai/gpt-4o";
const CHANNEL: &str = "sb:blocks:0";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn model(m: &str) -> BlockKey {
    BlockKey::Model(m.to_string())
}

fn two_replicas() -> Net {
    let mut net = Net::new("redis://127.0.0.1:6379");
    net.add_replica();
    net.add_replica();
    net
}

fn record_pushback(net: &mut Net, replica: usize, m: &str, d: Duration) {
    let now = net.now;
    net.replicas[replica]
        .blocks
        .lock()
        .record_pushback(now, model(m), now + d);
}

fn pushback_until(net: &Net, replica: usize, m: &str) -> Option<Duration> {
    let now = net.now;
    net.replicas[replica]
        .blocks
        .lock()
        .pushback_until(now, m)
        .map(|u| u - now)
}

#[test]
fn a_block_on_one_replica_steers_the_other() {
    let mut net = two_replicas();
    for r in &net.replicas {
        let s = r.sync.status();
        assert!(s.commands_ready && s.subscribed, "{s:?}");
        assert_eq!(s.outages, 0);
    }
    record_pushback(&mut net, 0, GPT, secs(60));
    net.settle();
    assert_eq!(pushback_until(&net, 1, GPT), Some(secs(60)));
    assert_eq!(net.redis.pttl(net.now, KEY), Some(secs(60)));
    assert_eq!(net.replicas[0].sync.status().records_sent, 1);
    assert_eq!(net.replicas[1].sync.status().records_applied, 1);
    assert_eq!(
        net.replicas[0].sync.status().records_applied,
        0,
        "a replica skips its own messages"
    );
    assert!(net.redis.log.iter().any(|c| c.starts_with("EVAL ")));
}

#[test]
fn a_shorter_block_never_shortens_a_longer_one_in_redis_or_elsewhere() {
    let mut net = two_replicas();
    record_pushback(&mut net, 1, GPT, secs(120));
    net.settle();
    record_pushback(&mut net, 0, GPT, secs(30)); // A already has 120 s from B: no news
    net.settle();
    let a_now = net.now;
    net.replicas[0].blocks.lock().apply_remote(
        a_now,
        &switchback_core::shared_state::BlockRecord::RetryAfter {
            key: model(GPT),
            until: a_now + secs(1),
        },
    );
    assert_eq!(pushback_until(&net, 0, GPT), Some(secs(120)));
    assert_eq!(net.redis.pttl(net.now, KEY), Some(secs(120)));
    // A third replica whose own block is shorter: Redis keeps the longer one, and nobody
    // hears of the shorter.
    let c = net.add_replica();
    record_pushback(&mut net, c, CLAUDE, secs(5));
    let now = net.now;
    net.replicas[c]
        .blocks
        .lock()
        .record_pushback(now, model(GPT), now + secs(10));
    net.settle();
    assert_eq!(net.redis.pttl(net.now, KEY), Some(secs(120)));
    assert_eq!(pushback_until(&net, 1, GPT), Some(secs(120)));
    assert_eq!(pushback_until(&net, 0, CLAUDE), Some(secs(5)));
}

#[test]
fn a_replica_that_starts_later_loads_every_block() {
    let mut net = Net::new("redis://127.0.0.1:6379");
    net.redis.scan_page = 2; // the load follows the SCAN cursor
    net.add_replica();
    record_pushback(&mut net, 0, GPT, secs(60));
    let now = net.now;
    let trigger = LatencyTrigger {
        min_triggers: 1,
        window: None,
        block_duration: secs(300),
    };
    {
        let mut t = net.replicas[0].blocks.lock();
        t.record_latency_event(now, BlockKey::Prefix("anthropic".into()), trigger);
        t.record_latency_event(now, model("mistral/large"), trigger);
    }
    net.settle();
    net.advance(secs(10));
    let late = net.add_replica();
    let t = net.replicas[late].blocks.lock();
    assert_eq!(t.pushback_until(net.now, GPT), Some(now + secs(60)));
    assert_eq!(t.latency_until(net.now, CLAUDE), Some(now + secs(300)));
    assert_eq!(
        t.latency_until(net.now, "mistral/large"),
        Some(now + secs(300))
    );
    drop(t);
    assert!(net.replicas[late].sync.status().loads >= 1);
}

#[test]
fn latency_events_add_up_across_replicas() {
    let mut net = two_replicas();
    let trigger = LatencyTrigger {
        min_triggers: 2,
        window: Some(secs(60)),
        block_duration: secs(300),
    };
    for r in 0..2 {
        let now = net.now;
        let blocked = net.replicas[r]
            .blocks
            .lock()
            .record_latency_event(now, model(GPT), trigger);
        // A's slow answer alone blocks nothing; B's, counted with A's, blocks B, and B
        // shares the block.
        assert_eq!(blocked.is_some(), r == 1, "replica {r}");
        net.settle();
    }
    for r in 0..2 {
        let now = net.now;
        assert!(
            net.replicas[r]
                .blocks
                .lock()
                .latency_until(now, GPT)
                .is_some(),
            "replica {r}"
        );
    }
    assert!(
        net.redis
            .log
            .iter()
            .any(|c| c.starts_with("PUBLISH sb:blocks:0 ")),
        "events are published, not stored"
    );
    assert!(net
        .redis
        .pttl(net.now, "sb:block:latency:model:openai/gpt-4o")
        .is_some());
}

#[test]
fn redis_down_serves_locally_logs_once_and_converges_when_it_returns() {
    let mut net = two_replicas();
    record_pushback(&mut net, 0, GPT, secs(300));
    net.settle();
    net.redis.go_down();
    net.advance(secs(30));
    for r in &net.replicas {
        let s = r.sync.status();
        assert_eq!(s.outages, 1, "one outage, logged once: {s:?}");
        assert!(!s.commands_ready && !s.subscribed);
    }
    // Reconnects back off, capped: about one per RECONNECT_MAX per link at worst.
    let tries = net.replicas[1].connects;
    let max_tries = 2 * (30_000 / (RECONNECT_MAX.as_millis() as usize / 2)) + 20;
    assert!(tries > 10 && tries < max_tries, "{tries} connects in 30 s");
    // Records made during the outage stay local, merged by key in the bounded outbox
    // (at most `OUTBOX_CAPACITY` keys; see shared_blocks.rs).
    for i in 0..1_000 {
        record_pushback(&mut net, 1, CLAUDE, secs(100) + Duration::from_millis(i));
    }
    record_pushback(&mut net, 1, "mistral/large", secs(100));
    assert_eq!(net.replicas[1].blocks.lock().shared_pending(), 2);
    assert_eq!(pushback_until(&net, 0, CLAUDE), None);
    // Redis returns with nothing in it.
    net.redis.come_back_empty();
    net.advance(RECONNECT_MAX + secs(1));
    for r in &net.replicas {
        let s = r.sync.status();
        assert!(s.commands_ready && s.subscribed, "{s:?}");
        assert_eq!(s.outages, 1);
    }
    assert!(pushback_until(&net, 0, "mistral/large").is_some());
    // The outage's record reached A; Redis holds every live block again.
    assert!(pushback_until(&net, 0, CLAUDE).is_some());
    assert!(
        net.redis.pttl(net.now, KEY).is_some(),
        "{:?}",
        net.redis.keys(net.now)
    );
    assert!(net
        .redis
        .pttl(
            net.now,
            "sb:block:retry_after:model:anthropic/claude-3-5-sonnet"
        )
        .is_some());
}

#[test]
fn credentials_and_database_come_from_the_url() {
    let mut net = Net::new("redis://:s3cret-pw@127.0.0.1:6379/2");
    net.redis.password = Some("s3cret-pw".into());
    net.add_replica();
    net.add_replica();
    assert!(net.replicas[1].sync.status().subscribed);
    let auths = net
        .redis
        .log
        .iter()
        .filter(|c| *c == "AUTH s3cret-pw")
        .count();
    assert_eq!(auths, 4, "both links of both replicas log in");
    assert!(net.redis.log.iter().any(|c| c == "SELECT 2"));
    assert!(net.redis.log.iter().any(|c| c == "SUBSCRIBE sb:blocks:2"));
    record_pushback(&mut net, 0, GPT, secs(60));
    net.settle();
    assert!(pushback_until(&net, 1, GPT).is_some());
}

#[test]
fn a_wrong_password_is_an_outage_not_a_crash() {
    let mut net = Net::new("redis://:wrong@127.0.0.1:6379");
    net.redis.password = Some("right".into());
    net.add_replica();
    net.advance(secs(10));
    let s = net.replicas[0].sync.status();
    assert_eq!(s.outages, 1);
    assert!(!s.commands_ready && !s.subscribed);
    // The table still works locally.
    record_pushback(&mut net, 0, GPT, secs(60));
    assert!(pushback_until(&net, 0, GPT).is_some());
}

#[test]
fn a_silent_redis_is_noticed_by_the_health_check() {
    let mut net = two_replicas();
    net.redis.silent = true;
    net.advance(HEALTH_INTERVAL + REPLY_TIMEOUT + Duration::from_millis(10));
    for r in &net.replicas {
        assert_eq!(r.sync.status().outages, 1, "{:?}", r.sync.status());
    }
    net.redis.silent = false;
    net.advance(RECONNECT_MAX + secs(1));
    assert!(net.replicas[0].sync.status().subscribed);
}

#[test]
fn garbage_from_redis_drops_the_connection_and_it_reconnects() {
    let mut net = two_replicas();
    let id = net.conn_of(1, LinkId::Subscriber).unwrap();
    net.redis.inject(id, &b"*1\r\n".repeat(20_000));
    net.settle();
    assert_eq!(net.replicas[1].sync.status().outages, 1);
    let id = net.conn_of(0, LinkId::Commands).unwrap();
    net.redis.inject(id, b"+unasked\r\n");
    net.settle();
    assert_eq!(net.replicas[0].sync.status().outages, 1);
    net.advance(RECONNECT_MAX + secs(1));
    record_pushback(&mut net, 0, GPT, secs(60));
    net.settle();
    assert!(pushback_until(&net, 1, GPT).is_some());
}

#[test]
fn messages_this_gateway_cannot_use_are_ignored_and_long_blocks_cut() {
    let mut net = two_replicas();
    let messages: [&[u8]; 5] = [
        br#"{"v":1,"kind":"retry_after","scope":"model","name":"openai/unknown","ms":60000}"#,
        br#"{"v":1,"kind":"retry_after","scope":"model","name":"openai/gpt-4o","ms":-5}"#,
        b"\xff\xfe not json",
        br#"{"v":9,"kind":"retry_after","scope":"model","name":"openai/gpt-4o","ms":60000}"#,
        br#"{"v":1,"kind":"retry_after","scope":"model","name":"anthropic/claude-3-5-sonnet","ms":86400000}"#,
    ];
    for m in messages {
        net.redis.publish(CHANNEL, m);
    }
    net.settle();
    assert_eq!(pushback_until(&net, 0, GPT), None);
    assert_eq!(
        pushback_until(&net, 0, CLAUDE),
        Some(secs(300)),
        "cut to the config's longest"
    );
    // A stored key that is not a record of ours, or lies about its key, is skipped.
    let now = net.now;
    net.redis.set(
        now,
        "sb:block:retry_after:model:openai/gpt-4o",
        "{}",
        secs(60),
    );
    net.redis.set(
        now,
        "sb:block:latency:model:openai/gpt-4o",
        r#"{"v":1,"kind":"retry_after","scope":"model","name":"openai/gpt-4o"}"#,
        secs(60),
    );
    net.redis
        .set(now, "sb:block:x", &"x".repeat(5000), secs(60));
    let late = net.add_replica();
    assert_eq!(pushback_until(&net, late, GPT), None);
    assert!(net.replicas[late].sync.status().subscribed);
}

#[test]
fn new_rules_after_a_reload_accept_added_models_and_longer_blocks() {
    let mut net = two_replicas();
    let added =
        br#"{"v":1,"kind":"retry_after","scope":"model","name":"openai/gpt-4o-mini","ms":60000}"#;
    let long =
        br#"{"v":1,"kind":"retry_after","scope":"model","name":"openai/gpt-4o","ms":900000}"#;
    net.redis.publish(CHANNEL, added);
    net.redis.publish(CHANNEL, long);
    net.settle();
    assert_eq!(pushback_until(&net, 0, "openai/gpt-4o-mini"), None);
    assert_eq!(pushback_until(&net, 0, GPT), Some(secs(300)), "cut");
    // The reload adds a model and allows blocks of up to 20 minutes.
    let mut models = net::MODELS.to_vec();
    models.push("openai/gpt-4o-mini");
    let rules = RemoteRules::new(models, secs(1200));
    net.replicas[0].sync.set_rules(rules.clone());
    assert_eq!(net.replicas[0].sync.rules(), &rules);
    net.redis.publish(CHANNEL, added);
    net.redis.publish(CHANNEL, long);
    net.settle();
    assert_eq!(
        pushback_until(&net, 0, "openai/gpt-4o-mini"),
        Some(secs(60))
    );
    assert_eq!(
        pushback_until(&net, 0, GPT),
        Some(secs(900)),
        "no longer cut"
    );
    // The replica that was not reloaded still goes by its old rules.
    assert_eq!(pushback_until(&net, 1, "openai/gpt-4o-mini"), None);
    // Loaded keys go by the new rules too: a 10-minute latency block on the added model,
    // loaded when the commands connection comes back.
    let now = net.now;
    net.redis.set(
        now,
        "sb:block:latency:model:openai/gpt-4o-mini",
        r#"{"v":1,"kind":"latency","scope":"model","name":"openai/gpt-4o-mini"}"#,
        secs(600),
    );
    net.replicas[0].sync.handle_eof(now, LinkId::Commands);
    net.advance(RECONNECT_MAX + secs(1));
    assert!(net.replicas[0].sync.status().loads >= 2);
    let later = net.now;
    let left = net.replicas[0]
        .blocks
        .lock()
        .latency_until(later, "openai/gpt-4o-mini")
        .map(|u| u - later);
    let left = left.expect("the loaded block applies");
    assert!(left > secs(590), "not cut to the old 300 s: {left:?}");
}
