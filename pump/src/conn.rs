//! One client connection's task: the sockets and the timer, polled in one place, with every
//! byte and every instant handed to the core's [`Connection`] driver.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use switchback_core::connection::{Connection, ConnectionSettings, UpstreamAction, UpstreamInput};
use switchback_core::gateway::{Gateway, Surface};

use crate::lazy_timer::LazyTimer;
use crate::runtime::{connect, ConnectError, Io, Listener, Runtime, Upstream};
use crate::worker::Worker;

/// Steps one poll may take before yielding, so a busy connection cannot starve the others.
const STEPS_PER_POLL: usize = 32;

type Client<R> = <<R as Runtime>::Listener as Listener>::Client;
type Connecting<R> = Pin<Box<dyn Future<Output = Result<Upstream<R>, ConnectError>>>>;

/// The connection's upstream socket slot.
enum Slot<R: Runtime> {
    Empty,
    Connecting(Connecting<R>),
    Open(Upstream<R>),
}

/// Serves one client connection; completes when the driver says the connection is over.
pub(crate) struct ConnTask<R: Runtime> {
    worker: Rc<Worker<R>>,
    conn: Connection,
    client: Client<R>,
    slot: Slot<R>,
    timer: LazyTimer<R::Timer>,
    drain_slot: usize,
    drain_seen: bool,
    upstream_unflushed: bool,
}

impl<R: Runtime> ConnTask<R> {
    pub(crate) fn new(
        worker: Rc<Worker<R>>,
        client: Client<R>,
        settings: ConnectionSettings,
        (gateway, version): (std::sync::Arc<Gateway>, u64),
        surface: Surface,
    ) -> Self {
        let mut conn = Connection::new(
            gateway,
            settings,
            Instant::now(),
            SystemTime::now(),
            fastrand::u64(..),
        );
        conn.follow(std::sync::Arc::clone(&worker.live), version);
        conn.set_surface(surface);
        conn.set_metrics_shard(std::sync::Arc::clone(&worker.shard));
        worker.opened();
        let drain_slot = worker.drain.register();
        ConnTask {
            conn,
            client,
            slot: Slot::Empty,
            timer: LazyTimer::new(R::timer()),
            drain_slot,
            drain_seen: false,
            upstream_unflushed: false,
            worker,
        }
    }

    /// Carries out one round of the driver's wishes; true if anything happened.
    fn step(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        if !self.drain_seen {
            if let Some(deadline) = self.worker.drain.poll(self.drain_slot, cx) {
                self.drain_seen = true;
                self.conn.handle_drain(now, deadline);
                progress = true;
            }
        }
        progress |= self.upstream_actions(now);
        progress |= self.poll_connect(cx, now);
        progress |= self.write_upstream(cx, now);
        progress |= self.read_upstream(cx, now);
        progress |= self.write_client(cx, now);
        progress |= self.read_client(cx, now);
        progress |= self.poll_timer(cx, now);
        progress
    }

    fn upstream_actions(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(action) = self.conn.poll_upstream_action() {
            any = true;
            match action {
                UpstreamAction::Open { origin, reuse } => {
                    let pooled = if reuse {
                        self.worker.pool.borrow_mut().take(&origin, now)
                    } else {
                        None
                    };
                    match pooled {
                        Some(conn) => {
                            self.slot = Slot::Open(conn);
                            self.conn
                                .handle_upstream(now, UpstreamInput::Opened { reused: true });
                        }
                        None => {
                            self.slot =
                                Slot::Connecting(Box::pin(connect::<R>(&origin, &self.worker.tls)));
                        }
                    }
                }
                UpstreamAction::Close => self.slot = Slot::Empty,
                UpstreamAction::Release { origin } => {
                    if let Slot::Open(conn) = std::mem::replace(&mut self.slot, Slot::Empty) {
                        self.worker.pool.borrow_mut().put(&origin, conn, now);
                    }
                }
            }
        }
        any
    }

    fn poll_connect(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let Slot::Connecting(connecting) = &mut self.slot else {
            return false;
        };
        let Poll::Ready(result) = connecting.as_mut().poll(cx) else {
            return false;
        };
        match result {
            Ok(conn) => {
                self.slot = Slot::Open(conn);
                self.conn
                    .handle_upstream(now, UpstreamInput::Opened { reused: false });
            }
            Err(e) => {
                self.slot = Slot::Empty;
                let input = UpstreamInput::ConnectFailed {
                    tls: e.tls,
                    detail: &e.detail,
                };
                self.conn.handle_upstream(now, input);
            }
        }
        true
    }

    fn write_upstream(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let Slot::Open(up) = &mut self.slot else {
            return false;
        };
        let mut any = false;
        while let Some(buf) = self.conn.poll_upstream_transmit() {
            match up.poll_write(cx, buf) {
                Poll::Ready(Ok(n)) => {
                    any = true;
                    self.upstream_unflushed = true;
                    self.conn.handle_upstream_written(now, n);
                }
                Poll::Ready(Err(e)) => {
                    let detail = e.to_string();
                    self.conn
                        .handle_upstream(now, UpstreamInput::WriteFailed(&detail));
                    return true;
                }
                Poll::Pending => return any,
            }
        }
        if self.upstream_unflushed && up.poll_flush(cx).is_ready() {
            self.upstream_unflushed = false;
        }
        any
    }

    fn read_upstream(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        if !self.conn.wants_upstream_read() {
            return false;
        }
        let Slot::Open(up) = &mut self.slot else {
            return false;
        };
        let mut scratch = self.worker.scratch.borrow_mut();
        match up.poll_read(cx, &mut scratch) {
            Poll::Ready(Ok(0)) => self.conn.handle_upstream(now, UpstreamInput::Eof),
            Poll::Ready(Ok(n)) => self
                .conn
                .handle_upstream(now, UpstreamInput::Data(&scratch[..n])),
            Poll::Ready(Err(e)) => {
                let detail = e.to_string();
                self.conn
                    .handle_upstream(now, UpstreamInput::ReadFailed(&detail));
            }
            Poll::Pending => return false,
        }
        true
    }

    fn write_client(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut any = false;
        while let Some(buf) = self.conn.poll_client_transmit() {
            match self.client.poll_write(cx, buf) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.conn.handle_client_error(now);
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    any = true;
                    self.conn.handle_client_written(now, n);
                }
                Poll::Pending => return any,
            }
        }
        if self.conn.wants_client_shutdown() && self.client.poll_shutdown(cx).is_ready() {
            self.conn.handle_client_shutdown(now);
            any = true;
        }
        any
    }

    fn read_client(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        if !self.conn.wants_client_read() {
            return false;
        }
        let mut scratch = self.worker.scratch.borrow_mut();
        match self.client.poll_read(cx, &mut scratch) {
            Poll::Ready(Ok(0)) => self.conn.handle_client_eof(now),
            Poll::Ready(Ok(n)) => self.conn.handle_client_input(now, &scratch[..n]),
            Poll::Ready(Err(_)) => self.conn.handle_client_error(now),
            Poll::Pending => return false,
        }
        true
    }

    /// Runs the connection's due timeout, or arms the timer for it ([`LazyTimer`]).
    fn poll_timer(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let Some(at) = self.conn.poll_timeout() else {
            return false;
        };
        if at <= now {
            self.conn.handle_timeout(now);
            return true;
        }
        self.timer.poll_until(cx, at).is_ready()
    }
}

impl<R: Runtime> Future for ConnTask<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..STEPS_PER_POLL {
            let now = Instant::now();
            let progressed = this.step(cx, now);
            if this.conn.has_spans() {
                this.worker.queue_spans(this.conn.take_spans());
            }
            if this.conn.is_closed() {
                // A connection released in this step still goes back to the pool.
                this.upstream_actions(now);
                return Poll::Ready(());
            }
            if !progressed {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<R: Runtime> Drop for ConnTask<R> {
    fn drop(&mut self) {
        self.worker.drain.unregister(self.drain_slot);
        self.worker.closed();
    }
}
