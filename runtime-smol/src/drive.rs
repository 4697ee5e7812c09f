//! The drive loop of one chat request: carries out the machine's actions (upstream attempts,
//! the client response) and feeds it upstream events, timer wake-ups and the client leaving.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use smol::channel::{Receiver, Sender};
use smol::future::{self, FutureExt};
use smol::{Task, Timer};
use switchback_core::machine::{Action, AttemptId, Event, RetryMachine, Summary};
use switchback_core::response::ClientResponse;

use crate::body::StreamBody;
use crate::Shared;

/// Streamed body chunks buffered between the drive loop and the client connection.
const BODY_CHANNEL: usize = 16;
/// Upstream events buffered between the attempts and the drive loop.
const EVENT_CHANNEL: usize = 16;

/// What the connection should answer with.
#[derive(Debug)]
pub(crate) enum Head {
    /// A whole response.
    Full(ClientResponse),
    /// A response head; the body follows through `body`.
    Stream {
        status: StatusCode,
        headers: HeaderMap,
        body: StreamBody,
    },
}

/// What the request's log line says besides the summary.
#[derive(Debug)]
pub(crate) struct LogInfo {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) started: Instant,
}

/// How the drive loop learns that the client went away.
#[derive(Debug)]
pub(crate) struct ClientGone {
    /// Told by the disconnect watcher or by a stream body dropped early.
    pub(crate) rx: Receiver<()>,
    pub(crate) tx: Sender<()>,
    /// Watches the client socket for EOF while the request runs; dropped at the end.
    pub(crate) watcher: Option<Task<()>>,
}

enum Wake {
    Upstream(Event),
    Timer,
    Gone,
}

/// Runs `m` to its `Finish`. The first response (whole, or a stream head) goes to `head`.
pub(crate) async fn drive(
    shared: Arc<Shared>,
    mut m: Box<RetryMachine>,
    head: Sender<Head>,
    gone: ClientGone,
    log: LogInfo,
) {
    let (events_tx, events_rx) = smol::channel::bounded::<Event>(EVENT_CHANNEL);
    let mut attempts: HashMap<AttemptId, Task<()>> = HashMap::new();
    let mut body: Option<Sender<Bytes>> = None;
    let mut client_gone = false;
    // One timer for the whole request, re-armed only when the machine's deadline moves.
    let mut timer = Timer::never();
    let mut armed: Option<Instant> = None;

    m.handle(Instant::now(), Event::Start);
    loop {
        while let Some(action) = m.poll_action() {
            match action {
                Action::Send {
                    attempt,
                    request,
                    connect_timeout,
                    ..
                } => {
                    let sh = Arc::clone(&shared);
                    let tx = events_tx.clone();
                    let task = shared.executor.spawn(async move {
                        sh.upstream.run(attempt, request, connect_timeout, tx).await
                    });
                    attempts.insert(attempt, task);
                }
                Action::Cancel { attempt } => drop(attempts.remove(&attempt)),
                Action::Respond(resp) => {
                    let _ = head.try_send(Head::Full(resp));
                }
                Action::StartStream { status, headers } => {
                    let (tx, rx) = smol::channel::bounded(BODY_CHANNEL);
                    let stream = StreamBody::new(rx, gone.tx.clone());
                    body = Some(tx);
                    let _ = head.try_send(Head::Stream {
                        status,
                        headers,
                        body: stream,
                    });
                }
                Action::Forward(bytes) => {
                    if let (Some(tx), false) = (&body, client_gone) {
                        let sent = async { tx.send(bytes).await.is_ok() }
                            .or(async {
                                let _ = gone.rx.recv().await;
                                false
                            })
                            .await;
                        client_gone |= !sent;
                    }
                }
                Action::Finish(summary) => {
                    body = None;
                    attempts.clear();
                    log_line(&m, &log, &summary);
                }
            }
        }
        if m.is_finished() {
            break;
        }
        let wake = if client_gone {
            Wake::Gone
        } else {
            let deadline = m.poll_timeout();
            if deadline != armed {
                match deadline {
                    Some(at) => timer.set_at(at),
                    None => timer = Timer::never(),
                }
                armed = deadline;
            }
            wait(&events_rx, &mut timer, &gone.rx).await
        };
        let event = match wake {
            Wake::Upstream(ev) => ev,
            Wake::Timer => {
                // A fired timer stays fired: re-arm it on the next wait.
                armed = None;
                Event::Timer
            }
            Wake::Gone => Event::ClientGone,
        };
        m.handle(Instant::now(), event);
    }
    drop(body);
    drop(gone.watcher);
}

/// The first of: an upstream event, the machine's timer, the client leaving.
async fn wait(events: &Receiver<Event>, timer: &mut Timer, gone: &Receiver<()>) -> Wake {
    let upstream = async {
        match events.recv().await {
            Ok(ev) => Wake::Upstream(ev),
            Err(_) => future::pending().await,
        }
    };
    let timer = async {
        timer.await;
        Wake::Timer
    };
    let left = async {
        match gone.recv().await {
            Ok(()) => Wake::Gone,
            // Every teller is gone (the watcher saw a pipelined request): never.
            Err(_) => future::pending().await,
        }
    };
    upstream.or(timer).or(left).await
}

fn log_line(m: &RetryMachine, log: &LogInfo, summary: &Summary) {
    tracing::info!(
        request_id = m.request_id(),
        method = %log.method,
        path = %log.path,
        status = summary.status,
        attempts = summary.attempts,
        model = summary.model.as_deref().unwrap_or("-"),
        outcome = ?summary.outcome,
        duration_ms = log.started.elapsed().as_millis() as u64,
        "request"
    );
}
