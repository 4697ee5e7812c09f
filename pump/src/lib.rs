//! switchback-pump: the async byte pump of the switchback gateway, written once.
//!
//! The sans-IO core decides everything ([`switchback_core::connection::Connection`] is the
//! whole per-connection protocol); this crate only moves bytes and time between it and
//! sockets, against the small [`Runtime`] trait that `runtime-smol` and `runtime-tokio`
//! implement (the shape of quinn: all protocol in quinn-proto, one async layer written
//! against a runtime trait, a few kilobytes of adapter per runtime). It depends on no async
//! runtime.
//!
//! Threads (spec §8): [`start`] runs `threads` worker threads, each with its own
//! single-threaded executor, its own idle upstream pool and its own copy of every listening
//! socket (a `dup` of one bound socket, so there is one port owner and no `SO_REUSEPORT`
//! sharing with other processes). A connection is served by the thread that accepted it,
//! and its upstream attempts are polled by the same task: nothing crosses threads on the
//! request path but the gateway's shared block table. With `state.redis` (spec §14) the first
//! worker also runs one task that shares the block table through Redis (`state_sync.rs`).

mod balance;
mod conn;
mod export;
mod lazy_timer;
mod runtime;
mod signal;
mod state_sync;
mod tls;
mod tls_stream;
mod worker;

pub use runtime::{connect, ConnectError, Io, Listener, PlainOrTls, Runtime, Timer, Upstream};
pub use switchback_core::gateway::ServeOptions as Options;
pub use tls::{TlsSetup, CA_FILE_ENV};
pub use tls_stream::TlsStream;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use switchback_core::config::Config;
use switchback_core::gateway::{Gateway, Surface};
use switchback_core::reload::LiveGateway;
use switchback_core::server::ServerLimits;

use signal::Stop;
use worker::Worker;

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
    /// A worker thread or its executor could not be started.
    #[error("cannot start the {runtime} runtime: {source}")]
    Runtime {
        runtime: &'static str,
        source: std::io::Error,
    },
}

/// A serving gateway, on whichever runtime started it. Stop it with
/// [`shutdown`](Running::shutdown) (also done on drop).
#[derive(Debug)]
pub struct Running {
    runtime: &'static str,
    addrs: Vec<SocketAddr>,
    admin: Option<SocketAddr>,
    live: Arc<LiveGateway>,
    stop: Arc<Stop>,
    drain_timeout: Duration,
    threads: Vec<JoinHandle<()>>,
}

impl Running {
    /// The bound addresses of the model listeners, in listener order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }

    /// The bound address of the admin listener (`admin_port`), if the config has one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The gateway serving new requests now.
    pub fn gateway(&self) -> Arc<Gateway> {
        self.live.current()
    }

    /// Serves `config` from now on (spec §13): new requests, on new and kept-alive
    /// connections, use it; requests in flight finish on the old one; the new gateway
    /// takes over the old one's blocks (of models that still exist), budgets, body
    /// memory and metrics. Refused, with the old config still serving, when the config
    /// cannot be built or changes the listeners (addresses, ports, `admin_port`), which
    /// would need sockets rebound: restart for those.
    pub fn reload(&self, config: Config) -> Result<(), String> {
        let old = self.live.current();
        let result = reload_check(old.config(), &config)
            .and_then(|()| Gateway::succeed(config, &old).map_err(|e| e.0));
        match result {
            Ok(gw) => {
                let generation = gw.generation();
                self.live.replace(Arc::new(gw));
                old.metrics().record_reload(true);
                tracing::info!(generation, "config reloaded; new requests use it");
                Ok(())
            }
            Err(e) => {
                old.metrics().record_reload(false);
                Err(e)
            }
        }
    }

    /// Counts a reload refused before it reached [`reload`](Self::reload) (the new file
    /// did not load), for `switchback_config_reloads_total{result="failed"}`.
    pub fn reload_refused(&self) {
        self.live.current().metrics().record_reload(false);
    }

    /// The runtime serving (`smol`, `tokio`).
    pub fn runtime(&self) -> &'static str {
        self.runtime
    }

    /// Graceful stop (spec §8): stop accepting, let in-flight requests finish up to the
    /// drain timeout, end the streams still open with an in-band error event, close.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.trigger(Instant::now() + self.drain_timeout);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Binds every listener of `config` (port 0 picks an ephemeral port), starts the worker
/// threads on runtime `R`, and returns once every worker is accepting.
pub fn start<R: Runtime>(config: Config, options: Options) -> Result<Running, StartError> {
    let tls = TlsSetup::from_env()?;
    let specs = listener_specs(&config);
    let gateway = Arc::new(Gateway::new(config).map_err(|e| StartError::Gateway(e.0))?);
    let live = LiveGateway::new(gateway);
    // The shared-state task keeps the block table in step; reloads keep that table and
    // hand the task the new gateway's rules for records from other replicas.
    let mut state_sync = state_sync::prepare(&live, &tls);
    let mut bound = Vec::with_capacity(specs.len());
    for spec in specs {
        let addr = spec.addr;
        let bind_err = |source| StartError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        bound.push((listener, local, spec));
    }
    let addrs: Vec<SocketAddr> = bound
        .iter()
        .filter(|(_, _, s)| s.surface == Surface::Public)
        .map(|(_, a, _)| *a)
        .collect();
    let admin = bound
        .iter()
        .find(|(_, _, s)| s.surface == Surface::Admin)
        .map(|(_, a, _)| *a);
    let threads = options.threads.unwrap_or_else(default_threads).max(1);
    let limits = ServerLimits {
        max_body_bytes: options.max_request_body,
        head_timeout: options.header_read_timeout,
        body_idle_timeout: options.body_idle_timeout,
        ..ServerLimits::default()
    };
    let stop = Arc::new(Stop::new(threads));
    let balance = Arc::new(balance::Balance::new(threads));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), StartError>>();
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let mut listeners = Vec::with_capacity(bound.len());
        for (l, addr, spec) in &bound {
            let copy = l.try_clone().map_err(|source| StartError::Bind {
                addr: *addr,
                source,
            })?;
            listeners.push((copy, *spec));
        }
        let plan = ThreadPlan {
            index: i,
            live: Arc::clone(&live),
            tls: tls.clone(),
            limits,
            listeners,
            stop: Arc::clone(&stop),
            balance: Arc::clone(&balance),
            ready: ready_tx.clone(),
            // The first worker also runs the shared-state task, if the config has one.
            sync: state_sync.take(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("switchback-{}-{i}", R::NAME))
            .spawn(move || serve_thread::<R>(plan));
        match spawned {
            Ok(h) => handles.push(h),
            Err(source) => {
                stop.trigger(Instant::now());
                return Err(StartError::Runtime {
                    runtime: R::NAME,
                    source,
                });
            }
        }
    }
    drop(ready_tx);
    let mut running = Running {
        runtime: R::NAME,
        addrs,
        admin,
        live,
        stop,
        drain_timeout: options.drain_timeout,
        threads: handles,
    };
    for _ in 0..threads {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                running.drain_timeout = Duration::ZERO;
                return Err(e);
            }
            Err(_) => {
                running.drain_timeout = Duration::ZERO;
                return Err(StartError::Runtime {
                    runtime: R::NAME,
                    source: std::io::Error::other("a worker thread exited while starting"),
                });
            }
        }
    }
    for a in &running.addrs {
        tracing::info!(address = %a, runtime = R::NAME, threads, "listening");
    }
    if let Some(a) = running.admin {
        tracing::info!(address = %a, "admin listener (/metrics, /v1/status, /healthz)");
    }
    Ok(running)
}

/// One socket to listen on: a model listener (its index in the config) or the admin
/// listener of the model listener that names it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListenerSpec {
    pub(crate) addr: SocketAddr,
    /// The config listener whose `timeout` its requests get.
    pub(crate) index: usize,
    pub(crate) surface: Surface,
}

fn listener_specs(config: &Config) -> Vec<ListenerSpec> {
    let mut specs: Vec<ListenerSpec> = config
        .listeners
        .iter()
        .enumerate()
        .map(|(index, l)| ListenerSpec {
            addr: SocketAddr::new(l.address, l.port),
            index,
            surface: Surface::Public,
        })
        .collect();
    for (index, l) in config.listeners.iter().enumerate() {
        if let Some(addr) = l.admin {
            specs.push(ListenerSpec {
                addr,
                index,
                surface: Surface::Admin,
            });
        }
    }
    specs
}

/// A reload may change everything but the sockets and the shared-state session: the
/// listeners' names, addresses, ports and admin ports must stay (their `timeout` may
/// change, for connections accepted after the reload), and so must `state` (its Redis
/// session is opened once, at start).
fn reload_check(old: &Config, new: &Config) -> Result<(), String> {
    if old.state != new.state {
        return Err("the new config changes `state`; the shared-state session is opened at start, so restart the gateway to change it".to_owned());
    }
    let shape = |c: &Config| -> Vec<(String, SocketAddr, Option<SocketAddr>)> {
        c.listeners
            .iter()
            .map(|l| (l.name.clone(), SocketAddr::new(l.address, l.port), l.admin))
            .collect()
    };
    if shape(old) == shape(new) {
        return Ok(());
    }
    let show = |c: &Config| {
        shape(c)
            .iter()
            .map(|(name, a, admin)| match admin {
                Some(x) => format!("{name} on {a} (admin {x})"),
                None => format!("{name} on {a}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(format!(
        "the new config changes the listeners ({} → {}); a reload does not rebind sockets, so restart the gateway to change them",
        show(old),
        show(new)
    ))
}

/// What one worker thread is started with.
struct ThreadPlan {
    index: usize,
    live: Arc<LiveGateway>,
    tls: TlsSetup,
    limits: ServerLimits,
    /// Its copies of the listening sockets, each with what it listens for.
    listeners: Vec<(std::net::TcpListener, ListenerSpec)>,
    stop: Arc<Stop>,
    /// The connection counts of every worker, for spreading connections.
    balance: Arc<balance::Balance>,
    ready: mpsc::Sender<Result<(), StartError>>,
    sync: Option<state_sync::Prepared>,
}

/// One worker thread: registers its listeners with the runtime, reports ready, serves.
fn serve_thread<R: Runtime>(plan: ThreadPlan) {
    let ThreadPlan {
        index,
        live,
        tls,
        limits,
        listeners,
        stop,
        balance,
        ready,
        sync,
    } = plan;
    let ready_on_error = ready.clone();
    // However this thread ends, by a panic included, its worker stops counting in the
    // connection balance.
    let _retire = balance::RetireOnDrop {
        balance: Arc::clone(&balance),
        worker: index,
    };
    let served = R::block_on(async move {
        let mut registered = Vec::with_capacity(listeners.len());
        for (l, spec) in listeners {
            let addr = l.local_addr().ok();
            match R::listener(l) {
                Ok(l) => registered.push((l, spec)),
                Err(source) => {
                    let addr = addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                    let _ = ready.send(Err(StartError::Bind { addr, source }));
                    return;
                }
            }
        }
        let _ = ready.send(Ok(()));
        drop(ready);
        if let Some(sync) = sync {
            R::spawn_local(state_sync::run::<R>(sync));
        }
        worker::run(
            Worker::<R>::new(index, live, tls, limits, balance),
            registered,
            stop,
        )
        .await;
    });
    if let Err(source) = served {
        let _ = ready_on_error.send(Err(StartError::Runtime {
            runtime: R::NAME,
            source,
        }));
    }
}

/// The CPUs this process may run on (its affinity mask, and cgroup quota, as the standard
/// library reads them).
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
