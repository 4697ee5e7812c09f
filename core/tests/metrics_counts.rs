//! The counters as a connection records them: requests driven through a [`Connection`]
//! against the built-in mock provider (no sockets), then the exposition read back.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use switchback_core::config::load_str;
use switchback_core::connection::{Connection, ConnectionSettings};
use switchback_core::gateway::{Gateway, Surface};
use switchback_core::server::ServerLimits;

const FAILOVER: &str = "
listeners:
  - {type: model, port: 12000}
model_providers:
  - model: mock/rate-limited
    default: true
    mock: {retry_after_seconds: 5}
    retry_policy:
      fallback_models: [mock/ok]
      default_strategy: same_provider
  - model: mock/ok
";

struct Client {
    conn: Connection,
    now: Instant,
    got: Vec<u8>,
}

impl Client {
    #[allow(clippy::disallowed_methods)]
    fn new(gw: &Arc<Gateway>) -> Client {
        let now = Instant::now();
        let settings = ConnectionSettings {
            limits: ServerLimits::default(),
            request_timeout: Duration::from_secs(30),
        };
        Client {
            conn: Connection::new(Arc::clone(gw), settings, now, SystemTime::now(), 3),
            now,
            got: Vec::new(),
        }
    }

    /// Sends `raw` and runs the clock until the response is complete.
    fn exchange(&mut self, raw: &str) -> String {
        self.conn.handle_client_input(self.now, raw.as_bytes());
        for _ in 0..1000 {
            self.receive();
            match self.conn.poll_timeout() {
                Some(at) if at <= self.now + Duration::from_secs(5) => {
                    self.now = self.now.max(at);
                    self.conn.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        String::from_utf8_lossy(&std::mem::take(&mut self.got)).into_owned()
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n")
}

fn chat(model: &str) -> String {
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn gateway(yaml: &str) -> Arc<Gateway> {
    Arc::new(Gateway::new(load_str(yaml, &|_| None).unwrap().config).unwrap())
}

/// The value of the series `line_start` (name and labels) in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_failover_moves_the_counters_it_should() {
    let gw = gateway(FAILOVER);
    let mut c = Client::new(&gw);
    let answer = c.exchange(&chat("mock/rate-limited"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("x-switchback-attempts: 2"), "{answer}");
    let text = c.exchange(&get("/metrics"));
    assert!(
        text.contains("content-type: text/plain; version=0.0.4"),
        "{text}"
    );
    let at = |s: &str| value(&text, s);
    assert_eq!(
        at(
            r#"switchback_requests_total{api="chat_completions",model="mock/ok",status_class="2xx",outcome="success"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        at(
            r#"switchback_upstream_attempts_total{provider="mock/rate-limited",error_type="http_429"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        at(r#"switchback_upstream_attempts_total{provider="mock/ok",error_type="ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        at(r#"switchback_retries_total{model="mock/rate-limited"}"#),
        Some(1.0)
    );
    assert_eq!(
        at(r#"switchback_failovers_total{from="mock/rate-limited",to="mock/ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        at(
            r#"switchback_blocks_active{model="mock/rate-limited",scope="model",kind="retry_after"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        at(r#"switchback_request_duration_seconds_count{model="mock/ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        at(r#"switchback_time_to_commit_seconds_count{model="mock/ok"}"#),
        Some(1.0)
    );
    assert_eq!(at("switchback_requests_in_flight"), Some(0.0));
    assert_eq!(
        at(r#"switchback_retry_budget_rejections_total{budget="gateway"}"#),
        Some(0.0)
    );

    // While the block lasts, the next request goes straight to mock/ok: no retry.
    c.exchange(&chat("mock/rate-limited"));
    let text = c.exchange(&get("/metrics"));
    assert_eq!(
        value(
            &text,
            r#"switchback_upstream_attempts_total{provider="mock/ok",error_type="ok"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            r#"switchback_retries_total{model="mock/rate-limited"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn status_lists_the_block_and_the_budget() {
    let gw = gateway(FAILOVER);
    let mut c = Client::new(&gw);
    c.exchange(&chat("mock/rate-limited"));
    let answer = c.exchange(&get("/v1/status"));
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let block = &v["blocks"][0];
    assert_eq!(block["model"], "mock/rate-limited");
    assert_eq!(block["kind"], "retry_after");
    assert_eq!(block["state"], "blocked");
    assert!(block["until"].as_str().unwrap().ends_with('Z'));
    assert!(block["remaining_ms"].as_u64().unwrap() <= 5000);
    assert_eq!(v["retry_budgets"][0]["budget"], "gateway");
    assert_eq!(v["retry_budgets"][0]["retries"], 1);
    assert_eq!(v["providers"][0]["model"], "mock/rate-limited");
    assert_eq!(v["providers"][0]["failovers_from"], 1);
    assert_eq!(v["providers"][1]["attempts"]["ok"], 1);
}

#[test]
fn an_admin_port_keeps_the_routes_off_the_model_listener() {
    let yaml = FAILOVER.replace("port: 12000}", "port: 12000, admin_port: 9901}");
    let gw = gateway(&yaml);
    let mut public = Client::new(&gw);
    assert!(public
        .exchange(&get("/metrics"))
        .starts_with("HTTP/1.1 404"));
    assert!(public
        .exchange(&get("/v1/status"))
        .starts_with("HTTP/1.1 404"));
    let mut admin = Client::new(&gw);
    admin.conn.set_surface(Surface::Admin);
    assert!(admin.exchange(&get("/metrics")).starts_with("HTTP/1.1 200"));
    assert!(admin.exchange(&get("/healthz")).starts_with("HTTP/1.1 200"));
    assert!(admin.exchange(&chat("mock/ok")).starts_with("HTTP/1.1 404"));
}

#[test]
fn metrics_off_records_nothing_and_hides_the_route() {
    let gw = gateway(&format!("{FAILOVER}metrics: {{enabled: false}}\n"));
    let mut c = Client::new(&gw);
    c.exchange(&chat("mock/rate-limited"));
    assert!(c.exchange(&get("/metrics")).starts_with("HTTP/1.1 404"));
    assert_eq!(gw.metrics().merged().total_requests(), 0);
}

#[test]
fn a_client_model_never_becomes_a_label() {
    // Nothing answers the upstream slot here: the attempt ends by its connect timeout.
    let yaml = "
model_providers:
  - model: openai/*
    base_url: http://127.0.0.1:9
    access_key: k
    timeouts: {connect: 1s}
";
    let gw = gateway(yaml);
    let mut c = Client::new(&gw);
    let answer = c.exchange(&chat("openai/whatever-a-client-says"));
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    let text = c.exchange(&get("/metrics"));
    assert!(!text.contains("whatever"), "{text}");
    assert!(
        text.contains(r#"switchback_upstream_attempts_total{provider="openai/*",error_type="connect_error"} 1"#),
        "{text}"
    );
}

impl Client {
    /// Takes everything the connection has to send the client.
    fn receive(&mut self) {
        while let Some(b) = self.conn.poll_client_transmit() {
            let n = b.len();
            self.got.extend_from_slice(b);
            self.conn.handle_client_written(self.now, n);
        }
    }

    /// Sends `raw` and runs the clock only until the bytes received contain `needle`;
    /// returns what was received so far.
    fn exchange_until(&mut self, raw: &str, needle: &str) -> String {
        self.conn.handle_client_input(self.now, raw.as_bytes());
        for _ in 0..1000 {
            self.receive();
            let got = String::from_utf8_lossy(&self.got).into_owned();
            if got.contains(needle) {
                return got;
            }
            let at = self.conn.poll_timeout().expect("a timer while waiting");
            self.now = self.now.max(at);
            self.conn.handle_timeout(self.now);
        }
        panic!("never received {needle:?}");
    }
}

fn stream_chat(model: &str) -> String {
    let body = format!(
        r#"{{"model":"{model}","stream":true,"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn an_empty_retry_budget_counts_its_rejections_and_has_no_headroom() {
    let gw = gateway(&format!(
        "{FAILOVER}retry_budget: {{ratio: 0, min_per_second: 0}}\n"
    ));
    let mut c = Client::new(&gw);
    let answer = c.exchange(&chat("mock/rate-limited"));
    assert!(answer.contains("x-switchback-attempts: 1"), "{answer}");
    let text = c.exchange(&get("/metrics"));
    assert_eq!(
        value(
            &text,
            r#"switchback_retry_budget_rejections_total{budget="gateway"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"switchback_retry_budget_headroom{budget="gateway"}"#
        ),
        Some(0.0),
        "{text}"
    );
    // The default budget has room: its floor alone admits 100 retries per window.
    let gw = gateway(FAILOVER);
    let text = Client::new(&gw).exchange(&get("/metrics"));
    assert_eq!(
        value(
            &text,
            r#"switchback_retry_budget_headroom{budget="gateway"}"#
        ),
        Some(100.0),
        "{text}"
    );
}

#[test]
fn latency_and_failure_blocks_show_in_the_blocks_gauge() {
    let gw = gateway(
        "
model_providers:
  - model: mock/slow
    default: true
    mock: {delay: 1s}
    retry_policy:
      fallback_models: [mock/ok]
      on_high_latency: {threshold_ms: 100, min_triggers: 1, block_duration_seconds: 60}
  - model: mock/unavailable
    retry_policy:
      fallback_models: [mock/ok]
      on_failures: {consecutive: 1, window_seconds: 30, block_duration_seconds: 30}
  - model: mock/ok
",
    );
    let mut c = Client::new(&gw);
    assert!(c.exchange(&chat("mock/slow")).starts_with("HTTP/1.1 200"));
    // One 503 opens the circuit (`consecutive: 1`); the answer itself does not matter.
    let answer = c.exchange(&chat("mock/unavailable"));
    assert!(answer.contains("x-switchback-model: mock/"), "{answer}");
    let text = c.exchange(&get("/metrics"));
    assert_eq!(
        value(
            &text,
            r#"switchback_blocks_active{model="mock/slow",scope="model",kind="latency"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"switchback_blocks_active{model="mock/unavailable",scope="model",kind="failures"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn an_open_stream_is_counted_and_its_commit_timed() {
    let gw = gateway(FAILOVER);
    let mut streaming = Client::new(&gw);
    let head = streaming.exchange_until(&stream_chat("mock/ok"), "text/event-stream");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut scraper = Client::new(&gw);
    let text = scraper.exchange(&get("/metrics"));
    assert_eq!(value(&text, "switchback_streams_open"), Some(1.0), "{text}");
    assert_eq!(value(&text, "switchback_requests_in_flight"), Some(1.0));
    let rest = streaming.exchange("");
    assert!(rest.contains("[DONE]"), "{rest}");
    let text = scraper.exchange(&get("/metrics"));
    assert_eq!(value(&text, "switchback_streams_open"), Some(0.0), "{text}");
    assert_eq!(
        value(
            &text,
            r#"switchback_time_to_commit_seconds_count{model="mock/ok"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"switchback_requests_total{api="chat_completions",model="mock/ok",status_class="2xx",outcome="success"}"#
        ),
        Some(1.0),
        "{text}"
    );
}
