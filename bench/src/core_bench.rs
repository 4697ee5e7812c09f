//! The core alone: the cost of driving one request through `Gateway::handle` and the
//! `RetryMachine`, with no sockets, as a timed loop over many requests.
//!
//! Two variants per path: `machine` feeds pre-parsed upstream events (request routing, body
//! inspection, the retry machine, the client response); `connection` drives the whole
//! per-connection driver (`switchback_core::connection::Connection`) with raw bytes: the
//! client's request through the server codec, the upstream request and response through the
//! upstream codec, the client's response bytes out, on one keep-alive client connection
//! with a pooled upstream connection. That is all the core does per request; a runtime adds
//! only its socket calls.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use switchback_core::config::load_str;
use switchback_core::connection::{Connection, ConnectionSettings, UpstreamAction, UpstreamInput};
use switchback_core::gateway::{ClientRequest, Gateway, Reply, RequestContext};
use switchback_core::machine::{Action, Event, Outcome, RetryMachine};
use switchback_core::upstream::{Exchange, ExchangeEvent};

use crate::mock::COMPLETION;

const CONFIG: &str = "version: v0.3.0
model_providers:
  - model: openai/bench
    base_url: http://127.0.0.1:9
    access_key: bench-key
    default: true
  - model: openai/primary
    base_url: http://127.0.0.1:10
    access_key: bench-key
    # The failover path measures what one failover costs, so this entry's retries are
    # not budgeted (the budget exists to refuse exactly this traffic in an outage).
    retry_budget: {enabled: false}
    retry_policy:
      fallback_models: [groq/fallback]
      on_status_codes:
        - codes: [429]
          strategy: different_provider
          max_attempts: 1
  - model: groq/fallback
    base_url: http://127.0.0.1:9
    access_key: bench-key
  # The same answers with stream recovery on: what keeping a stream recoverable costs
  # when nothing fails.
  - model: openai/recoverable
    base_url: http://127.0.0.1:9
    access_key: bench-key
    retry_policy:
      stream_recovery: {max_continuations: 2}
";

const RATE_LIMITED: &str = r#"{"error":{"message":"Rate limit reached for requests","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}"#;

/// One measured path.
#[derive(Debug, Clone)]
pub struct CoreResult {
    pub path: &'static str,
    pub variant: &'static str,
    pub requests: u64,
    pub ns_per_request: f64,
    /// Upstream attempts per request (checks the path did what it says).
    pub attempts_per_request: f64,
}

/// Raw upstream answers, as socket reads.
fn ok_reads() -> Vec<Bytes> {
    vec![Bytes::from(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{COMPLETION}",
        COMPLETION.len()
    ))]
}

fn rate_limited_reads() -> Vec<Bytes> {
    vec![Bytes::from(format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{RATE_LIMITED}",
        RATE_LIMITED.len()
    ))]
}

fn stream_reads(chunks: usize) -> Vec<Bytes> {
    let mut reads = vec![Bytes::from_static(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
    )];
    for i in 0..chunks {
        let ev = format!("data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"token {i} \"}},\"finish_reason\":null}}]}}\n\n");
        reads.push(Bytes::from(format!("{:x}\r\n{ev}\r\n", ev.len())));
    }
    let last = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    reads.push(Bytes::from(format!(
        "{:x}\r\n{last}\r\n0\r\n\r\n",
        last.len()
    )));
    reads
}

/// The codec's events for `reads`, parsed once (for the machine-only variant).
fn parse_once(reads: &[Bytes]) -> Vec<ExchangeEvent> {
    let req = switchback_core::upstream::UpstreamHttpRequest {
        origin: switchback_core::upstream::parse_base_url("http://127.0.0.1:9")
            .expect("url")
            .0,
        method: http::Method::POST,
        path_and_query: "/v1/chat/completions".into(),
        headers: http::HeaderMap::new(),
        body: Bytes::from_static(b"{}"),
    };
    let mut ex = Exchange::new(&req).expect("request");
    while ex.poll_transmit().is_some() {}
    let mut out = Vec::new();
    for r in reads {
        ex.handle_input(r);
        while let Some(ev) = ex.poll_event() {
            out.push(ev);
        }
    }
    out
}

struct Script {
    /// Upstream answer per attempt number (the last repeats).
    reads: Vec<Vec<Bytes>>,
    events: Vec<Vec<ExchangeEvent>>,
}

fn drain(m: &mut RetryMachine, sends: &mut Vec<Action>) -> Option<Outcome> {
    let mut finished = None;
    while let Some(a) = m.poll_action() {
        match a {
            Action::Send { .. } => sends.push(a),
            Action::Finish(s) => finished = Some(s.outcome),
            _ => {}
        }
    }
    finished
}

/// Drives one request to its `Finish`; returns the attempts made.
fn one_request(
    gw: &Arc<Gateway>,
    body: &Bytes,
    script: &Script,
    codec: bool,
    now: Instant,
    wall: SystemTime,
    seed: u64,
) -> u32 {
    let req = ClientRequest {
        method: http::Method::POST,
        path: "/v1/chat/completions".into(),
        headers: http::HeaderMap::new(),
        body: body.clone(),
    };
    let ctx = RequestContext {
        now,
        wall,
        timeout: Duration::from_secs(300),
        random: seed,
    };
    let mut m = match gw.handle(req, ctx) {
        Reply::Chat(m) => *m,
        Reply::Respond(r) => panic!("core benchmark request answered at once: {}", r.status),
    };
    let mut sends = Vec::new();
    m.handle(now, Event::Start);
    let mut done = drain(&mut m, &mut sends);
    let mut attempts = 0u32;
    while done.is_none() {
        let Some(Action::Send {
            attempt, request, ..
        }) = sends.pop()
        else {
            panic!("core benchmark: machine waits without an attempt in flight");
        };
        let n = (attempts as usize).min(script.reads.len() - 1);
        attempts += 1;
        if codec {
            let mut ex = Exchange::new(&request).expect("encodable request");
            let mut wire = 0usize;
            while let Some(b) = ex.poll_transmit() {
                wire += b.len();
            }
            std::hint::black_box(wire);
            'reads: for r in &script.reads[n] {
                ex.handle_input(r);
                while let Some(ev) = ex.poll_event() {
                    m.handle(now, Event::from_exchange(attempt, ev));
                    done = drain(&mut m, &mut sends);
                    if done.is_some() || !sends.is_empty() {
                        break 'reads;
                    }
                }
            }
        } else {
            for ev in &script.events[n] {
                m.handle(now, Event::from_exchange(attempt, ev.clone()));
                done = drain(&mut m, &mut sends);
                if done.is_some() || !sends.is_empty() {
                    break;
                }
            }
        }
    }
    assert_eq!(
        done,
        Some(Outcome::Success),
        "core benchmark request failed"
    );
    attempts
}

/// A client connection kept across requests, with the upstream slot answered from a
/// script, as a runtime with a warm pool would.
struct Wire {
    conn: Connection,
    now: Instant,
    out: usize,
}

impl Wire {
    fn new(gw: &Arc<Gateway>, now: Instant, wall: SystemTime) -> Wire {
        let settings = ConnectionSettings {
            limits: switchback_core::server::ServerLimits::default(),
            request_timeout: Duration::from_secs(300),
        };
        Wire {
            conn: Connection::new(Arc::clone(gw), settings, now, wall, 1),
            now,
            out: 0,
        }
    }

    /// One request on the connection; returns the upstream attempts it made.
    fn request(&mut self, client_bytes: &[u8], script: &Script) -> u32 {
        let now = self.now;
        self.conn.handle_client_input(now, client_bytes);
        let mut attempts = 0u32;
        loop {
            while let Some(b) = self.conn.poll_client_transmit() {
                let n = b.len();
                self.out += n;
                self.conn.handle_client_written(now, n);
            }
            let Some(action) = self.conn.poll_upstream_action() else {
                break;
            };
            let UpstreamAction::Open { .. } = action else {
                continue;
            };
            self.conn
                .handle_upstream(now, UpstreamInput::Opened { reused: true });
            while let Some(b) = self.conn.poll_upstream_transmit() {
                let n = b.len();
                std::hint::black_box(b);
                self.conn.handle_upstream_written(now, n);
            }
            let n = (attempts as usize).min(script.reads.len() - 1);
            attempts += 1;
            for r in &script.reads[n] {
                self.conn.handle_upstream(now, UpstreamInput::Data(r));
            }
        }
        assert!(!self.conn.is_closed(), "core benchmark connection closed");
        attempts
    }
}

fn client_bytes(body: &Bytes) -> Vec<u8> {
    let mut v = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:12000\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

/// Runs every path and variant for about `budget` each (at most `max_requests`).
/// `only` keeps the rows whose "path variant" contains it.
///
/// `metrics: false` runs the same paths with `metrics: {enabled: false}`, to show what
/// recording costs the core.
pub fn run(
    max_requests: u64,
    budget: Duration,
    only: Option<&str>,
    metrics: bool,
) -> Vec<CoreResult> {
    let yaml = if metrics {
        CONFIG.to_owned()
    } else {
        format!("{CONFIG}metrics: {{enabled: false}}\n")
    };
    let loaded = load_str(&yaml, &|_| None).expect("core benchmark config");
    let gw = Arc::new(Gateway::new(loaded.config).expect("gateway"));
    let plain = Bytes::from(crate::http1::chat_body("openai/bench", false, None));
    let failover = Bytes::from(crate::http1::chat_body("openai/primary", false, None));
    let stream = Bytes::from(crate::http1::chat_body("openai/bench", true, None));
    let recoverable = Bytes::from(crate::http1::chat_body("openai/recoverable", true, None));
    let mk = |reads: Vec<Vec<Bytes>>| Script {
        events: reads.iter().map(|r| parse_once(r)).collect(),
        reads,
    };
    let paths: Vec<(&'static str, Bytes, Script)> = vec![
        ("200 JSON", plain, mk(vec![ok_reads()])),
        (
            "429 → fallback 200",
            failover,
            mk(vec![rate_limited_reads(), ok_reads()]),
        ),
        ("SSE, 20 chunks", stream, mk(vec![stream_reads(20)])),
        (
            "SSE, 20 chunks, stream_recovery on",
            recoverable,
            mk(vec![stream_reads(20)]),
        ),
    ];
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut out = Vec::new();
    let wanted =
        |path: &str, variant: &str| only.is_none_or(|o| format!("{path} {variant}").contains(o));
    for (path, body, script) in &paths {
        let wire_bytes = client_bytes(body);
        if wanted(path, "connection") {
            let mut wire = Wire::new(&gw, now, wall);
            for i in 0..(max_requests / 20).clamp(1, 2000) {
                wire.request(&wire_bytes, script);
                std::hint::black_box(i);
            }
            let start = Instant::now();
            let mut n = 0u64;
            let mut attempts = 0u64;
            while n < max_requests && (n % 256 != 0 || start.elapsed() < budget) {
                attempts += u64::from(wire.request(&wire_bytes, script));
                n += 1;
            }
            let elapsed = start.elapsed();
            std::hint::black_box(wire.out);
            out.push(CoreResult {
                path,
                variant: "connection",
                requests: n,
                ns_per_request: elapsed.as_nanos() as f64 / n as f64,
                attempts_per_request: attempts as f64 / n as f64,
            });
        }
        for (variant, codec) in [("machine", false), ("machine+codec", true)] {
            if !wanted(path, variant) {
                continue;
            }
            // Warm up.
            for i in 0..(max_requests / 20).clamp(1, 2000) {
                one_request(&gw, body, script, codec, now, wall, i);
            }
            let start = Instant::now();
            let mut n = 0u64;
            let mut attempts = 0u64;
            while n < max_requests && (n % 256 != 0 || start.elapsed() < budget) {
                attempts += u64::from(one_request(&gw, body, script, codec, now, wall, n));
                n += 1;
            }
            let elapsed = start.elapsed();
            out.push(CoreResult {
                path,
                variant,
                requests: n,
                ns_per_request: elapsed.as_nanos() as f64 / n as f64,
                attempts_per_request: attempts as f64 / n as f64,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_succeeds_with_the_expected_attempts() {
        let r = run(20, Duration::from_millis(50), None, true);
        assert_eq!(r.len(), 12);
        for c in &r {
            let want = if c.path.starts_with("429") { 2.0 } else { 1.0 };
            assert_eq!(c.attempts_per_request, want, "{c:?}");
        }
    }
}
