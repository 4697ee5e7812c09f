//! Framing requests out of a client connection's byte stream.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::error::HttpError;
use super::head::{self, BodyFraming, RequestHead};
use super::limits::ServerLimits;
use crate::chunked::{ChunkStep, ChunkedDecoder};

/// While fewer bytes than this are buffered, every input is parsed at once, so that bytes
/// that are not HTTP are refused early; after that a head is re-parsed only when a line ends.
const EARLY_PARSE_BYTES: usize = 32;

/// What the reader found, in order. One request is `Head`, any number of `Body`, then `End`;
/// `Error` is final (answer it and close the connection).
#[derive(Debug)]
pub enum ReadEvent {
    Head(RequestHead),
    /// Body bytes, de-chunked, never empty.
    Body(Bytes),
    /// The request (head and body) is complete.
    End,
    Error(HttpError),
}

#[derive(Debug)]
enum State {
    /// Waiting for a request head.
    Head,
    /// Reading a body framed by length: bytes left.
    Length(u64),
    Chunked(ChunkedDecoder),
    /// The request was read; further input is held until [`RequestReader::next_request`].
    Complete,
    Failed,
}

/// Reads requests one after another from a connection's bytes, sans-IO.
///
/// Feed every read with [`push`](Self::push) and drain [`poll_event`](Self::poll_event) until
/// `None`. After `End`, bytes that follow (a pipelined request) are buffered but not parsed
/// until [`next_request`](Self::next_request), so requests are answered in order. Memory: the
/// caller stops reading while [`buffered`](Self::buffered) is above its own bound; the head
/// buffer is refused past [`ServerLimits::max_head_bytes`] and the body is handed out as it
/// arrives, so nothing here grows without bound.
#[derive(Debug)]
pub struct RequestReader {
    buf: BytesMut,
    limits: ServerLimits,
    state: State,
    events: VecDeque<ReadEvent>,
    /// A line ended (or the buffer is short) since the last head parse: worth trying again.
    try_parse: bool,
    body_read: u64,
}

impl RequestReader {
    /// A reader at the start of a connection.
    pub fn new(limits: ServerLimits) -> Self {
        RequestReader {
            buf: BytesMut::new(),
            limits,
            state: State::Head,
            events: VecDeque::new(),
            try_parse: false,
            body_read: 0,
        }
    }

    /// Appends bytes read from the client, in any split. After an `Error` the input is
    /// dropped: nothing on the connection can be trusted any more, and a reader that kept
    /// it would hold whatever the client sends.
    pub fn push(&mut self, data: &[u8]) {
        if data.is_empty() || matches!(self.state, State::Failed) {
            return;
        }
        if matches!(self.state, State::Head) {
            self.try_parse |= self.buf.len() < EARLY_PARSE_BYTES || data.contains(&b'\n');
        }
        self.buf.extend_from_slice(data);
    }

    /// The next event, if the buffered bytes make one.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ReadEvent> {
        if self.events.is_empty() {
            self.step();
        }
        self.events.pop_front()
    }

    /// Starts reading the next request: call after the current one was answered (its `End`
    /// or `Error` seen). Bytes already buffered are parsed on the next `poll_event`.
    pub fn next_request(&mut self) {
        if matches!(self.state, State::Complete) {
            self.state = State::Head;
            self.try_parse = !self.buf.is_empty();
            self.body_read = 0;
        }
    }

    /// Bytes held: unparsed head bytes, or input waiting behind the current request.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether part of a request head has arrived (for 408 versus a silent close).
    pub fn has_partial_head(&self) -> bool {
        matches!(self.state, State::Head) && !self.buf.is_empty()
    }

    /// Whether the reader is between the end of a request and the next head.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    fn step(&mut self) {
        match &mut self.state {
            State::Head => self.read_head(),
            State::Length(left) => {
                if self.buf.is_empty() {
                    return;
                }
                let take = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(self.buf.len());
                *left -= take as u64;
                let done = *left == 0;
                let data = self.buf.split_to(take).freeze();
                self.body_read += take as u64;
                self.events.push_back(ReadEvent::Body(data));
                if done {
                    self.end();
                }
            }
            State::Chunked(decoder) => loop {
                match decoder.decode(&mut self.buf) {
                    Ok(ChunkStep::Data(data)) => {
                        self.body_read += data.len() as u64;
                        if self.body_read > self.limits.max_body_bytes as u64 {
                            self.fail(HttpError::body_too_large(self.limits.max_body_bytes));
                            return;
                        }
                        self.events.push_back(ReadEvent::Body(data));
                    }
                    Ok(ChunkStep::End) => {
                        self.end();
                        return;
                    }
                    Ok(ChunkStep::NeedMore) => return,
                    Err(e) => {
                        self.fail(HttpError::malformed(e));
                        return;
                    }
                }
            },
            State::Complete | State::Failed => {}
        }
    }

    fn read_head(&mut self) {
        // A head still incomplete at `max_head_bytes` can only end past the limit: refuse it
        // now, not when a byte more arrives (the caller may stop reading at exactly that).
        if !self.try_parse {
            if self.buf.len() >= self.limits.max_head_bytes {
                self.fail(HttpError::head_too_large(
                    self.limits.max_head_bytes,
                    self.limits.max_headers,
                ));
            }
            return;
        }
        self.try_parse = false;
        match head::parse(&mut self.buf, &self.limits) {
            Ok(None) if self.buf.len() >= self.limits.max_head_bytes => self.fail(
                HttpError::head_too_large(self.limits.max_head_bytes, self.limits.max_headers),
            ),
            Ok(None) => {}
            Err(e) => self.fail(e),
            Ok(Some(head)) => {
                let framing = head.framing;
                self.events.push_back(ReadEvent::Head(head));
                match framing {
                    BodyFraming::None | BodyFraming::Length(0) => self.end(),
                    BodyFraming::Length(n) if n > self.limits.max_body_bytes as u64 => {
                        self.fail(HttpError::body_too_large(self.limits.max_body_bytes));
                    }
                    BodyFraming::Length(n) => self.state = State::Length(n),
                    BodyFraming::Chunked => {
                        self.state =
                            State::Chunked(ChunkedDecoder::new(self.limits.max_head_bytes));
                    }
                }
            }
        }
    }

    fn end(&mut self) {
        self.events.push_back(ReadEvent::End);
        self.state = State::Complete;
    }

    fn fail(&mut self, error: HttpError) {
        self.events.push_back(ReadEvent::Error(error));
        self.state = State::Failed;
        self.buf.clear();
    }
}
