//! Bytes waiting to be written to the client, in order.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// Pieces at least this large are queued as they are instead of being copied together.
const COPY_BELOW: usize = 16 * 1024;

/// The client's write queue: small pieces are coalesced into one buffer (one write for a
/// head and a short body), large bodies are queued without a copy.
#[derive(Debug, Default)]
pub(crate) struct ClientOutput {
    queue: VecDeque<Bytes>,
    tail: BytesMut,
    len: usize,
}

impl ClientOutput {
    /// Appends bytes produced by `write` (an encoder writing into the buffer).
    pub(crate) fn write_with(&mut self, write: impl FnOnce(&mut BytesMut)) {
        let before = self.tail.len();
        write(&mut self.tail);
        self.len += self.tail.len() - before;
    }

    /// Appends `data`, copying it only when it is small.
    pub(crate) fn push(&mut self, data: Bytes) {
        if data.len() < COPY_BELOW {
            self.len += data.len();
            self.tail.extend_from_slice(&data);
            return;
        }
        if !self.tail.is_empty() {
            self.queue.push_back(self.tail.split().freeze());
        }
        self.len += data.len();
        self.queue.push_back(data);
    }

    /// The next bytes to write, if any.
    pub(crate) fn peek(&self) -> Option<&[u8]> {
        match self.queue.front() {
            Some(front) => Some(front),
            None if !self.tail.is_empty() => Some(&self.tail),
            None => None,
        }
    }

    /// `n` bytes of [`peek`](Self::peek) were written.
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        match self.queue.front_mut() {
            Some(front) => {
                let n = n.min(front.len());
                front.advance(n);
                if front.is_empty() {
                    self.queue.pop_front();
                }
            }
            None => self.tail.advance(n.min(self.tail.len())),
        }
    }

    /// Bytes waiting.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops everything waiting (the client is gone).
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.tail.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_kept_across_small_and_large_pieces() {
        let mut out = ClientOutput::default();
        out.write_with(|b| b.extend_from_slice(b"head"));
        out.push(Bytes::from(vec![b'x'; COPY_BELOW]));
        out.push(Bytes::from_static(b"end"));
        let mut written = Vec::new();
        while let Some(p) = out.peek() {
            let n = p.len().min(7);
            written.extend_from_slice(&p[..n]);
            out.consume(n);
        }
        assert_eq!(written.len(), 4 + COPY_BELOW + 3);
        assert!(written.starts_with(b"head"));
        assert!(written.ends_with(b"xend"));
        assert!(out.is_empty());
    }
}
