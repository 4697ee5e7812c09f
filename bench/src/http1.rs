//! A minimal HTTP/1.1 client codec for the load generator: request bytes, and a sans-IO
//! response parser (content-length and chunked bodies) plus an SSE event splitter. It does
//! only what the benchmark needs, with no allocation per response once warmed up.

/// The request body of a chat completion through model `model`.
pub fn chat_body(model: &str, stream: bool, user: Option<&str>) -> String {
    let mut s = format!(
        r#"{{"model":"{model}","messages":[{{"role":"user","content":"Say hello in one short sentence."}}]"#
    );
    if stream {
        s.push_str(r#","stream":true"#);
    }
    if let Some(u) = user {
        s.push_str(&format!(r#","user":"{u}""#));
    }
    s.push('}');
    s
}

/// A complete `POST /v1/chat/completions` request with `body`, for a keep-alive connection.
pub fn chat_request(body: &str) -> Vec<u8> {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer bench\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `GET /healthz`.
pub const HEALTH_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(usize),
    ChunkSize,
    ChunkData(usize),
    ChunkCrlf,
    Trailer,
    Done,
}

/// Parses one response at a time from bytes fed in any split.
#[derive(Debug)]
pub struct ResponseParser {
    buf: Vec<u8>,
    pos: usize,
    state: State,
    /// The final status (0 until the head is parsed).
    pub status: u16,
    /// Whether the server said it will close the connection.
    pub close: bool,
    /// switchback's `x-switchback-attempts`, when present.
    pub attempts: Option<u32>,
}

impl Default for ResponseParser {
    fn default() -> Self {
        ResponseParser {
            buf: Vec::with_capacity(16 * 1024),
            pos: 0,
            state: State::Head,
            status: 0,
            close: false,
            attempts: None,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl ResponseParser {
    /// Prepares for the next response on the same connection.
    pub fn reset(&mut self) {
        self.buf.drain(..self.pos);
        self.pos = 0;
        self.state = State::Head;
        self.status = 0;
        self.close = false;
        self.attempts = None;
    }

    /// Feeds bytes read from the socket; decoded body bytes go to `body`. Returns whether the
    /// response is complete.
    pub fn feed(&mut self, data: &[u8], body: &mut dyn FnMut(&[u8])) -> Result<bool, String> {
        self.buf.extend_from_slice(data);
        loop {
            let avail = &self.buf[self.pos..];
            match self.state {
                State::Done => break,
                State::Head => {
                    let Some(end) = find(avail, b"\r\n\r\n") else {
                        break;
                    };
                    let head = std::str::from_utf8(&avail[..end]).map_err(|e| e.to_string())?;
                    let mut lines = head.split("\r\n");
                    let status_line = lines.next().unwrap_or("");
                    let status: u16 = status_line
                        .split(' ')
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
                    let mut length = None;
                    let mut chunked = false;
                    let mut close = false;
                    let mut attempts = None;
                    for line in lines {
                        let Some((name, value)) = line.split_once(':') else {
                            continue;
                        };
                        let value = value.trim();
                        if name.eq_ignore_ascii_case("content-length") {
                            length = Some(value.parse::<usize>().map_err(|e| e.to_string())?);
                        } else if name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = value.eq_ignore_ascii_case("chunked");
                        } else if name.eq_ignore_ascii_case("connection") {
                            close = value.eq_ignore_ascii_case("close");
                        } else if name.eq_ignore_ascii_case("x-switchback-attempts") {
                            attempts = value.parse().ok();
                        }
                    }
                    self.pos += end + 4;
                    if (100..200).contains(&status) {
                        continue;
                    }
                    self.status = status;
                    self.close = close;
                    self.attempts = attempts;
                    self.state = if chunked {
                        State::ChunkSize
                    } else {
                        match length {
                            Some(0) => State::Done,
                            Some(n) => State::Length(n),
                            None => return Err("response without a length".into()),
                        }
                    };
                }
                State::Length(n) => {
                    if avail.is_empty() {
                        break;
                    }
                    let k = avail.len().min(n);
                    body(&avail[..k]);
                    self.pos += k;
                    self.state = if k == n {
                        State::Done
                    } else {
                        State::Length(n - k)
                    };
                }
                State::ChunkSize => {
                    let Some(end) = find(avail, b"\r\n") else {
                        break;
                    };
                    let line = std::str::from_utf8(&avail[..end]).map_err(|e| e.to_string())?;
                    let hex = line.split(';').next().unwrap_or("").trim();
                    let n = usize::from_str_radix(hex, 16)
                        .map_err(|e| format!("bad chunk size {line:?}: {e}"))?;
                    self.pos += end + 2;
                    self.state = if n == 0 {
                        State::Trailer
                    } else {
                        State::ChunkData(n)
                    };
                }
                State::ChunkData(n) => {
                    if avail.is_empty() {
                        break;
                    }
                    let k = avail.len().min(n);
                    body(&avail[..k]);
                    self.pos += k;
                    self.state = if k == n {
                        State::ChunkCrlf
                    } else {
                        State::ChunkData(n - k)
                    };
                }
                State::ChunkCrlf => {
                    if avail.len() < 2 {
                        break;
                    }
                    self.pos += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailer => {
                    let Some(end) = find(avail, b"\r\n") else {
                        break;
                    };
                    self.pos += end + 2;
                    if end == 0 {
                        self.state = State::Done;
                    }
                }
            }
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        Ok(self.state == State::Done)
    }
}

/// Splits a decoded SSE body into events (each ending with a blank line).
#[derive(Debug, Default)]
pub struct SseSplitter {
    pending: Vec<u8>,
}

impl SseSplitter {
    pub fn reset(&mut self) {
        self.pending.clear();
    }

    /// Adds body bytes; calls `event` with each complete event's text.
    pub fn push(&mut self, data: &[u8], event: &mut dyn FnMut(&[u8])) {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(end) = find(&self.pending[start..], b"\n\n") {
            event(&self.pending[start..start + end]);
            start += end + 2;
        }
        self.pending.drain(..start);
    }
}

/// The mock's send timestamp (`t=<unix nanoseconds>`) inside an SSE event, if present.
pub fn event_stamp(event: &[u8]) -> Option<u128> {
    let at = find(event, b"t=")?;
    let digits = event[at + 2..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u128, |n, d| n * 10 + u128::from(d - b'0'));
    Some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_in_any_split() {
        let wire = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n";
        for split in 1..wire.len() {
            let mut p = ResponseParser::default();
            let mut bodies = Vec::new();
            let mut body = Vec::new();
            for piece in wire.chunks(split) {
                let mut rest: &[u8] = piece;
                loop {
                    let done = p.feed(rest, &mut |b| body.extend_from_slice(b)).unwrap();
                    rest = &[];
                    if !done {
                        break;
                    }
                    bodies.push(std::mem::take(&mut body));
                    p.reset();
                }
            }
            assert_eq!(
                bodies,
                vec![b"hello".to_vec(), b"abcde".to_vec()],
                "split {split}"
            );
        }
    }

    #[test]
    fn splits_events_and_reads_stamps() {
        let mut s = SseSplitter::default();
        let mut events = Vec::new();
        s.push(b"data: {\"t=12", &mut |e| events.push(e.to_vec()));
        s.push(b"3 \"}\n\ndata: [DONE]\n\n", &mut |e| {
            events.push(e.to_vec())
        });
        assert_eq!(events.len(), 2);
        assert_eq!(event_stamp(&events[0]), Some(123));
        assert_eq!(event_stamp(&events[1]), None);
    }
}
