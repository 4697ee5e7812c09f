//! No credential ever reaches the log, at any level, or a client response: the binary runs
//! at `RUST_LOG=trace` on each runtime through a failover (a 429, a refused connection, a
//! passthrough of the client's key, a stream, a stream recovered after a cut and one whose
//! continuation is rejected by an upstream that echoes its key), and the whole of stderr and of every
//! response is searched for each secret, plain, hex-encoded in the shapes a wire dump
//! takes, and split across lines.
//!
//! The test drives the binary from outside only (config file, environment, sockets,
//! signals), so it holds for any runtime behind `--runtime`. Set
//! `SWITCHBACK_KEEP_TEST_LOGS=1` to keep the logs (in the temp dir) after a pass.

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use switchback_tests::client::{request, Response};
use switchback_tests::fixtures::{
    chat_request, error_body, stream_events, stream_request, success_body,
};
use switchback_tests::mock_upstream::{refused_port, Ending, MockUpstream, Reply};

/// The provider key of the primary (sent as `Authorization: Bearer`).
const ACCESS_KEY: &str = "sk-live-PrimaryKey-7Hq2Zr9Xw4";
/// The provider key of an entry whose upstream refuses connections.
const REFUSED_KEY: &str = "sk-live-RefusedKey-3Nv8Lp1Dk6";
/// A secret `headers:` value of the primary.
const HEADER_SECRET: &str = "org-secret-Header-5Tg7Yb2Mc0";
/// The provider key of the entry whose streams are recovered.
const RECOVER_KEY: &str = "gsk-live-RecoverKey-6Wd3Hs8Vn2";
/// The client's `Authorization` (forwarded to the passthrough entry).
const CLIENT_AUTH: &str = "client-bearer-Token-8Rf4Ws6Qa1";
/// The client's `x-api-key`.
const CLIENT_X_API_KEY: &str = "client-xkey-Value-2Jm9Uk5Pe3";

const SECRETS: [&str; 6] = [
    ACCESS_KEY,
    REFUSED_KEY,
    RECOVER_KEY,
    HEADER_SECRET,
    CLIENT_AUTH,
    CLIENT_X_API_KEY,
];

// ---------------------------------------------------------------- the search

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        if upper {
            let _ = write!(s, "{b:02X}");
        } else {
            let _ = write!(s, "{b:02x}");
        }
        s
    })
}

/// `hex` with a space after every `group` bytes.
fn grouped_hex(bytes: &[u8], group: usize) -> String {
    bytes
        .chunks(group)
        .map(|c| hex(c, false))
        .collect::<Vec<_>>()
        .join(" ")
}

fn without_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// A token of a hex dump's hex columns: 1 to 4 bytes' worth of hex digits, or the `-`
/// padding of a short last row.
fn is_hex_group(token: &str) -> bool {
    (2..=8).contains(&token.len())
        && token.len() % 2 == 0
        && token.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The hex columns of every line that looks like a hex dump row (two or more hex groups
/// in a row), joined across rows, and the text column after them, joined the same way:
/// what a dump spreads over many lines, put back together.
fn dump_rows(log: &str) -> (String, String) {
    let (mut hex_joined, mut text_joined) = (String::new(), String::new());
    for line in log.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let Some(start) = (0..tokens.len()).find(|&i| {
            tokens[i..].len() >= 2 && is_hex_group(tokens[i]) && is_hex_group(tokens[i + 1])
        }) else {
            continue;
        };
        let run = tokens[start..]
            .iter()
            .take_while(|t| is_hex_group(t))
            .count();
        for t in &tokens[start..start + run] {
            hex_joined.push_str(&t.replace('-', "").to_ascii_lowercase());
        }
        if let Some(text) = tokens.get(start + run) {
            text_joined.push_str(text);
        }
    }
    (hex_joined, text_joined)
}

/// Every way `secret` shows up in `haystack`, by name.
fn leaks(haystack: &str, secret: &str) -> Vec<&'static str> {
    let bytes = secret.as_bytes();
    let flat = without_whitespace(haystack);
    let flat_lower = flat.to_ascii_lowercase();
    let (rows_hex, rows_text) = dump_rows(haystack);
    let mut found = Vec::new();
    let mut check = |what: &'static str, hit: bool| {
        if hit {
            found.push(what);
        }
    };
    check("plain", haystack.contains(secret));
    check("split across lines", flat.contains(secret));
    check("hex, lower case", haystack.contains(&hex(bytes, false)));
    check("hex, upper case", haystack.contains(&hex(bytes, true)));
    check(
        "hex with a space between bytes",
        haystack
            .to_ascii_lowercase()
            .contains(&grouped_hex(bytes, 1)),
    );
    check(
        "hex with a space every two bytes",
        haystack
            .to_ascii_lowercase()
            .contains(&grouped_hex(bytes, 2)),
    );
    check(
        "hex split across lines",
        flat_lower.contains(&hex(bytes, false)),
    );
    check(
        "hex dump rows joined",
        rows_hex.contains(&hex(bytes, false)),
    );
    check("hex dump text column joined", rows_text.contains(secret));
    found
}

/// A hex dump in the shape `ureq-proto` writes at trace level: 16 bytes a row, hex in
/// groups of two bytes, `--` padding, then the printable characters.
fn fake_dump(data: &[u8]) -> String {
    let mut out = String::new();
    for row in data.chunks(16) {
        out.push_str("2024-01-01T00:00:00.000000Z TRACE ureq_proto::util: ");
        for i in 0..16 {
            match row.get(i) {
                Some(b) => {
                    let _ = write!(out, "{b:02x}");
                }
                None => out.push_str("--"),
            }
            if i % 2 == 1 {
                out.push(' ');
            }
        }
        out.push(' ');
        for i in 0..16 {
            match row.get(i) {
                Some(b) if b.is_ascii_alphanumeric() || b.is_ascii_punctuation() => {
                    out.push(*b as char)
                }
                _ => out.push('.'),
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_search_finds_a_secret_in_every_shape() {
    let head = format!("POST /v1/chat/completions HTTP/1.1\r\nauthorization: Bearer {ACCESS_KEY}\r\nhost: x\r\n\r\n");
    let dump = fake_dump(head.as_bytes());
    let found = leaks(&dump, ACCESS_KEY);
    assert!(found.contains(&"hex dump rows joined"), "{found:?}\n{dump}");
    assert!(found.contains(&"hex dump text column joined"), "{found:?}");
    let split = format!("key: {}\n{}", &ACCESS_KEY[..10], &ACCESS_KEY[10..]);
    assert_eq!(leaks(&split, ACCESS_KEY), ["split across lines"]);
    let upper = hex(ACCESS_KEY.as_bytes(), true);
    assert!(leaks(&upper, ACCESS_KEY).contains(&"hex, upper case"));
    let spaced = grouped_hex(ACCESS_KEY.as_bytes(), 1);
    assert!(leaks(&spaced, ACCESS_KEY).contains(&"hex with a space between bytes"));
    assert!(leaks("nothing to see", ACCESS_KEY).is_empty());
}

// ---------------------------------------------------------------- the gateway

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    l.local_addr().expect("probe address").port()
}

fn config(
    port: u16,
    primary: &MockUpstream,
    passthrough: &MockUpstream,
    recover: &MockUpstream,
) -> String {
    let refused = refused_port();
    format!(
        "version: v0.3.0
listeners:
  - type: model
    name: model_listener
    address: 127.0.0.1
    port: {port}
    timeout: 10s
model_providers:
  - model: openai/gpt-4o
    base_url: http://127.0.0.1:{p}
    access_key: {ACCESS_KEY}
    headers:
      x-org-token: {HEADER_SECRET}
    default: true
    timeouts: {{first_token: 3s, idle: 3s}}
    retry_policy:
      fallback_models: [anthropic/claude-3-5-sonnet]
      default_strategy: different_provider
      default_max_attempts: 2
  - model: anthropic/claude-3-5-sonnet
    provider_interface: openai
    base_url: http://127.0.0.1:{s}
    passthrough_auth: true
    timeouts: {{first_token: 3s, idle: 3s}}
  - model: mistral/refused
    base_url: http://127.0.0.1:{refused}
    access_key: {REFUSED_KEY}
    timeouts: {{connect: 1s, first_token: 3s}}
    retry_policy:
      fallback_models: [openai/gpt-4o, anthropic/claude-3-5-sonnet]
      default_strategy: different_provider
      default_max_attempts: 2
  - model: groq/recover
    base_url: http://127.0.0.1:{r}
    access_key: {RECOVER_KEY}
    continuation: assistant_prefill
    timeouts: {{first_token: 3s, idle: 3s}}
    retry_policy:
      stream_recovery: {{max_continuations: 1}}
",
        p = primary.port(),
        s = passthrough.port(),
        r = recover.port(),
    )
}

/// A `switchback serve` process; stopped with SIGTERM (so the log is flushed) when
/// [`Gateway::stop`] is called, killed if the test panics first.
struct Gateway {
    child: Option<Child>,
    log: PathBuf,
}

impl Gateway {
    fn start(runtime: &str, config: &str, dir: &std::path::Path) -> Gateway {
        let config_path = dir.join("config.yaml");
        fs::write(&config_path, config).expect("write the config");
        let log = dir.join("stderr.log");
        let stderr = fs::File::create(&log).expect("create the log file");
        let child = Command::new(env!("CARGO_BIN_EXE_switchback"))
            .arg("serve")
            .arg(&config_path)
            .args(["--runtime", runtime])
            .env("RUST_LOG", "trace")
            .env_remove("RUST_LOG_STYLE")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start switchback");
        Gateway {
            child: Some(child),
            log,
        }
    }

    /// SIGTERM, wait for the exit, and the whole of stderr.
    fn stop(mut self) -> String {
        let mut child = self.child.take().expect("running");
        if let Some(pid) = Pid::from_raw(child.id() as i32) {
            let _ = kill_process(pid, Signal::TERM);
        }
        let end = Instant::now() + Duration::from_secs(20);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > end {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.wait();
        fs::read_to_string(&self.log).expect("read the log")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_until_serving(addr: SocketAddr, log: &std::path::Path) {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            let r = request(addr, "GET", "/healthz", &[], b"");
            if r.status == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < end,
            "the gateway did not come up; its log:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn post(addr: SocketAddr, body: &str) -> Response {
    let auth = format!("Bearer {CLIENT_AUTH}");
    request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
            ("x-api-key", CLIENT_X_API_KEY),
        ],
        body.as_bytes(),
    )
}

fn response_text(r: &Response) -> String {
    let mut out = format!("{}\n", r.status);
    for (k, v) in &r.headers {
        let _ = writeln!(out, "{k}: {v}");
    }
    out.push_str(&r.text());
    out
}

fn run(runtime: &str) {
    let dir = std::env::temp_dir().join(format!(
        "switchback-secrets-{runtime}-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    let primary = MockUpstream::start(vec![Reply::json(
        429,
        error_body(429, "Rate limit exceeded"),
    )]);
    let events = stream_events();
    let passthrough = MockUpstream::start(vec![
        Reply::json(200, success_body()),
        Reply::sse(&events, Duration::from_millis(5)),
        Reply::json(200, success_body()),
    ]);
    let cut = Reply::sse(&events[..2], Duration::from_millis(5)).ending(Ending::Cut);
    let rest = stream_events()[2..].to_vec();
    let echo = format!(
        r#"{{"error":{{"message":"assistant prefill refused for key {RECOVER_KEY}","type":"invalid_request_error"}}}}"#
    );
    let recover = MockUpstream::start(vec![
        cut.clone(),
        Reply::json(400, echo),
        cut,
        Reply::sse(&rest, Duration::from_millis(5)),
    ]);
    let port = free_port();
    let gw = Gateway::start(
        runtime,
        &config(port, &primary, &passthrough, &recover),
        &dir,
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_until_serving(addr, &gw.log);

    let mut responses = Vec::new();
    // 429 on the primary, then the passthrough entry answers.
    let r = post(addr, &chat_request());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-switchback-model"),
        Some("anthropic/claude-3-5-sonnet")
    );
    responses.push(r);
    // The same, streamed.
    let r = post(addr, &stream_request());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("[DONE]"), "{}", r.text());
    responses.push(r);
    // A refused connection, then the 429, then the passthrough entry.
    let body = chat_request().replace("openai/gpt-4o", "mistral/refused");
    let r = post(addr, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchback-attempts"), Some("3"));
    responses.push(r);
    // A stream cut after commit whose continuation is rejected (the upstream echoes the
    // key in its error), then one whose continuation completes it.
    let body = stream_request().replace("openai/gpt-4o", "groq/recover");
    let r = post(addr, &body);
    assert!(r.text().contains("continuation(s) failed"), "{}", r.text());
    responses.push(r);
    let r = post(addr, &body);
    assert!(r.text().contains("[DONE]"), "{}", r.text());
    responses.push(r);
    // Bad input answered by the gateway itself.
    responses.push(post(
        addr,
        r#"{"model": "openai/gpt-4o", "messages": [], "stream": "true"}"#,
    ));
    responses.push(post(addr, "{not json"));

    let log = gw.stop();

    // The secrets did travel (so the log had every chance to show them): the primary got
    // its key and secret header, the passthrough entry the client's key.
    let p = &primary.requests()[0];
    assert_eq!(
        p.header("authorization"),
        Some(format!("Bearer {ACCESS_KEY}").as_str())
    );
    assert_eq!(p.header("x-org-token"), Some(HEADER_SECRET));
    let s = &passthrough.requests()[0];
    assert_eq!(
        s.header("authorization"),
        Some(format!("Bearer {CLIENT_AUTH}").as_str())
    );
    assert!(
        s.header("x-api-key").is_none(),
        "the client's x-api-key is not forwarded"
    );
    // The log is the verbose one, with the failures in it.
    assert!(log.contains("attempt failed"), "{log}");
    assert!(log.contains("continuation failed"), "{log}");
    assert!(
        log.contains("1 continuation(s) on groq/recover; completed"),
        "the request log line says what recovery did: {log}"
    );
    assert_eq!(
        recover.requests()[1].header("authorization"),
        Some(format!("Bearer {RECOVER_KEY}").as_str())
    );
    assert!(log.contains("switchback is serving"), "{log}");

    let mut leaked = Vec::new();
    for secret in SECRETS {
        for how in leaks(&log, secret) {
            leaked.push(format!("log: {secret} ({how})"));
        }
        for (i, r) in responses.iter().enumerate() {
            for how in leaks(&response_text(r), secret) {
                leaked.push(format!("response {i}: {secret} ({how})"));
            }
        }
    }
    assert!(
        leaked.is_empty(),
        "{runtime}: credentials leaked:\n{}\n--- log ({} bytes) ---\n{}",
        leaked.join("\n"),
        log.len(),
        &log[..log.len().min(20_000)]
    );
    if std::env::var_os("SWITCHBACK_KEEP_TEST_LOGS").is_none() {
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn no_secret_in_the_trace_log_or_responses_smol() {
    run("smol");
}

#[test]
fn no_secret_in_the_trace_log_or_responses_tokio() {
    run("tokio");
}
