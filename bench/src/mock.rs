//! The mock upstream: an OpenAI-style server answering every chat completion with a fixed
//! ~400-byte body, or an SSE stream of N chunks at a set interval, with as little work per
//! request as possible (hand-written HTTP/1.1 over keep-alive connections, one thread).
//!
//! A request picks its stream shape with the OpenAI `user` field: `"user":"bench-sse-N-MS"`
//! asks for N content chunks MS milliseconds apart. Each chunk carries its send time as
//! `t=<unix nanoseconds>` so a client on the same machine can measure its transit.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The fixed completion: 400 bytes.
pub const COMPLETION: &str = r#"{"id":"chatcmpl-bench000000000000000000000000","object":"chat.completion","created":1700000000,"model":"bench","system_fingerprint":"fp_bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is the fixed answer of the switchback benchmark mock upstream, same every time."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":22,"total_tokens":36}}"#;

const RATE_LIMITED: &str = r#"{"error":{"message":"Rate limit reached for requests","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}"#;

/// Chunks and interval when a stream request names none.
const DEFAULT_CHUNKS: u32 = 20;
const DEFAULT_INTERVAL_MS: u64 = 10;
/// Bounds on what a request may ask for, so no stream outlives a benchmark by much.
const MAX_CHUNKS: u32 = 1000;
const MAX_STREAM: Duration = Duration::from_secs(120);

/// What the mock answers with.
#[derive(Debug, Clone, Copy)]
pub struct MockOptions {
    /// 200 (normal answers) or another status for every chat request (e.g. 429, no
    /// Retry-After).
    pub status: u16,
}

/// Serves on `addr` until the process is killed.
pub fn run(addr: SocketAddr, opts: MockOptions) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = bind(addr)?;
        loop {
            let (sock, _) = match listener.accept().await {
                Ok(c) => c,
                Err(_) => {
                    // EMFILE and the like: back off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            };
            tokio::spawn(async move {
                let _ = connection(sock, opts).await;
            });
        }
    })
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(4096)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn connection(mut sock: TcpStream, opts: MockOptions) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut tmp = [0u8; 8192];
    let ok_head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{COMPLETION}",
        COMPLETION.len()
    );
    loop {
        // Read one request: head, then content-length body.
        let (head_end, body_len) = loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break (end, len);
                }
            }
            let n = sock.read(&mut tmp).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        let is_get = buf.starts_with(b"GET ");
        let body = buf[head_end + 4..head_end + 4 + body_len].to_vec();
        buf.drain(..head_end + 4 + body_len);

        if is_get {
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{\"status\":\"ok\"}").await?;
        } else if opts.status != 200 {
            let resp = format!(
                "HTTP/1.1 {} Mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{RATE_LIMITED}",
                opts.status,
                RATE_LIMITED.len()
            );
            sock.write_all(resp.as_bytes()).await?;
        } else if find(&body, b"\"stream\":true").is_some() {
            let (chunks, interval) = stream_shape(&body);
            stream(&mut sock, chunks, interval).await?;
        } else {
            sock.write_all(ok_head.as_bytes()).await?;
        }
    }
}

/// `"user":"bench-sse-N-MS"` → (N, MS).
fn stream_shape(body: &[u8]) -> (u32, Duration) {
    let parsed = find(body, b"\"user\":\"bench-sse-").and_then(|at| {
        let rest = &body[at + 18..];
        let end = rest.iter().position(|&b| b == b'"')?;
        let text = std::str::from_utf8(&rest[..end]).ok()?;
        let (n, ms) = text.split_once('-')?;
        Some((n.parse::<u32>().ok()?, ms.parse::<u64>().ok()?))
    });
    let (n, ms) = parsed.unwrap_or((DEFAULT_CHUNKS, DEFAULT_INTERVAL_MS));
    (n.clamp(1, MAX_CHUNKS), Duration::from_millis(ms))
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// One chunk of the chunked body: an SSE event carrying its send time.
fn content_chunk(out: &mut Vec<u8>, index: u32) {
    let event = format!(
        "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"token {index} t={} \"}},\"finish_reason\":null}}]}}\n\n",
        unix_nanos()
    );
    out.extend_from_slice(format!("{:x}\r\n", event.len()).as_bytes());
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\r\n");
}

async fn stream(sock: &mut TcpStream, chunks: u32, interval: Duration) -> std::io::Result<()> {
    let start = tokio::time::Instant::now();
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n");
    content_chunk(&mut out, 0);
    sock.write_all(&out).await?;
    for i in 1..chunks {
        let at = start + interval * i;
        if at.duration_since(start) > MAX_STREAM {
            break;
        }
        tokio::time::sleep_until(at).await;
        out.clear();
        content_chunk(&mut out, i);
        sock.write_all(&out).await?;
    }
    let last = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    out.clear();
    out.extend_from_slice(format!("{:x}\r\n{last}\r\n0\r\n\r\n", last.len()).as_bytes());
    sock.write_all(&out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_is_about_400_bytes() {
        assert!(
            (380..=420).contains(&COMPLETION.len()),
            "{}",
            COMPLETION.len()
        );
    }

    #[test]
    fn stream_shape_from_user_field() {
        assert_eq!(
            stream_shape(br#"{"stream":true,"user":"bench-sse-5-250"}"#),
            (5, Duration::from_millis(250))
        );
        assert_eq!(
            stream_shape(br#"{"stream":true}"#),
            (DEFAULT_CHUNKS, Duration::from_millis(DEFAULT_INTERVAL_MS))
        );
    }
}
