//! What a runtime provides: sockets, one timer per connection, and a single-threaded
//! executor per worker thread. Nothing here decides anything; it only moves bytes and time.

use std::future::Future;
use std::io;
use std::task::{Context, Poll};
use std::time::Instant;

use switchback_core::upstream::Origin;

use crate::tls::TlsSetup;

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
    /// The upstream connection type (plain or TLS).
    type Upstream: Io;
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
    /// Connects to `origin` (TCP with `TCP_NODELAY`, then TLS for `https` with SNI = host).
    fn connect(
        origin: &Origin,
        tls: &TlsSetup,
    ) -> impl Future<Output = Result<Self::Upstream, ConnectError>> + 'static;
    /// A timer that has not been set.
    fn timer() -> Self::Timer;
}
