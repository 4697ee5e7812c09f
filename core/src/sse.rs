//! Incremental Server-Sent Events framing (WHATWG HTML, "event stream interpretation").
//!
//! [`SseFramer`] turns an upstream byte stream, split into chunks however the network likes,
//! into [`SseEvent`]s. [`SseEvent::to_bytes`] and [`encode_data`] go the other way for what the
//! gateway writes to its clients.
//!
//! Decisions where the WHATWG rules leave room or do not fit a relay:
//! - **Invalid UTF-8** is decoded lossily (each bad sequence becomes U+FFFD), as the WHATWG
//!   decoder does; it is never an error.
//! - **`id`**: [`SseEvent::id`] is the value of the last `id` field *inside this event's block*
//!   (`None` if it had none), which is what a relay needs to re-encode the event faithfully. The
//!   WHATWG "last event ID" that persists across events is available as
//!   [`SseFramer::last_event_id`]. An `id` value containing U+0000 is ignored, per the rules.
//! - **`retry`**: [`SseEvent::retry`] is the last valid `retry` field (ASCII digits only, fitting
//!   a `u64`) of the event's block; other values are ignored.
//! - **`event`**: an empty or absent event type is reported as `None` (the WHATWG default type is
//!   `message`).
//! - A block without any `data` field dispatches nothing, per the rules (so a lone `retry:` or
//!   `id:` block is not an event; `last_event_id` still updates).
//! - **End of stream**: [`SseFramer::finish`] discards an incomplete trailing event (one not
//!   followed by a blank line), per the rules, and reports whether it did.
//! - **Size limit**: a single event block (its buffered field values plus the line being read)
//!   may hold at most `max_event_bytes` bytes. Past that, [`SseError::EventTooLarge`] is yielded
//!   once, after the events framed before it, and the framer stops: everything buffered is
//!   dropped and every later byte ignored, so a stream with an oversized event costs no more
//!   than the limit, however long the event goes on. A relay treats it as a failed stream.
//!   Comment lines (`:` keep-alives) are skipped without being buffered and never count against
//!   the limit.

use std::borrow::Cow;
use std::collections::VecDeque;

use bytes::Bytes;

/// The largest line buffer [`SseFramer`] keeps between lines.
const REUSED_LINE_BYTES: usize = 4096;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event` field's value; `None` when absent or empty (WHATWG's default `message`).
    pub event: Option<String>,
    /// All `data` field values of the event joined with `\n`.
    pub data: String,
    /// The last `id` field in this event's block, if any.
    pub id: Option<String>,
    /// The last valid `retry` field (milliseconds) in this event's block, if any.
    pub retry: Option<u64>,
}

/// What can go wrong while framing. Framing stops after an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// An event (or one of its lines) exceeded the framer's limit; framing stopped.
    #[error("server-sent event larger than {limit} bytes")]
    EventTooLarge {
        /// The `max_event_bytes` the framer was built with.
        limit: usize,
    },
}

/// What the framer is doing with the line it is in the middle of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineMode {
    /// Nothing of the line has arrived yet.
    Start,
    /// Buffering a field line into `line`.
    Field,
    /// Skipping a comment line.
    Comment,
}

/// Incremental, bounded SSE parser.
///
/// Usage: for each chunk read from the upstream call [`push`](Self::push), then call
/// [`next_event`](Self::next_event) until it returns `None`. At a clean end of stream call
/// [`finish`](Self::finish), then drain `next_event` again (finish never adds events, but it is
/// harmless). Any split of the input, down to single bytes, yields the same events.
///
/// Memory: besides events already framed and not yet taken, the framer holds at most
/// `max_event_bytes` bytes plus a constant.
#[derive(Debug)]
pub struct SseFramer {
    max_event_bytes: usize,
    ready: VecDeque<Result<SseEvent, SseError>>,
    /// The bytes of the current field line (no terminator).
    line: Vec<u8>,
    mode: LineMode,
    /// The previous chunk ended with `\r`; a `\n` starting the next one belongs to it.
    after_cr: bool,
    /// Up to 3 leading bytes of the stream, held until we know whether they are a BOM.
    bom_probe: Option<Vec<u8>>,
    /// An event went past the limit: the rest of the stream is ignored.
    failed: bool,
    /// Whether the current line has any bytes (a comment line counts).
    line_nonempty: bool,
    /// Raw bytes of the `data` values so far, joined with `\n` (decoded at dispatch).
    data: Vec<u8>,
    has_data: bool,
    event_type: Vec<u8>,
    id: Option<Vec<u8>>,
    retry: Option<u64>,
    last_event_id: Vec<u8>,
    finished: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseFramer {
    /// A framer for one stream whose events may each hold up to `max_event_bytes` bytes of
    /// field values (a limit of 0 rejects every non-empty field line).
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            max_event_bytes,
            ready: VecDeque::new(),
            line: Vec::new(),
            mode: LineMode::Start,
            after_cr: false,
            bom_probe: Some(Vec::with_capacity(3)),
            failed: false,
            line_nonempty: false,
            data: Vec::new(),
            has_data: false,
            event_type: Vec::new(),
            id: None,
            retry: None,
            last_event_id: Vec::new(),
            finished: false,
        }
    }

    /// Feeds the next chunk of the stream and frames every event it completes, for
    /// [`next_event`](Self::next_event) to return. Ignored after [`finish`](Self::finish)
    /// and after an [`SseError`].
    pub fn push(&mut self, bytes: &[u8]) {
        if self.finished || self.failed {
            return;
        }
        let mut bytes = bytes;
        if let Some(probe) = self.bom_probe.as_mut() {
            let take = (3 - probe.len()).min(bytes.len());
            probe.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if probe.len() < 3 && BOM.starts_with(probe) {
                return; // still could be a BOM; wait for more
            }
            let probe = self.bom_probe.take().unwrap_or_default();
            if probe.as_slice() != BOM {
                self.feed(&probe);
            }
        }
        self.feed(bytes);
    }

    /// The next framed event or error, in stream order; `None` when more input is needed.
    pub fn next_event(&mut self) -> Option<Result<SseEvent, SseError>> {
        self.ready.pop_front()
    }

    /// Marks the end of the stream. An incomplete trailing event (or line) is discarded, as the
    /// WHATWG rules require; returns `true` if anything was discarded that way, which means the
    /// stream was cut mid-event. Later pushes are ignored; already framed events stay available.
    pub fn finish(&mut self) -> bool {
        if self.finished {
            return false;
        }
        self.finished = true;
        let partial_probe = self.bom_probe.take().is_some_and(|p| !p.is_empty());
        let partial = partial_probe
            || self.mode != LineMode::Start
            || self.line_nonempty
            || self.has_data
            || !self.event_type.is_empty()
            || self.id.is_some()
            || self.retry.is_some();
        self.reset_event();
        self.line = Vec::new();
        self.mode = LineMode::Start;
        self.line_nonempty = false;
        partial && !self.failed
    }

    /// The WHATWG "last event ID": the most recent `id` field seen anywhere in the stream
    /// (empty until one is seen; an `id:` with an empty value resets it).
    pub fn last_event_id(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.last_event_id)
    }

    /// Whether framing stopped at an oversized event ([`SseError::EventTooLarge`]).
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// Bytes held for the event being framed (raw field values and the partial line); never
    /// more than `max_event_bytes` plus 3 bytes of BOM probe. (The last event ID, kept across
    /// events, is at most `max_event_bytes` more.)
    pub fn buffered_bytes(&self) -> usize {
        self.held() + self.line.len() + self.bom_probe.as_ref().map_or(0, Vec::len)
    }

    /// Raw bytes of field values held for the current event.
    fn held(&self) -> usize {
        self.data.len() + self.event_type.len() + self.id.as_ref().map_or(0, Vec::len)
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while let Some(pos) = memchr::memchr2(b'\r', b'\n', bytes) {
            self.extend_line(&bytes[..pos]);
            if self.failed {
                return;
            }
            self.end_line();
            let crlf = bytes[pos] == b'\r';
            bytes = &bytes[pos + 1..];
            if crlf {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.extend_line(bytes);
    }

    fn extend_line(&mut self, part: &[u8]) {
        if part.is_empty() {
            return;
        }
        self.line_nonempty = true;
        if self.failed {
            return;
        }
        if self.mode == LineMode::Start {
            self.mode = if part[0] == b':' {
                LineMode::Comment
            } else {
                LineMode::Field
            };
        }
        if self.mode == LineMode::Comment {
            return;
        }
        let total = self
            .held()
            .saturating_add(self.line.len())
            .saturating_add(part.len());
        if total > self.max_event_bytes {
            self.ready.push_back(Err(SseError::EventTooLarge {
                limit: self.max_event_bytes,
            }));
            self.reset_event();
            self.line = Vec::new();
            self.last_event_id = Vec::new();
            self.failed = true;
            return;
        }
        self.line.extend_from_slice(part);
    }

    fn end_line(&mut self) {
        let mode = self.mode;
        self.mode = LineMode::Start;
        self.line_nonempty = false;
        match mode {
            LineMode::Comment => {}
            LineMode::Start => self.dispatch(),
            LineMode::Field => {
                // A small line buffer is reused for the next line rather than freed and
                // grown again; a large one is freed, so a stream holds no more than it
                // has buffered.
                let mut line = std::mem::take(&mut self.line);
                self.process_field(&line);
                if line.capacity() <= REUSED_LINE_BYTES {
                    line.clear();
                    self.line = line;
                }
            }
        }
    }

    fn process_field(&mut self, line: &[u8]) {
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"event" => self.event_type = value.to_vec(),
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"id" if !value.contains(&0) => {
                self.last_event_id = value.to_vec();
                self.id = Some(value.to_vec());
            }
            b"retry" => {
                if let Some(ms) = parse_retry(value) {
                    self.retry = Some(ms);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        if self.has_data {
            let event = SseEvent {
                event: Some(lossy(&self.event_type)).filter(|e| !e.is_empty()),
                data: lossy(&self.data),
                id: self.id.as_deref().map(lossy),
                retry: self.retry,
            };
            self.ready.push_back(Ok(event));
        }
        self.reset_event();
    }

    fn reset_event(&mut self) {
        self.data = Vec::new();
        self.has_data = false;
        self.event_type = Vec::new();
        self.id = None;
        self.retry = None;
    }
}

impl SseEvent {
    /// An event carrying only `data`.
    pub fn data(data: impl Into<String>) -> Self {
        Self {
            data: data.into(),
            ..Self::default()
        }
    }

    /// Serialises the event for the wire: `event:`, `id:`, `retry:` lines when set, one `data:`
    /// line per line of `data` (split at `\r\n`, `\r` or `\n`), then a blank line.
    ///
    /// Framing it back yields an equal event, except that line breaks in `data` come back as
    /// `\n`, an empty `event` comes back as `None`, and `event`/`id` values cannot carry line
    /// breaks: any `\r` or `\n` in them is dropped (an `id` containing U+0000 is ignored by
    /// readers, per the rules).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = String::with_capacity(self.data.len() + 16);
        if let Some(event) = &self.event {
            push_field(&mut out, "event", &single_line(event));
        }
        if let Some(id) = &self.id {
            push_field(&mut out, "id", &single_line(id));
        }
        if let Some(retry) = self.retry {
            push_field(&mut out, "retry", &retry.to_string());
        }
        push_data(&mut out, &self.data);
        out.push('\n');
        Bytes::from(out)
    }
}

/// Serialises a data-only event: `data: <line>\n` per line of `data`, then `\n`.
///
/// Use it to write chunks (and `[DONE]`, and gateway-made error events) to the client.
pub fn encode_data(data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 8);
    push_data(&mut out, data);
    out.push('\n');
    Bytes::from(out)
}

/// Whether the event is OpenAI's end-of-stream marker, `data: [DONE]` (surrounding ASCII
/// whitespace tolerated).
pub fn is_done(event: &SseEvent) -> bool {
    event.data.trim_matches(|c: char| c.is_ascii_whitespace()) == "[DONE]"
}

/// A `retry` value: ASCII digits only, fitting a `u64`.
pub(crate) fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn push_field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    if value.is_empty() {
        out.push_str(":\n");
    } else {
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
    }
}

fn push_data(out: &mut String, data: &str) {
    let normalised = data.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalised.split('\n') {
        push_field(out, "data", line);
    }
}

fn single_line(s: &str) -> String {
    s.chars().filter(|&c| c != '\r' && c != '\n').collect()
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
