//! Framing that keeps each event's bytes exactly as the upstream sent them, so a relay of a
//! stream the client's own API produced forwards the upstream's bytes without re-encoding.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::sse::{SseError, SseEvent, SseFramer};

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
/// input); each complete block is parsed by [`SseFramer`]'s rules, so the events are the ones
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
            let run = bytes[i..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .unwrap_or(bytes.len() - i);
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
        let mut framer = SseFramer::new(self.limit);
        framer.push(&raw);
        while let Some(result) = framer.next_event() {
            self.ready.push_back(result.map(|event| FramedEvent {
                event,
                raw: raw.clone(),
            }));
        }
    }
}
