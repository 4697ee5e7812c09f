//! One upstream attempt: connect (or reuse a pooled connection), run the shared
//! [`Exchange`] codec over it, and report what happened to the drive loop as machine events.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use switchback_core::machine::{AttemptId, Event, TransportError};
use switchback_core::upstream::{
    Exchange, ExchangeError, ExchangeEvent, Origin, Scheme, UpstreamHttpRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

use crate::pool::{Conn, Pool};

/// Read buffer per attempt: large enough for a typical completion in one read, small
/// enough that thousands of open streams stay cheap.
const READ_BUF: usize = 8 * 1024;

/// What every upstream attempt shares: the TLS setup and the keep-alive pool.
pub(crate) struct Upstream {
    tls: TlsConnector,
    pool: Pool,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// How an exchange on one connection ended.
enum Ended {
    /// Reported to the machine (`End` or a failure); the connection is gone or pooled.
    Reported,
    /// A pooled connection failed before any response byte: stale, nothing was reported.
    Stale,
}

impl Upstream {
    pub(crate) fn new(tls: Arc<ClientConfig>) -> Upstream {
        Upstream {
            tls: TlsConnector::from(tls),
            pool: Pool::default(),
        }
    }

    /// Runs attempt `attempt` to completion, sending every event for it on `events`. Cancelled
    /// by aborting the task that runs it, which closes its connection.
    pub(crate) async fn run(
        &self,
        attempt: AttemptId,
        request: UpstreamHttpRequest,
        connect_timeout: Duration,
        events: mpsc::Sender<Event>,
    ) {
        let origin = &request.origin;
        let mut pooled = self.pool.take(origin);
        loop {
            let exchange = match Exchange::new(&request) {
                Ok(x) => x,
                Err(e) => {
                    let _ = events
                        .send(Event::from_exchange(attempt, ExchangeEvent::Failed(e)))
                        .await;
                    return;
                }
            };
            let (conn, reused) = match pooled.take() {
                Some(conn) => (conn, true),
                None => match self.connect(origin, connect_timeout).await {
                    Ok(conn) => (conn, false),
                    Err(error) => {
                        let _ = events.send(Event::UpstreamFailed { attempt, error }).await;
                        return;
                    }
                },
            };
            match self
                .exchange(attempt, origin, conn, reused, exchange, &events)
                .await
            {
                Ended::Reported => return,
                Ended::Stale => {
                    tracing::debug!(%origin, "pooled upstream connection was stale; reconnecting");
                }
            }
        }
    }

    /// TCP (with `TCP_NODELAY`) and, for https, TLS with SNI = host, within `timeout`.
    async fn connect(&self, origin: &Origin, timeout: Duration) -> Result<Conn, TransportError> {
        let connect = async {
            let tcp = TcpStream::connect((origin.host.as_str(), origin.port))
                .await
                .map_err(|e| TransportError::Connect(format!("{origin}: {e}")))?;
            let _ = tcp.set_nodelay(true);
            match origin.scheme {
                Scheme::Http => Ok(Box::new(tcp) as Conn),
                Scheme::Https => {
                    let name = ServerName::try_from(origin.host.clone())
                        .map_err(|e| TransportError::Tls(format!("{origin}: {e}")))?;
                    let tls = self
                        .tls
                        .connect(name, tcp)
                        .await
                        .map_err(|e| TransportError::Tls(format!("{origin}: {e}")))?;
                    Ok(Box::new(tls) as Conn)
                }
            }
        };
        tokio::time::timeout(timeout, connect)
            .await
            .unwrap_or(Err(TransportError::ConnectTimeout))
    }

    /// Writes the request and feeds the response through `ex` until it ends. A reusable
    /// connection goes back to the pool before `End` is reported, so the next request finds it.
    async fn exchange(
        &self,
        attempt: AttemptId,
        origin: &Origin,
        mut conn: Conn,
        reused: bool,
        mut ex: Exchange,
        events: &mpsc::Sender<Event>,
    ) -> Ended {
        let io_failed = |e: std::io::Error| Event::UpstreamFailed {
            attempt,
            error: TransportError::Io(e.to_string()),
        };
        let mut write_result = Ok(());
        while let Some(chunk) = ex.poll_transmit() {
            write_result = conn.write_all(&chunk).await;
            if write_result.is_err() {
                break;
            }
        }
        if let Err(e) = write_result.and(conn.flush().await) {
            if reused {
                return Ended::Stale;
            }
            let _ = events.send(io_failed(e)).await;
            return Ended::Reported;
        }
        let mut buf = vec![0_u8; READ_BUF];
        let mut reported_any = false;
        loop {
            let read = conn.read(&mut buf).await;
            let eof = matches!(read, Ok(0));
            match read {
                Ok(0) => ex.handle_eof(),
                Ok(n) => ex.handle_input(&buf[..n]),
                Err(_) if reused && !reported_any => return Ended::Stale,
                Err(e) => {
                    let _ = events.send(io_failed(e)).await;
                    return Ended::Reported;
                }
            }
            while let Some(event) = ex.poll_event() {
                match event {
                    ExchangeEvent::Failed(ExchangeError::ClosedBeforeResponse) if reused => {
                        return Ended::Stale;
                    }
                    ExchangeEvent::End { reusable } => {
                        if reusable {
                            self.pool.put(origin, conn);
                        }
                        let end = ExchangeEvent::End { reusable };
                        let _ = events.send(Event::from_exchange(attempt, end)).await;
                        return Ended::Reported;
                    }
                    ExchangeEvent::Failed(e) => {
                        let _ = events
                            .send(Event::from_exchange(attempt, ExchangeEvent::Failed(e)))
                            .await;
                        return Ended::Reported;
                    }
                    other => {
                        reported_any = true;
                        if events
                            .send(Event::from_exchange(attempt, other))
                            .await
                            .is_err()
                        {
                            // The request is over; nobody listens.
                            return Ended::Reported;
                        }
                    }
                }
            }
            if eof {
                // The codec always ends an exchange at EOF; never spin on a closed socket.
                return Ended::Reported;
            }
        }
    }
}
