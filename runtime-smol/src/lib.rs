//! switchback-smol: the gateway on smol and async-io.
//!
//! Glue only: sockets, a timer, TLS and a single-threaded executor per worker thread, for
//! the pump (`switchback-pump`), which moves bytes between them and the sans-IO core. No
//! decision is made here (see `docs/runtimes.md`).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use smol::io::{AsyncRead, AsyncWrite};
use smol::{Async, LocalExecutor};
use switchback_core::config::Config;
use switchback_pump::{Io, Listener, Runtime, Timer};

pub use switchback_pump::{Options, Running, StartError};

/// Serves `config` on smol (see [`switchback_pump::start`]).
pub fn start(config: Config, options: Options) -> Result<Running, StartError> {
    switchback_pump::start::<Smol>(config, options)
}

/// The smol runtime for the pump.
#[derive(Debug, Clone, Copy)]
pub struct Smol;

thread_local! {
    static EXECUTOR: RefCell<Option<std::rc::Rc<LocalExecutor<'static>>>> = const { RefCell::new(None) };
}

impl Runtime for Smol {
    const NAME: &'static str = "smol";
    type Tcp = Stream<Async<TcpStream>>;
    type Listener = SmolListener;
    type Timer = SmolTimer;

    fn block_on<F: Future + 'static>(fut: F) -> io::Result<F::Output> {
        let ex = std::rc::Rc::new(LocalExecutor::new());
        EXECUTOR.with(|cell| *cell.borrow_mut() = Some(std::rc::Rc::clone(&ex)));
        let main = ex.spawn(fut);
        let out = smol::block_on(run_in_bursts(&ex, main));
        EXECUTOR.with(|cell| cell.borrow_mut().take());
        Ok(out)
    }

    fn spawn_local<F: Future<Output = ()> + 'static>(fut: F) {
        EXECUTOR.with(|cell| {
            if let Some(ex) = cell.borrow().as_ref() {
                ex.spawn(fut).detach();
            }
        });
    }

    fn listener(listener: TcpListener) -> io::Result<SmolListener> {
        Async::new(listener).map(SmolListener)
    }

    async fn connect_tcp(host: String, port: u16) -> io::Result<Self::Tcp> {
        let mut last = io::Error::new(
            io::ErrorKind::NotFound,
            "the host name resolved to no address",
        );
        for addr in smol::net::resolve((host.as_str(), port)).await? {
            match Async::<TcpStream>::connect(addr).await {
                Ok(tcp) => {
                    tcp.get_ref().set_nodelay(true)?;
                    return Ok(Stream(tcp));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn timer() -> SmolTimer {
        SmolTimer(smol::Timer::never())
    }
}

/// Tasks polled between two polls of the reactor by this thread.
const BURST: usize = 8;

/// Runs the executor until `main` finishes, `BURST` tasks at a time, yielding to
/// `block_on` between bursts so that this thread polls the reactor (a non-blocking
/// `epoll_wait`) at least that often. async-io's helper thread takes the reactor over when
/// it sees no poll for 50 µs, and from then on every wake-up of this thread's tasks is a
/// cross-thread unpark, a context switch each when both share a CPU. `LocalExecutor::run`
/// yields only every 200 tasks, several milliseconds under load.
async fn run_in_bursts<T>(ex: &LocalExecutor<'_>, main: smol::Task<T>) -> T {
    loop {
        let mut ran = 0;
        while ran < BURST && ex.try_tick() {
            ran += 1;
        }
        if main.is_finished() {
            return main.await;
        }
        if ran == BURST {
            smol::future::yield_now().await;
        } else {
            // Nothing runnable: wait (in the reactor, on this thread) for a wake-up.
            ex.tick().await;
        }
    }
}

/// A listening socket registered with async-io.
#[derive(Debug)]
pub struct SmolListener(Async<TcpListener>);

impl Listener for SmolListener {
    /// async-net's stream, not a bare `Async<TcpStream>`: async-io's `poll_close` only
    /// flushes, while async-net's shuts the write side down, which is how a client learns
    /// that a `Connection: close` response (or an HTTP/1.0 body) has ended.
    type Client = Stream<smol::net::TcpStream>;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Client>> {
        loop {
            match self.0.get_ref().accept() {
                Ok((stream, _)) => {
                    stream.set_nodelay(true)?;
                    let stream = Async::new(stream)?;
                    return Poll::Ready(Ok(Stream(smol::net::TcpStream::from(stream))));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.0.poll_readable(cx)?.is_pending() {
                        return Poll::Pending;
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// An async-io timer.
#[derive(Debug)]
pub struct SmolTimer(smol::Timer);

impl Timer for SmolTimer {
    fn set(&mut self, at: Instant) {
        self.0.set_at(at);
    }
    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// A futures-io stream as the pump's [`Io`].
#[derive(Debug)]
pub struct Stream<T>(T);

impl<T: AsyncRead + AsyncWrite + Unpin + 'static> Io for Stream<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}
