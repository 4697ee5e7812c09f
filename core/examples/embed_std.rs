//! Embedding the core with nothing but the standard library: blocking `std::net`
//! sockets, one thread per upstream attempt, an `mpsc` channel, and `Instant::now()`.
//! No async runtime anywhere.
//!
//! The program starts a scripted upstream on a loopback port (it answers `429` with
//! `Retry-After: 1` once, then a completion), builds a gateway whose config points at
//! it with a same-model retry policy, sends one chat completion through the
//! `RetryMachine`, and prints the completion it obtained and the attempts it took.
//!
//!     cargo run -p switchback-core --example embed_std

// The host application owns the clock; only the core itself must never read it.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use switchback_core::config::load_str;
use switchback_core::gateway::{ClientRequest, Gateway, Reply, RequestContext};
use switchback_core::machine::{Action, AttemptId, Event, RetryMachine, TransportError};
use switchback_core::upstream::{Exchange, UpstreamHttpRequest};

const COMPLETION: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":0,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the upstream, after one retry."},"finish_reason":"stop"}]}"#;
const RATE_LIMITED: &str = r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error","code":"rate_limit_exceeded"}}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let upstream = scripted_upstream()?;
    let yaml = format!(
        "version: v0.3.0
model_providers:
  - model: openai/gpt-4o
    base_url: http://{upstream}
    access_key: example-key
    default: true
    retry_policy:
      default_strategy: same_model
      default_max_attempts: 2
"
    );
    let loaded = load_str(&yaml, &|_| None)?;
    let gateway = Arc::new(Gateway::new(loaded.config)?);

    let request = ClientRequest {
        method: http::Method::POST,
        path: "/v1/chat/completions".into(),
        headers: http::HeaderMap::new(),
        body: r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"Hello"}]}"#.into(),
    };
    let ctx = RequestContext {
        now: Instant::now(),
        wall: SystemTime::now(),
        timeout: Duration::from_secs(30),
        random: 7,
    };
    let started = Instant::now();
    match gateway.handle(request, ctx) {
        Reply::Respond(resp) => println!("answered at once: {}", resp.status),
        Reply::Chat(machine) => {
            let (status, headers, body) = drive(*machine);
            let json: serde_json::Value = serde_json::from_slice(&body)?;
            println!("status: {status}");
            println!(
                "attempts: {}",
                headers
                    .get("x-switchback-attempts")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("?")
            );
            println!("after: {} ms", started.elapsed().as_millis());
            println!(
                "completion: {}",
                json["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap_or("<none>")
            );
        }
    }
    Ok(())
}

/// The drive/drain loop: feed events, drain actions, sleep until the next event or
/// the machine's deadline.
fn drive(mut m: RetryMachine) -> (u16, http::HeaderMap, Vec<u8>) {
    let (events_tx, events) = mpsc::channel::<Event>();
    let mut response = (0, http::HeaderMap::new(), Vec::new());
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
                    let tx = events_tx.clone();
                    thread::spawn(move || exchange(attempt, &request, connect_timeout, &tx));
                }
                // A thread-per-attempt host cannot interrupt a blocking read; it simply
                // stops listening: the machine ignores that attempt's late events.
                Action::Cancel { .. } => {}
                Action::Respond(r) => {
                    response = (r.status.as_u16(), r.headers, r.body.to_vec());
                }
                Action::StartStream { status, headers } => {
                    response.0 = status.as_u16();
                    response.1 = headers;
                }
                Action::Forward(bytes) => response.2.extend_from_slice(&bytes),
                Action::Finish(_) => {}
            }
        }
        if m.is_finished() {
            return response;
        }
        let event = match m.poll_timeout() {
            Some(at) => match events.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(ev) => ev,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => Event::Timer,
            },
            None => events.recv().unwrap_or(Event::ClientGone),
        };
        m.handle(Instant::now(), event);
    }
}

/// One upstream attempt over a blocking socket and the shared HTTP/1.1 codec.
fn exchange(
    attempt: AttemptId,
    request: &UpstreamHttpRequest,
    connect_timeout: Duration,
    tx: &mpsc::Sender<Event>,
) {
    let fail = |error| {
        let _ = tx.send(Event::UpstreamFailed { attempt, error });
    };
    let addr = match std::net::ToSocketAddrs::to_socket_addrs(&(
        request.origin.host.as_str(),
        request.origin.port,
    ))
    .ok()
    .and_then(|mut a| a.next())
    {
        Some(a) => a,
        None => return fail(TransportError::Connect("cannot resolve host".into())),
    };
    let mut sock = match TcpStream::connect_timeout(&addr, connect_timeout) {
        Ok(s) => s,
        Err(e) => return fail(TransportError::Connect(e.to_string())),
    };
    let mut ex = match Exchange::new(request) {
        Ok(ex) => ex,
        Err(e) => return fail(TransportError::Protocol(e.to_string())),
    };
    while let Some(bytes) = ex.poll_transmit() {
        if let Err(e) = sock.write_all(&bytes) {
            return fail(TransportError::Io(e.to_string()));
        }
    }
    let mut buf = [0u8; 16 * 1024];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => ex.handle_eof(),
            Ok(n) => ex.handle_input(&buf[..n]),
            Err(e) => return fail(TransportError::Io(e.to_string())),
        }
        while let Some(ev) = ex.poll_event() {
            let last = matches!(
                ev,
                switchback_core::upstream::ExchangeEvent::End { .. }
                    | switchback_core::upstream::ExchangeEvent::Failed(_)
            );
            if tx.send(Event::from_exchange(attempt, ev)).is_err() || last {
                return;
            }
        }
    }
}

/// A loopback upstream that answers 429 (Retry-After: 1) once, then a completion.
fn scripted_upstream() -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            read_request(&mut conn);
            let reply = if i == 0 {
                format!("HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{RATE_LIMITED}", RATE_LIMITED.len())
            } else {
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{COMPLETION}", COMPLETION.len())
            };
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    Ok(addr)
}

/// Reads one request head and its `content-length` body.
fn read_request(conn: &mut TcpStream) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + len {
                return;
            }
        }
    }
}
