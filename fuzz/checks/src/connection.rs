//! `connection`: the whole per-connection driver fed arbitrary client bytes, upstream inputs
//! and clock steps from a script, the way a runtime would (only reading the client while
//! the driver wants input, only reporting what can happen on the upstream slot it asked
//! for).
//!
//! Invariants: no panic; memory bounded (the driver never holds more output than a constant
//! plus a multiple of what it was fed); while open it always has a timer (no connection
//! waits forever), and with time alone every connection ends; every response the client
//! gets is well-formed, in the request's HTTP version, in request order (each carries the
//! request's `x-request-id`), at most one per request plus one refusal, and complete unless
//! the client went away; closed means closed (nothing more to write, no timer, no reading,
//! whatever else arrives).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use switchback_core::config::{load_str, Config};
use switchback_core::connection::{Connection, ConnectionSettings, UpstreamAction, UpstreamInput};
use switchback_core::gateway::Gateway;
use switchback_core::server::ServerLimits;

use crate::response_stream::{check_responses, RequestsSeen};
use crate::script::{Script, HEADER_SETS, STATUSES, UPSTREAM_BODIES};

const CONFIG_YAML: &str = "
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
    timeouts: {connect: 1s, first_token: 2s, idle: 2s}
    retry_policy:
      default_strategy: different_provider
      default_max_attempts: 2
      on_status_codes:
        - codes: [429]
          strategy: same_model
          max_attempts: 1
      backoff: {apply_to: same_model, base_ms: 50, max_ms: 200}
  - model: mistral/mistral-large
    base_url: http://127.0.0.1:9902
    access_key: key-b
    timeouts: {connect: 1s, first_token: 2s, idle: 2s}
  - model: anthropic/claude-3-5-sonnet
    base_url: http://127.0.0.1:9903
    access_key: key-c
  - model: mock/ok
";

/// Client requests the script can send (each gets its `x-request-id` added), besides raw
/// bytes.
const REQUESTS: &[&str] = &[
    "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n{id}\r\n{chat}",
    "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Length: {len}\r\n{id}\r\n{stream}",
    "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nx-switchback-model: mock/ok\r\nContent-Length: {len}\r\n{id}\r\n{chat}",
    "POST /v1/chat/completions HTTP/1.0\r\nContent-Length: {len}\r\n{id}\r\n{stream}",
    "POST /v1/chat/completions HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: {len}\r\n{id}\r\n{chat}",
    "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n{id}\r\n{chunked}",
    "GET /healthz HTTP/1.1\r\nHost: g\r\n{id}\r\n",
    "GET /v1/models HTTP/1.1\r\nHost: g\r\nConnection: close\r\n{id}\r\n",
    "HEAD /healthz HTTP/1.1\r\nHost: g\r\n{id}\r\n",
    "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Length: 9\r\n{id}\r\n{\"model\":",
    "POST /v1/messages HTTP/1.1\r\nHost: g\r\nContent-Length: 2\r\n{id}\r\n{}",
    "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n{id}\r\n",
];

const CHAT: &str = r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
const STREAM: &str =
    r#"{"model":"openai/gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

/// Clock steps the script chooses from (besides "to the driver's timer").
const STEPS: &[Duration] = &[
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(60),
    Duration::from_millis(900),
    Duration::from_secs(3),
    Duration::from_secs(31),
];

/// The longest a connection may take to end once only time passes (timer firings).
const MAX_TIMER_STEPS: usize = 2_000;

/// A fresh gateway per input (its block table is mutable state; sharing it would make
/// an input's outcome depend on the inputs before it).
fn gateway() -> Arc<Gateway> {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        load_str(CONFIG_YAML, &|_| None)
            .expect("the fuzz config loads")
            .config
    });
    Arc::new(Gateway::new(config.clone()).expect("the fuzz gateway"))
}

/// The upstream socket slot as the runtime sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Empty,
    Connecting { reuse: bool },
    Open,
}

struct Harness {
    conn: Connection,
    now: Instant,
    epoch: Instant,
    slot: Slot,
    pooled: bool,
    /// Everything the client received.
    client: Vec<u8>,
    /// Everything the client sent (what the driver was given).
    sent: Vec<u8>,
    fed: usize,
    shut: bool,
    /// The client may have missed bytes: it closed, failed, or stopped reading.
    client_left: bool,
    next_id: u32,
}

impl Harness {
    fn new(s: &mut Script<'_>) -> Harness {
        let epoch = epoch();
        let limits = ServerLimits {
            max_head_bytes: 2048,
            max_headers: 32,
            max_body_bytes: 4096,
            head_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
        };
        let settings = ConnectionSettings {
            limits,
            request_timeout: Duration::from_secs(20),
        };
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let conn = Connection::new(gateway(), settings, epoch, wall, s.u64());
        Harness {
            conn,
            now: epoch,
            epoch,
            slot: Slot::Empty,
            pooled: false,
            client: Vec::new(),
            sent: Vec::new(),
            fed: 0,
            shut: false,
            client_left: false,
            next_id: 0,
        }
    }

    /// Carries out the driver's slot instructions and writes what it wants written
    /// (`client_reads`: the client takes everything offered).
    fn flush(&mut self, client_reads: bool) {
        loop {
            let mut any = false;
            while let Some(a) = self.conn.poll_upstream_action() {
                any = true;
                match a {
                    UpstreamAction::Open { reuse, .. } => self.slot = Slot::Connecting { reuse },
                    UpstreamAction::Close => self.slot = Slot::Empty,
                    UpstreamAction::Release { .. } => {
                        assert_eq!(self.slot, Slot::Open, "Release of a slot that is not open");
                        self.slot = Slot::Empty;
                        self.pooled = true;
                    }
                }
            }
            if let Some(b) = self.conn.poll_client_transmit() {
                if client_reads {
                    let n = b.len();
                    self.client.extend_from_slice(b);
                    self.conn.handle_client_written(self.now, n);
                    any = true;
                }
            }
            if let Some(b) = self.conn.poll_upstream_transmit() {
                assert_eq!(
                    self.slot,
                    Slot::Open,
                    "upstream bytes to write without a connection"
                );
                let n = b.len();
                self.conn.handle_upstream_written(self.now, n);
                any = n > 0 || any;
            }
            if self.conn.wants_client_shutdown() && !self.shut {
                self.shut = true;
                self.conn.handle_client_shutdown(self.now);
                any = true;
            }
            if !any {
                break;
            }
        }
        self.check_open_state();
    }

    fn check_open_state(&self) {
        if self.conn.is_closed() {
            assert!(
                self.conn.poll_client_transmit().is_none(),
                "closed but bytes to write"
            );
            assert!(!self.conn.wants_client_read(), "closed but reading");
            assert!(self.conn.poll_timeout().is_none(), "closed but a timer");
            return;
        }
        assert!(
            self.conn.poll_timeout().is_some(),
            "an open connection without a timer could wait forever: {:?}",
            self.conn
        );
        let bound = 2 * 1024 * 1024 + 4 * self.fed;
        assert!(
            self.conn.client_backlog() <= bound,
            "{} bytes queued for the client after {} bytes of input",
            self.conn.client_backlog(),
            self.fed
        );
    }

    fn client_input(&mut self, data: &[u8]) {
        if !self.conn.wants_client_read() || data.is_empty() {
            return;
        }
        self.fed += data.len();
        self.sent.extend_from_slice(data);
        self.conn.handle_client_input(self.now, data);
    }

    fn upstream(&mut self, input: UpstreamInput<'_>) {
        if let UpstreamInput::Data(d) = input {
            self.fed += d.len();
        }
        self.conn.handle_upstream(self.now, input);
    }

    fn canned_request(&mut self, s: &mut Script<'_>) -> Vec<u8> {
        let template = s.pick(REQUESTS);
        self.next_id += 1;
        let id = format!("x-request-id: fz-{}\r\n", self.next_id);
        let chunked = format!("{:x}\r\n{CHAT}\r\n0\r\n\r\n", CHAT.len());
        let body = if template.ends_with("{stream}") {
            STREAM
        } else {
            CHAT
        };
        template
            .replace("{len}", &body.len().to_string())
            .replace("{id}", &id)
            .replace("{chat}", CHAT)
            .replace("{stream}", STREAM)
            .replace("{chunked}", &chunked)
            .into_bytes()
    }

    /// One script step.
    fn step(&mut self, s: &mut Script<'_>) {
        match s.below(10) {
            0 | 1 => {
                let req = self.canned_request(s);
                let cut = if s.byte() % 4 == 0 {
                    s.below(req.len() + 1)
                } else {
                    req.len()
                };
                self.client_input(&req[..cut]);
                let rest = req[cut..].to_vec();
                self.client_input(&rest);
            }
            2 => {
                let raw = s.bytes(256);
                self.client_input(raw);
            }
            3..=5 => self.upstream_step(s),
            6 | 7 => {
                let d = if s.byte() % 2 == 0 {
                    self.conn
                        .poll_timeout()
                        .map_or(Duration::ZERO, |t| t.saturating_duration_since(self.now))
                } else {
                    s.pick(STEPS)
                };
                self.now += d;
                self.conn.handle_timeout(self.now);
            }
            8 => match s.below(4) {
                0 => {
                    self.client_left = true;
                    self.conn.handle_client_eof(self.now);
                }
                1 => {
                    self.client_left = true;
                    self.conn.handle_client_error(self.now);
                }
                _ => {
                    let d = s.pick(STEPS);
                    self.conn.handle_drain(self.now, self.now + d);
                }
            },
            _ => {
                // The client stops reading for a while.
                self.client_left = true;
                self.now += s.pick(STEPS);
                self.conn.handle_timeout(self.now);
                self.flush(false);
                return;
            }
        }
        let reads = s.byte() % 16 != 0;
        self.client_left |= !reads;
        self.flush(reads);
    }

    fn upstream_step(&mut self, s: &mut Script<'_>) {
        match self.slot {
            Slot::Empty => {}
            Slot::Connecting { reuse } => match s.below(4) {
                0 => self.upstream(UpstreamInput::ConnectFailed {
                    tls: s.byte() % 2 == 0,
                    detail: "refused",
                }),
                _ => {
                    let reused = reuse && self.pooled && s.byte() % 2 == 0;
                    if reused {
                        self.pooled = false;
                    }
                    self.slot = Slot::Open;
                    self.upstream(UpstreamInput::Opened { reused });
                }
            },
            Slot::Open => match s.below(8) {
                0..=3 => {
                    let response = upstream_response(s);
                    let mut rest = &response[..];
                    while !rest.is_empty() && self.slot == Slot::Open {
                        let n = 1 + s.below(rest.len());
                        let (piece, tail) = rest.split_at(n);
                        rest = tail;
                        self.upstream(UpstreamInput::Data(piece));
                        self.flush(true);
                    }
                }
                4 => {
                    let raw = s.bytes(128);
                    if !raw.is_empty() {
                        self.upstream(UpstreamInput::Data(raw));
                    }
                }
                5 => self.upstream(UpstreamInput::Eof),
                6 => self.upstream(UpstreamInput::ReadFailed("reset")),
                _ => self.upstream(UpstreamInput::WriteFailed("broken pipe")),
            },
        }
    }

    /// Only time passes (the client reads everything): the connection must end.
    fn run_out(&mut self) {
        self.flush(true);
        for _ in 0..MAX_TIMER_STEPS {
            if self.conn.is_closed() {
                return;
            }
            if let Slot::Connecting { .. } = self.slot {
                self.slot = Slot::Open;
                self.upstream(UpstreamInput::Opened { reused: false });
                self.flush(true);
                continue;
            }
            let Some(t) = self.conn.poll_timeout() else {
                panic!("an open connection without a timer");
            };
            self.now = self.now.max(t);
            self.conn.handle_timeout(self.now);
            self.flush(true);
            if self.conn.is_closed() {
                return;
            }
            if self.now.duration_since(self.epoch) > Duration::from_secs(3600) {
                self.conn.handle_client_eof(self.now);
                self.flush(true);
            }
        }
        panic!("the connection did not end with time alone");
    }

    /// Closed means closed: nothing that arrives after the end changes anything.
    fn poke_closed(&mut self) {
        self.conn
            .handle_client_input(self.now, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        self.conn
            .handle_upstream(self.now, UpstreamInput::Data(b"HTTP/1.1 200 OK\r\n\r\n"));
        self.conn.handle_upstream(self.now, UpstreamInput::Eof);
        self.now += Duration::from_secs(60);
        self.conn.handle_timeout(self.now);
        self.conn.handle_drain(self.now, self.now);
        self.conn.handle_client_eof(self.now);
        assert!(self.conn.is_closed(), "a closed connection reopened");
        assert!(
            self.conn.poll_upstream_transmit().is_none(),
            "closed but writing upstream"
        );
        self.check_open_state();
    }
}

/// A response an upstream might send, framed one of several ways.
fn upstream_response(s: &mut Script<'_>) -> Vec<u8> {
    let status = s.pick(STATUSES);
    let headers = s.pick(HEADER_SETS);
    let mut body = String::new();
    for _ in 0..s.below(4) {
        let piece = s.pick(UPSTREAM_BODIES);
        body.push_str(piece);
    }
    let mut out = format!("HTTP/1.1 {status} X\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    match s.below(4) {
        0 => out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len())),
        1 => {
            out.push_str("transfer-encoding: chunked\r\n\r\n");
            if !body.is_empty() {
                out.push_str(&format!("{:x}\r\n{body}\r\n", body.len()));
            }
            out.push_str("0\r\n\r\n");
        }
        2 => {
            out = format!(
                "{}\r\n\r\n{body}",
                out.replacen("HTTP/1.1", "HTTP/1.0", 1).trim_end()
            )
        }
        _ => out.push_str(&format!(
            "content-length: {}\r\n\r\n{body}",
            body.len() + 10
        )),
    }
    if status == 100 {
        out.push_str(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
        );
    }
    out.into_bytes()
}

/// The harness's one real clock reading: only differences matter after it.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Runs one script through a fresh connection and checks the invariants of the module docs.
pub fn check(data: &[u8]) {
    let mut s = Script::new(data);
    let mut h = Harness::new(&mut s);
    let mut steps = 0;
    while !s.is_empty() && !h.conn.is_closed() && steps < 256 {
        h.step(&mut s);
        steps += 1;
    }
    h.run_out();
    h.poke_closed();
    if std::env::var_os("SWITCHBACK_FUZZ_DEBUG").is_some() {
        eprintln!("client sent: {:?}", String::from_utf8_lossy(&h.sent));
        eprintln!("client got: {:?}", String::from_utf8_lossy(&h.client));
    }
    let seen = RequestsSeen::from_client_bytes(&h.sent);
    check_responses(&h.client, &seen, h.client_left);
}
