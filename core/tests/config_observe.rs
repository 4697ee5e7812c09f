//! The observability settings as the loader reads them: `admin_port`, `metrics`, and
//! Plano's `tracing` (spec §13), with their errors and warnings.

use std::net::SocketAddr;

use switchback_core::config::{load_str, ConfigError, Loaded, OtlpProtocol};

const PROVIDERS: &str = "model_providers:\n  - model: mock/ok\n";

fn load_env(yaml: &str, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    let lookup = |k: &str| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    load_str(&format!("{yaml}{PROVIDERS}"), &lookup)
}

fn load(yaml: &str) -> Loaded {
    load_env(yaml, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn error(yaml: &str) -> String {
    load_env(yaml, &[]).expect_err("an error").to_string()
}

fn warnings(l: &Loaded) -> String {
    l.warnings
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn admin_port_binds_beside_the_listener() {
    let l = load("listeners:\n  - {type: model, port: 12000, admin_port: 9901}\n");
    assert_eq!(
        l.config.listeners[0].admin,
        Some("127.0.0.1:9901".parse::<SocketAddr>().unwrap())
    );
    let l = load("listeners:\n  - {type: model, port: 12000, address: 0.0.0.0, admin_port: 9901, admin_address: 127.0.0.1}\n");
    assert_eq!(
        l.config.listeners[0].admin,
        Some("127.0.0.1:9901".parse().unwrap())
    );
    assert!(l.warnings.is_empty(), "{}", warnings(&l));
}

#[test]
fn admin_port_mistakes_are_errors_with_their_path() {
    let e = error("listeners:\n  - {type: model, port: 12000, admin_port: 12000}\n");
    assert!(
        e.contains("listeners[0].admin_port") && e.contains("port of its own"),
        "{e}"
    );
    let e = error("listeners:\n  - {type: model, port: 12000, admin_address: 127.0.0.1}\n");
    assert!(e.contains("needs `admin_port`"), "{e}");
    let e = error("listeners:\n  - {type: model, port: 12000, admin_port: 9901}\n  - {type: model, port: 12001, admin_port: 9902}\n");
    assert!(e.contains("only one listener may set `admin_port`"), "{e}");
    let e = error("listeners:\n  - {type: model, port: 12000, admin_port: 0}\n");
    assert!(e.contains("admin_port"), "{e}");
}

#[test]
fn an_exposed_listener_without_an_admin_port_warns() {
    let l = load("listeners:\n  - {type: model, port: 12000, address: 0.0.0.0}\n");
    assert!(
        warnings(&l).contains("set `admin_port`"),
        "{}",
        warnings(&l)
    );
}

#[test]
fn metrics_can_be_switched_off() {
    assert!(load("").config.metrics.enabled);
    assert!(!load("metrics: {enabled: false}\n").config.metrics.enabled);
    let e = error("metrics: {enabled: nope}\n");
    assert!(e.contains("metrics.enabled"), "{e}");
    let e = error("metrics: {enable: false}\n");
    assert!(e.contains("enable"), "{e}");
}

#[test]
fn plano_tracing_is_honoured() {
    let l = load("tracing:\n  random_sampling: 25\n  opentracing_grpc_endpoint: collector:4317\n  span_attributes:\n    static: {environment: prod}\n    header_prefixes: [X-Tenant-]\n");
    let t = l.config.tracing.expect("tracing on");
    assert_eq!(t.sampling_percent, 25);
    assert_eq!(t.protocol, OtlpProtocol::Grpc);
    assert_eq!(t.endpoint, "http://collector:4317");
    assert_eq!(
        t.static_attributes,
        [("environment".to_owned(), "prod".to_owned())]
    );
    assert_eq!(t.header_prefixes, ["x-tenant-"]);
    let l = load("tracing:\n  random_sampling: 100\n  otlp_http_endpoint: https://otel.example\n");
    let t = l.config.tracing.unwrap();
    assert_eq!(t.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(t.endpoint, "https://otel.example:443/v1/traces");
}

#[test]
fn tracing_defaults_follow_plano() {
    let l = load("tracing: {trace_arch_internal: true}\n");
    assert!(l.config.tracing.is_none());
    let w = warnings(&l);
    assert!(
        w.contains("random_sampling` is 0") && w.contains("trace_arch_internal"),
        "{w}"
    );
    let l = load_env(
        "tracing: {random_sampling: 100}\n",
        &[("OTEL_TRACING_GRPC_ENDPOINT", "http://otel:4317")],
    )
    .unwrap();
    assert_eq!(l.config.tracing.unwrap().endpoint, "http://otel:4317");
    let l = load("tracing: {random_sampling: 100}\n");
    assert!(warnings(&l).contains("names no endpoint"));
    assert_eq!(l.config.tracing.unwrap().endpoint, "http://localhost:4317");
}

#[test]
fn tracing_mistakes_are_errors() {
    let e = error("tracing: {random_sampling: 101, opentracing_grpc_endpoint: x:4317}\n");
    assert!(e.contains("tracing.random_sampling"), "{e}");
    let e = error("tracing: {random_sampling: 1, opentracing_grpc_endpoint: 'http://x:4317/v1'}\n");
    assert!(e.contains("scheme, host and port only"), "{e}");
    let e = error("tracing: {random_sampling: 1, opentracing_grpc_endpoint: 'x:1', otlp_http_endpoint: 'x:2'}\n");
    assert!(e.contains("both set"), "{e}");
    let e = error("tracing: {random_sampling: 1, otlp_http_endpoint: 'ftp://x'}\n");
    assert!(e.contains("not a collector URL"), "{e}");
    let e = error("tracing: {random_sampling: 1, otlp_http_endpoint: '$NOPE'}\n");
    assert!(e.contains("NOPE"), "{e}");
}
