//! Serving clients with async-h1: the accept loop, one keep-alive loop per connection, the
//! request head timeout, the body limit, and the conversion between http-types and the core's
//! `http` types.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_types::Body;
use smol::channel::Receiver;
use smol::future::FutureExt;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::net::{Shutdown, TcpListener, TcpStream};
use smol::Timer;
use switchback_core::errors;
use switchback_core::gateway::{ClientRequest, Reply, RequestContext};
use switchback_core::response::{ClientResponse, REQUEST_ID};

use crate::drive::{self, ClientGone, Head, LogInfo};
use crate::Shared;

/// How long a closing connection keeps reading (and discarding) what the client still sends,
/// so that the final response is not lost to a TCP reset.
const LINGER: Duration = Duration::from_secs(2);

/// Accepts connections on `listener` until `stop` closes.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    timeout: Duration,
    stop: Receiver<()>,
) {
    loop {
        let accepted = async { Some(listener.accept().await) }
            .or(async {
                let _ = stop.recv().await;
                None
            })
            .await;
        match accepted {
            None => return,
            Some(Ok((stream, peer))) => {
                let _ = stream.set_nodelay(true);
                let sh = Arc::clone(&shared);
                shared
                    .spawn(serve_connection(sh, stream, peer, timeout))
                    .detach();
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "accept failed");
                // Out of file descriptors and the like: do not spin.
                Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Per-connection state shared by the I/O wrapper and the request handler.
#[derive(Debug)]
struct ConnState {
    /// While a request head is awaited: the instant it must be complete by.
    head_timer: Mutex<Option<Timer>>,
    /// Bytes read while awaiting the head (0: the connection was idle).
    head_bytes: AtomicUsize,
    /// The connection is closing: reads end, so async-h1 discards no further request body.
    closing: AtomicBool,
    /// The request being handled counts as in flight until its response is written.
    busy: AtomicBool,
}

/// The client socket as async-h1 sees it: enforces the head timeout and stops reading once
/// the connection is closing.
#[derive(Debug, Clone)]
struct ClientIo {
    stream: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for ClientIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.state.closing.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(0));
        }
        let awaiting_head = {
            let mut timer = self
                .state
                .head_timer
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match timer.as_mut() {
                Some(t) => {
                    if Pin::new(t).poll(cx).is_ready() {
                        return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
                    }
                    true
                }
                None => false,
            }
        };
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let (true, Poll::Ready(Ok(n))) = (awaiting_head, &r) {
            self.state.head_bytes.fetch_add(*n, Ordering::SeqCst);
        }
        r
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}

/// Serves one client connection: requests one after another until either side closes.
async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) {
    let state = Arc::new(ConnState {
        head_timer: Mutex::new(None),
        head_bytes: AtomicUsize::new(0),
        closing: AtomicBool::new(false),
        busy: AtomicBool::new(false),
    });
    let io = ClientIo {
        stream: stream.clone(),
        state: Arc::clone(&state),
    };
    let handler = {
        let shared = Arc::clone(&shared);
        let state = Arc::clone(&state);
        let stream = stream.clone();
        move |req: http_types::Request| {
            handle(
                Arc::clone(&shared),
                Arc::clone(&state),
                stream.clone(),
                timeout,
                req,
            )
        }
    };
    let mut server = async_h1::server::Server::new(io, handler);
    loop {
        state.head_bytes.store(0, Ordering::SeqCst);
        *state.head_timer.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Timer::after(shared.options.header_read_timeout));
        let result = server.accept_one().await;
        let was_busy = state.busy.swap(false, Ordering::SeqCst);
        if was_busy {
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        match result {
            Ok(async_h1::server::ConnectionStatus::KeepAlive)
                if !state.closing.load(Ordering::SeqCst)
                    && !shared.draining.load(Ordering::SeqCst) => {}
            Ok(_) => break,
            // A failure after the handler ran is a broken connection: nothing to answer.
            Err(e) if was_busy => {
                tracing::debug!(%peer, error = %e, "connection ended while answering");
                break;
            }
            Err(e) => {
                answer_unreadable(&state, &stream, peer, &e).await;
                break;
            }
        }
    }
    drop(server);
    linger(&stream).await;
}

/// async-h1 gave up on the connection. A request it could not read (bad HTTP, head timeout
/// with a partial head) is answered here; a broken connection is just closed.
async fn answer_unreadable(
    state: &ConnState,
    stream: &TcpStream,
    peer: SocketAddr,
    e: &http_types::Error,
) {
    let io_kind = e.downcast_ref::<io::Error>().map(io::Error::kind);
    let resp = match io_kind {
        Some(io::ErrorKind::TimedOut) if state.head_bytes.load(Ordering::SeqCst) > 0 => {
            errors::request_timeout()
        }
        Some(_) => return,
        None => {
            tracing::debug!(%peer, error = %e, "unparsable request");
            errors::invalid_request(&format!("The request is not valid HTTP/1.1: {e}"), None)
        }
    };
    let mut out = Vec::new();
    let reason = resp.status.canonical_reason().unwrap_or("");
    out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", resp.status.as_u16()).as_bytes());
    for (name, value) in &resp.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            resp.body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&resp.body);
    let mut s = stream.clone();
    let _ = s.write_all(&out).await;
}

/// Closes the connection politely: no more writes, then discard what the client still sends
/// for a moment, so it can read the last response before the socket goes away.
async fn linger(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let mut s = stream.clone();
    let drain = async {
        let mut buf = [0_u8; 8192];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    drain
        .or(async {
            Timer::after(LINGER).await;
        })
        .await;
}

/// One request: read it, ask the gateway, answer (or hand over to a drive loop).
async fn handle(
    shared: Arc<Shared>,
    state: Arc<ConnState>,
    stream: TcpStream,
    timeout: Duration,
    mut req: http_types::Request,
) -> http_types::Result<http_types::Response> {
    *state.head_timer.lock().unwrap_or_else(|e| e.into_inner()) = None;
    state.busy.store(true, Ordering::SeqCst);
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let started = Instant::now();
    let now = started;
    let method = Method::from_bytes(req.method().as_ref().as_bytes()).unwrap_or(Method::GET);
    let url = req.url();
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let headers = to_header_map(&req);

    let limit = shared.options.max_request_body;
    let close = |state: &ConnState, resp: ClientResponse| {
        state.closing.store(true, Ordering::SeqCst);
        let mut r = to_response(resp);
        r.insert_header("connection", "close");
        Ok(r)
    };
    if req.len().is_some_and(|n| n > limit) {
        log_plain(&method, &path, StatusCode::PAYLOAD_TOO_LARGE, started);
        return close(&state, errors::payload_too_large(limit));
    }
    let mut body = Vec::new();
    let read = req
        .take_body()
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .await;
    if let Err(e) = read {
        tracing::debug!(error = %e, "request body unreadable");
        return close(
            &state,
            errors::invalid_request("The request body could not be read.", None),
        );
    }
    if body.len() > limit {
        log_plain(&method, &path, StatusCode::PAYLOAD_TOO_LARGE, started);
        return close(&state, errors::payload_too_large(limit));
    }

    let client_req = ClientRequest {
        method: method.clone(),
        path: path.clone(),
        headers,
        body: Bytes::from(body),
    };
    let ctx = RequestContext {
        now,
        wall: SystemTime::now(),
        timeout,
        random: fastrand::u64(..),
    };
    let machine = match shared.gateway.handle(client_req, ctx) {
        Reply::Respond(resp) => {
            let id = resp.headers.get(REQUEST_ID).and_then(|v| v.to_str().ok());
            log_ready(id, &method, &path, resp.status, started);
            return Ok(to_response(resp));
        }
        Reply::Chat(m) => m,
    };

    let (head_tx, head_rx) = smol::channel::bounded(1);
    let (gone_tx, gone_rx) = smol::channel::bounded(1);
    let watcher = {
        let gone = gone_tx.clone();
        shared.executor.spawn(async move {
            let mut b = [0_u8; 1];
            match stream.peek(&mut b).await {
                Ok(0) | Err(_) => {
                    let _ = gone.send(()).await;
                }
                // A pipelined request: the client is still there; stop watching.
                Ok(_) => {}
            }
        })
    };
    let gone = ClientGone {
        rx: gone_rx,
        tx: gone_tx,
        watcher: Some(watcher),
    };
    let log = LogInfo {
        method: method.to_string(),
        path,
        started,
    };
    shared
        .spawn(drive::drive(
            Arc::clone(&shared),
            machine,
            head_tx,
            gone,
            log,
        ))
        .detach();
    match head_rx.recv().await {
        Ok(Head::Full(resp)) => Ok(to_response(resp)),
        Ok(Head::Stream {
            status,
            headers,
            body,
        }) => {
            let mut r = http_types::Response::new(to_status(status));
            copy_headers(&headers, &mut r);
            r.set_body(Body::from_reader(body, None));
            Ok(r)
        }
        // The machine finished without answering: the client went away.
        Err(_) => {
            state.closing.store(true, Ordering::SeqCst);
            let mut r = http_types::Response::new(http_types::StatusCode::BadRequest);
            r.insert_header("connection", "close");
            Ok(r)
        }
    }
}

fn log_plain(method: &Method, path: &str, status: StatusCode, started: Instant) {
    log_ready(None, method, path, status, started);
}

fn log_ready(
    request_id: Option<&str>,
    method: &Method,
    path: &str,
    status: StatusCode,
    started: Instant,
) {
    tracing::info!(
        request_id = request_id.unwrap_or("-"),
        method = %method,
        path = %path,
        status = status.as_u16(),
        attempts = 0,
        duration_ms = started.elapsed().as_millis() as u64,
        "request"
    );
}

fn to_header_map(req: &http_types::Request) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, values) in req.iter() {
        let Ok(name) = HeaderName::from_bytes(name.as_str().as_bytes()) else {
            continue;
        };
        for v in values.iter() {
            if let Ok(v) = HeaderValue::from_str(v.as_str()) {
                out.append(name.clone(), v);
            }
        }
    }
    out
}

/// http-types knows only registered status codes; an unknown one becomes its class's base.
fn to_status(status: StatusCode) -> http_types::StatusCode {
    let code = status.as_u16();
    http_types::StatusCode::try_from(code)
        .or_else(|_| http_types::StatusCode::try_from(code / 100 * 100))
        .unwrap_or(http_types::StatusCode::BadGateway)
}

fn copy_headers(headers: &HeaderMap, r: &mut http_types::Response) {
    for (name, value) in headers {
        if let Ok(v) = value.to_str() {
            r.append_header(name.as_str(), v);
        }
    }
}

fn to_response(resp: ClientResponse) -> http_types::Response {
    let mut r = http_types::Response::new(to_status(resp.status));
    copy_headers(&resp.headers, &mut r);
    r.set_body(Body::from_bytes(resp.body.to_vec()));
    r
}
