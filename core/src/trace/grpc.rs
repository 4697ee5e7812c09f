//! A gRPC unary call over HTTP/2 (h2c, or h2 inside TLS), sans-IO: what an OTLP/gRPC
//! exporter needs (Plano's `opentracing_grpc_endpoint`) and nothing more. One call per
//! connection, on stream 1: the connection preface and SETTINGS, the request HEADERS
//! and its length-prefixed message in DATA frames (within the peer's flow-control
//! windows and frame size), then the response headers, message and trailers. SETTINGS
//! and PINGs are acknowledged; header blocks are HPACK-coded by `loona-hpack`.
//!
//! Feed what the socket reads to [`handle_input`](UnaryCall::handle_input), write what
//! [`poll_transmit`](UnaryCall::poll_transmit) gives, until
//! [`outcome`](UnaryCall::outcome) is `Some`.

use std::collections::VecDeque;

use crate::upstream::{Origin, Scheme};

/// The OTLP trace export method.
pub const TRACE_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 4;
const SETTINGS_MAX_FRAME_SIZE: u16 = 5;
/// The most the call buffers of what the peer sends (frames, the answer).
const MAX_BUFFERED: usize = 4 * 1024 * 1024;
const STREAM: u32 = 1;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrpcError {
    /// The peer broke HTTP/2 (or sent more than the call buffers).
    #[error("HTTP/2 protocol error: {0}")]
    Protocol(String),
    /// The response's HTTP status was not 200.
    #[error("the collector answered HTTP {0}")]
    Status(u16),
    /// The call ended with a non-zero `grpc-status`.
    #[error("gRPC status {code}: {message}")]
    Grpc { code: u32, message: String },
    /// The connection closed before the call ended.
    #[error("the connection closed before the call ended")]
    Closed,
}

/// One unary call. See the module docs.
pub struct UnaryCall {
    out: VecDeque<Vec<u8>>,
    /// The request message's DATA payload not yet sent.
    pending: Vec<u8>,
    sent: usize,
    conn_window: i64,
    stream_window: i64,
    max_frame: usize,
    input: Vec<u8>,
    decoder: loona_hpack::Decoder<'static>,
    /// A header block being continued (CONTINUATION), and whether it ends the stream.
    block: Option<(Vec<u8>, bool)>,
    status: Option<u16>,
    grpc_status: Option<(u32, String)>,
    answer: Vec<u8>,
    outcome: Option<Result<Vec<u8>, GrpcError>>,
}

impl std::fmt::Debug for UnaryCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnaryCall")
            .field("sent", &self.sent)
            .field("pending", &self.pending.len())
            .field("status", &self.status)
            .field("outcome", &self.outcome)
            .finish()
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = Vec::with_capacity(9 + payload.len());
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

impl UnaryCall {
    /// A call of `path` on `origin` carrying `message` (a protobuf-encoded request).
    pub fn new(origin: &Origin, path: &str, message: &[u8]) -> UnaryCall {
        let mut preface = PREFACE.to_vec();
        preface.extend(frame(SETTINGS, 0, 0, &[0, 2, 0, 0, 0, 0])); // ENABLE_PUSH = 0
        let scheme: &[u8] = match origin.scheme {
            Scheme::Http => b"http",
            Scheme::Https => b"https",
        };
        let authority = origin.host_header();
        let mut encoder = loona_hpack::Encoder::new();
        let block = encoder.encode([
            (&b":method"[..], &b"POST"[..]),
            (b":scheme", scheme),
            (b":path", path.as_bytes()),
            (b":authority", authority.as_bytes()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            (
                b"user-agent",
                concat!("switchback/", env!("CARGO_PKG_VERSION")).as_bytes(),
            ),
        ]);
        preface.extend(frame(HEADERS, END_HEADERS, STREAM, &block));
        let mut pending = Vec::with_capacity(5 + message.len());
        pending.push(0);
        pending.extend_from_slice(&(message.len() as u32).to_be_bytes());
        pending.extend_from_slice(message);
        let mut call = UnaryCall {
            out: VecDeque::from([preface]),
            pending,
            sent: 0,
            conn_window: 65_535,
            stream_window: 65_535,
            max_frame: 16_384,
            input: Vec::new(),
            decoder: loona_hpack::Decoder::new(),
            block: None,
            status: None,
            grpc_status: None,
            answer: Vec::new(),
            outcome: None,
        };
        call.send_data();
        call
    }

    /// The next bytes to write.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// The call's result once it has one: the response message, or why it failed.
    pub fn outcome(&self) -> Option<Result<Vec<u8>, GrpcError>> {
        self.outcome.clone()
    }

    /// The connection closed.
    pub fn handle_eof(&mut self) {
        self.fail(GrpcError::Closed);
    }

    /// Bytes read from the connection, in any split.
    pub fn handle_input(&mut self, data: &[u8]) {
        if self.outcome.is_some() {
            return;
        }
        if self.input.len() + data.len() > MAX_BUFFERED {
            self.fail(GrpcError::Protocol("the peer sent too much".into()));
            return;
        }
        self.input.extend_from_slice(data);
        while self.outcome.is_none() && self.input.len() >= 9 {
            let len = usize::from(self.input[0]) << 16
                | usize::from(self.input[1]) << 8
                | usize::from(self.input[2]);
            if self.input.len() < 9 + len {
                return;
            }
            let kind = self.input[3];
            let flags = self.input[4];
            let stream =
                u32::from_be_bytes([self.input[5], self.input[6], self.input[7], self.input[8]])
                    & 0x7fff_ffff;
            let payload: Vec<u8> = self.input[9..9 + len].to_vec();
            self.input.drain(..9 + len);
            self.on_frame(kind, flags, stream, &payload);
        }
    }

    fn fail(&mut self, e: GrpcError) {
        if self.outcome.is_none() {
            self.outcome = Some(Err(e));
        }
    }

    fn on_frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        if let Some((block, end)) = &mut self.block {
            if kind != CONTINUATION || stream != STREAM {
                self.fail(GrpcError::Protocol(
                    "a header block was not continued".into(),
                ));
                return;
            }
            block.extend_from_slice(payload);
            if flags & END_HEADERS != 0 {
                let (block, end) = (std::mem::take(block), *end);
                self.block = None;
                self.on_headers(&block, end);
            }
            return;
        }
        match kind {
            SETTINGS if flags & ACK == 0 => self.on_settings(payload),
            PING if flags & ACK == 0 => self.out.push_back(frame(PING, ACK, 0, payload)),
            WINDOW_UPDATE if payload.len() == 4 => {
                let inc = i64::from(
                    u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                        & 0x7fff_ffff,
                );
                if stream == 0 {
                    self.conn_window += inc;
                } else if stream == STREAM {
                    self.stream_window += inc;
                }
                self.send_data();
            }
            HEADERS if stream == STREAM => {
                let Some(mut block) = strip_padding(flags, payload) else {
                    self.fail(GrpcError::Protocol("bad HEADERS padding".into()));
                    return;
                };
                if flags & PRIORITY != 0 {
                    if block.len() < 5 {
                        self.fail(GrpcError::Protocol("bad HEADERS priority".into()));
                        return;
                    }
                    block.drain(..5);
                }
                let end = flags & END_STREAM != 0;
                if flags & END_HEADERS != 0 {
                    self.on_headers(&block, end);
                } else {
                    self.block = Some((block, end));
                }
            }
            DATA if stream == STREAM => {
                let Some(data) = strip_padding(flags, payload) else {
                    self.fail(GrpcError::Protocol("bad DATA padding".into()));
                    return;
                };
                self.answer.extend_from_slice(&data);
                if !payload.is_empty() {
                    // Give the window back, so a long answer never stalls.
                    let inc = (payload.len() as u32).to_be_bytes();
                    self.out.push_back(frame(WINDOW_UPDATE, 0, 0, &inc));
                    self.out.push_back(frame(WINDOW_UPDATE, 0, STREAM, &inc));
                }
                if flags & END_STREAM != 0 {
                    self.finish();
                }
            }
            RST_STREAM if stream == STREAM => {
                self.fail(GrpcError::Protocol("the collector reset the call".into()))
            }
            GOAWAY if self.status.is_none() => {
                self.fail(GrpcError::Protocol("the collector sent GOAWAY".into()))
            }
            _ => {}
        }
    }

    fn on_settings(&mut self, payload: &[u8]) {
        for s in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let value = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            match id {
                SETTINGS_INITIAL_WINDOW_SIZE => {
                    self.stream_window += i64::from(value) - 65_535;
                }
                SETTINGS_MAX_FRAME_SIZE => {
                    self.max_frame = (value as usize).clamp(16_384, 16_777_215);
                }
                _ => {}
            }
        }
        self.out.push_back(frame(SETTINGS, ACK, 0, &[]));
        self.send_data();
    }

    /// Sends as much of the request message as the windows allow.
    fn send_data(&mut self) {
        while self.sent < self.pending.len() {
            let window = self.conn_window.min(self.stream_window);
            if window <= 0 {
                return;
            }
            let n = (self.pending.len() - self.sent)
                .min(self.max_frame)
                .min(window as usize);
            let last = self.sent + n == self.pending.len();
            let flags = if last { END_STREAM } else { 0 };
            let chunk = &self.pending[self.sent..self.sent + n];
            self.out.push_back(frame(DATA, flags, STREAM, chunk));
            self.sent += n;
            self.conn_window -= n as i64;
            self.stream_window -= n as i64;
        }
    }

    fn on_headers(&mut self, block: &[u8], end: bool) {
        let headers = match self.decoder.decode(block) {
            Ok(h) => h,
            Err(e) => {
                self.fail(GrpcError::Protocol(format!("HPACK: {e:?}")));
                return;
            }
        };
        for (name, value) in headers {
            let value = String::from_utf8_lossy(&value).into_owned();
            match name.as_slice() {
                b":status" => self.status = value.parse().ok(),
                b"grpc-status" => {
                    let code = value.parse().unwrap_or(2);
                    let message = self.grpc_status.take().map(|(_, m)| m).unwrap_or_default();
                    self.grpc_status = Some((code, message));
                }
                b"grpc-message" => {
                    let code = self.grpc_status.as_ref().map_or(u32::MAX, |(c, _)| *c);
                    self.grpc_status = Some((code, value));
                }
                _ => {}
            }
        }
        if end {
            self.finish();
        }
    }

    /// The stream ended: judge the status, `grpc-status` and the answer's framing.
    fn finish(&mut self) {
        if self.outcome.is_some() {
            return;
        }
        match self.status {
            Some(200) => {}
            Some(s) => return self.fail(GrpcError::Status(s)),
            None => return self.fail(GrpcError::Protocol("no response headers".into())),
        }
        match &self.grpc_status {
            Some((0, _)) => {}
            Some((code, message)) => {
                let (code, message) = (*code, message.clone());
                return self.fail(GrpcError::Grpc { code, message });
            }
            None => return self.fail(GrpcError::Protocol("no grpc-status".into())),
        }
        let message = match self.answer.as_slice() {
            [] => Vec::new(),
            [0, a, b, c, d, rest @ ..]
                if u32::from_be_bytes([*a, *b, *c, *d]) as usize == rest.len() =>
            {
                rest.to_vec()
            }
            _ => return self.fail(GrpcError::Protocol("a malformed gRPC message".into())),
        };
        self.outcome = Some(Ok(message));
    }
}

/// The payload of a DATA or HEADERS frame without its padding (`None`: malformed).
fn strip_padding(flags: u8, payload: &[u8]) -> Option<Vec<u8>> {
    if flags & PADDED == 0 {
        return Some(payload.to_vec());
    }
    let (&pad, rest) = payload.split_first()?;
    let keep = rest.len().checked_sub(usize::from(pad))?;
    Some(rest[..keep].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        crate::upstream::parse_base_url("http://127.0.0.1:4317")
            .unwrap()
            .0
    }

    /// Splits `bytes` (after the preface) into frames: (type, flags, stream, payload).
    fn frames(mut bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
        let mut out = Vec::new();
        while bytes.len() >= 9 {
            let len = (usize::from(bytes[0]) << 16)
                | (usize::from(bytes[1]) << 8)
                | usize::from(bytes[2]);
            let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
            out.push((bytes[3], bytes[4], stream, bytes[9..9 + len].to_vec()));
            bytes = &bytes[9 + len..];
        }
        out
    }

    fn sent(call: &mut UnaryCall) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(b) = call.poll_transmit() {
            all.extend(b);
        }
        all
    }

    fn response(
        encoder: &mut loona_hpack::Encoder<'_>,
        grpc_status: &[u8],
        answer: &[u8],
    ) -> Vec<u8> {
        let mut r = frame(SETTINGS, 0, 0, &[]);
        let head = encoder.encode([
            (&b":status"[..], &b"200"[..]),
            (b"content-type", b"application/grpc"),
        ]);
        r.extend(frame(HEADERS, END_HEADERS, STREAM, &head));
        let mut msg = vec![0];
        msg.extend((answer.len() as u32).to_be_bytes());
        msg.extend_from_slice(answer);
        r.extend(frame(DATA, 0, STREAM, &msg));
        let trailers = encoder.encode([(&b"grpc-status"[..], grpc_status)]);
        r.extend(frame(HEADERS, END_HEADERS | END_STREAM, STREAM, &trailers));
        r
    }

    #[test]
    fn a_large_message_waits_for_the_window_then_the_call_succeeds() {
        let message = vec![7u8; 100_000];
        let mut call = UnaryCall::new(&origin(), TRACE_EXPORT_PATH, &message);
        let first = sent(&mut call);
        assert!(first.starts_with(PREFACE));
        let fs = frames(&first[PREFACE.len()..]);
        let headers = &fs[1];
        assert_eq!((headers.0, headers.2), (HEADERS, STREAM));
        let decoded = loona_hpack::Decoder::new().decode(&headers.3).unwrap();
        assert!(decoded.contains(&(b":path".to_vec(), TRACE_EXPORT_PATH.as_bytes().to_vec())));
        let data: usize = fs.iter().filter(|f| f.0 == DATA).map(|f| f.3.len()).sum();
        assert_eq!(data, 65_535, "the first flight fills the default window");
        assert!(fs.iter().all(|f| f.0 != DATA || f.3.len() <= 16_384));
        // The server widens both windows; the rest goes, the last frame ends the stream.
        let mut grant = frame(WINDOW_UPDATE, 0, 0, &100_000u32.to_be_bytes());
        grant.extend(frame(WINDOW_UPDATE, 0, STREAM, &100_000u32.to_be_bytes()));
        call.handle_input(&grant);
        let rest = frames(&sent(&mut call));
        let more: usize = rest.iter().filter(|f| f.0 == DATA).map(|f| f.3.len()).sum();
        assert_eq!(data + more, 100_005);
        assert_eq!(rest.last().unwrap().1 & END_STREAM, END_STREAM);
        let mut encoder = loona_hpack::Encoder::new();
        let answer = response(&mut encoder, b"0", b"ok");
        for b in answer.chunks(3) {
            call.handle_input(b);
        }
        assert_eq!(call.outcome(), Some(Ok(b"ok".to_vec())));
        let acks = frames(&sent(&mut call));
        assert!(acks.iter().any(|f| f.0 == SETTINGS && f.1 == ACK));
    }

    #[test]
    fn a_grpc_error_status_fails_the_call() {
        let mut call = UnaryCall::new(&origin(), TRACE_EXPORT_PATH, b"x");
        let mut encoder = loona_hpack::Encoder::new();
        call.handle_input(&response(&mut encoder, b"14", b""));
        assert!(matches!(
            call.outcome(),
            Some(Err(GrpcError::Grpc { code: 14, .. }))
        ));
        let mut call = UnaryCall::new(&origin(), TRACE_EXPORT_PATH, b"x");
        call.handle_eof();
        assert_eq!(call.outcome(), Some(Err(GrpcError::Closed)));
        let mut call = UnaryCall::new(&origin(), TRACE_EXPORT_PATH, b"x");
        call.handle_input(&[0xff; 64]);
        call.handle_input(&[0xff; 64]);
        assert!(call.outcome().is_none_or(|o| o.is_err()));
    }
}
