//! The span exporter (spec §13): one task per worker thread, off the request path,
//! written once for every runtime. Connections queue their finished spans in the
//! worker's bounded [`SpanQueue`] (a full queue drops and counts; a request never waits
//! for an export); this task sends them in batches to the collector the current config
//! names, as OTLP protobuf over HTTP/1.1 (the core's upstream codec) or gRPC (the core's
//! h2c unary client), on the runtime's sockets and timer.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};

use switchback_core::config::{OtlpProtocol, TracingSettings};
use switchback_core::trace::{encode_export, grpc, rejected_spans, BATCH_SPANS};
use switchback_core::upstream::{parse_base_url, Exchange, ExchangeEvent, UpstreamHttpRequest};

use crate::runtime::{Io, Runtime, Timer};
use crate::worker::Worker;

/// The longest one export call may take (connect, send, answer).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Failed exports are logged at most this often per worker.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// Exports the worker's spans for as long as the worker runs (through the drain, so the
/// requests that finish while it lasts are exported too).
pub(crate) async fn run<R: Runtime>(worker: Rc<Worker<R>>) {
    let mut last_warning: Option<Instant> = None;
    loop {
        poll_fn(|cx| {
            if !worker.spans.borrow().is_empty() {
                return Poll::Ready(());
            }
            *worker.exporter.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        let batch = worker.spans.borrow_mut().take_batch(BATCH_SPANS);
        let n = batch.len() as u64;
        let (gateway, _) = worker.gateway();
        let Some(settings) = gateway.config().tracing.clone() else {
            // Tracing was switched off by a reload while these waited.
            worker.shard.record_spans(0, n, 0);
            continue;
        };
        let body = encode_export(&batch);
        match with_timeout::<R, _>(export::<R>(&worker, &settings, body)).await {
            Ok(rejected) => {
                let rejected = rejected.min(n);
                worker.shard.record_spans(n - rejected, rejected, 0);
            }
            Err(e) => {
                worker.shard.record_spans(0, n, 1);
                if last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(endpoint = %settings.endpoint, spans = n, "span export failed (spans dropped): {e}");
                }
            }
        }
    }
}

/// `fut`, or an error once [`EXPORT_TIMEOUT`] passes.
async fn with_timeout<R: Runtime, T>(
    fut: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let mut fut = pin!(fut);
    let mut timer = R::timer();
    timer.set(Instant::now() + EXPORT_TIMEOUT);
    poll_fn(|cx| {
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        match timer.poll_fired(cx) {
            Poll::Ready(()) => Poll::Ready(Err(format!(
                "no answer within {} s",
                EXPORT_TIMEOUT.as_secs()
            ))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// One export call; the spans the collector rejected.
async fn export<R: Runtime>(
    worker: &Worker<R>,
    settings: &TracingSettings,
    body: Vec<u8>,
) -> Result<u64, String> {
    let (origin, path) = parse_base_url(&settings.endpoint).map_err(|e| e.to_string())?;
    match settings.protocol {
        OtlpProtocol::HttpProtobuf => {
            let mut up = crate::runtime::connect::<R>(&origin, &worker.tls)
                .await
                .map_err(|e| format!("connect: {}", e.detail))?;
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            );
            let request = UpstreamHttpRequest {
                origin,
                method: Method::POST,
                path_and_query: path,
                headers,
                body: Bytes::from(body),
            };
            let (status, answer) = http1_exchange(&mut up, &request).await?;
            if !(200..300).contains(&status) {
                return Err(format!("the collector answered {status}"));
            }
            Ok(rejected_spans(&answer))
        }
        OtlpProtocol::Grpc => {
            let mut up = crate::runtime::connect::<R>(&origin, &worker.tls_h2)
                .await
                .map_err(|e| format!("connect: {}", e.detail))?;
            let mut call = grpc::UnaryCall::new(&origin, grpc::TRACE_EXPORT_PATH, &body);
            drive_grpc(&mut up, &mut call).await?;
            match call.outcome() {
                Some(Ok(answer)) => Ok(rejected_spans(&answer)),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("the collector closed the call early".into()),
            }
        }
    }
}

/// Writes all of `bytes` to `io`.
async fn write_all(io: &mut impl Io, mut bytes: &[u8]) -> Result<(), String> {
    while !bytes.is_empty() {
        let n = poll_fn(|cx| io.poll_write(cx, bytes))
            .await
            .map_err(|e| format!("write: {e}"))?;
        if n == 0 {
            return Err("write: the connection closed".into());
        }
        bytes = &bytes[n..];
    }
    poll_fn(|cx| io.poll_flush(cx))
        .await
        .map_err(|e| format!("flush: {e}"))
}

/// Reads what `io` has (empty at its end).
async fn read_some(io: &mut impl Io, buf: &mut [u8]) -> Result<usize, String> {
    poll_fn(|cx| io.poll_read(cx, buf))
        .await
        .map_err(|e| format!("read: {e}"))
}

/// One HTTP/1.1 request on `io` through the core's upstream codec: the status and body.
async fn http1_exchange(
    io: &mut impl Io,
    request: &UpstreamHttpRequest,
) -> Result<(u16, Vec<u8>), String> {
    let mut ex = Exchange::new(request).map_err(|e| e.to_string())?;
    while let Some(chunk) = ex.poll_transmit() {
        write_all(io, &chunk).await?;
    }
    let mut status = 0;
    let mut body = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(event) = ex.poll_event() {
            match event {
                ExchangeEvent::Head { status: s, .. } => status = s.as_u16(),
                ExchangeEvent::Body(b) if body.len() + b.len() <= 1024 * 1024 => {
                    body.extend_from_slice(&b)
                }
                ExchangeEvent::Body(_) => return Err("the answer is over 1 MiB".into()),
                ExchangeEvent::End { .. } => return Ok((status, body)),
                ExchangeEvent::Failed(e) => return Err(e.to_string()),
            }
        }
        let n = read_some(io, &mut buf).await?;
        if n == 0 {
            ex.handle_eof();
        } else {
            ex.handle_input(&buf[..n]);
        }
    }
}

/// Drives a gRPC unary call on `io` until it has its outcome.
async fn drive_grpc(io: &mut impl Io, call: &mut grpc::UnaryCall) -> Result<(), String> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(out) = call.poll_transmit() {
            write_all(io, &out).await?;
        }
        if call.outcome().is_some() {
            return Ok(());
        }
        let n = read_some(io, &mut buf).await?;
        if n == 0 {
            call.handle_eof();
        } else {
            call.handle_input(&buf[..n]);
        }
    }
}
