//! switchback-smol: the smol runtime of the switchback gateway.
//!
//! Glue only (see `docs/design.md`, "Runtimes are glue"): clients are served by async-h1
//! ([`server`]), every chat request runs the core's `RetryMachine` in a drive loop ([`drive`]),
//! and upstream attempts drive the core's sans-IO `Exchange` over TCP or TLS ([`upstream`],
//! [`pool`], [`tls`]). async-h1's `http-types` stay inside this crate.

mod body;
mod drive;
mod pool;
mod server;
mod tls;
mod upstream;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use smol::channel::{Receiver, Sender};
use smol::{Executor, Task};
use switchback_core::config::Config;
use switchback_core::gateway::{Gateway, MAX_REQUEST_BODY_BYTES};

/// Options for a running gateway.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long `shutdown` waits for in-flight requests (default 10 s).
    pub drain_timeout: Duration,
    /// A client must send its whole request head within this (default 10 s); else 408 / close.
    pub header_read_timeout: Duration,
    /// Request bodies above this get 413 before any upstream call
    /// (default [`switchback_core::gateway::MAX_REQUEST_BODY_BYTES`]).
    pub max_request_body: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            drain_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_request_body: MAX_REQUEST_BODY_BYTES,
        }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The config names an endpoint the gateway cannot build.
    #[error("invalid gateway configuration: {0}")]
    Gateway(String),
    /// The TLS client configuration could not be built (e.g. a bad `SWITCHBACK_CA_FILE`).
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The runtime's threads could not be started.
    #[error("cannot start runtime threads: {0}")]
    Runtime(std::io::Error),
}

/// Shared by every task of one running gateway.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) options: Options,
    pub(crate) executor: Arc<Executor<'static>>,
    pub(crate) upstream: upstream::Connector,
    /// Requests being handled (from the head read until the response is written).
    pub(crate) in_flight: AtomicUsize,
    /// Set when shutdown begins: connections close after their current response.
    pub(crate) draining: AtomicBool,
    /// Closed to cancel every remaining task (after the drain timeout).
    pub(crate) kill: Receiver<()>,
}

impl Shared {
    /// Spawns `fut` on the gateway's executor, cancelled when the gateway is killed.
    pub(crate) fn spawn<F>(&self, fut: F) -> Task<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let kill = self.kill.clone();
        self.executor.spawn(smol::future::or(fut, async move {
            let _ = kill.recv().await;
        }))
    }
}

/// A running gateway. Stop it with [`Running::shutdown`] (also done, best effort, on drop).
#[derive(Debug)]
pub struct Running {
    addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    stop_accepting: Option<Sender<()>>,
    accept_tasks: Vec<Task<()>>,
    kill: Option<Sender<()>>,
    stop_threads: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

/// Binds every listener of `config` (a listener port of 0 means an ephemeral port, used by
/// tests), starts serving on background threads owned by the returned handle, and returns once
/// every listener is accepting. Errors name the address that could not be bound.
pub fn start(config: Config, options: Options) -> Result<Running, StartError> {
    let upstream = upstream::Connector::new(tls::client_config()?);
    let listeners_cfg = config.listeners.clone();
    let gateway = Arc::new(Gateway::new(config).map_err(|e| StartError::Gateway(e.0))?);

    let mut listeners = Vec::new();
    for l in &listeners_cfg {
        let addr = SocketAddr::new(l.address, l.port);
        let bound = TcpListener::bind(addr)
            .and_then(smol::net::TcpListener::try_from)
            .map_err(|source| StartError::Bind { addr, source })?;
        let local = bound
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        listeners.push((bound, local, l.timeout));
    }

    let executor = Arc::new(Executor::new());
    let (kill_tx, kill_rx) = smol::channel::bounded::<()>(1);
    let shared = Arc::new(Shared {
        gateway,
        options,
        executor: Arc::clone(&executor),
        upstream,
        in_flight: AtomicUsize::new(0),
        draining: AtomicBool::new(false),
        kill: kill_rx,
    });

    let (stop_threads_tx, stop_threads_rx) = smol::channel::bounded::<()>(1);
    let n_threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8);
    let mut threads = Vec::new();
    for i in 0..n_threads {
        let ex = Arc::clone(&executor);
        let stop = stop_threads_rx.clone();
        let t = std::thread::Builder::new()
            .name(format!("switchback-smol-{i}"))
            .spawn(move || {
                smol::block_on(ex.run(async move {
                    let _ = stop.recv().await;
                }))
            })
            .map_err(StartError::Runtime)?;
        threads.push(t);
    }

    let (stop_accepting_tx, stop_accepting_rx) = smol::channel::bounded::<()>(1);
    let mut addrs = Vec::new();
    let mut accept_tasks = Vec::new();
    for (listener, local, timeout) in listeners {
        addrs.push(local);
        let sh = Arc::clone(&shared);
        let stop = stop_accepting_rx.clone();
        accept_tasks.push(executor.spawn(server::accept_loop(sh, listener, timeout, stop)));
    }
    for a in &addrs {
        tracing::info!(address = %a, "listening");
    }
    Ok(Running {
        addrs,
        shared,
        stop_accepting: Some(stop_accepting_tx),
        accept_tasks,
        kill: Some(kill_tx),
        stop_threads: Some(stop_threads_tx),
        threads,
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
        self.stop();
    }

    fn stop(&mut self) {
        let Some(stop_accepting) = self.stop_accepting.take() else {
            return;
        };
        self.shared.draining.store(true, Ordering::SeqCst);
        drop(stop_accepting);
        for t in self.accept_tasks.drain(..) {
            smol::block_on(t);
        }
        let deadline = Instant::now() + self.shared.options.drain_timeout;
        while self.shared.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let left = self.shared.in_flight.load(Ordering::SeqCst);
        if left > 0 {
            tracing::warn!(
                requests = left,
                "drain timeout reached; cancelling requests"
            );
        }
        // Every spawned task races the kill channel: closing it ends them all.
        drop(self.kill.take());
        std::thread::sleep(Duration::from_millis(50));
        drop(self.stop_threads.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}
