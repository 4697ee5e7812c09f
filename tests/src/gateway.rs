//! Starting a gateway for a test: load a YAML config (with mock ports substituted),
//! move the listener to an ephemeral port, and start it on a runtime.

use std::net::SocketAddr;
use std::time::Duration;

use switchback_core::config::{load_str, Config};

/// Options a scenario may change (the rest are the runtime's defaults).
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    /// A smaller request body limit than the default 32 MiB.
    pub max_request_body: Option<usize>,
    /// A shorter client header read timeout than the default.
    pub header_read_timeout: Option<Duration>,
}

/// A gateway serving on some runtime.
pub trait RunningGateway: Send {
    /// The first listener's bound address.
    fn addr(&self) -> SocketAddr;
    /// Graceful stop.
    fn shutdown(self: Box<Self>);
}

/// A runtime the scenario table runs against.
pub trait Runtime {
    /// `smol` or `tokio`.
    fn name() -> &'static str;
    /// Starts `config`; panics with the runtime's error if it cannot.
    fn start(config: Config, options: &GatewayOptions) -> Box<dyn RunningGateway>;
}

/// Replaces every `${NAME}` in `template` with its value from `vars`, loads the result
/// and sets every listener to port 0 (an ephemeral port).
///
/// # Panics
/// If the config does not load (the message lists every error).
pub fn load_config(template: &str, vars: &[(&str, String)]) -> Config {
    let mut yaml = template.to_owned();
    for (k, v) in vars {
        yaml = yaml.replace(&format!("${{{k}}}"), v);
    }
    let loaded = load_str(&yaml, &|_| None)
        .unwrap_or_else(|e| panic!("scenario config does not load:\n{e}\n---\n{yaml}"));
    let mut config = loaded.config;
    for l in &mut config.listeners {
        l.port = 0;
    }
    config
}

/// The smol runtime.
#[cfg(feature = "smol")]
#[derive(Debug)]
pub struct Smol;

#[cfg(feature = "smol")]
impl RunningGateway for switchback_smol::Running {
    fn addr(&self) -> SocketAddr {
        self.local_addrs()[0]
    }
    fn shutdown(self: Box<Self>) {
        switchback_smol::Running::shutdown(*self);
    }
}

#[cfg(feature = "smol")]
impl Runtime for Smol {
    fn name() -> &'static str {
        "smol"
    }
    fn start(config: Config, options: &GatewayOptions) -> Box<dyn RunningGateway> {
        let mut o = switchback_smol::Options::default();
        if let Some(n) = options.max_request_body {
            o.max_request_body = n;
        }
        if let Some(t) = options.header_read_timeout {
            o.header_read_timeout = t;
        }
        o.drain_timeout = Duration::from_millis(500);
        Box::new(switchback_smol::start(config, o).expect("start the smol gateway"))
    }
}

/// The tokio runtime.
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct Tokio;

#[cfg(feature = "tokio")]
impl RunningGateway for switchback_tokio::Running {
    fn addr(&self) -> SocketAddr {
        self.local_addrs()[0]
    }
    fn shutdown(self: Box<Self>) {
        switchback_tokio::Running::shutdown(*self);
    }
}

#[cfg(feature = "tokio")]
impl Runtime for Tokio {
    fn name() -> &'static str {
        "tokio"
    }
    fn start(config: Config, options: &GatewayOptions) -> Box<dyn RunningGateway> {
        let mut o = switchback_tokio::Options::default();
        if let Some(n) = options.max_request_body {
            o.max_request_body = n;
        }
        if let Some(t) = options.header_read_timeout {
            o.header_read_timeout = t;
        }
        o.drain_timeout = Duration::from_millis(500);
        Box::new(switchback_tokio::start(config, o).expect("start the tokio gateway"))
    }
}
