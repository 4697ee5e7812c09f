//! A scriptable mock upstream: an HTTP server on `127.0.0.1:0` that answers each request
//! with the next [`Reply`] of its script (repeating the last one when the script runs
//! out, like the seed suite's mocks), records every request, and notices when the
//! gateway closes a connection.
//!
//! Plain std threads: one accepting, one per connection. Every wait on a connection is
//! a read with a short timeout, so a mock sees the peer close the socket even while it
//! is "sleeping" before the head or between chunks, and every thread ends soon after
//! the [`MockUpstream`] is dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

/// How often blocking reads wake up to check for shutdown.
const POLL: Duration = Duration::from_millis(20);

/// What a reply does once the request has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Send the scripted response.
    Respond,
    /// Close the connection at once, before any response byte.
    ResetBeforeHead,
    /// Keep the connection open and never send anything.
    NeverAnswer,
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// HTTP/1.1 with `Content-Length` (keep-alive).
    ContentLength,
    /// HTTP/1.1 with `Transfer-Encoding: chunked` (keep-alive).
    Chunked,
    /// HTTP/1.0 without a length: the body ends when the connection closes (Python's
    /// `http.server`, as the seed's JSON mocks answer).
    Http10,
    /// HTTP/1.0 that claims `Transfer-Encoding: chunked` but writes the raw bytes and
    /// closes (exactly what the seed's streaming mock sends; RFC 9112 §6.1 says read to
    /// close).
    Http10FalseChunked,
}

/// How the response ends after its last scripted chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A complete body (chunked terminator, full length, or close for HTTP/1.0).
    Clean,
    /// The connection is closed mid-body: no chunked terminator, or fewer bytes than
    /// `Content-Length` promised.
    Cut,
    /// Nothing more is sent; the connection stays open until the peer closes it.
    Stall,
}

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub start: Start,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Wait before the response head.
    pub head_delay: Duration,
    /// Body chunks, each written after its own delay.
    pub chunks: Vec<(Duration, Vec<u8>)>,
    pub framing: Framing,
    pub ending: Ending,
    /// Answer 200 with a chat completion whose message content is the received body.
    pub echo: bool,
}

impl Reply {
    /// A JSON response with `Content-Length`, sent at once.
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            start: Start::Respond,
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            head_delay: Duration::ZERO,
            chunks: vec![(Duration::ZERO, body.into().into_bytes())],
            framing: Framing::ContentLength,
            ending: Ending::Clean,
            echo: false,
        }
    }

    /// A 200 SSE response (chunked), one chunk per event, each after `gap`.
    pub fn sse<S: AsRef<str>>(events: &[S], gap: Duration) -> Reply {
        Reply {
            start: Start::Respond,
            status: 200,
            headers: vec![("Content-Type".into(), "text/event-stream".into())],
            head_delay: Duration::ZERO,
            chunks: events
                .iter()
                .map(|e| (gap, e.as_ref().as_bytes().to_vec()))
                .collect(),
            framing: Framing::Chunked,
            ending: Ending::Clean,
            echo: false,
        }
    }

    /// Answers 200 with a chat completion whose message content is the request body
    /// (the seed's echo mock).
    pub fn echo() -> Reply {
        Reply {
            echo: true,
            ..Reply::json(200, "")
        }
    }

    /// Closes the connection right after reading the request.
    pub fn reset() -> Reply {
        Reply {
            start: Start::ResetBeforeHead,
            ..Reply::json(200, "")
        }
    }

    /// Reads the request and never answers.
    pub fn hang() -> Reply {
        Reply {
            start: Start::NeverAnswer,
            ..Reply::json(200, "")
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Waits `delay` before sending the head.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.head_delay = delay;
        self
    }

    /// Sets the body framing.
    pub fn framing(mut self, framing: Framing) -> Reply {
        self.framing = framing;
        self
    }

    /// Sets how the body ends.
    pub fn ending(mut self, ending: Ending) -> Reply {
        self.ending = ending;
        self
    }

    /// Appends a body chunk written after `delay`.
    pub fn chunk(mut self, delay: Duration, data: impl Into<Vec<u8>>) -> Reply {
        self.chunks.push((delay, data.into()));
        self
    }
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Index of the connection it arrived on (see [`MockUpstream::connections`]).
    pub conn: usize,
    pub at: Instant,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What the mock knows about one accepted connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnInfo {
    /// Requests read on it.
    pub requests: usize,
    /// The peer closed it (EOF or a reset seen by a read or a write).
    pub closed_by_peer: bool,
    /// The mock closed it (HTTP/1.0 end, cut, reset, shutdown).
    pub closed_by_mock: bool,
}

#[derive(Debug, Default)]
struct Shared {
    script: Mutex<Vec<Reply>>,
    calls: AtomicUsize,
    requests: Mutex<Vec<Recorded>>,
    conns: Mutex<Vec<ConnInfo>>,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running mock upstream. Dropping it stops it.
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl MockUpstream {
    /// Starts a mock answering with `script` in order (the last reply repeats).
    ///
    /// # Panics
    /// If `script` is empty or no loopback port can be bound.
    pub fn start(script: Vec<Reply>) -> MockUpstream {
        assert!(
            !script.is_empty(),
            "a mock upstream needs at least one reply"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a mock upstream");
        let addr = listener.local_addr().expect("mock upstream address");
        let shared = Arc::new(Shared {
            script: Mutex::new(script),
            ..Shared::default()
        });
        let s = Arc::clone(&shared);
        thread::Builder::new()
            .name(format!("mock-upstream-{}", addr.port()))
            .spawn(move || accept_loop(&listener, &s))
            .expect("spawn the mock upstream");
        MockUpstream { addr, shared }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Replaces the script; the call counter continues.
    pub fn set_script(&self, script: Vec<Reply>) {
        assert!(
            !script.is_empty(),
            "a mock upstream needs at least one reply"
        );
        *lock(&self.shared.script) = script;
    }

    /// How many requests it has received.
    pub fn calls(&self) -> usize {
        self.shared.calls.load(Ordering::SeqCst)
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    /// Every connection accepted, in order.
    pub fn connections(&self) -> Vec<ConnInfo> {
        lock(&self.shared.conns).clone()
    }

    /// Waits up to `timeout` for the peer to close connection `conn`; true if it did.
    pub fn wait_closed_by_peer(&self, conn: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if lock(&self.shared.conns)
                .get(conn)
                .is_some_and(|c| c.closed_by_peer)
            {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits up to `timeout` until at least `n` requests arrived; true if they did.
    pub fn wait_calls(&self, n: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while self.calls() < n {
            if Instant::now() >= end {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// A loopback port with nothing listening on it (connections are refused).
pub fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    let port = l.local_addr().expect("probe address").port();
    drop(l);
    port
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let id = {
            let mut conns = lock(&shared.conns);
            conns.push(ConnInfo::default());
            conns.len() - 1
        };
        let s = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name(format!("mock-conn-{id}"))
            .spawn(move || {
                let mut conn = Conn {
                    stream,
                    buf: Vec::new(),
                    id,
                    shared: s,
                };
                conn.serve();
            });
        if spawned.is_err() {
            return;
        }
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    id: usize,
    shared: Arc<Shared>,
}

struct Head {
    method: String,
    path: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Conn {
    fn serve(&mut self) {
        let _ = self.stream.set_nodelay(true);
        while let Some(req) = self.read_request() {
            let reply = {
                let mut requests = lock(&self.shared.requests);
                let n = self.shared.calls.fetch_add(1, Ordering::SeqCst);
                requests.push(req.clone());
                let script = lock(&self.shared.script);
                script[n.min(script.len() - 1)].clone()
            };
            lock(&self.shared.conns)[self.id].requests += 1;
            if !self.respond(&reply, &req) {
                return;
            }
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    fn mark_peer_closed(&self) {
        lock(&self.shared.conns)[self.id].closed_by_peer = true;
    }

    fn close(&self) {
        lock(&self.shared.conns)[self.id].closed_by_mock = true;
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Reads more bytes into the buffer, waiting at most `max`. Ok(false): the peer
    /// closed the connection (recorded). Ok(true): data or a timeout.
    fn fill(&mut self, max: Duration) -> bool {
        let _ = self
            .stream
            .set_read_timeout(Some(max.clamp(Duration::from_millis(1), POLL)));
        let mut tmp = [0u8; 16 * 1024];
        match self.stream.read(&mut tmp) {
            Ok(0) => {
                self.mark_peer_closed();
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => true,
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(_) => {
                self.mark_peer_closed();
                false
            }
        }
    }

    /// Waits `d` while watching the socket. False if the peer closed it or the mock
    /// is stopping.
    fn wait(&mut self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            if !self.fill(end - now) {
                return false;
            }
        }
    }

    /// Keeps the connection open, sending nothing, until the peer closes it or the mock
    /// stops.
    fn hold(&mut self) {
        while self.wait(Duration::from_secs(3600)) {}
    }

    fn read_request(&mut self) -> Option<Recorded> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.stopping() || !self.fill(POLL) {
                return None;
            }
        };
        let head = parse_head(&self.buf[..head_end])?;
        self.buf.drain(..head_end);
        let header = |name: &str| {
            head.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_ascii_lowercase())
        };
        let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                if let Some((body, used)) = decode_chunked(&self.buf) {
                    self.buf.drain(..used);
                    break body;
                }
                if self.stopping() || !self.fill(POLL) {
                    return None;
                }
            }
        } else {
            let len: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while self.buf.len() < len {
                if self.stopping() || !self.fill(POLL) {
                    return None;
                }
            }
            self.buf.drain(..len).collect()
        };
        Some(Recorded {
            method: head.method,
            path: head.path,
            version: head.version,
            headers: head.headers,
            body,
            conn: self.id,
            at: Instant::now(),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> bool {
        match self
            .stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
        {
            Ok(()) => true,
            Err(_) => {
                self.mark_peer_closed();
                false
            }
        }
    }

    /// Carries out `reply`. True if the connection may serve another request.
    fn respond(&mut self, reply: &Reply, req: &Recorded) -> bool {
        match reply.start {
            Start::ResetBeforeHead => {
                self.close();
                return false;
            }
            Start::NeverAnswer => {
                self.hold();
                return false;
            }
            Start::Respond => {}
        }
        if !self.wait(reply.head_delay) {
            return false;
        }
        let chunks: Vec<(Duration, Vec<u8>)> = if reply.echo {
            vec![(Duration::ZERO, echo_body(&req.body))]
        } else {
            reply.chunks.clone()
        };
        let total: usize = chunks.iter().map(|(_, c)| c.len()).sum();
        let http10 = matches!(reply.framing, Framing::Http10 | Framing::Http10FalseChunked);
        let mut head = format!(
            "{} {} {}\r\n",
            if http10 { "HTTP/1.0" } else { "HTTP/1.1" },
            reply.status,
            reason(reply.status)
        );
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        match reply.framing {
            Framing::ContentLength => {
                let promised = if reply.ending == Ending::Cut {
                    total + 64
                } else {
                    total
                };
                head.push_str(&format!("Content-Length: {promised}\r\n"));
            }
            Framing::Chunked | Framing::Http10FalseChunked => {
                head.push_str("Transfer-Encoding: chunked\r\n");
            }
            Framing::Http10 => {}
        }
        let client_closes = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if http10 || client_closes {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        if !self.write(head.as_bytes()) {
            return false;
        }
        for (delay, data) in &chunks {
            if !self.wait(*delay) {
                return false;
            }
            let ok = if reply.framing == Framing::Chunked {
                if data.is_empty() {
                    true
                } else {
                    let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
                    framed.extend_from_slice(data);
                    framed.extend_from_slice(b"\r\n");
                    self.write(&framed)
                }
            } else {
                self.write(data)
            };
            if !ok {
                return false;
            }
        }
        match reply.ending {
            Ending::Cut => {
                self.close();
                false
            }
            Ending::Stall => {
                self.hold();
                false
            }
            Ending::Clean => {
                if reply.framing == Framing::Chunked && !self.write(b"0\r\n\r\n") {
                    return false;
                }
                if http10 || client_closes {
                    self.close();
                    false
                } else {
                    true
                }
            }
        }
    }
}

/// The seed echo mock's answer: a chat completion whose content is the request body.
fn echo_body(body: &[u8]) -> Vec<u8> {
    json!({
        "id": "chatcmpl-echo-001",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "echo-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": String::from_utf8_lossy(body)},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    })
    .to_string()
    .into_bytes()
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(raw: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let version = first.next()?.to_owned();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    Some(Head {
        method,
        path,
        version,
        headers,
    })
}

/// Decodes a complete chunked body at the start of `buf`: the body and the bytes used,
/// or `None` if it is not complete yet.
pub(crate) fn decode_chunked(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let line_end = pos + find(&buf[pos..], b"\r\n")?;
        let size_text = std::str::from_utf8(&buf[pos..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                let end = pos + find(&buf[pos..], b"\r\n")?;
                let empty = end == pos;
                pos = end + 2;
                if empty {
                    return Some((body, pos));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return None;
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

#[cfg(test)]
#[path = "mock_upstream_tests.rs"]
mod tests;
