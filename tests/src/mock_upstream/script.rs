//! The script: what each [`Reply`] sends, and how.

use std::time::Duration;

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
    /// The connection is reset (RST, `SO_LINGER` 0) right after the last chunk; with
    /// `Content-Length` framing the length promised more bytes than were sent.
    Reset,
}

/// Which part of a response is written one byte at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drip {
    /// Everything from the first byte of the status line.
    Head,
    /// Everything after the head (the head is written at once).
    Body,
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
    /// Bytes written before the head (an interim `100 Continue`, ...).
    pub preamble: Vec<u8>,
    /// Written instead of the head and body the other fields describe (a garbage status
    /// line, ...); `ending` still applies (`Clean` closes the connection).
    pub raw: Option<Vec<u8>>,
    /// Writes that part of the response one byte per gap.
    pub drip: Option<(Drip, Duration)>,
    /// After the scripted chunks, this piece is written again and again (raw, or as one
    /// chunk each for chunked framing) until the peer closes the connection.
    pub endless: Option<Vec<u8>>,
    /// After a clean keep-alive answer, the mock closes the idle connection this long
    /// after the response (as upstreams do with idle keep-alive connections).
    pub idle_close: Option<Duration>,
    /// Answers as soon as the request head is read, without reading the body, then shuts
    /// its write side, waits a little and drains what the peer still sends before closing
    /// (an early answer: a 413 to a large body).
    pub early: bool,
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
            preamble: Vec::new(),
            raw: None,
            drip: None,
            endless: None,
            idle_close: None,
            early: false,
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
            preamble: Vec::new(),
            raw: None,
            drip: None,
            endless: None,
            idle_close: None,
            early: false,
        }
    }

    /// Writes exactly `bytes` once the request is read, then closes the connection.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            raw: Some(bytes.into()),
            ..Reply::json(200, "")
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

impl Reply {
    /// Writes `bytes` before the head.
    pub fn preamble(mut self, bytes: impl Into<Vec<u8>>) -> Reply {
        self.preamble = bytes.into();
        self
    }

    /// Writes `part` of the response one byte every `gap`.
    pub fn drip(mut self, part: Drip, gap: Duration) -> Reply {
        self.drip = Some((part, gap));
        self
    }

    /// Writes `piece` forever after the scripted chunks.
    pub fn endless(mut self, piece: impl Into<Vec<u8>>) -> Reply {
        self.endless = Some(piece.into());
        self
    }

    /// Answers before reading the request body (see [`Reply::early`]).
    pub fn early(mut self) -> Reply {
        self.early = true;
        self
    }

    /// Closes the kept-alive connection `after` the response.
    pub fn idle_close(mut self, after: Duration) -> Reply {
        self.idle_close = Some(after);
        self
    }
}

/// `data` as a gzip member (RFC 1952) of stored deflate blocks: real gzip that any
/// decoder reads, without a compressor.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let last = u8::from(blocks.peek().is_none());
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
        out.push(last);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(data.len() % (1 << 32))
            .unwrap_or(0)
            .to_le_bytes(),
    );
    out
}

/// The CRC-32 of gzip (IEEE 802.3, reflected), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod gzip_tests {
    use super::*;

    #[test]
    fn crc_and_framing_match_the_reference_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let g = gzip(b"hello");
        assert_eq!(&g[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(g.len(), 10 + 5 + 5 + 8);
        assert_eq!(&g[15..20], b"hello");
    }
}
