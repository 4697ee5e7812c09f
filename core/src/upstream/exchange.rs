//! One HTTP/1.1 request/response exchange on one connection, sans-IO.

use std::collections::VecDeque;
use std::mem;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use ureq_proto::client::state::{RecvBody, RecvResponse};
use ureq_proto::client::{Call, RecvBodyResult, RecvResponseResult};
use ureq_proto::BodyMode;

use super::error::ExchangeError;
use super::framing;
use super::request::{encode, UpstreamHttpRequest};

/// Bound on one response header section (status line and header fields), in bytes.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Bound on the number of header fields in one response header section.
pub const MAX_HEAD_FIELDS: usize = ureq_proto::client::MAX_RESPONSE_HEADERS;

/// Bound on chunked-framing bytes held while waiting for the end of a line (a chunk-size line
/// or a trailer field).
const MAX_PENDING_FRAMING: usize = 64 * 1024;

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
/// chunked framing at 64 KiB, and the body is handed out as it arrives, provided the runtime
/// drains events after each input.
///
/// Parsing, body framing and connection reuse come from `ureq-proto`; see the
/// `framing` module for where this wrapper departs from it (HTTP/1.0 with
/// `Transfer-Encoding`, non-final `chunked`, `chunked` plus `Content-Length`), and
/// [`handle_eof`](Self::handle_eof) for EOF handling. `1xx` responses other than `101` are
/// skipped by the wrapper, so a `100 Continue` carrying headers is accepted too.
///
/// Known limit inherited from ureq-proto: a chunk-size line longer than 20 bytes (a long chunk
/// extension) is rejected as malformed.
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
    AwaitingHead {
        call: Call<RecvResponse>,
        buf: Vec<u8>,
    },
    /// A body framed by `Content-Length` or chunked, read by ureq-proto. `pending` holds input
    /// ureq-proto could not consume yet (a partial chunk-size or trailer line).
    FramedBody {
        call: Call<RecvBody>,
        pending: Vec<u8>,
        must_close: bool,
    },
    /// A body that ends when the peer closes the connection.
    CloseDelimitedBody,
    /// `End` or `Failed` has been queued.
    Done,
}

impl Exchange {
    /// Start an exchange for `req`, encoding it as an HTTP/1.1 request.
    ///
    /// `Host` is set from the origin (`host[:port]`, the port omitted when it is the scheme's
    /// default), `Content-Length` from the body (always for `POST`/`PUT`/`PATCH`, otherwise only
    /// when the body is non-empty), and any `Transfer-Encoding` or `Expect` the caller set is
    /// dropped, so the body follows the head at once. Fails with
    /// [`ExchangeError::InvalidRequest`] when the request cannot be encoded (target not starting
    /// with `/`, `CONNECT`, invalid characters).
    pub fn new(req: &UpstreamHttpRequest) -> Result<Exchange, ExchangeError> {
        let encoded = encode(req)?;
        Ok(Exchange {
            method: req.method.clone(),
            transmit: encoded.transmit.into_iter().collect(),
            events: VecDeque::new(),
            received: false,
            state: State::AwaitingHead {
                call: encoded.call,
                buf: Vec::new(),
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
        if data.is_empty() {
            return;
        }
        if !matches!(self.state, State::Done) {
            self.received = true;
        }
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
            State::AwaitingHead { buf, .. } => {
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
            State::FramedBody { call, .. } => {
                if call.body_mode() == BodyMode::Chunked && call.is_ended_chunked() {
                    self.end(false)
                } else {
                    self.fail(ExchangeError::TruncatedBody)
                }
            }
            State::CloseDelimitedBody => self.end(false),
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
            State::AwaitingHead { buf, .. } => buf.len(),
            State::FramedBody { pending, .. } => pending.len(),
            State::CloseDelimitedBody | State::Done => 0,
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
        if data.is_empty() {
            return state;
        }
        match state {
            State::AwaitingHead { call, buf } => self.read_head(call, buf, data),
            State::FramedBody {
                call,
                pending,
                must_close,
            } => self.read_framed(call, pending, must_close, data),
            State::CloseDelimitedBody => {
                self.emit(ExchangeEvent::Body(Bytes::copy_from_slice(data)));
                State::CloseDelimitedBody
            }
            State::Done => State::Done,
        }
    }

    /// Buffer head bytes (at most [`MAX_HEAD_BYTES`]), skip informational responses, and on the
    /// final head hand the rest of the input to the body reader.
    fn read_head(&mut self, call: Call<RecvResponse>, mut buf: Vec<u8>, data: &[u8]) -> State {
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
                Ok(None) if input.is_empty() => return State::AwaitingHead { call, buf },
                Ok(None) => {}
                Ok(Some((len, status)))
                    if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS =>
                {
                    buf.drain(..len);
                    must_parse = true;
                }
                Ok(Some(_)) => return self.start_body(call, &buf, input),
            }
        }
    }

    /// `buf` starts with a complete final head; `rest` is input that followed `buf`.
    fn start_body(&mut self, mut call: Call<RecvResponse>, buf: &[u8], rest: &[u8]) -> State {
        let (len, response) = match call.try_response(buf, false) {
            Ok((len, Some(response))) => (len, response),
            Ok((_, None)) => return self.fail(malformed("incomplete response head")),
            Err(e) => return self.fail(from_proto(e)),
        };
        let (parts, ()) = response.into_parts();
        let correction =
            framing::correction(&self.method, parts.status, parts.version, &parts.headers);
        self.emit(ExchangeEvent::Head {
            status: parts.status,
            headers: parts.headers,
        });
        let body = buf.get(len..).unwrap_or_default();

        let next = if correction.read_to_close {
            State::CloseDelimitedBody
        } else {
            match call.proceed() {
                Some(RecvResponseResult::RecvBody(call)) => {
                    if call.body_mode() == BodyMode::CloseDelimited {
                        State::CloseDelimitedBody
                    } else {
                        State::FramedBody {
                            call,
                            pending: Vec::new(),
                            must_close: correction.must_close,
                        }
                    }
                }
                Some(RecvResponseResult::Redirect(call)) => {
                    let close = call.must_close_connection();
                    let excess = !body.is_empty() || !rest.is_empty();
                    return self.end(!(close || excess || correction.must_close));
                }
                Some(RecvResponseResult::Cleanup(call)) => {
                    let close = call.must_close_connection();
                    let excess = !body.is_empty() || !rest.is_empty();
                    return self.end(!(close || excess || correction.must_close));
                }
                None => return self.fail(malformed("response head not accepted")),
            }
        };
        let next = self.step(next, body);
        self.step(next, rest)
    }

    /// Run `data` through ureq-proto's length/chunked body reader.
    fn read_framed(
        &mut self,
        mut call: Call<RecvBody>,
        mut pending: Vec<u8>,
        must_close: bool,
        data: &[u8],
    ) -> State {
        let input: &[u8] = if pending.is_empty() {
            data
        } else {
            pending.extend_from_slice(data);
            &pending
        };
        let mut out = vec![0_u8; input.len()];
        let (mut used, mut produced) = (0, 0);
        let mut error = None;
        while used < input.len() && !call.can_proceed() {
            match call.read(&input[used..], &mut out[produced..]) {
                Ok((0, 0)) => break,
                Ok((i, o)) => {
                    used += i;
                    produced += o;
                }
                Err(e) => {
                    error = Some(from_proto(e));
                    break;
                }
            }
        }
        if produced > 0 {
            out.truncate(produced);
            self.emit(ExchangeEvent::Body(Bytes::from(out)));
        }
        if let Some(e) = error {
            return self.fail(e);
        }
        if call.can_proceed() {
            let excess = used < input.len();
            let close = match call.proceed() {
                Some(RecvBodyResult::Cleanup(call)) => call.must_close_connection(),
                Some(RecvBodyResult::Redirect(call)) => call.must_close_connection(),
                None => true,
            };
            return self.end(!(close || excess || must_close));
        }
        let left = input.get(used..).unwrap_or_default();
        if left.len() > MAX_PENDING_FRAMING {
            return self.fail(malformed("chunked framing line exceeds 64 KiB"));
        }
        State::FramedBody {
            call,
            pending: left.to_vec(),
            must_close,
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

/// Parse a complete head at the start of `buf`: `Some((head length, status))`, or `None` when
/// more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, StatusCode)>, ExchangeError> {
    match ureq_proto::parser::try_parse_response::<MAX_HEAD_FIELDS>(buf) {
        Ok(Some((len, response))) => Ok(Some((len, response.status()))),
        Ok(None) => Ok(None),
        Err(e) => Err(from_proto(e)),
    }
}

fn from_proto(error: ureq_proto::Error) -> ExchangeError {
    match error {
        ureq_proto::Error::HttpParseTooManyHeaders => head_too_large(),
        other => malformed(other),
    }
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
