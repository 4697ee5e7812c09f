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

use rustls_pki_types::ServerName;
use switchback_core::config::Config;
use switchback_core::upstream::{Origin, Scheme};
use switchback_pump::{ConnectError, Io, Listener, Runtime, Timer, TlsSetup};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

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
    type Upstream = Upstream;
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

    fn connect(
        origin: &Origin,
        tls: &TlsSetup,
    ) -> impl Future<Output = Result<Upstream, ConnectError>> + 'static {
        let (origin, config) = (origin.clone(), tls.config.clone());
        async move {
            let failed = |tls: bool| {
                move |e: io::Error| ConnectError {
                    tls,
                    detail: e.to_string(),
                }
            };
            let tcp = TcpStream::connect((origin.host.as_str(), origin.port))
                .await
                .map_err(failed(false))?;
            tcp.set_nodelay(true).map_err(failed(false))?;
            match origin.scheme {
                Scheme::Http => Ok(Upstream::Plain(Stream(tcp))),
                Scheme::Https => {
                    let name =
                        ServerName::try_from(origin.host.clone()).map_err(|e| ConnectError {
                            tls: true,
                            detail: e.to_string(),
                        })?;
                    let tls = TlsConnector::from(config)
                        .connect(name, tcp)
                        .await
                        .map_err(failed(true))?;
                    Ok(Upstream::Tls(Box::new(Stream(tls))))
                }
            }
        }
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

/// An upstream connection: plain TCP or TLS over TCP.
#[derive(Debug)]
pub enum Upstream {
    Plain(Stream<TcpStream>),
    Tls(Box<Stream<TlsStream<TcpStream>>>),
}

impl Io for Upstream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            Upstream::Plain(s) => s.poll_read(cx, buf),
            Upstream::Tls(s) => s.poll_read(cx, buf),
        }
    }
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Upstream::Plain(s) => s.poll_write(cx, buf),
            Upstream::Tls(s) => s.poll_write(cx, buf),
        }
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Upstream::Plain(s) => s.poll_flush(cx),
            Upstream::Tls(s) => s.poll_flush(cx),
        }
    }
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Upstream::Plain(s) => s.poll_shutdown(cx),
            Upstream::Tls(s) => s.poll_shutdown(cx),
        }
    }
}
