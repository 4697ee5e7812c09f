//! The one task that keeps the gateway's shared block table in step with Redis (spec §14):
//! the two connections of the core's [`StateSync`] session, a timer, and the table's
//! outbox waker, polled in one place on the first worker thread. Written once for every
//! runtime, through [`Runtime::connect`] (TCP, and TLS for `rediss://` with the rustls
//! setup of the upstreams) and [`Runtime::timer`]. Requests never wait on it: they only
//! touch the block table, whose lock this task takes briefly to drain records and to apply
//! the ones from other replicas. After a reload (spec §13) the task accepts remote
//! records by the new gateway's rules (its models, its longest block) from its next step.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use switchback_core::gateway::Gateway;
use switchback_core::reload::LiveGateway;
use switchback_core::shared_state::{LinkId, RemoteRules, StateSync, SyncAction};

use crate::lazy_timer::LazyTimer;
use crate::runtime::{connect, ConnectError, Io, Runtime, Upstream};
use crate::tls::TlsSetup;

/// Steps one poll may take before yielding to the worker's connections.
const STEPS_PER_POLL: usize = 16;
/// Bytes read from Redis in one go.
const READ_BYTES: usize = 16 * 1024;

type Connecting<R> = Pin<Box<dyn Future<Output = Result<Upstream<R>, ConnectError>>>>;

/// A session ready to run, with the TLS setup it connects with and the live gateway
/// whose reloads bring it new rules.
pub(crate) struct Prepared {
    sync: StateSync,
    tls: TlsSetup,
    live: Arc<LiveGateway>,
}

/// The session for the current gateway's `state.redis`, if it has one. Its TLS setup is
/// the upstreams' (bundled roots plus `SWITCHBACK_CA_FILE`) without the `http/1.1` ALPN.
pub(crate) fn prepare(live: &Arc<LiveGateway>, tls: &TlsSetup) -> Option<Prepared> {
    let sync = StateSync::for_gateway(&live.current(), Instant::now(), fastrand::u64(..))?;
    let mut config = (*tls.config).clone();
    config.alpn_protocols.clear();
    Some(Prepared {
        sync,
        tls: TlsSetup {
            config: Arc::new(config),
        },
        live: Arc::clone(live),
    })
}

/// Runs the session until the worker's executor stops (it is dropped with it).
pub(crate) async fn run<R: Runtime>(prepared: Prepared) {
    SyncTask::<R> {
        sync: prepared.sync,
        tls: prepared.tls,
        seen: prepared.live.version(),
        gateway: prepared.live.current(),
        live: prepared.live,
        commands: Slot::Empty,
        subscriber: Slot::Empty,
        timer: LazyTimer::new(R::timer()),
        scratch: vec![0; READ_BYTES].into_boxed_slice(),
    }
    .await
}

/// One link's socket.
enum Slot<R: Runtime> {
    Empty,
    Connecting(Connecting<R>),
    Open { io: Upstream<R>, unflushed: bool },
}

struct SyncTask<R: Runtime> {
    sync: StateSync,
    tls: TlsSetup,
    live: Arc<LiveGateway>,
    /// The gateway the session's rules were taken from, and its `live` version.
    gateway: Arc<Gateway>,
    seen: u64,
    commands: Slot<R>,
    subscriber: Slot<R>,
    timer: LazyTimer<R::Timer>,
    scratch: Box<[u8]>,
}

impl<R: Runtime> SyncTask<R> {
    fn slot(&mut self, link: LinkId) -> &mut Slot<R> {
        match link {
            LinkId::Commands => &mut self.commands,
            LinkId::Subscriber => &mut self.subscriber,
        }
    }

    /// After a reload, takes the rules of the gateway now serving (one atomic load when
    /// nothing was reloaded). `state` itself cannot change on a reload (`reload_check`).
    fn follow_reload(&mut self) {
        if self.live.refresh(&mut self.gateway, &mut self.seen) {
            self.sync.set_rules(RemoteRules::for_gateway(&self.gateway));
        }
    }

    fn step(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        self.follow_reload();
        self.sync.handle_records(now, cx.waker());
        let mut progress = self.actions();
        for link in [LinkId::Commands, LinkId::Subscriber] {
            progress |= self.poll_connect(cx, now, link);
            progress |= self.write(cx, now, link);
            progress |= self.read(cx, now, link);
        }
        progress | self.poll_timer(cx, now)
    }

    fn actions(&mut self) -> bool {
        let mut any = false;
        while let Some(action) = self.sync.poll_action() {
            any = true;
            match action {
                SyncAction::Connect { link, origin } => {
                    let connecting = Box::pin(connect::<R>(&origin, &self.tls));
                    *self.slot(link) = Slot::Connecting(connecting);
                }
                SyncAction::Close { link } => *self.slot(link) = Slot::Empty,
            }
        }
        any
    }

    fn poll_connect(&mut self, cx: &mut Context<'_>, now: Instant, link: LinkId) -> bool {
        let Slot::Connecting(connecting) = self.slot(link) else {
            return false;
        };
        let Poll::Ready(result) = connecting.as_mut().poll(cx) else {
            return false;
        };
        match result {
            Ok(io) => {
                *self.slot(link) = Slot::Open {
                    io,
                    unflushed: false,
                };
                self.sync.handle_connected(now, link);
            }
            Err(e) => {
                *self.slot(link) = Slot::Empty;
                self.sync.handle_connect_failed(now, link, &e.detail);
            }
        }
        true
    }

    fn write(&mut self, cx: &mut Context<'_>, now: Instant, link: LinkId) -> bool {
        let (sync, slot) = match link {
            LinkId::Commands => (&mut self.sync, &mut self.commands),
            LinkId::Subscriber => (&mut self.sync, &mut self.subscriber),
        };
        let Slot::Open { io, unflushed } = slot else {
            return false;
        };
        let mut any = false;
        while let Some(buf) = sync.poll_transmit(link) {
            match io.poll_write(cx, buf) {
                Poll::Ready(Ok(0)) => {
                    sync.handle_io_error(now, link, "the connection took no bytes");
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    any = true;
                    *unflushed = true;
                    sync.handle_written(now, link, n);
                }
                Poll::Ready(Err(e)) => {
                    sync.handle_io_error(now, link, &e.to_string());
                    return true;
                }
                Poll::Pending => return any,
            }
        }
        if *unflushed && io.poll_flush(cx).is_ready() {
            *unflushed = false;
        }
        any
    }

    fn read(&mut self, cx: &mut Context<'_>, now: Instant, link: LinkId) -> bool {
        let (sync, slot, scratch) = match link {
            LinkId::Commands => (&mut self.sync, &mut self.commands, &mut self.scratch),
            LinkId::Subscriber => (&mut self.sync, &mut self.subscriber, &mut self.scratch),
        };
        let Slot::Open { io, .. } = slot else {
            return false;
        };
        match io.poll_read(cx, scratch) {
            Poll::Ready(Ok(0)) => sync.handle_eof(now, link),
            Poll::Ready(Ok(n)) => sync.handle_input(now, link, &scratch[..n]),
            Poll::Ready(Err(e)) => sync.handle_io_error(now, link, &e.to_string()),
            Poll::Pending => return false,
        }
        true
    }

    /// Runs the session's due timeout, or arms the timer for it ([`LazyTimer`]).
    fn poll_timer(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let Some(at) = self.sync.poll_timeout() else {
            return false;
        };
        if at <= now {
            self.sync.handle_timeout(now);
            return true;
        }
        self.timer.poll_until(cx, at).is_ready()
    }
}

impl<R: Runtime> Future for SyncTask<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..STEPS_PER_POLL {
            if !this.step(cx, Instant::now()) {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
