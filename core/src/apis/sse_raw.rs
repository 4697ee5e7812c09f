//! Framing that keeps each event's bytes exactly as the upstream sent them, so a relay of a
//! stream the client's own API produced forwards the upstream's bytes without re-encoding.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::sse::{SseError, SseEvent};

/// Bytes of field names, separators and line ends allowed in a block beyond the framer's
/// limit on field values.
const FRAMING_SLACK: usize = 4096;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One framed event: its parsed form (for its meaning) and its bytes as received (the
/// block's lines and the blank line that ended it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramedEvent {
    pub event: SseEvent,
    pub raw: Bytes,
}

/// Incremental SSE framing that yields each event with its raw bytes.
///
/// Blocks are split at blank lines (`\n`, `\r\n` or `\r` line ends, in any split of the
/// input); each complete block is parsed by [`SseFramer`](crate::sse::SseFramer)'s rules, so the events are the ones
/// `SseFramer` yields for the same input. A block without a `data` field (a `:` keep-alive
/// comment, a lone `retry:`) yields nothing, as the WHATWG rules say. A leading byte-order
/// mark is not part of any event. A block larger than the limit (its field values, plus 4 KiB
/// of framing) yields [`SseError::EventTooLarge`] once and is discarded up to its blank line.
/// One exception to byte-exactness: when a blank line ended by `\r\n` is split between two
/// pushes right after its `\r`, the event is yielded at the `\r` (without waiting for more
/// input) and the `\n` that follows is not part of any event.
///
/// Memory: at most the limit plus 4 KiB for the block being framed, plus events not yet taken.
#[derive(Debug)]
pub struct RelayFramer {
    limit: usize,
    block: BytesMut,
    ready: VecDeque<Result<FramedEvent, SseError>>,
    /// The current line has no bytes yet.
    line_empty: bool,
    /// The last push ended with the `\r` of a line end: a `\n` first in the next belongs to it.
    pending_cr: bool,
    /// The last push ended with the `\r` of a blank line, already dispatched: drop one `\n`.
    swallow_lf: bool,
    /// Discarding an oversize block until its blank line.
    discarding: bool,
    bom_probe: Option<Vec<u8>>,
    finished: bool,
}

impl RelayFramer {
    /// A framer whose events may each hold up to `max_event_bytes` bytes of field values.
    pub fn new(max_event_bytes: usize) -> Self {
        RelayFramer {
            limit: max_event_bytes,
            block: BytesMut::new(),
            ready: VecDeque::new(),
            line_empty: true,
            pending_cr: false,
            swallow_lf: false,
            discarding: false,
            bom_probe: Some(Vec::with_capacity(3)),
            finished: false,
        }
    }

    /// Feeds the next chunk of the stream and frames every event it completes. Ignored after
    /// [`finish`](Self::finish).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.finished {
            return;
        }
        let Some(probe) = self.bom_probe.as_mut() else {
            self.feed(bytes);
            return;
        };
        let take = (3 - probe.len()).min(bytes.len());
        probe.extend_from_slice(&bytes[..take]);
        if probe.len() < 3 && BOM.starts_with(probe) {
            return;
        }
        let probe = self.bom_probe.take().unwrap_or_default();
        let mut first = if probe.as_slice() == BOM {
            Vec::new()
        } else {
            probe
        };
        first.extend_from_slice(&bytes[take..]);
        self.feed(&first);
    }

    /// The next framed event or error, in stream order; `None` when more input is needed.
    pub fn next_event(&mut self) -> Option<Result<FramedEvent, SseError>> {
        self.ready.pop_front()
    }

    /// Bytes this framer holds: the block being framed and the framed events not yet taken.
    pub fn buffered_bytes(&self) -> usize {
        let ready: usize = self
            .ready
            .iter()
            .map(|r| r.as_ref().map_or(0, |e| e.raw.len()))
            .sum();
        self.block.len() + ready
    }

    /// Marks the end of the stream: an incomplete trailing block is discarded. Returns
    /// whether anything was (the stream was cut mid-event).
    pub fn finish(&mut self) -> bool {
        if self.finished {
            return false;
        }
        self.finished = true;
        let partial = !self.block.is_empty()
            || self.discarding
            || self.bom_probe.as_ref().is_some_and(|p| !p.is_empty());
        self.block.clear();
        partial
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        if self.swallow_lf || self.pending_cr {
            let continues = bytes.first() == Some(&b'\n');
            if continues && self.pending_cr {
                self.keep(b'\n');
            }
            if continues {
                i = 1;
            }
            if !bytes.is_empty() {
                self.swallow_lf = false;
                self.pending_cr = false;
            }
        }
        while i < bytes.len() {
            let run = memchr::memchr2(b'\n', b'\r', &bytes[i..]).unwrap_or(bytes.len() - i);
            if run > 0 {
                self.line_empty = false;
                self.keep_slice(&bytes[i..i + run]);
                i += run;
                continue;
            }
            let b = bytes[i];
            i += 1;
            match b {
                b'\n' | b'\r' => {
                    let blank = self.line_empty;
                    self.keep(b);
                    self.line_empty = true;
                    if b == b'\r' {
                        match bytes.get(i) {
                            Some(b'\n') => {
                                self.keep(b'\n');
                                i += 1;
                            }
                            Some(_) => {}
                            None if blank => self.swallow_lf = true,
                            None => self.pending_cr = true,
                        }
                    }
                    if blank {
                        self.dispatch();
                    }
                }
                _ => {}
            }
        }
    }

    fn keep(&mut self, b: u8) {
        self.keep_slice(&[b]);
    }

    fn keep_slice(&mut self, bytes: &[u8]) {
        if self.discarding {
            return;
        }
        self.block.extend_from_slice(bytes);
        if self.block.len() > self.limit.saturating_add(FRAMING_SLACK) {
            self.ready
                .push_back(Err(SseError::EventTooLarge { limit: self.limit }));
            self.block.clear();
            self.discarding = true;
        }
    }

    /// A blank line ended the block: parse it and queue its event, if it has one.
    fn dispatch(&mut self) {
        if self.discarding {
            self.discarding = false;
            self.block.clear();
            return;
        }
        let raw = self.block.split().freeze();
        if let Some(result) = parse_block(&raw, self.limit) {
            self.ready
                .push_back(result.map(|event| FramedEvent { event, raw }));
        }
    }
}

/// The event of one complete block (its lines and the blank line that ends it), by
/// [`SseFramer`](crate::sse::SseFramer)'s rules: `data` values joined with `\n`, the last `event`, `id` (without
/// NUL) and valid `retry`, comments and unknown fields skipped, no event without a `data`
/// field, field values over `limit` bytes in all an error.
fn parse_block(raw: &[u8], limit: usize) -> Option<Result<SseEvent, SseError>> {
    let mut data: Option<Vec<u8>> = None;
    let mut event: &[u8] = &[];
    let mut id: Option<&[u8]> = None;
    let mut retry = None;
    let mut held = 0usize;
    let mut rest = raw;
    while !rest.is_empty() {
        let end = memchr::memchr2(b'\n', b'\r', rest).unwrap_or(rest.len());
        let line = &rest[..end];
        let skip = match rest.get(end..end + 2) {
            Some(b"\r\n") => 2,
            _ => 1,
        };
        rest = rest.get(end + skip..).unwrap_or_default();
        if line.is_empty() {
            break;
        }
        if line[0] == b':' {
            continue;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        held = held.saturating_add(value.len());
        if held > limit {
            return Some(Err(SseError::EventTooLarge { limit }));
        }
        match name {
            b"data" => match &mut data {
                Some(d) => {
                    d.push(b'\n');
                    d.extend_from_slice(value);
                }
                None => data = Some(value.to_vec()),
            },
            b"event" => event = value,
            b"id" if !value.contains(&0) => id = Some(value),
            b"retry" => {
                if let Some(ms) = crate::sse::parse_retry(value) {
                    retry = Some(ms);
                }
            }
            _ => {}
        }
    }
    let data = data?;
    Some(Ok(SseEvent {
        event: Some(lossy(event)).filter(|e| !e.is_empty()),
        data: String::from_utf8(data)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        id: id.map(lossy),
        retry,
    }))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
