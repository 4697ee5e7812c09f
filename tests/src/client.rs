//! A small HTTP/1.1 test client over `std::net::TcpStream`: whole responses, streamed
//! responses read chunk by chunk with arrival times, and clients that walk away
//! mid-request or mid-stream.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::mock_upstream::find;

/// The longest a client waits for the gateway at any read: a hung gateway fails the
/// test instead of hanging it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The chat completions path.
pub const CHAT_PATH: &str = "/v1/chat/completions";

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The decoded body (chunked framing removed).
    pub body: Vec<u8>,
    /// The decoded body as it arrived, with arrival times.
    pub chunks: Vec<(Instant, Vec<u8>)>,
    /// Whether the body ended as its framing says (false: cut or timed out).
    pub complete: bool,
    /// When the request was sent.
    pub started: Instant,
    /// When the last byte arrived.
    pub finished: Instant,
}

impl Response {
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

    /// Time from sending the request to the end of the response.
    pub fn elapsed(&self) -> Duration {
        self.finished.saturating_duration_since(self.started)
    }

    /// The `data:` payloads of the SSE events in the body, in order.
    pub fn sse_data(&self) -> Vec<String> {
        sse_data(&self.text())
    }
}

/// The `data:` payloads of every SSE event in `text` (multi-line data joined by `\n`).
pub fn sse_data(text: &str) -> Vec<String> {
    let normalized = text.replace("\r\n", "\n");
    normalized
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

/// Builds the bytes of one request.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: switchback.test\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends `raw` as-is and reads the whole response.
pub fn send_raw(addr: SocketAddr, raw: &[u8]) -> io::Result<Response> {
    let mut s = Streaming::send(addr, raw)?;
    s.read_head()?;
    Ok(s.finish())
}

/// One request, the whole response.
///
/// # Panics
/// If the gateway cannot be reached or sends no response head.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    send_raw(addr, &request_bytes(method, path, headers, body))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// `POST /v1/chat/completions` with a JSON body.
pub fn post_chat(addr: SocketAddr, body: &str) -> Response {
    post_chat_with(addr, body, &[])
}

/// The same with extra headers.
pub fn post_chat_with(addr: SocketAddr, body: &str, headers: &[(&str, &str)]) -> Response {
    let mut h = vec![
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer test-key"),
    ];
    h.extend_from_slice(headers);
    request(addr, "POST", CHAT_PATH, &h, body.as_bytes())
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], b"")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Length(usize),
    Chunked(ChunkState),
    Close,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(usize),
    DataEnd,
    Trailer,
}

/// A response read incrementally. Dropping it closes the connection (a client that
/// goes away).
#[derive(Debug)]
pub struct Streaming {
    stream: TcpStream,
    raw: Vec<u8>,
    mode: Mode,
    eof: bool,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunks: Vec<(Instant, Vec<u8>)>,
    started: Instant,
    last: Instant,
}

impl Streaming {
    /// Connects and sends `raw`; does not read anything yet.
    pub fn send(addr: SocketAddr, raw: &[u8]) -> io::Result<Streaming> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        let started = Instant::now();
        stream.write_all(raw)?;
        Ok(Streaming {
            stream,
            raw: Vec::new(),
            mode: Mode::Close,
            eof: false,
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
            chunks: Vec::new(),
            started,
            last: started,
        })
    }

    /// Sends a streaming chat request and reads the response head.
    ///
    /// # Panics
    /// If the gateway cannot be reached or sends no head.
    pub fn chat(addr: SocketAddr, body: &str) -> Streaming {
        let raw = request_bytes(
            "POST",
            CHAT_PATH,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        let mut s = Streaming::send(addr, &raw).expect("send the chat request");
        s.read_head().expect("read the response head");
        s
    }

    fn fill(&mut self) -> io::Result<bool> {
        let mut tmp = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut tmp) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.raw.extend_from_slice(&tmp[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    self.eof = true;
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the status line and headers.
    pub fn read_head(&mut self) -> io::Result<()> {
        let end = loop {
            if let Some(i) = find(&self.raw, b"\r\n\r\n") {
                break i + 4;
            }
            if !self.fill()? {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the connection closed before a response head",
                ));
            }
        };
        let head = String::from_utf8_lossy(&self.raw[..end]).into_owned();
        self.raw.drain(..end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        self.status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        self.headers = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            })
            .collect();
        let header = |n: &str| {
            self.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.to_ascii_lowercase())
        };
        self.mode = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            Mode::Chunked(ChunkState::Size)
        } else if let Some(len) = header("content-length").and_then(|v| v.parse().ok()) {
            Mode::Length(len)
        } else if self.status == 204 || self.status == 304 {
            Mode::Done
        } else {
            Mode::Close
        };
        if self.mode == Mode::Length(0) {
            self.mode = Mode::Done;
        }
        self.last = Instant::now();
        Ok(())
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Decodes what the raw buffer holds.
    fn decode(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            match self.mode {
                Mode::Done => break,
                Mode::Close => {
                    out.append(&mut self.raw);
                    break;
                }
                Mode::Length(left) => {
                    let n = left.min(self.raw.len());
                    out.extend(self.raw.drain(..n));
                    self.mode = if left == n {
                        Mode::Done
                    } else {
                        Mode::Length(left - n)
                    };
                    break;
                }
                Mode::Chunked(ChunkState::Size) => {
                    let Some(i) = find(&self.raw, b"\r\n") else {
                        break;
                    };
                    let line = String::from_utf8_lossy(&self.raw[..i]).into_owned();
                    self.raw.drain(..i + 2);
                    let size = usize::from_str_radix(
                        line.split(';').next().unwrap_or_default().trim(),
                        16,
                    )
                    .unwrap_or(0);
                    self.mode = Mode::Chunked(if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    });
                }
                Mode::Chunked(ChunkState::Data(left)) => {
                    if self.raw.is_empty() {
                        break;
                    }
                    let n = left.min(self.raw.len());
                    out.extend(self.raw.drain(..n));
                    self.mode = Mode::Chunked(if left == n {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n)
                    });
                }
                Mode::Chunked(ChunkState::DataEnd) => {
                    if self.raw.len() < 2 {
                        break;
                    }
                    self.raw.drain(..2);
                    self.mode = Mode::Chunked(ChunkState::Size);
                }
                Mode::Chunked(ChunkState::Trailer) => {
                    let Some(i) = find(&self.raw, b"\r\n") else {
                        break;
                    };
                    self.raw.drain(..i + 2);
                    if i == 0 {
                        self.mode = Mode::Done;
                    }
                }
            }
        }
        out
    }

    /// Whether the body has ended as its framing says.
    pub fn is_complete(&self) -> bool {
        self.mode == Mode::Done
    }

    /// The next piece of decoded body, or `None` at the end of the body (complete, cut
    /// or a read timeout).
    pub fn next_chunk(&mut self) -> Option<Vec<u8>> {
        loop {
            let out = self.decode();
            if !out.is_empty() {
                let now = Instant::now();
                self.last = now;
                self.body.extend_from_slice(&out);
                self.chunks.push((now, out.clone()));
                return Some(out);
            }
            if self.mode == Mode::Done || self.eof {
                if self.eof && self.mode == Mode::Close {
                    self.mode = Mode::Done;
                }
                return None;
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => {
                    if self.mode == Mode::Close {
                        self.mode = Mode::Done;
                    }
                    return None;
                }
                Err(_) => return None,
            }
        }
    }

    /// Reads until the body received so far contains `needle`; false if the body ended
    /// first.
    pub fn read_until(&mut self, needle: &str) -> bool {
        loop {
            if find(&self.body, needle.as_bytes()).is_some() {
                return true;
            }
            if self.next_chunk().is_none() {
                return false;
            }
        }
    }

    /// The body received so far.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Reads the rest of the body and returns the whole response.
    pub fn finish(mut self) -> Response {
        while self.next_chunk().is_some() {}
        Response {
            status: self.status,
            complete: self.mode == Mode::Done,
            headers: std::mem::take(&mut self.headers),
            body: std::mem::take(&mut self.body),
            chunks: std::mem::take(&mut self.chunks),
            started: self.started,
            finished: self.last,
        }
    }

    /// Closes the connection now (the client goes away).
    pub fn disconnect(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
