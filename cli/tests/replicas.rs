//! Two `switchback serve` processes sharing one real Redis (spec §14), on each runtime:
//! a `Retry-After: 60` seen by replica A sends replica B's next request straight to the
//! fallback, and so does a latency block; the time from A's record to B's steering is
//! measured and printed (`propagation:` lines; run with `--nocapture` to see them). Then
//! Redis is killed: both keep serving, each logs the outage once, and after Redis comes
//! back (empty) they converge again. Also: `rediss://` with a password and a database,
//! a replica on each runtime, no credential in the trace-level logs; a replica that starts
//! after a block was written loads it from Redis and follows a reload that adds a model;
//! and a Redis that is never there.
//!
//! Needs Debian's `redis-server`; see `switchback_tests::redis` for how it is found,
//! installed, or loudly skipped.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use switchback_tests::client::{request, Response};
use switchback_tests::fixtures::{error_body, success_body};
use switchback_tests::mock_upstream::{refused_port, MockUpstream, Reply};
use switchback_tests::redis::{RedisOptions, RedisServer};
use switchback_tests::tls::TestCa;

const FALLBACK: &str = "anthropic/claude-3-5-sonnet";
/// How long a test waits for a replica to steer before it fails (the target is 100 ms;
/// this bound only catches "never").
const STEER_WITHIN: Duration = Duration::from_secs(5);
/// How long replicas may take to reconnect and converge after Redis returns.
const CONVERGE_WITHIN: Duration = Duration::from_secs(15);
const OUTAGE_LOGGED: &str = "shared state: Redis is unavailable";
const REACHABLE_AGAIN: &str = "shared state: Redis is reachable again";
const SHARING: &str = "shared state: sharing blocks through Redis";
const LOADED: &str = "shared state: loaded the blocks stored in Redis";
const RELOADED: &str = "config reloaded; new requests use it";

fn free_port() -> u16 {
    refused_port()
}

/// A `switchback serve` process.
struct Replica {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    addr: SocketAddr,
}

impl Replica {
    fn start(name: &str, runtime: &str, yaml: &str, dir: &Path, env: &[(&str, String)]) -> Replica {
        let config = dir.join(format!("{name}.yaml"));
        fs::write(&config, yaml).expect("write the config");
        let log = dir.join(format!("{name}.log"));
        let stderr = fs::File::create(&log).expect("create the log");
        let port = yaml
            .lines()
            .find_map(|l| l.trim().strip_prefix("port: "))
            .and_then(|p| p.parse::<u16>().ok())
            .expect("the listener port");
        let child = Command::new(env!("CARGO_BIN_EXE_switchback"))
            .arg("serve")
            .arg(&config)
            .args([
                "--runtime",
                runtime,
                "--threads",
                "2",
                "--drain-timeout",
                "1s",
            ])
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start switchback");
        let replica = Replica {
            child: Some(child),
            config,
            log,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        replica.wait_serving();
        replica
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_serving(&self) {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
                && request(self.addr, "GET", "/healthz", &[], b"").status == 200
            {
                return;
            }
            assert!(
                Instant::now() < end,
                "the gateway did not come up:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log holds `needle` `times` times.
    fn wait_log(&self, needle: &str, times: usize, within: Duration) {
        let end = Instant::now() + within;
        while self.log().matches(needle).count() < times {
            assert!(
                Instant::now() < end,
                "no {needle:?} in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Rewrites the config file to `yaml`, sends SIGHUP, and waits for the reload's log line.
    fn reload(&self, yaml: &str) {
        let before = self.log().matches(RELOADED).count();
        fs::write(&self.config, yaml).expect("write the config");
        let child = self.child.as_ref().expect("running");
        let pid = Pid::from_raw(child.id() as i32).expect("pid");
        kill_process(pid, Signal::HUP).expect("SIGHUP");
        self.wait_log(RELOADED, before + 1, Duration::from_secs(10));
    }

    /// SIGTERM, wait, and the whole log.
    fn stop(mut self) -> String {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = Pid::from_raw(child.id() as i32) {
                let _ = kill_process(pid, Signal::TERM);
            }
            let end = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.log()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchback-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The upstreams both replicas share: a primary that answers its first request with a
/// 429 `Retry-After: 60`, a second one whose first answer takes 500 ms (over the 200 ms
/// latency threshold), a third that also rate-limits once, and the fallback.
struct Upstreams {
    rate_limited: MockUpstream,
    slow: MockUpstream,
    rate_limited_later: MockUpstream,
    fallback: MockUpstream,
}

impl Upstreams {
    fn start() -> Upstreams {
        let limited = || {
            MockUpstream::start(vec![
                Reply::json(429, error_body(429, "Rate limit reached")).header("Retry-After", "60"),
                Reply::json(200, success_body()),
            ])
        };
        let mut slow = Reply::json(200, success_body());
        slow.head_delay = Duration::from_millis(500);
        Upstreams {
            rate_limited: limited(),
            slow: MockUpstream::start(vec![slow, Reply::json(200, success_body())]),
            rate_limited_later: limited(),
            fallback: MockUpstream::start(vec![Reply::json(200, success_body())]),
        }
    }
}

fn config(port: u16, url: &str, prefix: &str, up: &Upstreams) -> String {
    format!(
        "version: v0.3.0
listeners:
  - type: model
    name: model_listener
    address: 127.0.0.1
    port: {port}
    timeout: 10s
state:
  redis:
    url: {url}
    key_prefix: {prefix}
model_providers:
  - model: openai/gpt-4o
    base_url: http://127.0.0.1:{p}
    access_key: sk-test-openai
    default: true
    retry_policy:
      fallback_models: [{FALLBACK}]
  - model: mistral/mistral-large
    base_url: http://127.0.0.1:{l}
    access_key: sk-test-mistral
    retry_policy:
      fallback_models: [{FALLBACK}]
      on_high_latency:
        threshold_ms: 200
        min_triggers: 1
        block_duration_seconds: 60
  - model: openai/gpt-4o-mini
    base_url: http://127.0.0.1:{q}
    access_key: sk-test-openai
    retry_policy:
      fallback_models: [{FALLBACK}]
  - model: {FALLBACK}
    provider_interface: openai
    base_url: http://127.0.0.1:{f}
    access_key: sk-test-fallback
",
        p = up.rate_limited.port(),
        l = up.slow.port(),
        q = up.rate_limited_later.port(),
        f = up.fallback.port(),
    )
}

fn chat(addr: SocketAddr, model: &str) -> Response {
    let body =
        format!(r#"{{"model": "{model}", "messages": [{{"role": "user", "content": "Hi"}}]}}"#);
    request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

#[track_caller]
fn answered_by(r: &Response, model: &str) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-switchback-model"),
        Some(model),
        "{:?}",
        r.headers
    );
}

/// Sends requests for `model` to `addr`, `pause` apart, until one is answered by the
/// fallback without reaching `primary`. Returns the time from `since` to that answer and
/// how many requests it took.
fn steered_after(
    addr: SocketAddr,
    model: &str,
    primary: &MockUpstream,
    since: Instant,
    pause: Duration,
    within: Duration,
) -> (Duration, usize) {
    for n in 1.. {
        let before = primary.calls();
        let r = chat(addr, model);
        assert_eq!(r.status, 200, "{}", r.text());
        if r.header("x-switchback-model") == Some(FALLBACK) && primary.calls() == before {
            return (since.elapsed(), n);
        }
        assert!(
            since.elapsed() < within,
            "{model} was never steered away from"
        );
        std::thread::sleep(pause);
    }
    unreachable!()
}

fn report(runtime: &str, what: &str, took: Duration, requests: usize) {
    let ms = took.as_secs_f64() * 1000.0;
    println!("propagation: runtime={runtime} {what} {ms:.1} ms (replica B steered on request {requests})");
    if ms > 100.0 {
        println!("propagation: runtime={runtime} {what} is over the 100 ms target");
    }
}

fn two_replicas_share_blocks_and_survive_a_redis_restart(runtime: &str) {
    let Some(mut redis) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let dir = temp_dir(&format!("replicas-{runtime}"));
    let up = Upstreams::start();
    let prefix = format!("sb-test-{runtime}");
    let url = redis.url(0);
    let a = Replica::start(
        "a",
        runtime,
        &config(free_port(), &url, &prefix, &up),
        &dir,
        &[],
    );
    let b = Replica::start(
        "b",
        runtime,
        &config(free_port(), &url, &prefix, &up),
        &dir,
        &[],
    );
    a.wait_log(SHARING, 1, Duration::from_secs(10));
    b.wait_log(SHARING, 1, Duration::from_secs(10));

    // Retry-After: 60 on A: A fails over; B's next request goes straight to the fallback.
    answered_by(&chat(a.addr, "openai/gpt-4o"), FALLBACK);
    assert_eq!(up.rate_limited.calls(), 1);
    let since = up.rate_limited.requests()[0].at;
    let (took, n) = steered_after(
        b.addr,
        "openai/gpt-4o",
        &up.rate_limited,
        since,
        Duration::from_millis(1),
        STEER_WITHIN,
    );
    report(runtime, "retry_after", took, n);
    let before = up.rate_limited.calls();
    let r = chat(b.addr, "openai/gpt-4o");
    answered_by(&r, FALLBACK);
    assert_eq!(r.header("x-switchback-attempts"), Some("1"));
    assert_eq!(
        up.rate_limited.calls(),
        before,
        "B never called the rate-limited model again"
    );
    let left: i64 = redis
        .cli(&[
            "PTTL",
            &format!("{prefix}:block:retry_after:model:openai/gpt-4o"),
        ])
        .trim()
        .parse()
        .unwrap_or(-2);
    assert!((50_000..=60_000).contains(&left), "PTTL {left}");

    // A slow answer on A (delivered) makes a latency block that B honours likewise. Timed
    // from when the mock began its 500 ms wait plus 500 ms (an upper bound: the mock
    // sleeps in short steps, so it answers a little later than that).
    answered_by(
        &chat(a.addr, "mistral/mistral-large"),
        "mistral/mistral-large",
    );
    let since = up.slow.requests()[0].at + Duration::from_millis(500);
    let (took, n) = steered_after(
        b.addr,
        "mistral/mistral-large",
        &up.slow,
        since,
        Duration::from_millis(1),
        STEER_WITHIN,
    );
    report(runtime, "latency", took, n);

    // Redis dies: both keep serving, on their own blocks.
    redis.kill();
    a.wait_log(OUTAGE_LOGGED, 1, Duration::from_secs(10));
    b.wait_log(OUTAGE_LOGGED, 1, Duration::from_secs(10));
    for r in [&a, &b] {
        answered_by(&chat(r.addr, "openai/gpt-4o"), FALLBACK);
        answered_by(&chat(r.addr, FALLBACK), FALLBACK);
    }
    // A learns of a new Retry-After while Redis is away; B cannot know yet.
    answered_by(&chat(a.addr, "openai/gpt-4o-mini"), FALLBACK);
    std::thread::sleep(Duration::from_millis(300));

    // Redis returns, empty: the replicas reconnect, A's new block reaches B, and every
    // block still in force is in Redis again.
    redis.restart();
    let back = Instant::now();
    let (took, n) = steered_after(
        b.addr,
        "openai/gpt-4o-mini",
        &up.rate_limited_later,
        back,
        Duration::from_millis(20),
        CONVERGE_WITHIN,
    );
    println!(
        "propagation: runtime={runtime} converged {:.0} ms after Redis returned (request {n})",
        took.as_secs_f64() * 1000.0
    );
    let end = Instant::now() + CONVERGE_WITHIN;
    let keys = loop {
        let keys = redis.cli(&["--scan", "--pattern", &format!("{prefix}:block:*")]);
        if keys.lines().count() >= 3 || Instant::now() > end {
            break keys;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for key in [
        format!("{prefix}:block:retry_after:model:openai/gpt-4o"),
        format!("{prefix}:block:latency:model:mistral/mistral-large"),
        format!("{prefix}:block:retry_after:model:openai/gpt-4o-mini"),
    ] {
        assert!(
            keys.lines().any(|k| k == key),
            "{key} missing from {keys:?}"
        );
    }
    a.wait_log(REACHABLE_AGAIN, 1, CONVERGE_WITHIN);
    b.wait_log(REACHABLE_AGAIN, 1, CONVERGE_WITHIN);
    for (name, log) in [("A", a.stop()), ("B", b.stop())] {
        assert_eq!(
            log.matches(OUTAGE_LOGGED).count(),
            1,
            "replica {name} logs the outage once:\n{log}"
        );
        assert_eq!(log.matches(REACHABLE_AGAIN).count(), 1, "{log}");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn two_replicas_on_smol_share_blocks_through_redis() {
    two_replicas_share_blocks_and_survive_a_redis_restart("smol");
}

#[test]
fn two_replicas_on_tokio_share_blocks_through_redis() {
    two_replicas_share_blocks_and_survive_a_redis_restart("tokio");
}

/// `config` without the `openai/gpt-4o-mini` entry.
fn config_without_mini(port: u16, url: &str, prefix: &str, up: &Upstreams) -> String {
    let full = config(port, url, prefix, up);
    let start = full
        .find("  - model: openai/gpt-4o-mini")
        .expect("the mini entry");
    let end = start
        + full[start..]
            .find(&format!("  - model: {FALLBACK}"))
            .expect("next");
    format!("{}{}", &full[..start], &full[end..])
}

/// A replica that starts after a block was written (so pub/sub cannot bring it) finds it
/// in the load from Redis on connect (`SCAN`, `PTTL`, `GETRANGE` against the real
/// server), and its first request goes to the fallback. Then that replica is reloaded
/// with a model it did not have: a block another replica records on that model from then
/// on steers it too (the Redis session took the new config's rules).
fn a_late_replica_loads_blocks_and_a_reload_widens_what_it_accepts(runtime: &str) {
    let Some(redis) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let dir = temp_dir(&format!("replicas-late-{runtime}"));
    let up = Upstreams::start();
    let prefix = format!("sb-late-{runtime}");
    let url = redis.url(0);
    let a = Replica::start(
        "a",
        runtime,
        &config(free_port(), &url, &prefix, &up),
        &dir,
        &[],
    );
    a.wait_log(SHARING, 1, Duration::from_secs(10));
    answered_by(&chat(a.addr, "openai/gpt-4o"), FALLBACK);
    let key = format!("{prefix}:block:retry_after:model:openai/gpt-4o");
    let end = Instant::now() + STEER_WITHIN;
    while redis.cli(&["EXISTS", &key]).trim() != "1" {
        assert!(Instant::now() < end, "A never stored {key}");
        std::thread::sleep(Duration::from_millis(10));
    }

    let c_port = free_port();
    let c = Replica::start(
        "c",
        runtime,
        &config_without_mini(c_port, &url, &prefix, &up),
        &dir,
        &[(
            "RUST_LOG",
            "info,switchback_core::shared_state=debug".to_string(),
        )],
    );
    c.wait_log(LOADED, 1, Duration::from_secs(10));
    let before = up.rate_limited.calls();
    let r = chat(c.addr, "openai/gpt-4o");
    answered_by(&r, FALLBACK);
    assert_eq!(r.header("x-switchback-attempts"), Some("1"));
    assert_eq!(
        up.rate_limited.calls(),
        before,
        "C never called the blocked model"
    );

    // C gains openai/gpt-4o-mini by a reload; A's block on it, recorded after, reaches C.
    c.reload(&config(c_port, &url, &prefix, &up));
    answered_by(&chat(a.addr, "openai/gpt-4o-mini"), FALLBACK);
    let since = up.rate_limited_later.requests()[0].at;
    let (took, n) = steered_after(
        c.addr,
        "openai/gpt-4o-mini",
        &up.rate_limited_later,
        since,
        Duration::from_millis(1),
        STEER_WITHIN,
    );
    report(runtime, "retry_after on a model added by a reload", took, n);
    for log in [a.stop(), c.stop()] {
        assert!(!log.contains(OUTAGE_LOGGED), "{log}");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_late_replica_on_smol_loads_blocks_and_follows_a_reload() {
    a_late_replica_loads_blocks_and_a_reload_widens_what_it_accepts("smol");
}

#[test]
fn a_late_replica_on_tokio_loads_blocks_and_follows_a_reload() {
    a_late_replica_loads_blocks_and_a_reload_widens_what_it_accepts("tokio");
}

/// `rediss://` with a password and a database, replica A on smol and B on tokio, at
/// trace level: the block still crosses, and neither log shows the password.
#[test]
fn tls_and_a_password_with_no_secret_in_the_logs() {
    const PASSWORD: &str = "redis-Secret-Pw-9Xk2Lq";
    let ca = TestCa::new("switchback redis test CA");
    let Some(redis) = RedisServer::start(RedisOptions {
        password: Some(PASSWORD.to_string()),
        tls: Some(ca.server_pem(&["localhost", "127.0.0.1"])),
    }) else {
        return;
    };
    let dir = temp_dir("replicas-tls");
    let ca_file = dir.join("ca.pem");
    ca.write_pem(&ca_file);
    let env = [
        ("SWITCHBACK_CA_FILE", ca_file.display().to_string()),
        ("RUST_LOG", "trace".to_string()),
    ];
    let up = Upstreams::start();
    let url = redis.url(3);
    assert!(
        url.starts_with("rediss://:") && url.ends_with("/3"),
        "{url}"
    );
    let a = Replica::start(
        "a",
        "smol",
        &config(free_port(), &url, "sb-tls", &up),
        &dir,
        &env,
    );
    let b = Replica::start(
        "b",
        "tokio",
        &config(free_port(), &url, "sb-tls", &up),
        &dir,
        &env,
    );
    a.wait_log(SHARING, 1, Duration::from_secs(10));
    b.wait_log(SHARING, 1, Duration::from_secs(10));
    answered_by(&chat(a.addr, "openai/gpt-4o"), FALLBACK);
    let since = up.rate_limited.requests()[0].at;
    let (took, n) = steered_after(
        b.addr,
        "openai/gpt-4o",
        &up.rate_limited,
        since,
        Duration::from_millis(1),
        STEER_WITHIN,
    );
    report("smol->tokio over TLS", "retry_after", took, n);
    let stored = redis.cli(&[
        "-n",
        "3",
        "EXISTS",
        "sb-tls:block:retry_after:model:openai/gpt-4o",
    ]);
    assert_eq!(stored.trim(), "1", "the block is in database 3");
    for log in [a.stop(), b.stop()] {
        assert!(log.contains("rediss://***@localhost:"), "{log}");
        assert!(!log.contains(PASSWORD), "the password is in a log");
        assert!(!log.contains(OUTAGE_LOGGED), "{log}");
    }
    let _ = fs::remove_dir_all(&dir);
}

/// A Redis that is never there: each replica serves from the start on its own blocks and
/// logs the outage once however often it retries.
#[test]
fn an_unreachable_redis_is_logged_once_and_never_waited_on() {
    let dir = temp_dir("replicas-unreachable");
    let up = Upstreams::start();
    let url = format!("redis://127.0.0.1:{}/0", refused_port());
    for runtime in ["smol", "tokio"] {
        let started = Instant::now();
        let r = Replica::start(
            runtime,
            runtime,
            &config(free_port(), &url, "sb-none", &up),
            &dir,
            &[],
        );
        answered_by(&chat(r.addr, FALLBACK), FALLBACK);
        assert!(started.elapsed() < Duration::from_secs(10));
        r.wait_log(OUTAGE_LOGGED, 1, Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1500));
        answered_by(&chat(r.addr, FALLBACK), FALLBACK);
        let log = r.stop();
        assert_eq!(log.matches(OUTAGE_LOGGED).count(), 1, "{log}");
        assert!(
            log.contains("Connection refused") || log.contains("connection refused"),
            "{log}"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}
