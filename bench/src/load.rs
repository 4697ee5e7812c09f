//! The load generator. Every loop is bounded by a request count and a deadline.
//!
//! - [`sequential`]: one connection, one request at a time (blocking socket, no event loop).
//! - [`open_loop`]: a fixed request rate. Send times are planned up front (request `i` is due
//!   at `start + i / rate`) and latency is measured from that intended time, not from when
//!   the request actually went out, so a stalled server is charged for the requests it
//!   delayed (no coordinated omission). Blocking threads with 1 ns timer slack keep the
//!   send times precise; tokio's 1 ms timer would not.
//! - [`closed_loop`]: N connections each sending back to back, for maximum throughput
//!   (tokio on one thread, so the generator itself costs little CPU).
//! - [`streams`]: SSE streams: time to first chunk, gaps between chunks, and each chunk's
//!   transit from the mock's write to our read (the mock stamps the wall-clock send time).
//! - [`hold_streams`]: many concurrent open streams, to measure a proxy's memory per stream.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::http1::{event_stamp, ResponseParser, SseSplitter};

/// A latency histogram in nanoseconds (1 ns to 60 s, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn wall_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The result of a request/response run.
#[derive(Debug)]
pub struct LatencyRun {
    /// Latency of each successful request, ns.
    pub hist: Histogram<u64>,
    /// Requests answered with 200 (warm-up requests included).
    pub ok: u64,
    /// Failed requests (transport errors and non-200 answers).
    pub errors: u64,
    /// Fixed rate only: planned requests never sent because the run hit its time bound
    /// (the server could not keep up).
    pub unsent: u64,
    /// Wall time of the measured part.
    pub elapsed: Duration,
    pub first_error: Option<String>,
}

impl LatencyRun {
    fn new() -> Self {
        LatencyRun {
            hist: histogram(),
            ok: 0,
            errors: 0,
            unsent: 0,
            elapsed: Duration::ZERO,
            first_error: None,
        }
    }

    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }

    fn merge(&mut self, other: LatencyRun) {
        self.hist.add(&other.hist).expect("same histogram bounds");
        self.ok += other.ok;
        self.errors += other.errors;
        self.unsent += other.unsent;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Measured requests per second.
    pub fn rate(&self) -> f64 {
        self.hist.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A blocking keep-alive connection that reconnects after an error.
#[derive(Debug)]
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    parser: ResponseParser,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            stream: None,
            parser: ResponseParser::default(),
            buf: vec![0; 64 * 1024],
        }
    }

    /// `x-switchback-attempts` of the last response.
    pub fn last_attempts(&self) -> Option<u32> {
        self.parser.attempts
    }

    /// Sends `req` and reads the whole response; body bytes go to `on_body` with the monotonic
    /// and wall-clock time of the read that brought them.
    pub fn exchange(
        &mut self,
        req: &[u8],
        on_body: &mut dyn FnMut(&[u8], Instant, u128),
    ) -> Result<u16, String> {
        let result = self.try_exchange(req, on_body);
        if result.is_err() || self.parser.close {
            self.stream = None;
        }
        result
    }

    fn try_exchange(
        &mut self,
        req: &[u8],
        on_body: &mut dyn FnMut(&[u8], Instant, u128),
    ) -> Result<u16, String> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(30)))
                .map_err(|e| e.to_string())?;
            self.stream = Some(s);
        }
        let stream = self.stream.as_mut().expect("connected above");
        stream.write_all(req).map_err(|e| format!("write: {e}"))?;
        self.parser.reset();
        loop {
            let n = stream
                .read(&mut self.buf)
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed mid-response".into());
            }
            let now = Instant::now();
            let wall = wall_nanos();
            if self
                .parser
                .feed(&self.buf[..n], &mut |b| on_body(b, now, wall))?
            {
                return Ok(self.parser.status);
            }
        }
    }
}

/// One connection, requests back to back: `count` measured requests (after `count / 10`
/// warm-up ones), stopping early at `max_time`.
pub fn sequential(addr: SocketAddr, req: &[u8], count: u64, max_time: Duration) -> LatencyRun {
    let mut run = LatencyRun::new();
    let mut conn = Conn::new(addr);
    for _ in 0..(count / 10).max(1) {
        let _ = conn.exchange(req, &mut |_, _, _| {});
    }
    let start = Instant::now();
    for _ in 0..count {
        if start.elapsed() > max_time {
            break;
        }
        let t0 = Instant::now();
        match conn.exchange(req, &mut |_, _, _| {}) {
            Ok(200) => {
                run.ok += 1;
                run.hist.saturating_record(nanos(t0.elapsed()));
            }
            Ok(s) => run.error(format!("status {s}")),
            Err(e) => run.error(e),
        }
    }
    run.elapsed = start.elapsed();
    run
}

/// A fixed rate of `rate` requests per second for `duration`, over `conns` connections
/// (each a thread). Latency is from each request's intended send time.
pub fn open_loop(
    addr: SocketAddr,
    req: &[u8],
    rate: f64,
    duration: Duration,
    conns: usize,
) -> LatencyRun {
    let total = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    let period_ns = 1e9 / rate;
    let next = Arc::new(AtomicU64::new(0));
    // Time for every thread to connect and warm up before the first planned send.
    let start = Instant::now() + Duration::from_millis(300);
    // An overloaded server cannot hold the run hostage: stop at twice the plan.
    let hard_stop = start + duration * 2 + Duration::from_secs(2);
    let req: Arc<[u8]> = Arc::from(req);
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let next = Arc::clone(&next);
            let req = Arc::clone(&req);
            std::thread::spawn(move || {
                let _ = rustix::thread::set_current_timer_slack(NonZeroU64::new(1));
                let mut run = LatencyRun::new();
                let mut conn = Conn::new(addr);
                let _ = conn.exchange(&req, &mut |_, _, _| {});
                let mut last = start;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let intended = start + Duration::from_nanos((i as f64 * period_ns) as u64);
                    let now = Instant::now();
                    if now > hard_stop {
                        run.unsent += 1;
                        continue;
                    }
                    if intended > now {
                        std::thread::sleep(intended - now);
                    }
                    match conn.exchange(&req, &mut |_, _, _| {}) {
                        Ok(200) => {
                            run.ok += 1;
                            last = Instant::now();
                            run.hist.saturating_record(nanos(last - intended));
                        }
                        Ok(s) => run.error(format!("status {s}")),
                        Err(e) => run.error(e),
                    }
                }
                run.elapsed = last.saturating_duration_since(start);
                run
            })
        })
        .collect();
    let mut run = LatencyRun::new();
    let mut elapsed = Duration::ZERO;
    for t in threads {
        let r = t.join().expect("load thread");
        elapsed = elapsed.max(r.elapsed);
        run.merge(r);
    }
    run.elapsed = elapsed;
    run
}

async fn exchange_async(
    stream: &mut tokio::net::TcpStream,
    parser: &mut ResponseParser,
    buf: &mut [u8],
    req: &[u8],
) -> Result<u16, String> {
    stream
        .write_all(req)
        .await
        .map_err(|e| format!("write: {e}"))?;
    parser.reset();
    loop {
        let n = stream.read(buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed mid-response".into());
        }
        if parser.feed(&buf[..n], &mut |_| {})? {
            return Ok(parser.status);
        }
    }
}

/// `conns` connections sending back to back for `duration` (at most `max_requests` in
/// all). One tokio thread drives every connection.
pub fn closed_loop(
    addr: SocketAddr,
    req: &[u8],
    conns: usize,
    duration: Duration,
    max_requests: u64,
) -> LatencyRun {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let req: Arc<[u8]> = Arc::from(req);
    rt.block_on(async move {
        let budget = Arc::new(AtomicU64::new(max_requests));
        let start = Instant::now();
        let deadline = start + duration;
        let tasks: Vec<_> = (0..conns)
            .map(|_| {
                let req = Arc::clone(&req);
                let budget = Arc::clone(&budget);
                tokio::spawn(async move {
                    let mut run = LatencyRun::new();
                    let mut stream = match tokio::net::TcpStream::connect(addr).await {
                        Ok(s) => s,
                        Err(e) => {
                            run.error(format!("connect {addr}: {e}"));
                            return run;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let mut parser = ResponseParser::default();
                    let mut buf = vec![0u8; 16 * 1024];
                    while Instant::now() < deadline
                        && budget
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                                b.checked_sub(1)
                            })
                            .is_ok()
                    {
                        let t0 = Instant::now();
                        let r = tokio::time::timeout(
                            Duration::from_secs(10),
                            exchange_async(&mut stream, &mut parser, &mut buf, &req),
                        )
                        .await
                        .unwrap_or_else(|_| Err("timed out".into()));
                        match r {
                            Ok(200) => {
                                run.ok += 1;
                                run.hist.saturating_record(nanos(t0.elapsed()));
                            }
                            Ok(s) => run.error(format!("status {s}")),
                            Err(e) => {
                                run.error(e);
                                match tokio::net::TcpStream::connect(addr).await {
                                    Ok(s) => {
                                        let _ = s.set_nodelay(true);
                                        stream = s;
                                    }
                                    Err(_) => break,
                                }
                            }
                        }
                        if parser.close {
                            break;
                        }
                    }
                    run
                })
            })
            .collect();
        let mut run = LatencyRun::new();
        for t in tasks {
            if let Ok(r) = t.await {
                run.merge(r);
            }
        }
        run.elapsed = start.elapsed();
        run
    })
}

/// The result of an SSE run.
#[derive(Debug)]
pub struct SseRun {
    /// Request sent → first content chunk read, ns.
    pub ttfc: Histogram<u64>,
    /// Gaps between consecutive content chunks as the client saw them, ns.
    pub gap: Histogram<u64>,
    /// Mock's write → our read, for every content chunk after the first, ns.
    pub transit: Histogram<u64>,
    pub streams_ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// `conns` threads each running `per_conn` streams one after another.
pub fn streams(
    addr: SocketAddr,
    req: &[u8],
    conns: usize,
    per_conn: u64,
    max_time: Duration,
) -> SseRun {
    let req: Arc<[u8]> = Arc::from(req);
    let deadline = Instant::now() + max_time;
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let req = Arc::clone(&req);
            std::thread::spawn(move || {
                let mut out = SseRun {
                    ttfc: histogram(),
                    gap: histogram(),
                    transit: histogram(),
                    streams_ok: 0,
                    errors: 0,
                    first_error: None,
                };
                let mut conn = Conn::new(addr);
                let mut split = SseSplitter::default();
                for _ in 0..per_conn {
                    if Instant::now() > deadline {
                        break;
                    }
                    split.reset();
                    let t0 = Instant::now();
                    let mut prev: Option<Instant> = None;
                    let (ttfc, gap, transit) = (&mut out.ttfc, &mut out.gap, &mut out.transit);
                    let r = conn.exchange(&req, &mut |bytes, at, wall| {
                        split.push(bytes, &mut |event| {
                            let Some(sent) = event_stamp(event) else {
                                return;
                            };
                            match prev {
                                None => ttfc.saturating_record(nanos(at - t0)),
                                Some(p) => {
                                    gap.saturating_record(nanos(at - p));
                                    let t = u64::try_from(wall.saturating_sub(sent))
                                        .unwrap_or(u64::MAX);
                                    transit.saturating_record(t.max(1));
                                }
                            }
                            prev = Some(at);
                        });
                    });
                    match r {
                        Ok(200) if prev.is_some() => out.streams_ok += 1,
                        Ok(s) => {
                            out.errors += 1;
                            out.first_error
                                .get_or_insert(format!("status {s} (or no chunks)"));
                        }
                        Err(e) => {
                            out.errors += 1;
                            out.first_error.get_or_insert(e);
                        }
                    }
                }
                out
            })
        })
        .collect();
    let mut all: Option<SseRun> = None;
    for t in threads {
        let r = t.join().expect("stream thread");
        match &mut all {
            None => all = Some(r),
            Some(a) => {
                a.ttfc.add(&r.ttfc).expect("bounds");
                a.gap.add(&r.gap).expect("bounds");
                a.transit.add(&r.transit).expect("bounds");
                a.streams_ok += r.streams_ok;
                a.errors += r.errors;
                if a.first_error.is_none() {
                    a.first_error = r.first_error;
                }
            }
        }
    }
    all.expect("at least one connection")
}

/// How many of the held streams opened.
#[derive(Debug, Clone, Copy)]
pub struct HoldRun {
    pub opened: usize,
    pub failed: usize,
    /// Time until every stream had its first chunk (or the wait gave up).
    pub open_time: Duration,
}

/// Opens `n` concurrent streams (each request `req`), waits until each has received its
/// first chunk (at most `open_timeout` in all), calls `measure` while they are all open,
/// then closes them.
pub fn hold_streams<T>(
    addr: SocketAddr,
    req: &[u8],
    n: usize,
    open_timeout: Duration,
    measure: impl FnOnce() -> T,
) -> (HoldRun, T) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let req: Arc<[u8]> = Arc::from(req);
    rt.block_on(async move {
        let opened = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let connecting = Arc::new(tokio::sync::Semaphore::new(64));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + open_timeout;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (req, opened, failed, connecting) = (
                Arc::clone(&req),
                Arc::clone(&opened),
                Arc::clone(&failed),
                Arc::clone(&connecting),
            );
            let mut stop = stop_rx.clone();
            tasks.spawn(async move {
                let open = async {
                    let _permit = connecting.acquire().await.map_err(|e| e.to_string())?;
                    let mut s = tokio::net::TcpStream::connect(addr)
                        .await
                        .map_err(|e| e.to_string())?;
                    s.write_all(&req).await.map_err(|e| e.to_string())?;
                    let mut parser = ResponseParser::default();
                    let mut split = SseSplitter::default();
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let k = s.read(&mut buf).await.map_err(|e| e.to_string())?;
                        if k == 0 {
                            return Err("closed before the first chunk".to_string());
                        }
                        let mut got = false;
                        parser.feed(&buf[..k], &mut |b| split.push(b, &mut |_| got = true))?;
                        if got {
                            return Ok::<_, String>(s);
                        }
                    }
                };
                match tokio::time::timeout_at(deadline, open).await {
                    Ok(Ok(s)) => {
                        opened.fetch_add(1, Ordering::Relaxed);
                        let _ = stop.changed().await;
                        drop(s);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while opened.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < n
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let open_time = start.elapsed();
        // Let the proxy settle (buffers allocated, first chunks forwarded) before measuring.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let measured = measure();
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        tasks.abort_all();
        (
            HoldRun {
                opened: opened.load(Ordering::Relaxed),
                failed: failed.load(Ordering::Relaxed),
                open_time,
            },
            measured,
        )
    })
}
