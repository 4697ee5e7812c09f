//! Harness: this binary's certificates, the gateway start, and the config, reply and
//! assertion helpers the scenarios share.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::ServerConfig;
use serde_json::Value;
use switchback_tests::client::Response;
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::{MockUpstream, Recorded, Reply};
use switchback_tests::table::{assert_status, indent, ms, start, Gw, HEAD};
use switchback_tests::tls::TestCa;

/// This binary's certificates: a CA trusted through `SWITCHBACK_CA_FILE`, and server
/// configurations for HTTPS mocks.
pub(crate) struct Pki {
    /// Signed by the trusted CA, for `localhost` and `127.0.0.1`.
    pub(crate) trusted: Arc<ServerConfig>,
    /// Signed by a CA the gateway does not trust, for `localhost`.
    pub(crate) unknown_ca: Arc<ServerConfig>,
    /// Signed by the trusted CA, but only for `other.invalid`.
    pub(crate) wrong_name: Arc<ServerConfig>,
}

/// Makes the certificates once per binary and sets `SWITCHBACK_CA_FILE` before any
/// gateway of this binary starts.
pub(crate) fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = TestCa::new("switchback e2e test CA");
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "switchback-e2e-providers-ca-{}.pem",
            std::process::id()
        ));
        ca.write_pem(&path);
        std::env::set_var("SWITCHBACK_CA_FILE", &path);
        let stranger = TestCa::new("a CA nobody trusts");
        Pki {
            trusted: ca.server_config(&["localhost", "127.0.0.1"]),
            unknown_ca: stranger.server_config(&["localhost"]),
            wrong_name: ca.server_config(&["other.invalid"]),
        }
    })
}

/// Starts a gateway for `yaml` (see [`start`]) once the CA file is in place.
pub(crate) fn gateway<R: Runtime>(yaml: &str, mocks: &[&MockUpstream]) -> Gw {
    pki();
    start::<R>(yaml, mocks)
}

/// One provider entry at `base_url` (may name `${PRIMARY}` etc.), with `policy` as the
/// body of its `retry_policy`.
pub(crate) fn entry(model: &str, base_url: &str, default: bool, policy: Option<&str>) -> String {
    let key = model.split('/').next().unwrap_or(model);
    let mut y = format!(
        "  - model: {model}\n    base_url: {base_url}\n    access_key: key-{key}\n    timeouts: {{first_token: 2s, idle: 2s}}\n"
    );
    if default {
        y.push_str("    default: true\n");
    }
    if let Some(p) = policy {
        y.push_str("    retry_policy:\n");
        y.push_str(&indent(p, 6));
    }
    y
}

/// Fail over to another provider once, for the codes the defaults cover.
pub(crate) const FAILOVER: &str = "default_strategy: different_provider\ndefault_max_attempts: 1\n";

/// `first` (default, with [`FAILOVER`]) on `${PRIMARY}`, `second` on `${SECONDARY}`.
pub(crate) fn failover_pair(first: &str, second: &str) -> String {
    format!(
        "{HEAD}{}{}",
        entry(first, "http://127.0.0.1:${PRIMARY}", true, Some(FAILOVER)),
        entry(second, "http://127.0.0.1:${SECONDARY}", false, None)
    )
}

/// An SSE reply from Anthropic's raw event text, every event written in two halves (so
/// the gateway reassembles events across reads).
pub(crate) fn anthropic_sse(text: &str) -> Reply {
    let mut reply = Reply::sse(&[] as &[&str], Duration::ZERO);
    for event in text.split_inclusive("\n\n") {
        let (a, b) = event.as_bytes().split_at(event.len() / 2);
        reply = reply.chunk(ms(2), a).chunk(ms(2), b);
    }
    reply
}

/// Checks the request an Anthropic mock received: Messages path and credentials, no
/// OpenAI credentials. Returns the body.
pub(crate) fn assert_anthropic_request(q: &Recorded) -> Value {
    assert_eq!(q.method, "POST");
    assert_eq!(q.path, "/v1/messages");
    assert_eq!(
        q.header("x-api-key"),
        Some("key-anthropic"),
        "{:?}",
        q.headers
    );
    assert_eq!(
        q.header("anthropic-version"),
        Some("2023-06-01"),
        "{:?}",
        q.headers
    );
    assert_eq!(q.header("authorization"), None, "{:?}", q.headers);
    assert!(
        q.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{:?}",
        q.headers
    );
    let body = q.json();
    assert!(body.is_object(), "not JSON: {}", q.text());
    assert_eq!(body["model"], "claude-sonnet-4-5", "{body}");
    assert!(
        body["max_tokens"].as_u64().is_some_and(|n| n > 0),
        "max_tokens is required by Anthropic: {body}"
    );
    body
}

/// The JSON chunks of a clean OpenAI stream (every `data:` before the one `[DONE]`,
/// which must come last).
pub(crate) fn stream_chunks(r: &Response) -> Vec<Value> {
    assert_status(r, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream")),
        "content-type: {:?}",
        r.header("content-type")
    );
    assert!(r.complete, "the stream did not end cleanly: {}", r.text());
    let data = r.sse_data();
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "events: {data:?}"
    );
    assert_eq!(
        data.iter().filter(|d| *d == "[DONE]").count(),
        1,
        "{data:?}"
    );
    data[..data.len() - 1]
        .iter()
        .map(|d| {
            serde_json::from_str(d).unwrap_or_else(|e| panic!("a data line is not JSON ({e}): {d}"))
        })
        .collect()
}
