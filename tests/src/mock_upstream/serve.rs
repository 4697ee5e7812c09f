//! Serving connections: the accept loop and one thread per connection, playing the
//! script.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::json;

use super::transport::Io;
use super::wire::{decode_chunked, find, parse_head, reason};
use super::{lock, ConnInfo, Drip, Ending, Framing, Recorded, Reply, Shared, Start};

/// How often blocking reads wake up to check for shutdown.
const POLL: Duration = Duration::from_millis(20);

pub(super) fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    tls: Option<&Arc<ServerConfig>>,
) {
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
        let tls = tls.cloned();
        let spawned = thread::Builder::new()
            .name(format!("mock-conn-{id}"))
            .spawn(move || {
                let stream = match tls {
                    None => Io::Plain(stream),
                    Some(config) => match ServerConnection::new(config) {
                        Ok(c) => Io::Tls(Box::new(StreamOwned::new(c, stream))),
                        Err(_) => return,
                    },
                };
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
    stream: Io,
    buf: Vec<u8>,
    id: usize,
    shared: Arc<Shared>,
}

impl Conn {
    fn serve(&mut self) {
        let _ = self.stream.tcp().set_nodelay(true);
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

    /// The reply the next request will get.
    fn next_reply(&self) -> Reply {
        let n = self.shared.calls.load(Ordering::SeqCst);
        let script = lock(&self.shared.script);
        script[n.min(script.len() - 1)].clone()
    }

    /// After an early answer: the write side is shut (FIN); the peer's request keeps
    /// arriving unread for a moment (so its writes stall), then is drained until it closes.
    fn linger_after_early_answer(&mut self) {
        lock(&self.shared.conns)[self.id].closed_by_mock = true;
        let _ = self.stream.tcp().shutdown(std::net::Shutdown::Write);
        thread::sleep(Duration::from_millis(200));
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end && !self.stopping() && self.fill(POLL) {
            self.buf.clear();
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    fn mark_peer_closed(&self) {
        lock(&self.shared.conns)[self.id].closed_by_peer = true;
    }

    fn close(&mut self) {
        lock(&self.shared.conns)[self.id].closed_by_mock = true;
        self.stream.shutdown();
    }

    /// Reads more bytes into the buffer, waiting at most `max`. Ok(false): the peer
    /// closed the connection (recorded). Ok(true): data or a timeout.
    fn fill(&mut self, max: Duration) -> bool {
        let _ = self
            .stream
            .tcp()
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
        if self.next_reply().early {
            return Some(Recorded {
                method: head.method,
                path: head.path,
                version: head.version,
                headers: head.headers,
                body: Vec::new(),
                conn: self.id,
                at: Instant::now(),
            });
        }
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

    /// Writes `bytes`, one byte per `gap` when `drip` says so.
    fn write_maybe_dripped(&mut self, bytes: &[u8], drip: Option<Duration>) -> bool {
        let Some(gap) = drip else {
            return self.write(bytes);
        };
        for b in bytes {
            if !self.wait(gap) || !self.write(&[*b]) {
                return false;
            }
        }
        true
    }

    /// Resets the connection: `SO_LINGER` 0, so dropping the socket sends RST.
    fn reset(&mut self) {
        lock(&self.shared.conns)[self.id].closed_by_mock = true;
        let _ = rustix::net::sockopt::set_socket_linger(self.stream.tcp(), Some(Duration::ZERO));
    }

    /// Ends the connection after a raw reply as `ending` says.
    fn end_raw(&mut self, ending: Ending) {
        match ending {
            Ending::Stall => self.hold(),
            Ending::Reset => self.reset(),
            Ending::Clean | Ending::Cut => self.close(),
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
        let head_drip = reply
            .drip
            .and_then(|(d, gap)| (d == Drip::Head).then_some(gap));
        let body_drip = reply.drip.map(|(_, gap)| gap);
        if !reply.preamble.is_empty() && !self.write_maybe_dripped(&reply.preamble, head_drip) {
            return false;
        }
        if let Some(raw) = &reply.raw {
            if self.write_maybe_dripped(raw, head_drip) {
                self.end_raw(reply.ending);
            }
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
                let promised = if matches!(reply.ending, Ending::Cut | Ending::Reset) {
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
        let client_closes = reply.early
            || req
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if http10 || client_closes {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        if !self.write_maybe_dripped(head.as_bytes(), head_drip) {
            return false;
        }
        let frame = |data: &[u8]| -> Vec<u8> {
            if reply.framing == Framing::Chunked {
                if data.is_empty() {
                    return Vec::new();
                }
                let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
                framed.extend_from_slice(data);
                framed.extend_from_slice(b"\r\n");
                framed
            } else {
                data.to_vec()
            }
        };
        for (delay, data) in &chunks {
            if !self.wait(*delay) {
                return false;
            }
            if !self.write_maybe_dripped(&frame(data), body_drip) {
                return false;
            }
        }
        if let Some(piece) = &reply.endless {
            let framed = frame(piece);
            while !self.stopping() && self.write(&framed) {}
            return false;
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
            Ending::Reset => {
                self.reset();
                false
            }
            Ending::Clean => {
                if reply.framing == Framing::Chunked && !self.write(b"0\r\n\r\n") {
                    return false;
                }
                if reply.early {
                    self.linger_after_early_answer();
                    false
                } else if http10 || client_closes {
                    self.close();
                    false
                } else if let Some(after) = reply.idle_close {
                    if self.wait_for_request(after) {
                        return true;
                    }
                    self.close();
                    false
                } else {
                    true
                }
            }
        }
    }

    /// Waits up to `d` for the next request's first bytes (true if they came: serve it).
    fn wait_for_request(&mut self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while self.buf.is_empty() {
            let now = Instant::now();
            if now >= end || self.stopping() || !self.fill(end - now) {
                return !self.buf.is_empty();
            }
        }
        true
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
