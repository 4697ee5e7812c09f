//! The observability settings (spec §13): a listener's `admin_port`, the top-level
//! `metrics` switch, and Plano's `tracing` section, which switchback honours.

// Address values from `core::net` (plain data, no IO): nothing here opens a socket.
use core::net::{IpAddr, SocketAddr};

use super::env::{expand, ExpandError};
use super::fields::{boolean, int_in, text};
use super::listeners::parse_address;
use super::raw::{RawListener, RawMetrics, RawNode, Scalar, S};
use super::report::{join, Pos, Report};
use super::schema::{check_shape, TRACING};
use super::{Listener, MetricsSettings, OtlpProtocol, TracingSettings};
use crate::upstream::parse_base_url;

/// Where Plano sends spans when its config names no endpoint (its CLI's local listener).
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// The variable Plano reads the endpoint from when the config names none.
pub const GRPC_ENDPOINT_ENV: &str = "OTEL_TRACING_GRPC_ENDPOINT";
/// The OTLP/HTTP path a collector serves traces on (OTLP specification).
pub const OTLP_HTTP_TRACES_PATH: &str = "/v1/traces";

/// A model listener's `admin_port` / `admin_address`: the admin listener's address, or
/// `None` when the listener has none (then `/metrics` and `/v1/status` are served on it).
pub(crate) fn admin_listener(
    rep: &mut Report,
    l: &RawListener,
    path: &str,
    listener_address: IpAddr,
) -> Option<SocketAddr> {
    let Some(port) = &l.admin_port else {
        if let Some(a) = &l.admin_address {
            rep.error(
                join(path, "admin_address"),
                Pos::at(a),
                "`admin_address` needs `admin_port`: set the port the admin listener binds, or remove `admin_address`",
            );
        }
        return None;
    };
    let port = u16::try_from(int_in(rep, port, &join(path, "admin_port"), 1, 65535)?).ok()?;
    let address = match &l.admin_address {
        Some(a) => parse_address(rep, a, &join(path, "admin_address"))?,
        None => listener_address,
    };
    Some(SocketAddr::new(address, port))
}

/// At most one admin listener, on a port no model listener uses; a model listener
/// exposed beyond loopback without one gets a warning (its `/metrics` and `/v1/status`
/// would be public).
pub(crate) fn check_admin_listeners(rep: &mut Report, listeners: &[(Listener, String, Pos)]) {
    let admins: Vec<&(Listener, String, Pos)> = listeners
        .iter()
        .filter(|(l, _, _)| l.admin.is_some())
        .collect();
    if let Some((_, path, pos)) = admins.get(1) {
        rep.error(
            join(path, "admin_port"),
            *pos,
            format!("only one listener may set `admin_port` ({} already does): `/metrics` and `/v1/status` describe the whole gateway, so one admin listener serves them", admins[0].1),
        );
    }
    for (l, path, pos) in listeners {
        if let Some(admin) = l.admin {
            if let Some((_, other, _)) = listeners.iter().find(|(o, _, _)| o.port == admin.port()) {
                rep.error(
                    join(path, "admin_port"),
                    *pos,
                    format!("admin_port {} is the port of {other}; give the admin listener a port of its own", admin.port()),
                );
            }
        }
    }
    if admins.is_empty() {
        for (l, path, pos) in listeners {
            if !l.address.is_loopback() {
                rep.warn(
                    path,
                    *pos,
                    format!("this listener binds {}, and without `admin_port` it also serves `/metrics` and `/v1/status` (model names, blocks, counters) to everyone who can reach it; set `admin_port` (and `admin_address: 127.0.0.1`) to keep them on a separate listener", l.address),
                );
            }
        }
    }
}

/// `metrics: {enabled}`.
pub(crate) fn convert_metrics(rep: &mut Report, raw: &S<RawMetrics>) -> MetricsSettings {
    let mut out = MetricsSettings::default();
    if let Some(v) = &raw.value.enabled {
        if let Some(b) = boolean(rep, v, "metrics.enabled") {
            out.enabled = b;
        }
    }
    out
}

/// Plano's `tracing:`: `None` when it turns nothing on (no section, or `random_sampling`
/// 0, as in Plano). Keys switchback does not honour are named in warnings.
pub(crate) fn convert_tracing(
    rep: &mut Report,
    node: &S<RawNode>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<TracingSettings> {
    check_shape(rep, node, "tracing", &TRACING);
    let RawNode::Map(entries) = &node.value else {
        return None;
    };
    let scalar = |key: &str| -> Option<S<Scalar>> {
        entries
            .iter()
            .find(|(k, _)| k.value == key)
            .and_then(|(_, v)| match &v.value {
                RawNode::Scalar(s) => Some(S {
                    value: s.clone(),
                    referenced: v.referenced,
                    defined: v.defined,
                }),
                _ => None,
            })
    };
    for (k, v) in entries {
        let why = match k.value.as_str() {
            "trace_arch_internal" => "switchback has no internal hops to trace; every request span and its attempt spans are exported",
            "exporters" => "switchback exports spans over OTLP only (`opentracing_grpc_endpoint` or `otlp_http_endpoint`); no PostHog events are sent",
            _ => continue,
        };
        let path = join("tracing", &k.value);
        rep.warn(&path, Pos::at(v), super::plano::ignored(&path, why));
    }
    let sampling = match scalar("random_sampling") {
        Some(v) => int_in(rep, &v, "tracing.random_sampling", 0, 100)? as u32,
        None => 0,
    };
    let grpc = scalar("opentracing_grpc_endpoint");
    let http = scalar("otlp_http_endpoint");
    if let (Some(_), Some(h)) = (&grpc, &http) {
        rep.error(
            "tracing.otlp_http_endpoint",
            Pos::at(h),
            "`opentracing_grpc_endpoint` and `otlp_http_endpoint` are both set; spans go to one collector, so keep the one your collector serves (OTLP/gRPC usually on port 4317, OTLP/HTTP on 4318)",
        );
        return None;
    }
    if sampling == 0 {
        rep.warn(
            "tracing",
            Pos::at(node),
            "`tracing.random_sampling` is 0 (Plano's default), so no request is traced and no span is exported; set `random_sampling: 100` to trace every request",
        );
        return None;
    }
    let (protocol, path, written) = match (grpc, http) {
        (_, Some(h)) => (
            OtlpProtocol::HttpProtobuf,
            "tracing.otlp_http_endpoint",
            Some(h),
        ),
        (g, None) => (OtlpProtocol::Grpc, "tracing.opentracing_grpc_endpoint", g),
    };
    let endpoint = match &written {
        Some(v) => match expand(&text(v), env) {
            Ok(e) => e,
            Err(ExpandError::Unset(name)) | Err(ExpandError::Malformed(name)) => {
                rep.error(path, Pos::at(v), format!("the endpoint refers to `${name}`, which is not set (or not a valid variable reference); set it or write the URL"));
                return None;
            }
        },
        None => match env(GRPC_ENDPOINT_ENV).filter(|e| !e.is_empty()) {
            Some(e) => e,
            None => {
                rep.warn(
                    "tracing",
                    Pos::at(node),
                    format!("`tracing` names no endpoint and ${GRPC_ENDPOINT_ENV} is not set, so spans go to {DEFAULT_GRPC_ENDPOINT} over OTLP/gRPC, as in Plano; set `opentracing_grpc_endpoint` (or `otlp_http_endpoint`) to choose the collector"),
                );
                DEFAULT_GRPC_ENDPOINT.to_string()
            }
        },
    };
    let pos = written.as_ref().map_or_else(|| Pos::at(node), Pos::at);
    let endpoint = normalize_endpoint(&endpoint, protocol).map_err(|why| {
        rep.error(path, pos, why);
    });
    let endpoint = endpoint.ok()?;
    let (static_attributes, header_prefixes) = span_attributes(entries);
    Some(TracingSettings {
        sampling_percent: sampling,
        protocol,
        endpoint,
        static_attributes,
        header_prefixes,
    })
}

/// The collector URL with a scheme and, for OTLP/HTTP, the traces path: `host:4317`
/// becomes `http://host:4317`; an OTLP/HTTP URL without a path gets `/v1/traces`.
pub(crate) fn normalize_endpoint(written: &str, protocol: OtlpProtocol) -> Result<String, String> {
    let written = written.trim();
    let url = if written.contains("://") {
        written.to_string()
    } else {
        format!("http://{written}")
    };
    let (origin, path) = parse_base_url(&url).map_err(|e| {
        format!("`{written}` is not a collector URL ({e}); write it like http://collector:4317")
    })?;
    let scheme = match origin.scheme {
        crate::upstream::Scheme::Http => "http",
        crate::upstream::Scheme::Https => "https",
    };
    let base = format!("{scheme}://{}:{}", origin.bracketed_host(), origin.port);
    match protocol {
        OtlpProtocol::Grpc if path.is_empty() || path == "/" => Ok(base),
        OtlpProtocol::Grpc => Err(format!(
            "an OTLP/gRPC endpoint is a scheme, host and port only (as in Plano), but `{written}` has the path `{path}`; remove it"
        )),
        OtlpProtocol::HttpProtobuf if path.is_empty() || path == "/" => {
            Ok(format!("{base}{OTLP_HTTP_TRACES_PATH}"))
        }
        OtlpProtocol::HttpProtobuf => Ok(format!("{base}{path}")),
    }
}

/// `span_attributes`: its `static` pairs and its `header_prefixes` (lower-cased).
fn span_attributes(entries: &[(S<String>, S<RawNode>)]) -> (Vec<(String, String)>, Vec<String>) {
    let Some((_, node)) = entries.iter().find(|(k, _)| k.value == "span_attributes") else {
        return (Vec::new(), Vec::new());
    };
    let RawNode::Map(parts) = &node.value else {
        return (Vec::new(), Vec::new());
    };
    let scalar_text = |n: &S<RawNode>| match &n.value {
        RawNode::Scalar(s) => Some(text(&S {
            value: s.clone(),
            referenced: n.referenced,
            defined: n.defined,
        })),
        _ => None,
    };
    let mut statics = Vec::new();
    let mut prefixes = Vec::new();
    for (k, v) in parts {
        match (k.value.as_str(), &v.value) {
            ("static", RawNode::Map(pairs)) => {
                for (name, value) in pairs {
                    if let Some(t) = scalar_text(value) {
                        statics.push((name.value.clone(), t));
                    }
                }
            }
            ("header_prefixes", RawNode::Seq(items)) => {
                prefixes.extend(
                    items
                        .iter()
                        .filter_map(scalar_text)
                        .map(|p| p.to_ascii_lowercase()),
                );
            }
            _ => {}
        }
    }
    (statics, prefixes)
}
