//! TLS over any runtime's TCP stream, written once: rustls's sans-IO client connection
//! driven through the pump's [`Io`] trait, so both runtimes handshake, read and write TLS
//! identically (the same config, ALPN, errors and close handling).

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::{ClientConfig, ClientConnection};
use rustls_pki_types::ServerName;

use crate::runtime::Io;

/// A TLS client connection over `T`.
pub struct TlsStream<T> {
    io: T,
    tls: ClientConnection,
    /// The TCP stream reached its end.
    eof: bool,
}

impl<T> std::fmt::Debug for TlsStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl<T: Io> TlsStream<T> {
    /// Runs the client handshake for `name` over `io`; resolves once it is complete.
    pub async fn connect(
        io: T,
        name: ServerName<'static>,
        config: Arc<ClientConfig>,
    ) -> io::Result<TlsStream<T>> {
        let tls = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut stream = TlsStream {
            io,
            tls,
            eof: false,
        };
        poll_fn(|cx| stream.poll_handshake(cx)).await?;
        Ok(stream)
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            while self.tls.wants_write() {
                ready!(self.poll_write_tls(cx))?;
            }
            if !self.tls.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            if ready!(self.poll_read_tls(cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the TLS handshake",
                )));
            }
        }
    }

    /// Reads TLS records from the socket into rustls and processes them.
    fn poll_read_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut socket = Blocking {
            io: &mut self.io,
            cx,
        };
        let n = match self.tls.read_tls(&mut socket) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            other => other?,
        };
        if n == 0 {
            self.eof = true;
        }
        if let Err(e) = self.tls.process_new_packets() {
            // Send the alert rustls queued for the peer, then fail.
            let _ = self.poll_write_tls(cx);
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        Poll::Ready(Ok(n))
    }

    /// Writes TLS records rustls has ready to the socket.
    fn poll_write_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut socket = Blocking {
            io: &mut self.io,
            cx,
        };
        match self.tls.write_tls(&mut socket) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            other => Poll::Ready(other),
        }
    }

    /// Writes out what rustls holds, as far as the socket takes it now.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.tls.wants_write() {
            ready!(self.poll_write_tls(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: Io> Io for TlsStream<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // A close without close_notify: the end of the stream; the HTTP framing
                // decides whether the body was complete.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Poll::Ready(Ok(0)),
                Err(e) => return Poll::Ready(Err(e)),
            }
            if self.eof {
                return Poll::Ready(Ok(0));
            }
            if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
            ready!(self.poll_read_tls(cx))?;
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let taken = self.tls.writer().write(buf)?;
        let drained = self.poll_drain(cx)?;
        if taken == 0 && !buf.is_empty() {
            // rustls's plaintext buffer is full: wait for the socket to take records.
            ready!(drained);
            return Poll::Ready(Ok(self.tls.writer().write(buf)?));
        }
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        self.io.poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tls.send_close_notify();
        ready!(self.poll_drain(cx))?;
        self.io.poll_shutdown(cx)
    }
}

/// The socket as blocking-style `Read`/`Write` for rustls: `Pending` becomes `WouldBlock`
/// (the waker stays registered by the poll that returned it).
struct Blocking<'a, 'b, T> {
    io: &'a mut T,
    cx: &'a mut Context<'b>,
}

impl<T: Io> Read for Blocking<'_, '_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.io.poll_read(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<T: Io> Write for Blocking<'_, '_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.io.poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.io.poll_flush(self.cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}
