//! The drive loop: one task per chat request carries out the `RetryMachine`'s actions
//! (upstream attempts as tasks, the client response through a oneshot and a body channel)
//! and feeds it upstream events, timer wake-ups and the client leaving.

use std::collections::BTreeMap;
use std::future::pending;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::Method;
use switchback_core::machine::{Action, AttemptId, Event, RetryMachine, Summary};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::body::{self, ResponseBody};
use crate::server::Shared;

/// Upstream events queued for the loop before attempt tasks wait (backpressure on upstream).
const EVENT_QUEUE: usize = 32;
/// Body chunks queued for hyper before the loop waits on a slow client.
const FORWARD_QUEUE: usize = 32;

/// What the per-request log line says about the request itself.
#[derive(Debug)]
pub(crate) struct RequestLog {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) started: Instant,
}

/// Where the client response stands.
enum Client {
    /// Nothing sent yet; the service future waits on the other end.
    Head(oneshot::Sender<hyper::Response<ResponseBody>>),
    /// Head sent; the body is streaming through this channel.
    Streaming(mpsc::Sender<Bytes>),
    /// The response is complete (or the client is gone).
    Done,
}

impl Client {
    /// Hands the response head (and body) to hyper; false if the client is gone.
    fn respond(&mut self, resp: hyper::Response<ResponseBody>) -> bool {
        match std::mem::replace(self, Client::Done) {
            Client::Head(tx) => tx.send(resp).is_ok(),
            other => {
                *self = other;
                true
            }
        }
    }

    /// Queues body bytes of a stream; false if the client is gone.
    async fn forward(&mut self, data: Bytes) -> bool {
        match self {
            Client::Streaming(tx) => tx.send(data).await.is_ok(),
            _ => true,
        }
    }

    /// Resolves when the client goes away: the service future (waiting for the head) or the
    /// streaming body was dropped by hyper.
    async fn closed(&mut self) {
        match self {
            Client::Head(tx) => tx.closed().await,
            Client::Streaming(tx) => tx.closed().await,
            Client::Done => pending().await,
        }
    }
}

/// Attempt tasks by id; every task still running is aborted (closing its socket) when
/// cancelled, when the request finishes, or when the loop itself is dropped.
#[derive(Default)]
struct Attempts(BTreeMap<AttemptId, JoinHandle<()>>);

impl Attempts {
    fn cancel(&mut self, attempt: AttemptId) {
        if let Some(task) = self.0.remove(&attempt) {
            task.abort();
        }
    }
    fn cancel_all(&mut self) {
        for (_, task) in std::mem::take(&mut self.0) {
            task.abort();
        }
    }
}

impl Drop for Attempts {
    fn drop(&mut self) {
        self.cancel_all();
    }
}

/// Drives `m` to its `Finish`. The response head goes to `head`; see the module docs.
pub(crate) async fn drive(
    mut m: Box<RetryMachine>,
    shared: Arc<Shared>,
    log: RequestLog,
    head: oneshot::Sender<hyper::Response<ResponseBody>>,
) {
    let (events_tx, mut events) = mpsc::channel::<Event>(EVENT_QUEUE);
    let mut attempts = Attempts::default();
    let mut client = Client::Head(head);
    m.handle(Instant::now(), Event::Start);
    loop {
        let mut gone = false;
        while let Some(action) = m.poll_action() {
            match action {
                Action::Send {
                    attempt,
                    request,
                    connect_timeout,
                    ..
                } => {
                    let shared = Arc::clone(&shared);
                    let tx = events_tx.clone();
                    let task = tokio::spawn(async move {
                        let upstream = &shared.upstream;
                        upstream.run(attempt, request, connect_timeout, tx).await;
                    });
                    attempts.0.insert(attempt, task);
                }
                Action::Cancel { attempt } => attempts.cancel(attempt),
                Action::Respond(resp) => gone |= !client.respond(body::full(resp)),
                Action::StartStream { status, headers } => {
                    let (tx, rx) = mpsc::channel(FORWARD_QUEUE);
                    let mut resp = hyper::Response::new(ResponseBody::Channel(rx));
                    *resp.status_mut() = status;
                    *resp.headers_mut() = headers;
                    gone |= !client.respond(resp);
                    client = Client::Streaming(tx);
                }
                Action::Forward(data) => gone |= !gone && !client.forward(data).await,
                Action::Finish(summary) => {
                    client = Client::Done;
                    attempts.cancel_all();
                    log_finished(m.request_id(), &log, &summary);
                }
            }
        }
        if m.is_finished() {
            break;
        }
        let event = if gone {
            Event::ClientGone
        } else {
            let timeout = m.poll_timeout();
            tokio::select! {
                Some(event) = events.recv() => event,
                () = sleep_until(timeout) => Event::Timer,
                () = client.closed() => Event::ClientGone,
            }
        };
        m.handle(Instant::now(), event);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => pending().await,
    }
}

fn log_finished(request_id: &str, log: &RequestLog, summary: &Summary) {
    log_request(
        request_id,
        log,
        summary.status,
        summary.attempts,
        summary.model.as_deref(),
    );
}

/// The one info line per request. Never includes headers or bodies (keys live there).
pub(crate) fn log_request(
    request_id: &str,
    log: &RequestLog,
    status: u16,
    attempts: u32,
    model: Option<&str>,
) {
    tracing::info!(
        request_id,
        method = %log.method,
        path = %log.path,
        status,
        attempts,
        model = model.unwrap_or("-"),
        duration_ms = log.started.elapsed().as_millis() as u64,
        "request finished"
    );
}
