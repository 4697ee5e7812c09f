//! `listeners:` → [`Listener`]s (spec §3.1), in the list form or Plano's legacy mapping form.

use super::fields::{count, duration, field, int_in, text};
use super::raw::{Opt, RawListener, RawListeners, RawNode, Scalar, S};
use super::report::{index, join, Pos, Report};
use super::Listener;
use core::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// The port a listener binds when the file gives none.
pub const DEFAULT_PORT: u16 = 12000;
/// The overall request deadline when the file gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// The address a listener binds when the file gives none (not exposed, spec §3.1).
pub const DEFAULT_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The name of Plano's implicit model listener (`convert_legacy_listeners`).
pub const IMPLICIT_LISTENER: &str = "egress_traffic";

/// Plano's implicit model listener: served when the config writes no model listener
/// (spec §10). Plano binds 0.0.0.0; switchback keeps its not-exposed default address.
pub(crate) fn implicit_listener() -> Listener {
    Listener {
        name: IMPLICIT_LISTENER.to_string(),
        address: DEFAULT_ADDRESS,
        port: DEFAULT_PORT,
        timeout: DEFAULT_TIMEOUT,
        max_retries: None,
        admin: None,
    }
}

/// The listener used when the file has no `listeners` key (spec §3.1).
pub(crate) fn default_listener() -> Listener {
    Listener {
        name: "model_listener".to_string(),
        ..implicit_listener()
    }
}

/// Converts `listeners:`. Prompt and agent listeners (and the legacy `ingress_traffic`)
/// are skipped with a warning; with no model listener left, Plano's implicit one is
/// served, with a warning. Filters on a model listener are refused: skipping them would
/// send unfiltered requests on.
pub(crate) fn convert_listeners(rep: &mut Report, raw: &Opt<RawListeners>) -> Vec<Listener> {
    let mut out: Vec<(Listener, String, Pos)> = Vec::new();
    let mut retries: Vec<(Option<u32>, String, Pos)> = Vec::new();
    match raw.as_ref().map(|r| &r.value) {
        None => {}
        Some(RawListeners::List(items)) => {
            for (i, item) in items.iter().enumerate() {
                let path = index("listeners", i);
                let l = &item.value;
                let kind = l.kind.as_ref().map(text);
                match kind.as_deref() {
                    None | Some("model") => {}
                    Some(k @ ("prompt" | "agent")) => {
                        skipped_listener(rep, l, &path, k, Pos::at(item));
                        continue;
                    }
                    Some(k) => {
                        if let Some(v) = &l.kind {
                            rep.error(
                                join(&path, "type"),
                                Pos::at(v),
                                format!("`type` must be `model`, `prompt` or `agent`, not `{k}`"),
                            );
                        }
                        continue;
                    }
                }
                model_listener_keys(rep, l, &path);
                let name = l
                    .name
                    .as_ref()
                    .map(text)
                    .unwrap_or_else(|| "model_listener".to_string());
                let max_retries = l
                    .max_retries
                    .as_ref()
                    .and_then(|v| count(rep, v, &join(&path, "max_retries")));
                if let Some(v) = &l.max_retries {
                    retries.push((max_retries, join(&path, "max_retries"), Pos::at(v)));
                } else {
                    retries.push((None, path.clone(), Pos::at(item)));
                }
                if let Some(mut lis) = common(rep, &path, name, &l.address, &l.port, &l.timeout) {
                    lis.max_retries = max_retries.filter(|n| *n > 0);
                    lis.admin = super::observe::admin_listener(rep, l, &path, lis.address);
                    out.push((lis, path, Pos::at(item)));
                }
            }
        }
        Some(RawListeners::Legacy(entries)) => {
            for (key, value) in entries {
                let path = join("listeners", &key.value);
                match key.value.as_str() {
                    "egress_traffic" => {
                        let l = &value.value;
                        if let Some(f) = &l.message_format {
                            if text(f) != "openai" {
                                rep.error(
                                    join(&path, "message_format"),
                                    Pos::at(f),
                                    "`message_format` must be `openai` (the only format switchback serves)",
                                );
                            }
                        }
                        let name = key.value.clone();
                        if let Some(lis) = common(rep, &path, name, &l.address, &l.port, &l.timeout) {
                            out.push((lis, path, Pos::at(value)));
                        }
                    }
                    "ingress_traffic" => rep.warn(
                        &path,
                        Pos::at(key),
                        format!("{path} (Plano's prompt listener) is skipped: switchback serves model listeners only, so prompt targets, guards and function calling are not run there"),
                    ),
                    other => rep.error(
                        path,
                        Pos::at(key),
                        format!("unknown legacy listener `{other}`; the legacy form only knows `egress_traffic` and `ingress_traffic` (or use the list form: `listeners: [{{type: model, port: 12000}}]`)"),
                    ),
                }
            }
        }
    }
    check_max_retries(rep, &retries);
    let Some(raw) = raw else {
        // No `listeners` key at all: switchback's documented default (spec §3.1). Plano
        // requires the key, so no Plano config lands here.
        return vec![default_listener()];
    };
    if out.is_empty() && rep.errors.is_empty() {
        rep.warn(
            "listeners",
            Pos::at(raw),
            format!("the config has no model listener, so switchback serves Plano's implicit model listener `{IMPLICIT_LISTENER}` on {DEFAULT_ADDRESS}:{DEFAULT_PORT} (timeout 300s), as Plano does; add a `type: model` listener to choose the port and address"),
        );
        return vec![implicit_listener()];
    }
    super::observe::check_admin_listeners(rep, &out);
    for (i, (l, path, pos)) in out.iter().enumerate() {
        if let Some((_, first, _)) = out[..i].iter().find(|(o, _, _)| o.port == l.port) {
            rep.error(
                join(path, "port"),
                *pos,
                format!(
                    "port {} is already used by {first}; give each listener its own port",
                    l.port
                ),
            );
        }
    }
    out.into_iter().map(|(l, _, _)| l).collect()
}

/// A prompt or agent listener: its Plano keys are checked, then it is skipped.
fn skipped_listener(rep: &mut Report, l: &RawListener, path: &str, kind: &str, pos: Pos) {
    check_listener_shapes(rep, l, path);
    let name = l
        .name
        .as_ref()
        .map(|n| format!(" `{}`", text(n)))
        .unwrap_or_default();
    let what = if kind == "agent" {
        "agent orchestration, its agents and their filters are not run"
    } else {
        "prompt targets, guards and function calling are not run"
    };
    rep.warn(
        path,
        pos,
        format!("{path} (the `type: {kind}` listener{name}) is skipped: switchback serves model listeners only, so {what}. Model requests go to the model listener"),
    );
}

/// Keys a model listener may carry: filters are refused, the orchestration keys named.
fn model_listener_keys(rep: &mut Report, l: &RawListener, path: &str) {
    check_listener_shapes(rep, l, path);
    for (key, v) in [
        ("input_filters", &l.input_filters),
        ("output_filters", &l.output_filters),
    ] {
        if let Some(v) = v {
            let what = if key == "input_filters" {
                "requests"
            } else {
                "responses"
            };
            rep.error(
                join(path, key),
                Pos::at(v),
                format!("`{key}` on a model listener is not supported: switchback runs no filter chains, and skipping them would pass unfiltered {what} on (a PII anonymiser or guardrail would silently do nothing). Remove `{key}` to serve without them, or keep Plano for this listener"),
            );
        }
    }
    for (key, v) in [("router", &l.router), ("agents", &l.agents)] {
        if let Some(v) = v {
            let p = join(path, key);
            rep.warn(
                &p,
                Pos::at(v),
                super::plano::ignored(&p, "it configures agent orchestration, which switchback does not run; model requests are routed by their `model`"),
            );
        }
    }
}

fn check_listener_shapes(rep: &mut Report, l: &RawListener, path: &str) {
    use super::schema::{check_shape, Shape, FILTER_IDS, LISTENER_AGENTS};
    let shapes: [(&str, &Opt<RawNode>, &Shape); 4] = [
        ("router", &l.router, &Shape::Scalar),
        ("agents", &l.agents, &LISTENER_AGENTS),
        ("input_filters", &l.input_filters, &FILTER_IDS),
        ("output_filters", &l.output_filters, &FILTER_IDS),
    ];
    for (key, v, shape) in shapes {
        if let Some(v) = v {
            check_shape(rep, v, &join(path, key), shape);
        }
    }
}

/// `max_retries` is applied to provider entries, which every model listener shares, so
/// the model listeners must agree on it.
fn check_max_retries(rep: &mut Report, retries: &[(Option<u32>, String, Pos)]) {
    let Some((first, first_path, _)) = retries.first() else {
        return;
    };
    for (n, path, pos) in &retries[1..] {
        if n.unwrap_or(0) != first.unwrap_or(0) {
            rep.error(
                path,
                *pos,
                format!("the model listeners disagree on `max_retries` ({first_path} has {}, this one {}); switchback applies it to every provider entry, so give every model listener the same `max_retries`, or write a `retry_policy` on the providers instead", first.unwrap_or(0), n.unwrap_or(0)),
            );
            return;
        }
    }
}

/// The `max_retries` the model listeners agree on (`None` or 0: no retries mapped).
pub(crate) fn listener_max_retries(listeners: &[Listener]) -> Option<u32> {
    listeners.iter().find_map(|l| l.max_retries)
}

fn common(
    rep: &mut Report,
    path: &str,
    name: String,
    address: &Opt<Scalar>,
    port: &Opt<Scalar>,
    timeout: &Opt<Scalar>,
) -> Option<Listener> {
    let address = match address {
        Some(a) => parse_address(rep, a, &join(path, "address"))?,
        None => DEFAULT_ADDRESS,
    };
    let port = match port {
        Some(p) => u16::try_from(int_in(rep, p, &join(path, "port"), 1, 65535)?).ok()?,
        None => DEFAULT_PORT,
    };
    let timeout = match timeout {
        Some(t) => duration(rep, t, &join(path, "timeout"), false)?,
        None => DEFAULT_TIMEOUT,
    };
    Some(Listener {
        name,
        address,
        port,
        timeout,
        max_retries: None,
        admin: None,
    })
}

pub(crate) fn parse_address(rep: &mut Report, v: &S<Scalar>, path: &str) -> Option<IpAddr> {
    let t = text(v);
    if t == "localhost" {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    match t.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            rep.error(
                path,
                Pos::at(v),
                format!(
                    "`{}` must be an IP address such as 127.0.0.1 or 0.0.0.0, not `{t}`",
                    field(path)
                ),
            );
            None
        }
    }
}
