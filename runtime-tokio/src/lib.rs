//! switchback on tokio: clients are served by hyper, upstream calls run the shared sans-IO
//! codec (`switchback_core::upstream::Exchange`) over tokio sockets, and each chat request's
//! `RetryMachine` is driven by one task. hyper and tokio types stay inside this crate.

mod body;
mod drive;
mod pool;
mod server;
mod tls;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use switchback_core::config::Config;
use switchback_core::gateway::Gateway;
use tokio::sync::oneshot;

/// Options for a running gateway (shared by every runtime).
pub use switchback_core::gateway::ServeOptions as Options;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener address could not be bound (port in use, no permission, ...).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The config names an endpoint the gateway cannot build.
    #[error("invalid gateway config: {0}")]
    Gateway(String),
    /// The TLS client setup failed (e.g. an unreadable `SWITCHBACK_CA_FILE`).
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The tokio runtime or its thread could not be started.
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(std::io::Error),
}

/// A serving gateway. Dropping it shuts it down like [`Running::shutdown`].
#[derive(Debug)]
pub struct Running {
    addrs: Vec<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Binds every listener of `config` (a listener port of 0 means an ephemeral port, used by
/// tests), starts serving on background threads owned by the returned handle, and returns once
/// every listener is accepting. Errors name the address that could not be bound.
pub fn start(config: Config, options: Options) -> Result<Running, StartError> {
    let tls = tls::client_config()?;
    let listener_specs: Vec<(SocketAddr, Duration)> = config
        .listeners
        .iter()
        .map(|l| (SocketAddr::new(l.address, l.port), l.timeout))
        .collect();
    let gateway = Arc::new(Gateway::new(config).map_err(|e| StartError::Gateway(e.0))?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("switchback-tokio")
        .build()
        .map_err(StartError::Runtime)?;

    let mut listeners = Vec::with_capacity(listener_specs.len());
    for (addr, timeout) in listener_specs {
        let bound = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(|l| {
                let _guard = runtime.enter();
                tokio::net::TcpListener::from_std(l)
            })
            .map_err(|source| StartError::Bind { addr, source })?;
        let local = bound
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        listeners.push((bound, local, timeout));
    }
    let addrs = listeners.iter().map(|(_, a, _)| *a).collect();

    let shared = Arc::new(server::Shared {
        gateway,
        options,
        upstream: upstream::Upstream::new(tls),
    });
    let (stop_tx, stop_rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("switchback-tokio-main".into())
        .spawn(move || {
            runtime.block_on(server::serve(listeners, shared, stop_rx));
            // Whatever outlived the drain (streams still open) is cancelled here.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(StartError::Runtime)?;
    Ok(Running {
        addrs,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

impl Running {
    /// The bound addresses, in listener order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }

    /// Graceful stop: stop accepting, let in-flight requests finish up to `drain_timeout`,
    /// then cancel what is left and return. Also done on Drop (best effort).
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
