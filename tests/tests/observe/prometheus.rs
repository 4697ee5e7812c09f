//! The exposition as Prometheus itself reads it: `promtool check metrics`, and a real
//! Prometheus server scraping the admin listener and answering a query for a failover
//! counter through its HTTP API, and `promtool check rules` on the sample alerts of
//! docs/operations.md (all from Debian's `prometheus` package).

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchback_tests::client::{get, post_chat};
use switchback_tests::fixtures::chat_request;
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::MockUpstream;
use switchback_tests::tools::require;

use crate::harness::{failover_config, ok, pushback, scrape, start};

/// `promtool check metrics` finds nothing wrong with a scrape taken after traffic of
/// every kind (a failover, a plain success, a refused request).
pub(crate) fn promtool_accepts_the_exposition<R: Runtime>() {
    let Some(promtool) = require("promtool", "prometheus", "promtool_accepts_the_exposition")
    else {
        return;
    };
    let primary = MockUpstream::start(vec![pushback()]);
    let secondary = MockUpstream::start(vec![ok(), ok()]);
    let gw = start::<R>(&failover_config(""), &[primary.port(), secondary.port()]);
    assert_eq!(post_chat(gw.addr, &chat_request()).status, 200);
    assert_eq!(post_chat(gw.addr, "{not json").status, 400);
    assert_eq!(get(gw.addr, "/nowhere").status, 404);
    let text = scrape(gw.addr);
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\n--- exposition:\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Prometheus server we started and its data directory; killed and removed when
/// dropped, a failing test included.
struct Server(Child, std::path::PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_prometheus(bin: &Path, dir: &Path, target: SocketAddr) -> (Server, SocketAddr) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\nscrape_configs:\n  - job_name: switchback\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("write prometheus.yml");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    (Server(child, dir.to_path_buf()), addr)
}

/// The value of the first sample of `query`'s instant vector, once Prometheus has one.
fn query(prom: SocketAddr, query: &str) -> Option<f64> {
    let path = format!("/api/v1/query?query={}", encode(query));
    let v = get(prom, &path).json();
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
}

/// Percent-encodes what a query string cannot carry as is.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A real Prometheus scrapes the admin listener; its HTTP API then answers the failover
/// counter of the failover the gateway made.
pub(crate) fn prometheus_scrapes_a_failover_counter<R: Runtime>() {
    let Some(bin) = require(
        "prometheus",
        "prometheus",
        "prometheus_scrapes_a_failover_counter",
    ) else {
        return;
    };
    let primary = MockUpstream::start(vec![pushback()]);
    let secondary = MockUpstream::start(vec![ok()]);
    let yaml = failover_config("    admin_port: 9901\n");
    let gw = start::<R>(&yaml, &[primary.port(), secondary.port()]);
    assert_eq!(post_chat(gw.addr, &chat_request()).status, 200);
    let dir = std::env::temp_dir().join(format!(
        "switchback-prometheus-{}-{}",
        std::process::id(),
        R::name()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let (_server, prom) = start_prometheus(&bin, &dir, gw.admin());
    let up_by = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(prom).is_err() {
        assert!(
            Instant::now() < up_by,
            "Prometheus did not listen on {prom}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let wanted =
        r#"switchback_failovers_total{from="openai/gpt-4o",to="anthropic/claude-3-5-sonnet"}"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = None;
    while Instant::now() < deadline {
        seen = query(prom, wanted);
        if seen.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // Having the counter means a scrape of the admin listener succeeded (the latest
    // scrape's `up` is not asked for: on a loaded machine it may have timed out).
    assert_eq!(seen, Some(1.0), "Prometheus never had {wanted}");
}

/// The YAML block under `## Sample alerts` in docs/operations.md.
fn sample_alerts() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md");
    let doc = std::fs::read_to_string(&path).expect("read docs/operations.md");
    let section = doc
        .split_once("\n## Sample alerts\n")
        .expect("a `## Sample alerts` section")
        .1;
    let block = section
        .split_once("```yaml\n")
        .expect("a yaml block in the section")
        .1;
    let (yaml, _) = block.split_once("\n```").expect("the block's end");
    assert!(
        !section[..section.find("```yaml").unwrap()].contains("\n## "),
        "the yaml block is not in the Sample alerts section"
    );
    format!("{yaml}\n")
}

/// The sample alerts in docs/operations.md are valid Prometheus rules (`promtool check
/// rules`), and every `switchback_*` metric they name is one the gateway exports.
#[test]
fn promtool_accepts_the_sample_alerts() {
    let Some(promtool) = require(
        "promtool",
        "prometheus",
        "promtool_accepts_the_sample_alerts",
    ) else {
        return;
    };
    let rules = sample_alerts();
    let dir = std::env::temp_dir().join(format!("switchback-alerts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let file = dir.join("alerts.yml");
    std::fs::write(&file, &rules).expect("write the rules");
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("run promtool");
    let _ = std::fs::remove_dir_all(&dir);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check rules: {}\n{said}\n--- rules:\n{rules}",
        out.status
    );
    assert!(said.contains("SUCCESS: 4 rules found"), "{said}");
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md"),
    )
    .expect("read docs/operations.md");
    for name in rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("switchback_"))
    {
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "the sample alerts use {name}, which the metrics reference does not list"
        );
    }
}
