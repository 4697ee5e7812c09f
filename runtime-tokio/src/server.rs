//! The client side: accept loops, hyper HTTP/1.1 connections, and turning one hyper request
//! into a `Gateway::handle` call (a ready response, or a spawned drive loop).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::Value;
use switchback_core::errors;
use switchback_core::gateway::{ClientRequest, Gateway, Reply, RequestContext};
use switchback_core::response::{
    accepted_request_id, generate_request_id, set_request_id, REQUEST_ID,
};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::body::{self, ResponseBody};
use crate::drive::{self, RequestLog};
use crate::upstream::Upstream;
use crate::Options;

/// State every connection and request shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) options: Options,
    pub(crate) upstream: Upstream,
}

/// A bound listener, its address and the request deadline its config gives.
pub(crate) type BoundListener = (TcpListener, SocketAddr, Duration);

/// Serves every listener until `stop` fires (or its sender is dropped), then drains.
pub(crate) async fn serve(
    listeners: Vec<BoundListener>,
    shared: Arc<Shared>,
    stop: oneshot::Receiver<()>,
) {
    let (stop_tx, stop_rx) = watch::channel(());
    let mut tasks = JoinSet::new();
    for (listener, addr, timeout) in listeners {
        tracing::info!(%addr, "listening");
        let shared = Arc::clone(&shared);
        tasks.spawn(accept_loop(
            listener,
            addr,
            timeout,
            shared,
            stop_rx.clone(),
        ));
    }
    let _ = stop.await;
    tracing::info!("shutting down: draining in-flight requests");
    drop(stop_tx);
    while tasks.join_next().await.is_some() {}
}

/// Accepts connections until stopped, then stops accepting and waits for its connections to
/// finish their in-flight requests, up to the drain timeout.
async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    timeout: Duration,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<()>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.options.header_read_timeout);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    let service = service_fn(move |req| handle(Arc::clone(&shared), timeout, req));
                    let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(%peer, "client connection ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(%addr, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let drain = shared.options.drain_timeout;
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(%addr, "drain timeout passed; cancelling the requests still in flight");
    }
}

/// One client request: read the body (bounded), ask the gateway, answer or drive.
async fn handle(
    shared: Arc<Shared>,
    timeout: Duration,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let started = Instant::now();
    let (parts, incoming) = req.into_parts();
    let log = RequestLog {
        method: parts.method.clone(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        started,
    };
    let limit = shared.options.max_request_body;
    let body = match read_body(incoming, &parts.headers, limit).await {
        Ok(body) => body,
        Err(mut resp) => {
            let id = accepted_request_id(&parts.headers)
                .map(str::to_owned)
                .unwrap_or_else(|| generate_request_id(fastrand::u64(..)));
            set_request_id(resp.headers_mut(), &id);
            return Ok(logged(resp, &log));
        }
    };
    let request = ClientRequest {
        method: parts.method,
        path: log.path.clone(),
        headers: parts.headers,
        body,
    };
    let ctx = RequestContext {
        now: started,
        wall: SystemTime::now(),
        timeout,
        random: fastrand::u64(..),
    };
    match shared.gateway.handle(request, ctx) {
        Reply::Respond(resp) => Ok(logged(body::full(resp), &log)),
        Reply::Chat(machine) => {
            let (tx, rx) = oneshot::channel();
            tokio::spawn(drive::drive(machine, Arc::clone(&shared), log, tx));
            Ok(rx.await.unwrap_or_else(|_| internal_error()))
        }
    }
}

/// The whole request body, or the response that refuses it: 413 (then close) as soon as the
/// declared or the read length passes `limit`, 400 if the client broke off.
async fn read_body(
    incoming: Incoming,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, Response<ResponseBody>> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    match Limited::new(incoming, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large(limit)),
        Err(e) => Err(body::full(errors::invalid_request(
            &format!("The request body could not be read: {e}"),
            None,
        ))),
    }
}

fn too_large(limit: usize) -> Response<ResponseBody> {
    let mut resp = body::full(errors::payload_too_large(limit));
    resp.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// The drive loop ended without answering (it cannot, short of a bug): a 500 in OpenAI shape.
fn internal_error() -> Response<ResponseBody> {
    body::full(errors::error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The gateway failed to produce a response.",
        "api_error",
        None,
        Value::Null,
    ))
}

/// Logs a response the gateway answered without a drive loop, and returns it.
fn logged(resp: Response<ResponseBody>, log: &RequestLog) -> Response<ResponseBody> {
    let request_id = resp
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    drive::log_request(request_id, log, resp.status().as_u16(), 0, None);
    resp
}
