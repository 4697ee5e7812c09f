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
