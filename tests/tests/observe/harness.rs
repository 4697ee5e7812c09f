//! What the observability scenarios share: a gateway they can reload, configs with a
//! failover, and reading one series out of the exposition.

use std::net::SocketAddr;

use switchback_pump::Running;
use switchback_tests::client::get;
use switchback_tests::fixtures::{error_body, success_body};
use switchback_tests::gateway::{load_config, start_on, GatewayOptions, Runtime};
use switchback_tests::mock_upstream::Reply;

/// A gateway kept whole (so a scenario can reload it); shut down when dropped.
pub(crate) struct Gw {
    pub(crate) running: Option<Running>,
    pub(crate) addr: SocketAddr,
}

impl Gw {
    pub(crate) fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    /// The admin listener's address (`admin_port`), or the model listener's.
    pub(crate) fn admin(&self) -> SocketAddr {
        self.running().admin_addr().unwrap_or(self.addr)
    }

    /// Reloads `yaml` (ports filled in as at start).
    pub(crate) fn reload(&self, yaml: &str, ports: &[u16]) -> Result<(), String> {
        self.running().reload(load_config(yaml, &vars(ports)))
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

fn vars(ports: &[u16]) -> Vec<(&'static str, String)> {
    ["PRIMARY", "SECONDARY", "TERTIARY"]
        .into_iter()
        .zip(ports.iter().map(u16::to_string))
        .collect()
}

/// Starts `yaml` on `R` with `${PRIMARY}`, ... set to `ports`; an `admin_port` in it
/// becomes an ephemeral port too.
pub(crate) fn start<R: Runtime>(yaml: &str, ports: &[u16]) -> Gw {
    let mut config = load_config(yaml, &vars(ports));
    for l in &mut config.listeners {
        if let Some(a) = &mut l.admin {
            a.set_port(0);
        }
    }
    let running = start_on::<R>(config, &GatewayOptions::default());
    let addr = running.local_addrs()[0];
    Gw {
        running: Some(running),
        addr,
    }
}

/// `openai/gpt-4o` on `${PRIMARY}` (failing over on 429 to the next entry) and
/// `anthropic/claude-3-5-sonnet` on `${SECONDARY}`; `listener_extra` goes on the listener.
pub(crate) fn failover_config(listener_extra: &str) -> String {
    format!(
        "version: v0.3.0
listeners:
  - type: model
    name: model_listener
    port: 12000
    timeout: 10s
{listener_extra}model_providers:
  - model: openai/gpt-4o
    base_url: http://127.0.0.1:${{PRIMARY}}
    access_key: key-primary
    default: true
    timeouts: {{first_token: 2s, idle: 2s}}
    retry_policy:
      default_strategy: different_provider
      on_status_codes:
        - codes: [429]
          strategy: different_provider
          max_attempts: 2
  - model: anthropic/claude-3-5-sonnet
    base_url: http://127.0.0.1:${{SECONDARY}}
    provider_interface: openai
    access_key: key-secondary
    timeouts: {{first_token: 2s, idle: 2s}}
"
    )
}

pub(crate) fn ok() -> Reply {
    Reply::json(200, success_body())
}

/// 429 with `Retry-After: 30`: a failover, and a block that outlives the scenario.
pub(crate) fn pushback() -> Reply {
    Reply::json(429, error_body(429, "Rate limit exceeded")).header("Retry-After", "30")
}

/// `GET /metrics` on `addr`, as text.
pub(crate) fn scrape(addr: SocketAddr) -> String {
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.headers
    );
    r.text()
}

/// The value of one series (`name{labels}` exactly as exposed) in `text`.
pub(crate) fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name_and_labels))
        .find_map(|rest| rest.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

pub(crate) const FAILED_OVER: &str =
    r#"switchback_failovers_total{from="openai/gpt-4o",to="anthropic/claude-3-5-sonnet"}"#;

/// Scrapes `addr` until `name_and_labels` reads `value` (or 10 s pass); the last scrape.
/// For counters that move just after what a test waited on (an export's outcome).
pub(crate) fn wait_series(addr: SocketAddr, name_and_labels: &str, value: f64) -> String {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = scrape(addr);
        if series(&text, name_and_labels) == Some(value) || std::time::Instant::now() > until {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
