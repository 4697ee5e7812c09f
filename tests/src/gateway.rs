//! Starting a gateway for a test: load a YAML config (with mock ports substituted),
//! move the listener to an ephemeral port, and start it on a runtime.

use std::time::Duration;

use switchback_core::config::{load_str, Config};
use switchback_pump::{Options, Running, StartError};

/// Options a scenario may change; the rest are the gateway's defaults, except a short drain.
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    /// A smaller request body limit than the default 32 MiB.
    pub max_request_body: Option<usize>,
    /// A shorter client header read timeout than the default.
    pub header_read_timeout: Option<Duration>,
    /// A shorter body idle timeout than the default.
    pub body_idle_timeout: Option<Duration>,
    /// Worker threads (default 2, so scenarios cross threads; 1 where a scenario counts
    /// upstream connections, which are pooled per thread).
    pub threads: Option<usize>,
    /// The drain timeout (default 500 ms).
    pub drain_timeout: Option<Duration>,
}

impl GatewayOptions {
    /// The serving options these stand for.
    pub fn options(&self) -> Options {
        let mut o = Options::default();
        if let Some(n) = self.max_request_body {
            o.max_request_body = n;
        }
        if let Some(t) = self.header_read_timeout {
            o.header_read_timeout = t;
        }
        if let Some(t) = self.body_idle_timeout {
            o.body_idle_timeout = t;
        }
        o.threads = Some(self.threads.unwrap_or(2));
        o.drain_timeout = self.drain_timeout.unwrap_or(Duration::from_millis(500));
        o
    }
}

/// A runtime the scenario table runs against: a name and its `start`.
pub trait Runtime {
    /// `smol` or `tokio`.
    fn name() -> &'static str;
    /// The runtime crate's `start`.
    fn start(config: Config, options: Options) -> Result<Running, StartError>;
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

/// Starts `config` on `R`.
///
/// # Panics
/// With the runtime's error, if it cannot start.
pub fn start_on<R: Runtime>(config: Config, options: &GatewayOptions) -> Running {
    R::start(config, options.options())
        .unwrap_or_else(|e| panic!("start the {} gateway: {e}", R::name()))
}

/// The smol runtime.
#[cfg(feature = "smol")]
#[derive(Debug)]
pub struct Smol;

#[cfg(feature = "smol")]
impl Runtime for Smol {
    fn name() -> &'static str {
        "smol"
    }
    fn start(config: Config, options: Options) -> Result<Running, StartError> {
        switchback_smol::start(config, options)
    }
}

/// The tokio runtime.
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct Tokio;

#[cfg(feature = "tokio")]
impl Runtime for Tokio {
    fn name() -> &'static str {
        "tokio"
    }
    fn start(config: Config, options: Options) -> Result<Running, StartError> {
        switchback_tokio::start(config, options)
    }
}
