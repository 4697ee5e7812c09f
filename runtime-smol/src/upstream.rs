//! One upstream attempt: connect (TCP, then TLS for `https`) within the connect timeout, drive
//! the core's sans-IO [`Exchange`] over the connection, and report every happening to the
//! request's drive loop as a machine [`Event`]. Connections go back to the [`Pool`] when the
//! exchange ends reusable; a stale pooled connection is retried once on a fresh one.

use std::sync::Arc;
use std::time::Duration;

use futures_rustls::TlsConnector;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use smol::channel::Sender;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use smol::Timer;
use switchback_core::machine::{AttemptId, Event, TransportError};
use switchback_core::upstream::{
    Exchange, ExchangeError, ExchangeEvent, Origin, Scheme, UpstreamHttpRequest,
};

use crate::pool::{Conn, Pool};

/// Read buffer per attempt: large enough for a typical completion in one read, small
/// enough that thousands of open streams stay cheap.
const READ_BUF: usize = 8 * 1024;

/// Opens upstream connections and keeps the idle ones.
pub(crate) struct Connector {
    tls: TlsConnector,
    pool: Pool,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// How an exchange on one connection ended.
enum Ended {
    /// Reported to the machine; the connection is closed (dropped).
    Closed,
    /// Reported to the machine; the connection may carry another exchange.
    Reusable(Conn),
    /// A pooled connection died before any response byte: nothing was reported.
    Stale,
}

impl Connector {
    pub(crate) fn new(config: Arc<ClientConfig>) -> Connector {
        Connector {
            tls: TlsConnector::from(config),
            pool: Pool::default(),
        }
    }

    /// Runs one attempt to its end, sending its events to `events`. Dropping the future
    /// cancels the attempt and closes its connection.
    pub(crate) async fn run(
        &self,
        attempt: AttemptId,
        request: UpstreamHttpRequest,
        connect_timeout: Duration,
        events: Sender<Event>,
    ) {
        let fail = |error| Event::UpstreamFailed { attempt, error };
        let mut pooled = self.pool.checkout(&request.origin);
        loop {
            let exchange = match Exchange::new(&request) {
                Ok(x) => x,
                Err(e) => {
                    let _ = events
                        .send(fail(TransportError::Protocol(e.to_string())))
                        .await;
                    return;
                }
            };
            let (conn, reused) = match pooled.take() {
                Some(c) => (c, true),
                None => match self.connect(&request.origin, connect_timeout).await {
                    Ok(c) => (c, false),
                    Err(error) => {
                        let _ = events.send(fail(error)).await;
                        return;
                    }
                },
            };
            match exchange_on(conn, exchange, reused, attempt, &events).await {
                Ended::Closed => return,
                Ended::Reusable(conn) => {
                    self.pool.checkin(&request.origin, conn);
                    return;
                }
                Ended::Stale => {
                    tracing::debug!(origin = %request.origin, "stale pooled connection; reconnecting");
                }
            }
        }
    }

    /// TCP (and TLS for `https`) within `timeout`.
    async fn connect(&self, origin: &Origin, timeout: Duration) -> Result<Conn, TransportError> {
        let connect = async {
            let tcp = TcpStream::connect((origin.host.as_str(), origin.port))
                .await
                .map_err(|e| TransportError::Connect(format!("{origin}: {e}")))?;
            let _ = tcp.set_nodelay(true);
            match origin.scheme {
                Scheme::Http => Ok(Conn::Plain(tcp)),
                Scheme::Https => {
                    let name = ServerName::try_from(origin.host.clone())
                        .map_err(|e| TransportError::Tls(format!("{}: {e}", origin.host)))?;
                    let tls = self
                        .tls
                        .connect(name, tcp)
                        .await
                        .map_err(|e| TransportError::Tls(format!("{origin}: {e}")))?;
                    Ok(Conn::Tls(Box::new(tls)))
                }
            }
        };
        smol::future::or(connect, async {
            Timer::after(timeout).await;
            Err(TransportError::ConnectTimeout)
        })
        .await
    }
}

/// Writes the request and reads the response on `conn`, feeding `events`.
async fn exchange_on(
    mut conn: Conn,
    mut exchange: Exchange,
    reused: bool,
    attempt: AttemptId,
    events: &Sender<Event>,
) -> Ended {
    let io_failed = |e: std::io::Error| Event::UpstreamFailed {
        attempt,
        error: TransportError::Io(e.to_string()),
    };
    let mut write_error = None;
    while let Some(chunk) = exchange.poll_transmit() {
        if let Err(e) = conn.write_all(&chunk).await {
            write_error = Some(e);
            break;
        }
    }
    if write_error.is_none() {
        write_error = conn.flush().await.err();
    }
    let mut buf = vec![0_u8; READ_BUF];
    let mut received = false;
    if let Some(e) = write_error {
        // The peer may have answered (and closed) before reading the whole request: read
        // what it sent; only a connection with nothing to say is a plain I/O failure.
        match conn.read(&mut buf).await {
            Ok(n) if n > 0 => {
                received = true;
                exchange.handle_input(&buf[..n]);
            }
            _ if reused => return Ended::Stale,
            _ => {
                let _ = events.send(io_failed(e)).await;
                return Ended::Closed;
            }
        }
        if let Some(step) = report(&mut exchange, reused, attempt, events).await {
            return step.with(conn);
        }
    }
    loop {
        match conn.read(&mut buf).await {
            Ok(0) => exchange.handle_eof(),
            Ok(n) => {
                received = true;
                exchange.handle_input(&buf[..n]);
            }
            Err(_) if reused && !received => return Ended::Stale,
            Err(e) => {
                let _ = events.send(io_failed(e)).await;
                return Ended::Closed;
            }
        }
        if let Some(step) = report(&mut exchange, reused, attempt, events).await {
            return step.with(conn);
        }
    }
}

/// How [`report`] saw the exchange end.
enum Step {
    Reusable,
    Closed,
    Stale,
}

impl Step {
    fn with(self, conn: Conn) -> Ended {
        match self {
            Step::Reusable => Ended::Reusable(conn),
            Step::Closed => Ended::Closed,
            Step::Stale => Ended::Stale,
        }
    }
}

/// Drains the exchange's events into the machine; `Some` once the exchange is over (ended,
/// failed, stale, or the drive loop is gone).
async fn report(
    exchange: &mut Exchange,
    reused: bool,
    attempt: AttemptId,
    events: &Sender<Event>,
) -> Option<Step> {
    while let Some(ev) = exchange.poll_event() {
        let end = match &ev {
            ExchangeEvent::End { reusable: true } => Some(Step::Reusable),
            ExchangeEvent::End { reusable: false } => Some(Step::Closed),
            ExchangeEvent::Failed(ExchangeError::ClosedBeforeResponse) if reused => {
                return Some(Step::Stale)
            }
            ExchangeEvent::Failed(_) => Some(Step::Closed),
            _ => None,
        };
        if events
            .send(Event::from_exchange(attempt, ev))
            .await
            .is_err()
        {
            return Some(Step::Closed);
        }
        if end.is_some() {
            return end;
        }
    }
    None
}
