//! switchback-tokio: the gateway on tokio.
//!
//! Glue only: sockets, a timer, TLS and a current-thread runtime with a `LocalSet` per
//! worker thread, for the pump (`switchback-pump`), which moves bytes between them and the
//! sans-IO core. No decision is made here (see `docs/runtimes.md`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use switchback_core::config::Config;
use switchback_pump::{Io, Listener, Runtime, Timer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

pub use switchback_pump::{Options, Running, StartError};

/// Serves `config` on tokio (see [`switchback_pump::start`]).
pub fn start(config: Config, options: Options) -> Result<Running, StartError> {
    switchback_pump::start::<Tokio>(config, options)
}

/// The tokio runtime for the pump.
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

impl Runtime for Tokio {
    const NAME: &'static str = "tokio";
    type Tcp = Stream<TcpStream>;
    type Listener = TokioListener;
    type Timer = TokioTimer;

    fn block_on<F: Future + 'static>(fut: F) -> io::Result<F::Output> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(tokio::task::LocalSet::new().block_on(&rt, fut))
    }

    fn spawn_local<F: Future<Output = ()> + 'static>(fut: F) {
        drop(tokio::task::spawn_local(fut));
    }

    fn listener(listener: std::net::TcpListener) -> io::Result<TokioListener> {
        TcpListener::from_std(listener).map(TokioListener)
    }

    async fn connect_tcp(host: String, port: u16) -> io::Result<Self::Tcp> {
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        Ok(Stream(tcp))
    }

    fn timer() -> TokioTimer {
        TokioTimer(None)
    }
}

/// A listening socket registered with the thread's runtime.
#[derive(Debug)]
pub struct TokioListener(TcpListener);

impl Listener for TokioListener {
    type Client = Stream<TcpStream>;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Client>> {
        self.0.poll_accept(cx).map(|accepted| {
            let (stream, _) = accepted?;
            stream.set_nodelay(true)?;
            Ok(Stream(stream))
        })
    }
}

/// A tokio timer, created on first use.
#[derive(Debug)]
pub struct TokioTimer(Option<Pin<Box<Sleep>>>);

impl Timer for TokioTimer {
    fn set(&mut self, at: Instant) {
        match &mut self.0 {
            Some(sleep) => sleep.as_mut().reset(at.into()),
            None => self.0 = Some(Box::pin(tokio::time::sleep_until(at.into()))),
        }
    }
    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

/// A tokio stream as the pump's [`Io`].
#[derive(Debug)]
pub struct Stream<T>(T);

impl<T: AsyncRead + AsyncWrite + Unpin + 'static> Io for Stream<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        Pin::new(&mut self.0)
            .poll_read(cx, &mut buf)
            .map_ok(|()| buf.filled().len())
    }
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
