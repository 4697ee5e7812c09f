//! Storms (spec §11): many clients in a loop against an outage. The retry budget keeps
//! upstream load near the client load; failure blocks take a failing model out of
//! rotation and give it back, through one probe, once it recovers.
//!
//! The bounds are the budget's own arithmetic, not timings: every upstream call is a
//! request's first attempt or a retry the budget admitted, and over each 10 s window
//! the budget admits at most `ratio` × the first attempts in it plus
//! `min_per_second` × 10. Splitting the run into `ceil(duration / 10 s)` windows gives
//! `upstream ≤ (1 + ratio) × client requests + min_per_second × 10 × windows`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use switchback_tests::client::post_chat;
use switchback_tests::fixtures::chat_request;
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::MockUpstream;
use switchback_tests::table::{ms, start, HEAD};

use crate::harness::{ok, provider, too_many};

/// Upstream timeouts far above any mock answer: these tests count calls, and a machine
/// slowed by other tests must not turn an answer into a timeout.
const PATIENT: &str = "{first_token: 10s, idle: 10s}";

/// The default budget: `{ratio: 0.2, min_per_second: 10}`.
const RATIO: f64 = 0.2;
const MIN_PER_SECOND: u64 = 10;

/// What `clients` threads saw, looping on one request each until `stop` is set.
#[derive(Debug, Clone)]
struct Seen {
    /// When the request was sent.
    sent: Instant,
    status: u16,
    /// `x-switchback-model`: who answered (or was tried last).
    model: String,
}

/// Runs `clients` threads against `addr` for `duration`, calling `midway` (once) after
/// `midway_at`. Returns every response the clients saw.
fn storm(
    addr: std::net::SocketAddr,
    clients: usize,
    duration: Duration,
    midway: Option<(Duration, &dyn Fn())>,
) -> Vec<Seen> {
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            thread::spawn(move || {
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let r = post_chat(addr, &chat_request());
                    mine.push(Seen {
                        sent,
                        status: r.status,
                        model: r.header("x-switchback-model").unwrap_or("").to_owned(),
                    });
                }
                seen.lock().expect("results").extend(mine);
            })
        })
        .collect();
    let t0 = Instant::now();
    if let Some((at, f)) = midway {
        thread::sleep(at);
        f();
    }
    thread::sleep(duration.saturating_sub(t0.elapsed()));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client thread");
    }
    let mut all = std::mem::take(&mut *seen.lock().expect("results"));
    all.sort_by_key(|s| s.sent);
    all
}

/// All-429 upstreams without `Retry-After`, 50 clients for 10 s, a policy that would
/// triple the load (`same_model`, two retries): upstream calls stay within
/// `1.2 ×` the client requests plus the budget's floor.
pub(crate) fn storm_retry_budget_bounds_upstream_load<R: Runtime>() {
    let primary = MockUpstream::start(vec![too_many()]);
    let secondary = MockUpstream::start(vec![too_many()]);
    let policy = "default_strategy: same_model\ndefault_max_attempts: 2\n";
    let yaml = format!(
        "{HEAD}{}{}",
        provider("openai/gpt-4o", "PRIMARY", PATIENT, Some(policy)),
        provider("anthropic/claude-3-5-sonnet", "SECONDARY", PATIENT, None)
    );
    let started = Instant::now();
    let gw = start::<R>(&yaml, &[&primary, &secondary]);
    let seen = storm(gw.addr, 50, Duration::from_secs(10), None);
    let elapsed = started.elapsed();
    drop(gw);

    let clients = seen.len() as u64;
    let upstream = (primary.calls() + secondary.calls()) as u64;
    // Every call happened between `started` and now: that span, cut into 10 s windows.
    let windows = (elapsed.as_secs_f64() / 10.0).ceil().max(1.0) as u64;
    let floor = MIN_PER_SECOND * 10 * windows;
    let bound = ((1.0 + RATIO) * clients as f64).floor() as u64 + floor;
    eprintln!(
        "{}: {clients} client requests, {upstream} upstream calls ({:.3}x), bound {bound}, {} connections to the upstream, {elapsed:?}",
        R::name(),
        upstream as f64 / clients as f64,
        primary.connections().len()
    );
    let other: Vec<u16> = seen
        .iter()
        .map(|s| s.status)
        .filter(|s| *s != 429)
        .collect();
    assert!(
        other.is_empty(),
        "every request ends with the upstream's 429; {} did not: {other:?}",
        other.len()
    );
    assert!(clients >= 100, "only {clients} client requests in 10 s");
    assert!(
        upstream <= bound,
        "{upstream} upstream calls for {clients} client requests: over (1 + {RATIO}) x {clients} + {floor}"
    );
    assert!(
        upstream > clients,
        "the budget still lets some retries through ({upstream} calls, {clients} requests)"
    );
    assert_eq!(secondary.calls(), 0, "same_model never fails over");
}

/// The primary answers 429 (no `Retry-After`) for 2 s while the secondary is healthy,
/// then recovers. With `on_failures`, the primary is taken out of rotation (only
/// probes reach it) and traffic is back on it within one block duration of the
/// recovery.
pub(crate) fn storm_failure_block_recovers_within_one_block<R: Runtime>() {
    let primary = MockUpstream::start(vec![too_many()]);
    let secondary = MockUpstream::start(vec![ok()]);
    let block = Duration::from_secs(1);
    let policy = format!(
        "default_strategy: different_provider\ndefault_max_attempts: 1\non_failures: {{consecutive: 3, window_seconds: 10, block_duration_seconds: {}}}\n",
        block.as_secs()
    );
    let yaml = format!(
        "{HEAD}{}{}",
        provider("openai/gpt-4o", "PRIMARY", PATIENT, Some(&policy)),
        provider("anthropic/claude-3-5-sonnet", "SECONDARY", PATIENT, None)
    );
    let gw = start::<R>(&yaml, &[&primary, &secondary]);
    let clients = 10;
    let outage = Duration::from_secs(2);
    let recovered_at = Mutex::new(None);
    let outage_calls = Mutex::new(0);
    let recover = || {
        *outage_calls.lock().expect("calls") = primary.calls();
        primary.set_script(vec![ok()]);
        *recovered_at.lock().expect("time") = Some(Instant::now());
    };
    let seen = storm(
        gw.addr,
        clients,
        outage + ms(2_500),
        Some((outage, &recover)),
    );
    let recovered_at = recovered_at.lock().expect("time").expect("recovered");
    let outage_calls = *outage_calls.lock().expect("calls");

    assert!(
        seen.iter().all(|s| s.status == 200),
        "the secondary answers every request the primary cannot"
    );
    let during: Vec<&Seen> = seen.iter().filter(|s| s.sent < recovered_at).collect();
    assert!(
        during.len() >= 50,
        "only {} requests during the outage",
        during.len()
    );
    // Before the block: up to `consecutive` failures plus what the clients had in
    // flight; then one probe per block duration (a few more if probes race).
    let probes = outage.as_secs() / block.as_secs() + 1;
    let allowed = 3 + clients + 3 * probes as usize;
    assert!(
        outage_calls <= allowed,
        "{outage_calls} calls reached the failing primary during the outage ({} requests); at most {allowed} expected",
        during.len()
    );
    eprintln!(
        "{}: {} requests during the outage, {outage_calls} reached the primary; {} after",
        R::name(),
        during.len(),
        seen.len() - during.len()
    );
    let back = seen
        .iter()
        .find(|s| s.sent >= recovered_at && s.model == "openai/gpt-4o")
        .unwrap_or_else(|| panic!("traffic never returned to the primary"));
    let slack = ms(1_000);
    assert!(
        back.sent <= recovered_at + block + slack,
        "traffic returned {:?} after the recovery; the block lasts {block:?}",
        back.sent - recovered_at
    );
    let tail: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.sent >= recovered_at + block + slack)
        .collect();
    assert!(!tail.is_empty(), "no requests after the recovery");
    assert!(
        tail.iter().all(|s| s.model == "openai/gpt-4o"),
        "once recovered, the primary serves every request"
    );
}
