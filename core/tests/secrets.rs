//! Credentials and upstream addresses stay out of what the core prints and what it tells
//! clients: `Debug` of every type that holds a request, a header map or the config;
//! client-facing errors for transport failures; upstream bodies that echo a key.

mod common;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use common::{chat_body, chunk};
use http::{HeaderMap, HeaderValue, Method};
use switchback_core::config::load_str;
use switchback_core::gateway::{ClientRequest, Gateway, Reply, RequestContext};
use switchback_core::machine::{Action, AttemptId, Event, RetryMachine, TransportError};
use switchback_core::sim::{FakeReply, Simulation};

const ACCESS_KEY: &str = "sk-core-secret-access-1f2e3d";
const HEADER_SECRET: &str = "hdr-core-secret-9a8b7c";
const CLIENT_AUTH: &str = "client-core-secret-auth-5566";
const CLIENT_KEY: &str = "client-core-secret-xkey-7788";
const ADDRESS: &str = "127.0.0.1:13999";

const SECRETS: [&str; 4] = [ACCESS_KEY, HEADER_SECRET, CLIENT_AUTH, CLIENT_KEY];

fn yaml(policy: bool) -> String {
    yaml_with(if policy {
        "    retry_policy: {default_max_attempts: 1}\n"
    } else {
        ""
    })
}

fn yaml_with(policy: &str) -> String {
    format!(
        "model_providers:
  - model: openai/gpt-4o
    base_url: http://{ADDRESS}
    access_key: {ACCESS_KEY}
    headers:
      x-org-secret: {HEADER_SECRET}
{policy}  - model: mistral/pass
    base_url: http://127.0.0.1:14000
    passthrough_auth: true
"
    )
}

fn gateway(policy: bool) -> Arc<Gateway> {
    let loaded = load_str(&yaml(policy), &|_| None).expect("config");
    Arc::new(Gateway::new(loaded.config).expect("gateway"))
}

fn client_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {CLIENT_AUTH}")).unwrap(),
    );
    h.insert("x-api-key", HeaderValue::from_static(CLIENT_KEY));
    h
}

fn machine(gw: &Arc<Gateway>, model: &str, stream: bool) -> RetryMachine {
    let req = ClientRequest {
        method: Method::POST,
        path: "/v1/chat/completions".into(),
        headers: client_headers(),
        body: Bytes::from(chat_body(model, stream)),
    };
    let ctx = RequestContext {
        now: common::epoch(),
        wall: UNIX_EPOCH,
        timeout: Duration::from_secs(30),
        random: 1,
    };
    match gw.handle(req, ctx) {
        Reply::Chat(m) => *m,
        Reply::Respond(r) => panic!("unexpected answer {r:?}"),
    }
}

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows {secret}: {text}");
    }
}

fn drain(m: &mut RetryMachine) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

#[test]
fn debug_output_shows_no_credential() {
    let gw = gateway(true);
    assert_clean("the gateway", &format!("{gw:?}"));
    let req = ClientRequest {
        method: Method::POST,
        path: "/v1/chat/completions".into(),
        headers: client_headers(),
        body: Bytes::new(),
    };
    assert_clean("a client request", &format!("{req:?}"));
    for model in ["openai/gpt-4o", "mistral/pass"] {
        let mut m = machine(&gw, model, false);
        assert_clean("a machine", &format!("{m:?}"));
        m.handle(common::epoch(), Event::Start);
        let actions = drain(&mut m);
        let send = actions
            .iter()
            .find(|a| matches!(a, Action::Send { .. }))
            .expect("a send");
        let Action::Send { request, .. } = send else {
            unreachable!()
        };
        // The credentials are on the wire (where they belong) and nowhere in Debug.
        let on_wire = request.headers.values().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.contains(ACCESS_KEY) || v.contains(CLIENT_AUTH))
        });
        assert!(on_wire, "{model}: no credential was sent");
        assert_clean("a Send action", &format!("{send:?}"));
        assert_clean("a machine in flight", &format!("{m:?}"));
    }
}

/// The only attempt fails below HTTP with `error`; returns the client's body.
fn transport_failure(error: TransportError, stream: bool) -> String {
    let gw = gateway(false);
    let mut m = machine(&gw, "openai/gpt-4o", stream);
    let now = common::epoch();
    m.handle(now, Event::Start);
    drain(&mut m);
    m.handle(
        now,
        Event::UpstreamFailed {
            attempt: AttemptId(0),
            error,
        },
    );
    let mut out = String::new();
    for a in drain(&mut m) {
        match a {
            Action::Respond(r) => {
                out.push_str(&format!("{:?}", r.headers));
                out.push_str(&String::from_utf8_lossy(&r.body));
            }
            Action::Forward(b) => out.push_str(&String::from_utf8_lossy(&b)),
            _ => {}
        }
    }
    out
}

#[test]
fn transport_errors_name_the_entry_never_the_address() {
    for error in [
        TransportError::Connect(format!(
            "http://{ADDRESS}: Connection refused (os error 111)"
        )),
        TransportError::Tls(format!("{ADDRESS}: invalid peer certificate")),
        TransportError::Io(format!("read from {ADDRESS}: connection reset by peer")),
        TransportError::Protocol(format!("malformed response from {ADDRESS}")),
    ] {
        let body = transport_failure(error.clone(), false);
        assert!(
            !body.contains("13999") && !body.contains("127.0.0.1"),
            "{body}"
        );
        assert!(body.contains("openai/gpt-4o"), "{body}");
    }
}

#[test]
fn exhaustion_and_mid_stream_errors_name_no_address() {
    // Exhaustion: two refused attempts under a policy.
    let mut s = Simulation::new(
        load_str(&yaml(true), &|_| None).unwrap().config,
        common::epoch(),
    );
    s.script("openai/gpt-4o", vec![FakeReply::Refuse]);
    s.script("mistral/pass", vec![FakeReply::Refuse]);
    let r = s.chat(&chat_body("openai/gpt-4o", false)).unwrap();
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.json()["error"]["type"], "retry_exhausted", "{body}");
    assert!(
        !body.contains("refused") && !body.contains(ADDRESS),
        "{body}"
    );
    // Mid-stream: a reset after commit.
    let gw = gateway(false);
    let mut m = machine(&gw, "openai/gpt-4o", true);
    let now = common::epoch();
    m.handle(now, Event::Start);
    drain(&mut m);
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    let attempt = AttemptId(0);
    m.handle(
        now,
        Event::UpstreamHead {
            attempt,
            status: 200,
            headers: h,
        },
    );
    let data = Bytes::from(chunk("a", r#"{"content":"Hi"}"#, None));
    m.handle(now, Event::UpstreamData { attempt, data });
    m.handle(
        now,
        Event::UpstreamFailed {
            attempt,
            error: TransportError::Io(format!("{ADDRESS}: reset")),
        },
    );
    let text: String = drain(&mut m)
        .into_iter()
        .filter_map(|a| match a {
            Action::Forward(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            _ => None,
        })
        .collect();
    assert!(text.contains("stream_interrupted"), "{text}");
    assert!(!text.contains(ADDRESS), "{text}");
}

#[test]
fn an_upstream_that_echoes_its_key_does_not_show_it_to_the_client() {
    let mut s = Simulation::new(
        load_str(&yaml(false), &|_| None).unwrap().config,
        common::epoch(),
    );
    let echo = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {ACCESS_KEY} (org {HEADER_SECRET})","type":"invalid_request_error"}}}}"#
    );
    s.script("openai/gpt-4o", vec![FakeReply::json(401, &echo)]);
    let r = s.chat(&chat_body("openai/gpt-4o", false)).unwrap();
    assert_eq!(r.status, 401, "passed through");
    let body = String::from_utf8_lossy(&r.body);
    assert_clean("a passed-through error", &body);
    assert!(body.contains("Incorrect API key provided: ***"), "{body}");
    // The same inside the exhaustion error's last_error.
    let policy = "    retry_policy: {default_strategy: same_model, default_max_attempts: 1}\n";
    let config = load_str(&yaml_with(policy), &|_| None).unwrap().config;
    let mut s = Simulation::new(config, common::epoch());
    let echo503 = echo.replace("invalid_request_error", "server_error");
    s.script("openai/gpt-4o", vec![FakeReply::json(503, &echo503)]);
    let r = s.chat(&chat_body("openai/gpt-4o", false)).unwrap();
    assert_eq!(r.json()["error"]["total_attempts"], 2);
    let body = String::from_utf8_lossy(&r.body);
    assert_clean("an exhaustion error", &body);
    assert!(body.contains("***"), "{body}");
}
