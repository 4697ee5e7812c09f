//! The connection driver on a virtual clock with scripted sockets: keep-alive, pipelining,
//! HTTP/1.0, timeouts, smuggling, the upstream rules (stale pooled connection, early answer,
//! release), and the drain.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use switchback_core::config::load_str;
use switchback_core::connection::{Connection, ConnectionSettings, UpstreamAction, UpstreamInput};
use switchback_core::gateway::Gateway;
use switchback_core::server::ServerLimits;
use switchback_core::upstream::Origin;

const CONFIG: &str = "
listeners:
  - type: model
    name: l
    port: 12000
    timeout: 20s
model_providers:
  - model: openai/gpt-4o
    base_url: http://127.0.0.1:9901
    access_key: key-a
    default: true
    timeouts: {connect: 1s, first_token: 5s, idle: 5s}
";

const WITH_RETRY: &str = "
listeners:
  - type: model
    name: l
    port: 12000
model_providers:
  - model: openai/gpt-4o
    base_url: http://127.0.0.1:9901
    access_key: key-a
    default: true
    retry_policy: {default_strategy: different_provider}
  - model: mistral/mistral-large
    base_url: http://127.0.0.1:9902
    access_key: key-b
";

/// A connection with scripted sockets: what it wrote to each side and asked of the slot.
struct Wire {
    conn: Connection,
    now: Instant,
    client: Vec<u8>,
    upstream: Vec<u8>,
    actions: Vec<UpstreamAction>,
    shut: bool,
}

impl Wire {
    fn new(yaml: &str) -> Wire {
        Self::with_limits(yaml, ServerLimits::default())
    }

    /// The one real clock reading of these tests: after it, time moves only when a test
    /// advances it.
    #[allow(clippy::disallowed_methods)]
    fn with_limits(yaml: &str, limits: ServerLimits) -> Wire {
        let config = load_str(yaml, &|_| None).expect("config").config;
        let gw = Arc::new(Gateway::new(config).expect("gateway"));
        let now = Instant::now();
        let settings = ConnectionSettings {
            limits,
            request_timeout: Duration::from_secs(20),
        };
        let conn = Connection::new(gw, settings, now, SystemTime::now(), 7);
        Wire {
            conn,
            now,
            client: Vec::new(),
            upstream: Vec::new(),
            actions: Vec::new(),
            shut: false,
        }
    }

    /// Writes everything the driver wants written, and collects its slot instructions.
    fn flush(&mut self) {
        loop {
            let mut any = false;
            while let Some(a) = self.conn.poll_upstream_action() {
                self.actions.push(a);
                any = true;
            }
            if let Some(b) = self.conn.poll_client_transmit() {
                let n = b.len();
                self.client.extend_from_slice(b);
                self.conn.handle_client_written(self.now, n);
                any = true;
            }
            if let Some(b) = self.conn.poll_upstream_transmit() {
                let n = b.len();
                self.upstream.extend_from_slice(b);
                self.conn.handle_upstream_written(self.now, n);
                any = true;
            }
            if self.conn.wants_client_shutdown() && !self.shut {
                self.shut = true;
                self.conn.handle_client_shutdown(self.now);
                any = true;
            }
            if !any {
                return;
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.conn.handle_client_input(self.now, bytes);
        self.flush();
    }

    fn up(&mut self, input: UpstreamInput<'_>) {
        self.conn.handle_upstream(self.now, input);
        self.flush();
    }

    /// Moves the clock, firing the driver's timer as a runtime would.
    fn wait(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(at) = self.conn.poll_timeout().filter(|at| *at <= end) {
            self.now = at.max(self.now);
            self.conn.handle_timeout(self.now);
            self.flush();
        }
        self.now = end;
    }

    fn client_text(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.client)).into_owned()
    }

    fn take_actions(&mut self) -> Vec<UpstreamAction> {
        std::mem::take(&mut self.actions)
    }
}

fn origin(port: u16) -> Origin {
    switchback_core::upstream::parse_base_url(&format!("http://127.0.0.1:{port}"))
        .expect("origin")
        .0
}

const CHAT: &str = r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
const STREAM: &str =
    r#"{"model":"openai/gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

fn post(body: &str) -> Vec<u8> {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const OK_JSON: &str = r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}]}"#;

fn ok_response() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{OK_JSON}",
        OK_JSON.len()
    )
    .into_bytes()
}

fn statuses(text: &str) -> Vec<String> {
    text.split("HTTP/1.")
        .skip(1)
        .map(|r| r.get(2..5).unwrap_or("").to_owned())
        .collect()
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut w = Wire::new(CONFIG);
    w.send(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Request-Id: one\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: gw\r\nX-Request-Id: two\r\n\r\nGET /nothing HTTP/1.1\r\nHost: gw\r\n\r\n");
    let text = w.client_text();
    assert_eq!(statuses(&text), ["200", "200", "404"], "{text}");
    let one = text.find("x-request-id: one").expect("first");
    let two = text.find("x-request-id: two").expect("second");
    assert!(one < two, "{text}");
    assert!(!w.conn.is_closed());
}

#[test]
fn a_pipelined_chat_request_waits_for_the_one_before() {
    let mut w = Wire::new(CONFIG);
    let mut bytes = post(CHAT);
    bytes.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n");
    w.send(&bytes);
    assert_eq!(
        w.take_actions(),
        [UpstreamAction::Open {
            origin: origin(9901),
            reuse: true
        }]
    );
    assert!(w.client.is_empty(), "the healthz answer must wait its turn");
    w.up(UpstreamInput::Opened { reused: false });
    assert!(w
        .upstream
        .starts_with(b"POST /v1/chat/completions HTTP/1.1\r\n"));
    w.up(UpstreamInput::Data(&ok_response()));
    let text = w.client_text();
    assert_eq!(statuses(&text), ["200", "200"], "{text}");
    assert!(text.find("Hello").unwrap() < text.find("{\"status\":\"ok\"}").unwrap());
    assert_eq!(
        w.take_actions(),
        [UpstreamAction::Release {
            origin: origin(9901)
        }]
    );
}

#[test]
fn http10_clients_get_http10_framing_and_a_close() {
    let mut w = Wire::new(CONFIG);
    w.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    let text = w.client_text();
    assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
    assert!(text.contains("content-length: 15\r\n"), "{text}");
    assert!(text.contains("connection: close\r\n"), "{text}");
    assert!(w.shut, "the write side is shut after the answer");
    w.conn.handle_client_eof(w.now);
    assert!(w.conn.is_closed());

    let mut w = Wire::new(CONFIG);
    w.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let text = w.client_text();
    assert!(text.contains("connection: keep-alive\r\n"), "{text}");
    w.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    assert!(w.client_text().starts_with("HTTP/1.0 200"));
}

#[test]
fn http10_streams_are_close_delimited() {
    let mut w = Wire::new(CONFIG);
    let req = format!(
        "POST /v1/chat/completions HTTP/1.0\r\nContent-Length: {}\r\n\r\n{STREAM}",
        STREAM.len()
    );
    w.send(req.as_bytes());
    w.up(UpstreamInput::Opened { reused: false });
    w.up(UpstreamInput::Data(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
    ));
    let event =
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n";
    let chunk = format!("{:x}\r\n{event}\r\n0\r\n\r\n", event.len());
    w.up(UpstreamInput::Data(chunk.as_bytes()));
    let text = w.client_text();
    assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
    assert!(!text.contains("chunked"), "{text}");
    assert!(
        text.ends_with(&format!("{event}data: [DONE]\n\n")),
        "{text}"
    );
    assert!(w.shut);
}

#[test]
fn a_529_passes_through_as_529() {
    let mut w = Wire::new(CONFIG);
    w.send(&post(CHAT));
    w.up(UpstreamInput::Opened { reused: false });
    let body = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let resp = format!(
        "HTTP/1.1 529 Site Overloaded\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    w.up(UpstreamInput::Data(resp.as_bytes()));
    let text = w.client_text();
    assert!(text.starts_with("HTTP/1.1 529 \r\n"), "{text}");
    assert!(text.ends_with(body), "{text}");
}

#[test]
fn content_length_with_transfer_encoding_is_refused_and_closed() {
    let mut w = Wire::new(CONFIG);
    w.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nX-Request-Id: smug\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n");
    let text = w.client_text();
    assert_eq!(statuses(&text), ["400"], "{text}");
    assert!(
        text.contains("x-request-id: smug\r\n") || text.contains("x-request-id: req_"),
        "{text}"
    );
    assert!(text.contains("\"code\":\"ambiguous_framing\""), "{text}");
    assert!(text.contains("connection: close\r\n"), "{text}");
    assert!(w.take_actions().is_empty(), "nothing went upstream");
}

#[test]
fn an_oversized_head_gets_431() {
    let mut w = Wire::new(CONFIG);
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    w.send(big.as_bytes());
    let text = w.client_text();
    assert_eq!(statuses(&text), ["431"], "{text}");
    assert!(text.contains("x-request-id: req_"), "{text}");
    assert!(
        text.contains("\"type\":\"invalid_request_error\""),
        "{text}"
    );
}

#[test]
fn head_timeout_is_408_with_a_partial_head_and_silent_without() {
    let mut w = Wire::new(CONFIG);
    w.send(b"GET /healthz HTTP/1.1\r\nHost:");
    w.wait(Duration::from_secs(11));
    let text = w.client_text();
    assert_eq!(statuses(&text), ["408"], "{text}");

    let mut w = Wire::new(CONFIG);
    w.send(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n");
    let _ = w.client_text();
    w.wait(Duration::from_secs(11));
    assert!(
        w.client.is_empty(),
        "an idle keep-alive connection closes silently"
    );
    assert!(w.conn.is_closed());
}

#[test]
fn a_body_that_stops_arriving_gets_408() {
    let limits = ServerLimits {
        body_idle_timeout: Duration::from_secs(3),
        ..ServerLimits::default()
    };
    let mut w = Wire::with_limits(CONFIG, limits);
    let full = post(CHAT);
    w.send(&full[..full.len() - 10]);
    w.wait(Duration::from_secs(2));
    w.send(&full[full.len() - 10..full.len() - 5]);
    w.wait(Duration::from_secs(2));
    assert!(w.client.is_empty(), "bytes keep arriving: no timeout yet");
    w.wait(Duration::from_secs(2));
    let text = w.client_text();
    assert_eq!(statuses(&text), ["408"], "{text}");
    assert!(w.take_actions().is_empty());
}

#[test]
fn expect_100_continue_is_acknowledged_and_oversized_bodies_are_not() {
    let mut w = Wire::new(CONFIG);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        CHAT.len()
    );
    w.send(head.as_bytes());
    assert_eq!(w.client_text(), "HTTP/1.1 100 Continue\r\n\r\n");
    w.send(CHAT.as_bytes());
    assert_eq!(w.take_actions().len(), 1, "the request went upstream");

    let limits = ServerLimits {
        max_body_bytes: 10,
        ..ServerLimits::default()
    };
    let mut w = Wire::with_limits(CONFIG, limits);
    w.send(head.as_bytes());
    let text = w.client_text();
    assert!(!text.contains("100 Continue"), "{text}");
    assert_eq!(statuses(&text), ["413"], "{text}");
}

#[test]
fn chunked_request_bodies_reach_the_upstream_whole() {
    let mut w = Wire::new(CONFIG);
    let (a, b) = CHAT.split_at(20);
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    w.send(req.as_bytes());
    w.up(UpstreamInput::Opened { reused: false });
    let sent = String::from_utf8_lossy(&w.upstream).into_owned();
    assert!(
        sent.contains(&format!("content-length: {}", CHAT.len() - 7)),
        "{sent}"
    );
    assert!(
        sent.ends_with(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#),
        "{sent}"
    );
}

#[test]
fn an_early_answer_is_read_and_the_connection_not_pooled() {
    let mut w = Wire::new(CONFIG);
    let big = format!(
        r#"{{"model":"openai/gpt-4o","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(200_000)
    );
    w.conn.handle_client_input(w.now, &post(&big));
    let _ = w.conn.poll_upstream_action();
    w.conn
        .handle_upstream(w.now, UpstreamInput::Opened { reused: false });
    // Write only part of the request, then the upstream answers and stops reading.
    let part = w
        .conn
        .poll_upstream_transmit()
        .map(|b| b.len().min(1000))
        .unwrap_or(0);
    w.conn.handle_upstream_written(w.now, part);
    let body = r#"{"error":{"message":"too large","type":"invalid_request_error"}}"#;
    let resp = format!(
        "HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    w.conn
        .handle_upstream(w.now, UpstreamInput::Data(resp.as_bytes()));
    w.conn
        .handle_upstream(w.now, UpstreamInput::WriteFailed("broken pipe"));
    w.flush();
    let text = w.client_text();
    assert_eq!(statuses(&text), ["413"], "{text}");
    assert!(text.ends_with(body), "{text}");
    assert_eq!(
        w.take_actions(),
        [UpstreamAction::Close],
        "a half-written request's connection is never pooled"
    );
}

#[test]
fn a_stale_pooled_connection_is_resent_once_on_a_fresh_one() {
    let mut w = Wire::new(CONFIG);
    w.send(&post(CHAT));
    assert_eq!(
        w.take_actions(),
        [UpstreamAction::Open {
            origin: origin(9901),
            reuse: true
        }]
    );
    w.up(UpstreamInput::Opened { reused: true });
    w.up(UpstreamInput::Eof);
    assert_eq!(
        w.take_actions(),
        [
            UpstreamAction::Close,
            UpstreamAction::Open {
                origin: origin(9901),
                reuse: false
            }
        ]
    );
    assert!(w.client.is_empty(), "the client sees nothing of it");
    w.upstream.clear();
    w.up(UpstreamInput::Opened { reused: false });
    assert!(
        w.upstream.starts_with(b"POST "),
        "the request is sent again"
    );
    w.up(UpstreamInput::Data(&ok_response()));
    let text = w.client_text();
    assert_eq!(statuses(&text), ["200"], "{text}");
    assert!(text.contains("x-switchback-attempts: 1\r\n"), "{text}");
}

#[test]
fn a_fresh_connection_that_fails_is_an_attempt_failure() {
    let mut w = Wire::new(WITH_RETRY);
    w.send(&post(CHAT));
    w.up(UpstreamInput::Opened { reused: false });
    w.up(UpstreamInput::Eof);
    let actions = w.take_actions();
    assert_eq!(
        actions.last(),
        Some(&UpstreamAction::Open {
            origin: origin(9902),
            reuse: true
        }),
        "failed over: {actions:?}"
    );
}

#[test]
fn connecting_is_bounded_by_the_connect_timeout() {
    let mut w = Wire::new(CONFIG);
    w.send(&post(CHAT));
    w.wait(Duration::from_millis(1100));
    let text = w.client_text();
    assert_eq!(statuses(&text), ["502"], "{text}");
    assert!(text.contains("connect_error"), "{text}");
    assert_eq!(w.actions.last(), Some(&UpstreamAction::Close));
}

fn stream_head() -> &'static [u8] {
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
}

fn chunk(event: &str) -> Vec<u8> {
    format!("{:x}\r\n{event}\r\n", event.len()).into_bytes()
}

#[test]
fn the_drain_ends_an_open_stream_with_an_error_event() {
    let mut w = Wire::new(CONFIG);
    w.send(&post(STREAM));
    w.up(UpstreamInput::Opened { reused: false });
    w.up(UpstreamInput::Data(stream_head()));
    w.up(UpstreamInput::Data(&chunk(
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
    )));
    let _ = w.client_text();
    let deadline = w.now + Duration::from_secs(1);
    w.conn.handle_drain(w.now, deadline);
    w.wait(Duration::from_millis(500));
    assert!(
        w.client.is_empty(),
        "the stream goes on until the drain deadline"
    );
    w.wait(Duration::from_millis(600));
    let text = w.client_text();
    assert!(text.contains("\"code\":\"gateway_shutdown\""), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(
        text.ends_with("\r\n0\r\n\r\n"),
        "the chunked body ends cleanly: {text}"
    );
    assert_eq!(w.actions.last(), Some(&UpstreamAction::Close));
    assert!(w.shut);
}

#[test]
fn the_drain_closes_idle_connections_and_lets_answers_finish() {
    let mut w = Wire::new(CONFIG);
    w.conn.handle_drain(w.now, w.now + Duration::from_secs(5));
    assert!(w.conn.is_closed(), "an idle connection closes at once");

    let mut w = Wire::new(CONFIG);
    w.send(&post(CHAT));
    w.up(UpstreamInput::Opened { reused: false });
    w.conn.handle_drain(w.now, w.now + Duration::from_secs(5));
    w.up(UpstreamInput::Data(&ok_response()));
    let text = w.client_text();
    assert_eq!(statuses(&text), ["200"], "{text}");
    assert!(text.contains("connection: close\r\n") || w.shut, "{text}");
    assert!(w.shut, "no further request is read");
}

#[test]
fn a_client_that_stops_reading_is_taken_for_gone() {
    let limits = ServerLimits {
        body_idle_timeout: Duration::from_secs(3),
        ..ServerLimits::default()
    };
    let mut w = Wire::with_limits(CONFIG, limits);
    w.conn.handle_client_input(w.now, &post(STREAM));
    let _ = w.conn.poll_upstream_action();
    w.conn
        .handle_upstream(w.now, UpstreamInput::Opened { reused: false });
    while let Some(b) = w.conn.poll_upstream_transmit() {
        let n = b.len();
        w.conn.handle_upstream_written(w.now, n);
    }
    w.conn
        .handle_upstream(w.now, UpstreamInput::Data(stream_head()));
    let c = chunk("data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n");
    w.conn.handle_upstream(w.now, UpstreamInput::Data(&c));
    assert!(w.conn.poll_client_transmit().is_some());
    // Nothing is written to the client from here on.
    w.now += Duration::from_secs(4);
    w.conn.handle_timeout(w.now);
    assert!(w.conn.is_closed());
    let mut closes = Vec::new();
    while let Some(a) = w.conn.poll_upstream_action() {
        closes.push(a);
    }
    assert_eq!(closes.last(), Some(&UpstreamAction::Close), "{closes:?}");
}

#[test]
fn an_answer_the_client_never_reads_is_bounded_by_the_write_timeout() {
    let limits = ServerLimits {
        body_idle_timeout: Duration::from_secs(3),
        ..ServerLimits::default()
    };
    let mut w = Wire::with_limits(CONFIG, limits);
    w.conn.handle_client_input(w.now, &post(CHAT));
    let _ = w.conn.poll_upstream_action();
    w.conn
        .handle_upstream(w.now, UpstreamInput::Opened { reused: false });
    while let Some(b) = w.conn.poll_upstream_transmit() {
        let n = b.len();
        w.conn.handle_upstream_written(w.now, n);
    }
    // The answer completes inside one input; the client reads none of it.
    w.conn
        .handle_upstream(w.now, UpstreamInput::Data(&ok_response()));
    assert!(w.conn.poll_client_transmit().is_some());
    let at = w
        .conn
        .poll_timeout()
        .expect("a timer while the answer waits unread");
    assert!(at <= w.now + Duration::from_secs(3), "{:?}", at - w.now);
    w.now = at;
    w.conn.handle_timeout(w.now);
    assert!(w.conn.is_closed());
}

#[test]
fn a_client_that_leaves_mid_request_cancels_the_attempt() {
    let mut w = Wire::new(CONFIG);
    w.send(&post(CHAT));
    w.up(UpstreamInput::Opened { reused: false });
    let _ = w.take_actions();
    w.conn.handle_client_eof(w.now);
    w.flush();
    assert!(w.conn.is_closed());
    assert_eq!(w.take_actions(), [UpstreamAction::Close]);
}

// ---------------------------------------------------------------- trace context upstream

const TRACE_CLIENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const TRACE_STATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

/// The `traceparent` and `tracestate` fields (in order) of the upstream request a traced
/// gateway sends for a chat request with the `client` header fields.
fn upstream_trace_fields(client: &[(&str, &str)]) -> Vec<(String, String)> {
    let yaml = format!(
        "{CONFIG}tracing:\n  random_sampling: 100\n  otlp_http_endpoint: http://127.0.0.1:4318\n"
    );
    let mut w = Wire::new(&yaml);
    let mut head = String::from(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n",
    );
    for (k, v) in client {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{CHAT}", CHAT.len()));
    w.send(head.as_bytes());
    w.up(UpstreamInput::Opened { reused: false });
    let sent = String::from_utf8_lossy(&w.upstream).into_owned();
    let head = sent.split("\r\n\r\n").next().unwrap_or("");
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .filter(|(k, _)| k == "traceparent" || k == "tracestate")
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn a_traced_request_forwards_the_clients_tracestate_unchanged() {
    let out = upstream_trace_fields(&[("traceparent", TRACE_CLIENT), ("tracestate", TRACE_STATE)]);
    assert_eq!(field(&out, "tracestate"), [TRACE_STATE]);
    let sent = field(&out, "traceparent");
    assert_eq!(sent.len(), 1, "{out:?}");
    assert!(
        sent[0].starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
        "{sent:?}"
    );
    assert_ne!(
        sent[0], TRACE_CLIENT,
        "the attempt's own span is the parent"
    );
}

#[test]
fn a_tracestate_in_several_fields_goes_on_as_one_list() {
    let out = upstream_trace_fields(&[
        ("traceparent", TRACE_CLIENT),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("tracestate", "rojo=00f067aa0ba902b7"),
    ]);
    assert_eq!(field(&out, "tracestate"), [TRACE_STATE]);
}

#[test]
fn a_trace_the_gateway_starts_sends_no_tracestate() {
    let out = upstream_trace_fields(&[("traceparent", "garbage"), ("tracestate", TRACE_STATE)]);
    assert!(field(&out, "tracestate").is_empty(), "{out:?}");
    let out = upstream_trace_fields(&[("tracestate", TRACE_STATE)]);
    assert!(field(&out, "tracestate").is_empty(), "{out:?}");
    assert_eq!(field(&out, "traceparent").len(), 1, "{out:?}");
}
