//! What a runtime provides: sockets, one timer per connection, and a single-threaded
//! executor per worker thread. Nothing here decides anything; it only moves bytes and time.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use rustls_pki_types::ServerName;
use switchback_core::upstream::{Origin, Scheme};

use crate::tls::TlsSetup;
use crate::tls_stream::TlsStream;

/// A byte stream (a client connection, or an upstream connection, plain or TLS), polled.
pub trait Io: Unpin + 'static {
    /// Reads into `buf`; `Ok(0)` is the peer's end of stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    /// Writes from `buf`, returning how much was taken.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
    /// Flushes what a buffering layer (TLS) holds.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Shuts down the write side (after flushing).
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// A listening socket, polled for new client connections.
pub trait Listener: Unpin + 'static {
    /// The runtime's accepted connection (`TCP_NODELAY` set).
    type Client: Io;
    /// The next accepted connection.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Client>>;
}

/// A re-armable timer.
pub trait Timer: Unpin + 'static {
    /// Fire at `at` (replacing any earlier setting).
    fn set(&mut self, at: Instant);
    /// Ready once the set instant has passed. After that, until it is set again, it may
    /// report Ready again or never.
    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// Why connecting failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    /// The TCP connection was made but the TLS handshake failed.
    pub tls: bool,
    /// What the operating system or TLS said (never the URL: the driver reports the entry).
    pub detail: String,
}

/// An async runtime, as the pump needs it.
///
/// Implement it for a runtime (see `runtime-smol` and `runtime-tokio`, a few hundred lines
/// each) and [`start`](crate::start) serves the gateway on it.
pub trait Runtime: 'static {
    /// `smol`, `tokio`, ...: for logs.
    const NAME: &'static str;
    /// A TCP connection to an upstream (TLS is layered on it by the pump).
    type Tcp: Io;
    /// A listening socket.
    type Listener: Listener;
    /// One timer.
    type Timer: Timer;

    /// Runs `fut` to completion on a new single-threaded executor on this thread;
    /// [`spawn_local`](Self::spawn_local) spawns onto it. Tasks still running when `fut`
    /// completes are dropped. Fails only when the executor cannot be built.
    fn block_on<F: Future + 'static>(fut: F) -> io::Result<F::Output>;
    /// Spawns onto the executor of the current thread's `block_on`.
    fn spawn_local<F: Future<Output = ()> + 'static>(fut: F);
    /// Registers a bound, non-blocking std listener with the runtime.
    fn listener(listener: std::net::TcpListener) -> io::Result<Self::Listener>;
    /// A TCP connection (with `TCP_NODELAY`) to the first address of `host:port` that
    /// accepts (the name resolved as the runtime resolves names).
    fn connect_tcp(
        host: String,
        port: u16,
    ) -> impl Future<Output = io::Result<Self::Tcp>> + 'static;

    /// A timer that has not been set.
    fn timer() -> Self::Timer;
}

impl<T: Io + ?Sized> Io for Box<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        (**self).poll_read(cx, buf)
    }
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        (**self).poll_write(cx, buf)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_flush(cx)
    }
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_shutdown(cx)
    }
}

/// An upstream connection that is either plain TCP or TLS over TCP: what a runtime's
/// [`Runtime::Upstream`] usually is.
#[derive(Debug)]
pub enum PlainOrTls<P, T> {
    Plain(P),
    Tls(T),
}

impl<P: Io, T: Io> Io for PlainOrTls<P, T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            PlainOrTls::Plain(s) => s.poll_read(cx, buf),
            PlainOrTls::Tls(s) => s.poll_read(cx, buf),
        }
    }
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            PlainOrTls::Plain(s) => s.poll_write(cx, buf),
            PlainOrTls::Tls(s) => s.poll_write(cx, buf),
        }
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            PlainOrTls::Plain(s) => s.poll_flush(cx),
            PlainOrTls::Tls(s) => s.poll_flush(cx),
        }
    }
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            PlainOrTls::Plain(s) => s.poll_shutdown(cx),
            PlainOrTls::Tls(s) => s.poll_shutdown(cx),
        }
    }
}

/// A runtime's upstream connection: plain TCP, or TLS over it.
pub type Upstream<R> = PlainOrTls<<R as Runtime>::Tcp, Box<TlsStream<<R as Runtime>::Tcp>>>;

/// Connects to `origin`: TCP, then TLS for `https` with SNI = host. The error detail is what
/// the system or TLS said, never the URL (the driver reports the provider entry).
pub fn connect<R: Runtime>(
    origin: &Origin,
    tls: &TlsSetup,
) -> impl Future<Output = Result<Upstream<R>, ConnectError>> + 'static {
    let (origin, config) = (origin.clone(), Arc::clone(&tls.config));
    async move {
        let failed = |tls: bool| {
            move |e: io::Error| ConnectError {
                tls,
                detail: e.to_string(),
            }
        };
        let tcp = R::connect_tcp(origin.host.clone(), origin.port)
            .await
            .map_err(failed(false))?;
        match origin.scheme {
            Scheme::Http => Ok(PlainOrTls::Plain(tcp)),
            Scheme::Https => {
                let name = ServerName::try_from(origin.host.clone()).map_err(|e| ConnectError {
                    tls: true,
                    detail: e.to_string(),
                })?;
                let tls = TlsStream::connect(tcp, name, config)
                    .await
                    .map_err(failed(true))?;
                Ok(PlainOrTls::Tls(Box::new(tls)))
            }
        }
    }
}
