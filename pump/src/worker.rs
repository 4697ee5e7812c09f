//! One worker thread: its accept loops, its connections, and what they share (the idle
//! upstream pool, a read buffer, the drain). Nothing here crosses threads but the gateway.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use switchback_core::connection::ConnectionSettings;
use switchback_core::gateway::Gateway;
use switchback_core::metrics::MetricsShard;
use switchback_core::reload::LiveGateway;
use switchback_core::server::ServerLimits;
use switchback_core::trace::{SpanQueue, SpanRecord};
use switchback_core::upstream::IdlePool;

use crate::balance::Balance;
use crate::conn::ConnTask;
use crate::runtime::{Listener, Runtime, Timer, Upstream};
use crate::signal::{Drain, Stop};
use crate::tls::TlsSetup;
use crate::ListenerSpec;

/// Bytes read from a socket in one go; shared by every connection of the worker, since a
/// read is handed to the core at once.
const READ_BUF_BYTES: usize = 64 * 1024;
/// After the drain deadline, how long connections get to write their last bytes.
const FINAL_FLUSH: Duration = Duration::from_secs(1);
/// How long an accept loop pauses after a failed accept (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What a worker's tasks share.
pub(crate) struct Worker<R: Runtime> {
    /// The gateway being served, replaced on reload.
    pub(crate) live: Arc<LiveGateway>,
    /// The gateway new connections start with, and the `live` version it is of.
    current: RefCell<(Arc<Gateway>, u64)>,
    /// This worker's metrics shard: every connection of the thread records here.
    pub(crate) shard: Arc<MetricsShard>,
    pub(crate) tls: TlsSetup,
    /// `tls` offering `h2`, for OTLP/gRPC over TLS.
    pub(crate) tls_h2: TlsSetup,
    pub(crate) limits: ServerLimits,
    /// Finished spans waiting for the exporter (bounded; see `export.rs`).
    pub(crate) spans: RefCell<SpanQueue>,
    /// The exporter task, while it waits for spans.
    pub(crate) exporter: RefCell<Option<Waker>>,
    pub(crate) pool: RefCell<IdlePool<Upstream<R>>>,
    pub(crate) scratch: RefCell<Box<[u8]>>,
    pub(crate) drain: Drain,
    all_closed: RefCell<Option<Waker>>,
    /// This worker's index, and every worker's connection counts (`balance.rs`).
    index: usize,
    balance: Arc<Balance>,
}

impl<R: Runtime> Worker<R> {
    pub(crate) fn new(
        index: usize,
        live: Arc<LiveGateway>,
        tls: TlsSetup,
        limits: ServerLimits,
        balance: Arc<Balance>,
    ) -> Rc<Self> {
        let gateway = live.current();
        let version = live.version();
        Rc::new(Worker {
            shard: gateway.metrics().shard(index),
            current: RefCell::new((gateway, version)),
            live,
            tls_h2: tls.for_h2(),
            tls,
            limits,
            spans: RefCell::new(SpanQueue::default()),
            exporter: RefCell::new(None),
            pool: RefCell::new(IdlePool::new()),
            scratch: RefCell::new(vec![0; READ_BUF_BYTES].into_boxed_slice()),
            drain: Drain::default(),
            all_closed: RefCell::new(None),
            index,
            balance,
        })
    }

    /// The gateway a new connection starts with (one atomic load unless a reload
    /// happened), and the `live` version it is of.
    pub(crate) fn gateway(&self) -> (Arc<Gateway>, u64) {
        let mut current = self.current.borrow_mut();
        let (gw, seen) = &mut *current;
        self.live.refresh(gw, seen);
        (Arc::clone(gw), *seen)
    }

    /// Queues a connection's finished spans for the exporter (dropping, and counting,
    /// what does not fit) and wakes it.
    pub(crate) fn queue_spans(&self, spans: Vec<SpanRecord>) {
        let dropped = self.spans.borrow_mut().push(spans);
        if dropped > 0 {
            self.shard.record_spans(0, dropped as u64, 0);
        }
        if let Some(w) = self.exporter.borrow_mut().take() {
            w.wake();
        }
    }

    /// A connection task started.
    pub(crate) fn opened(&self) {
        self.balance.opened(self.index);
    }

    /// The connection tasks this worker runs (its count in the balance).
    fn open(&self) -> usize {
        self.balance.open(self.index)
    }

    /// A connection task ended.
    pub(crate) fn closed(&self) {
        self.balance.closed(self.index);
        if self.open() == 0 {
            if let Some(w) = self.all_closed.borrow_mut().take() {
                w.wake();
            }
        }
    }
}

/// Serves `listeners` until `stop`, then drains.
pub(crate) async fn run<R: Runtime>(
    worker: Rc<Worker<R>>,
    listeners: Vec<(R::Listener, ListenerSpec)>,
    stop: Arc<Stop>,
) {
    for (listener, spec) in listeners {
        R::spawn_local(accept_loop(Rc::clone(&worker), listener, spec));
    }
    R::spawn_local(crate::export::run(Rc::clone(&worker)));
    let mut registered = None;
    let deadline = poll_fn(|cx| stop.poll(cx, worker.index, &mut registered)).await;
    worker.drain.start(deadline);
    let mut timer = R::timer();
    timer.set(deadline + FINAL_FLUSH);
    poll_fn(|cx| {
        if worker.open() == 0 || timer.poll_fired(cx).is_ready() {
            return Poll::Ready(());
        }
        *worker.all_closed.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    })
    .await;
    let left = worker.open();
    if left > 0 {
        tracing::warn!(
            connections = left,
            "drain ended; closing the connections still open"
        );
    }
}

/// Accepts connections until the drain starts, each served by its own task, leaving
/// connections to less loaded workers while this one is ahead (`balance.rs`). A
/// connection's request deadline is its listener's `timeout` when it was accepted.
async fn accept_loop<R: Runtime>(
    worker: Rc<Worker<R>>,
    mut listener: R::Listener,
    spec: ListenerSpec,
) {
    let slot = worker.drain.register();
    loop {
        let accepted = poll_fn(|cx| {
            if worker.drain.poll(slot, cx).is_some() {
                return Poll::Ready(None);
            }
            if worker.balance.poll_decline(worker.index, cx) {
                return Poll::Pending;
            }
            listener.poll_accept(cx).map(Some)
        })
        .await;
        match accepted {
            None => break,
            Some(Ok(client)) => {
                let (gateway, version) = worker.gateway();
                let request_timeout = gateway
                    .config()
                    .listeners
                    .get(spec.index)
                    .map_or(switchback_core::config::DEFAULT_TIMEOUT, |l| l.timeout);
                let settings = ConnectionSettings {
                    limits: worker.limits,
                    request_timeout,
                };
                let task = ConnTask::<R>::new(
                    Rc::clone(&worker),
                    client,
                    settings,
                    (gateway, version),
                    spec.surface,
                );
                R::spawn_local(task);
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "accept failed");
                let mut pause = R::timer();
                pause.set(Instant::now() + ACCEPT_BACKOFF);
                poll_fn(|cx| pause.poll_fired(cx)).await;
            }
        }
    }
    worker.drain.unregister(slot);
}
