//! `listeners:` → [`Listener`]s (spec §3.1), in the list form or Plano's legacy mapping form.

use super::fields::{duration, field, int_in, text};
use super::raw::{Opt, RawListeners, Scalar, S};
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

/// A listener with all defaults applied, as used when `listeners:` is absent.
pub(crate) fn default_listener() -> Listener {
    Listener {
        name: "model_listener".to_string(),
        address: DEFAULT_ADDRESS,
        port: DEFAULT_PORT,
        timeout: DEFAULT_TIMEOUT,
    }
}

/// Converts `listeners:`; `None` (absent) gives one default listener.
pub(crate) fn convert_listeners(rep: &mut Report, raw: &Opt<RawListeners>) -> Vec<Listener> {
    let Some(raw) = raw else {
        return vec![default_listener()];
    };
    let mut out: Vec<(Listener, String, Pos)> = Vec::new();
    match &raw.value {
        RawListeners::List(items) => {
            if items.is_empty() {
                rep.error(
                    "listeners",
                    Pos::at(raw),
                    "`listeners` is empty; add one `type: model` listener or remove the key to use 127.0.0.1:12000",
                );
            }
            for (i, item) in items.iter().enumerate() {
                let path = index("listeners", i);
                let l = &item.value;
                if let Some(kind) = &l.kind {
                    let k = text(kind);
                    if k != "model" {
                        let msg = if matches!(k.as_str(), "prompt" | "agent") {
                            format!("`type: {k}` listeners are not supported by switchback; only `type: model` listeners are. Remove this listener")
                        } else {
                            format!("`type` must be `model`, not `{k}`")
                        };
                        rep.error(join(&path, "type"), Pos::at(kind), msg);
                        continue;
                    }
                }
                let name = l
                    .name
                    .as_ref()
                    .map(text)
                    .unwrap_or_else(|| "model_listener".to_string());
                if let Some(lis) = common(rep, &path, name, &l.address, &l.port, &l.timeout) {
                    out.push((lis, path, Pos::at(item)));
                }
            }
        }
        RawListeners::Legacy(entries) => {
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
                    "ingress_traffic" => rep.error(
                        path,
                        Pos::at(key),
                        "`ingress_traffic` (prompt listeners) is not supported by switchback; remove it and keep `egress_traffic`, or use the list form with `type: model`",
                    ),
                    other => rep.error(
                        path,
                        Pos::at(key),
                        format!("unknown legacy listener `{other}`; the legacy form only knows `egress_traffic` (use the list form: `listeners: [{{type: model, port: 12000}}]`)"),
                    ),
                }
            }
        }
    }
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
    })
}

fn parse_address(rep: &mut Report, v: &S<Scalar>, path: &str) -> Option<IpAddr> {
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
