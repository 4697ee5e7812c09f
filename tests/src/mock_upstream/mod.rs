//! A scriptable mock upstream: an HTTP server on `127.0.0.1:0` that answers each request
//! with the next [`Reply`] of its script (repeating the last one when the script runs
//! out, like the seed suite's mocks), records every request, and notices when the
//! gateway closes a connection.
//!
//! A mock may serve HTTPS instead ([`MockUpstream::start_tls`]): the same script over
//! rustls, the handshake done by the connection's thread.
//!
//! Plain std threads: one accepting, one per connection. Every wait on a connection is
//! a read with a short timeout, so a mock sees the peer close the socket even while it
//! is "sleeping" before the head or between chunks, and every thread ends soon after
//! the [`MockUpstream`] is dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rustls::ServerConfig;

mod script;
mod serve;
mod transport;
mod wire;

use serve::accept_loop;

pub use script::{gzip, Drip, Ending, Framing, Reply, Start};
pub(crate) use wire::find;

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
        MockUpstream::start_with(script, None)
    }

    /// Starts a mock serving `script` over TLS with `tls` (HTTPS on `127.0.0.1`).
    ///
    /// # Panics
    /// As [`MockUpstream::start`].
    pub fn start_tls(script: Vec<Reply>, tls: Arc<ServerConfig>) -> MockUpstream {
        MockUpstream::start_with(script, Some(tls))
    }

    fn start_with(script: Vec<Reply>, tls: Option<Arc<ServerConfig>>) -> MockUpstream {
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
            .spawn(move || accept_loop(&listener, &s, tls.as_ref()))
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
        self.wait_connection(conn, timeout, |c| c.closed_by_peer)
    }

    /// Waits up to `timeout` for the mock itself to close connection `conn` (a reply's
    /// `idle_close`, say); true if it did.
    pub fn wait_closed_by_mock(&self, conn: usize, timeout: Duration) -> bool {
        self.wait_connection(conn, timeout, |c| c.closed_by_mock)
    }

    fn wait_connection(&self, conn: usize, timeout: Duration, done: fn(&ConnInfo) -> bool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if lock(&self.shared.conns).get(conn).is_some_and(done) {
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

#[cfg(test)]
mod tests;
