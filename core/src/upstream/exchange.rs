//! One HTTP/1.1 request/response exchange on one connection, sans-IO.

use std::collections::VecDeque;
use std::mem;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode, Version};

use super::error::ExchangeError;
use super::framing::{self, BodyPlan};
use super::request::{encode, UpstreamHttpRequest};
use crate::chunked::{ChunkStep, ChunkedDecoder};
use crate::head_fields::FieldSpans;

/// Bound on one response header section (status line and header fields), in bytes.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Bound on the number of header fields in one response header section.
pub const MAX_HEAD_FIELDS: usize = 128;

/// While the head buffer is shorter than this, every input is parsed at once so a peer that
/// does not speak HTTP is rejected early; after that a head is parsed only when a line ends.
const EARLY_PARSE_BYTES: usize = 32;

/// What happened on an [`Exchange`], in order.
///
/// A successful exchange yields one `Head`, zero or more `Body` chunks, then `End`. A failed one
/// stops with `Failed`, possibly after a `Head` and some `Body` chunks. Nothing follows `End` or
/// `Failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeEvent {
    /// The final response head (informational `1xx` responses are skipped).
    Head {
        /// Response status.
        status: StatusCode,
        /// Response headers, as received (framing headers included).
        headers: HeaderMap,
    },
    /// Body bytes, already de-chunked, never empty. Chunk boundaries follow the input, not the
    /// upstream's chunking.
    Body(Bytes),
    /// The response is complete. `reusable` says whether the connection may carry another
    /// exchange: keep-alive, body fully framed by `Content-Length` or chunked, no
    /// `Connection: close`, not HTTP/1.0 without keep-alive, and no bytes past the end.
    End {
        /// The connection may go back to the pool.
        reusable: bool,
    },
    /// The exchange failed; the connection must be closed.
    Failed(ExchangeError),
}

/// One request/response exchange on one connection.
///
/// Sans-IO: it never touches a socket. A runtime drives it like this:
///
/// 1. [`Exchange::new`] with the request; write every [`poll_transmit`](Self::poll_transmit)
///    chunk to the socket until it returns `None`.
/// 2. For every read, call [`handle_input`](Self::handle_input) with the bytes (any split) or
///    [`handle_eof`](Self::handle_eof) when the peer closed, then drain
///    [`poll_event`](Self::poll_event) until `None`.
/// 3. Stop at `End` (pool the connection if `reusable`, else close it) or `Failed` (close it).
///
/// Memory stays bounded for any input: the head buffer is capped at [`MAX_HEAD_BYTES`],
/// chunked framing lines at 4 KiB, and the body is handed out as it arrives, provided the
/// runtime drains events after each input.
///
/// The head is parsed with `httparse`, the framing follows RFC 9112 §6.3 (see the `framing`
/// module), chunked bodies are decoded strictly (CRLF line ends, bounded lines). `1xx`
/// responses other than `101` are skipped, so a `100 Continue` carrying headers is accepted
/// too.
#[derive(Debug)]
pub struct Exchange {
    method: Method,
    transmit: VecDeque<Bytes>,
    events: VecDeque<ExchangeEvent>,
    /// Any response byte arrived (an informational response counts).
    received: bool,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Waiting for the final response head; `buf` holds its bytes so far.
    AwaitingHead { buf: BytesMut },
    /// A body of this many more bytes.
    Length { left: u64, reusable: bool },
    /// A chunked body; `pending` holds input not decoded yet (a partial framing line).
    Chunked {
        decoder: ChunkedDecoder,
        pending: BytesMut,
        reusable: bool,
    },
    /// A body that ends when the peer closes the connection.
    ToClose,
    /// `End` or `Failed` has been queued.
    Done,
}

impl Exchange {
    /// Start an exchange for `req`, encoding it as an HTTP/1.1 request.
    ///
    /// `Host` is the caller's when it set one, else the origin's (`host[:port]`, the port
    /// omitted when it is the scheme's default), `Content-Length` comes from the body (always
    /// for `POST`/`PUT`/`PATCH`, otherwise only when the body is non-empty), and any
    /// `Transfer-Encoding` or `Expect` the caller set is dropped, so the body follows the head
    /// at once. Fails with [`ExchangeError::InvalidRequest`] when the request cannot be encoded
    /// (target not starting with `/` or holding spaces or control characters, `CONNECT`).
    pub fn new(req: &UpstreamHttpRequest) -> Result<Exchange, ExchangeError> {
        let transmit = encode(req)?;
        Ok(Exchange {
            method: req.method.clone(),
            transmit: transmit.into(),
            events: VecDeque::new(),
            received: false,
            state: State::AwaitingHead {
                buf: BytesMut::new(),
            },
        })
    }

    /// The next bytes to write to the socket: the request head, then the body. Call it until it
    /// returns `None` before waiting for the response. Response input may be handled before the
    /// request is fully written (an upstream can answer early).
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// Whether request bytes are still waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn has_transmit(&self) -> bool {
        !self.transmit.is_empty()
    }

    /// Feed bytes read from the socket, in any split (one byte at a time is fine). Drain
    /// [`poll_event`](Self::poll_event) afterwards. Input after `End`/`Failed` is ignored.
    pub fn handle_input(&mut self, data: &[u8]) {
        if data.is_empty() || matches!(self.state, State::Done) {
            return;
        }
        self.received = true;
        let state = mem::replace(&mut self.state, State::Done);
        self.state = self.step(state, data);
    }

    /// The socket reached EOF: the peer closed (or half-closed) the connection. Ends a
    /// close-delimited body with `End { reusable: false }`; otherwise fails with
    /// [`ClosedBeforeResponse`](ExchangeError::ClosedBeforeResponse) if no response byte ever
    /// arrived (a stale pooled connection: safe to retry on a fresh one),
    /// [`TruncatedHead`](ExchangeError::TruncatedHead) /
    /// [`Malformed`](ExchangeError::Malformed) mid head, or
    /// [`TruncatedBody`](ExchangeError::TruncatedBody) mid body. A chunked body cut after its
    /// last (zero-size) chunk but before the final CRLF is accepted, not reusable. Calling it
    /// again, or after `End`/`Failed`, does nothing.
    pub fn handle_eof(&mut self) {
        self.state = match mem::replace(&mut self.state, State::Done) {
            State::AwaitingHead { buf } => {
                let error = if !self.received {
                    ExchangeError::ClosedBeforeResponse
                } else {
                    match parse_head(&buf) {
                        Err(e) => e,
                        Ok(_) => ExchangeError::TruncatedHead,
                    }
                };
                self.fail(error)
            }
            State::Chunked { decoder, .. } if decoder.saw_last_chunk() => self.end(false),
            State::Length { .. } | State::Chunked { .. } => self.fail(ExchangeError::TruncatedBody),
            State::ToClose => self.end(false),
            State::Done => State::Done,
        };
    }

    /// The next thing that happened, in order; `None` when nothing is queued. Drain it after
    /// every `handle_input`/`handle_eof`. After `End` or `Failed` it returns `None` forever.
    pub fn poll_event(&mut self) -> Option<ExchangeEvent> {
        self.events.pop_front()
    }

    /// Bytes held internally (head buffer, pending framing, queued events). For bound checks.
    #[cfg(test)]
    pub(super) fn buffered_bytes(&self) -> usize {
        let state = match &self.state {
            State::AwaitingHead { buf } => buf.len(),
            State::Chunked { pending, .. } => pending.len(),
            State::Length { .. } | State::ToClose | State::Done => 0,
        };
        let events: usize = self
            .events
            .iter()
            .map(|e| match e {
                ExchangeEvent::Body(b) => b.len(),
                _ => 0,
            })
            .sum();
        state + events
    }

    fn step(&mut self, state: State, data: &[u8]) -> State {
        match state {
            State::AwaitingHead { buf } => self.read_head(buf, data),
            State::Length { left, reusable } => {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                if take > 0 {
                    self.emit(ExchangeEvent::Body(Bytes::copy_from_slice(&data[..take])));
                }
                let left = left - take as u64;
                if left == 0 {
                    self.end(reusable && take == data.len())
                } else {
                    State::Length { left, reusable }
                }
            }
            State::Chunked {
                decoder,
                mut pending,
                reusable,
            } => {
                pending.extend_from_slice(data);
                self.dechunk(decoder, pending, reusable)
            }
            State::ToClose => {
                self.emit(ExchangeEvent::Body(Bytes::copy_from_slice(data)));
                State::ToClose
            }
            State::Done => State::Done,
        }
    }

    /// Buffers head bytes (at most [`MAX_HEAD_BYTES`]), skips informational responses, and on
    /// the final head hands the rest of the input to the body reader.
    fn read_head(&mut self, mut buf: BytesMut, data: &[u8]) -> State {
        let mut input = data;
        let mut must_parse = false;
        loop {
            let take = input.len().min(MAX_HEAD_BYTES.saturating_sub(buf.len()));
            let (now, later) = input.split_at(take);
            input = later;
            // A head can only complete at the end of a line.
            must_parse |= now.contains(&b'\n') || buf.len() < EARLY_PARSE_BYTES;
            buf.extend_from_slice(now);
            let parsed = if must_parse {
                parse_head(&buf)
            } else {
                Ok(None)
            };
            must_parse = false;
            match parsed {
                Err(e) => return self.fail(e),
                Ok(None) if buf.len() >= MAX_HEAD_BYTES => return self.fail(head_too_large()),
                Ok(None) if input.is_empty() => return State::AwaitingHead { buf },
                Ok(None) => {}
                Ok(Some(head)) if head.interim => {
                    let _ = buf.split_to(head.len);
                    must_parse = true;
                }
                Ok(Some(head)) => {
                    let bytes = buf.split_to(head.len).freeze();
                    return match head.fields.into_map(&bytes) {
                        Ok(headers) => {
                            self.start_body(head.status, head.version, headers, buf, input)
                        }
                        Err(why) => self.fail(malformed(why)),
                    };
                }
            }
        }
    }

    /// The final head was parsed: report it and start reading the body from `rest` (bytes
    /// after the head in the buffer) and `more` (input not buffered yet).
    fn start_body(
        &mut self,
        status: StatusCode,
        version: Version,
        headers: HeaderMap,
        rest: BytesMut,
        more: &[u8],
    ) -> State {
        let framing = match framing::decide(&self.method, status, version, &headers) {
            Ok(f) => f,
            Err(why) => return self.fail(malformed(why)),
        };
        self.emit(ExchangeEvent::Head { status, headers });
        let excess = !rest.is_empty() || !more.is_empty();
        let next = match framing.body {
            BodyPlan::None | BodyPlan::Length(0) => {
                return self.end(framing.reusable && !excess);
            }
            BodyPlan::Length(left) => State::Length {
                left,
                reusable: framing.reusable,
            },
            BodyPlan::Chunked => {
                let mut pending = rest;
                pending.extend_from_slice(more);
                return self.dechunk(
                    ChunkedDecoder::new(MAX_HEAD_BYTES),
                    pending,
                    framing.reusable,
                );
            }
            BodyPlan::ToClose => State::ToClose,
        };
        let next = if rest.is_empty() {
            next
        } else {
            self.step(next, &rest)
        };
        if more.is_empty() {
            next
        } else {
            self.step(next, more)
        }
    }

    /// Decodes what `pending` holds of a chunked body.
    fn dechunk(
        &mut self,
        mut decoder: ChunkedDecoder,
        mut pending: BytesMut,
        reusable: bool,
    ) -> State {
        loop {
            match decoder.decode(&mut pending) {
                Ok(ChunkStep::Data(data)) => self.emit(ExchangeEvent::Body(data)),
                Ok(ChunkStep::End) => return self.end(reusable && pending.is_empty()),
                Ok(ChunkStep::NeedMore) => {
                    return State::Chunked {
                        decoder,
                        pending,
                        reusable,
                    }
                }
                Err(e) => return self.fail(malformed(e)),
            }
        }
    }

    fn emit(&mut self, event: ExchangeEvent) {
        self.events.push_back(event);
    }

    fn end(&mut self, reusable: bool) -> State {
        self.emit(ExchangeEvent::End { reusable });
        State::Done
    }

    fn fail(&mut self, error: ExchangeError) -> State {
        self.emit(ExchangeEvent::Failed(error));
        State::Done
    }
}

/// A complete response head, its fields still spans of the buffer.
struct ParsedHead {
    /// Its length in bytes.
    len: usize,
    /// A 1xx other than 101: skipped.
    interim: bool,
    status: StatusCode,
    version: Version,
    fields: FieldSpans,
}

/// Parses a complete head at the start of `buf`, or `None` when more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<ParsedHead>, ExchangeError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEAD_FIELDS];
    let mut res = httparse::Response::new(&mut slots);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(head_too_large()),
        Err(e) => return Err(malformed(e)),
    };
    let status = res
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| malformed("invalid status code"))?;
    let version = match res.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let interim = status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS;
    let fields = FieldSpans::record(buf, if interim { &[] } else { res.headers });
    Ok(Some(ParsedHead {
        len,
        interim,
        status,
        version,
        fields,
    }))
}

fn head_too_large() -> ExchangeError {
    ExchangeError::HeadTooLarge {
        max_bytes: MAX_HEAD_BYTES,
        max_fields: MAX_HEAD_FIELDS,
    }
}

fn malformed(what: impl std::fmt::Display) -> ExchangeError {
    ExchangeError::Malformed(what.to_string())
}
