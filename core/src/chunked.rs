//! The chunked transfer coding (RFC 9112 §7.1), strictly, for request bodies (the server
//! codec) and response bodies (the upstream codec) alike: every line ends with CRLF, a chunk
//! size is 1 to 16 hex digits, extensions and trailer fields are read and dropped, and every
//! line is bounded.

use bytes::{Buf, Bytes, BytesMut};

/// Why chunked framing is invalid (a sentence fragment, e.g. "bare LF in chunked framing").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkError(pub(crate) &'static str);

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// The longest chunk-size line (size plus extensions) or trailer field accepted.
pub(crate) const MAX_LINE_BYTES: usize = 4096;

/// What [`ChunkedDecoder::decode`] found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ChunkStep {
    /// Body bytes (never empty), taken from the front of the buffer.
    Data(Bytes),
    /// The last chunk and the trailer section were read; the body is complete.
    End,
    /// The buffer holds no complete next piece.
    NeedMore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a chunk-size line.
    Size,
    /// Inside chunk data: this many bytes left.
    Data(u64),
    /// After chunk data: the CRLF that ends it.
    DataEnd,
    /// After the last chunk: trailer fields until an empty line.
    Trailers,
    Done,
}

/// Decodes one chunked body from the front of a buffer shared with the rest of the
/// connection's input: it consumes exactly the body's bytes, so pipelined bytes after the
/// body stay in the buffer.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: State,
    trailer_bytes: usize,
    max_trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder at the start of a body; trailers may take up to `max_trailer_bytes`.
    pub(crate) fn new(max_trailer_bytes: usize) -> Self {
        ChunkedDecoder {
            state: State::Size,
            trailer_bytes: 0,
            max_trailer_bytes,
        }
    }

    /// Whether the last (zero-size) chunk was read: only the trailer section is left.
    pub(crate) fn saw_last_chunk(&self) -> bool {
        matches!(self.state, State::Trailers | State::Done)
    }

    /// Consumes the next piece of the body from the front of `buf`. Call it until it returns
    /// `NeedMore` or `End`. Errors are final.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<ChunkStep, ChunkError> {
        loop {
            match self.state {
                State::Done => return Ok(ChunkStep::End),
                State::Size => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(ChunkStep::NeedMore);
                    };
                    let size = chunk_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(ChunkStep::NeedMore);
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(take).freeze();
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                    return Ok(ChunkStep::Data(data));
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(ChunkStep::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ChunkError("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = State::Size;
                }
                State::Trailers => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(ChunkStep::NeedMore);
                    };
                    if line.is_empty() {
                        self.state = State::Done;
                        return Ok(ChunkStep::End);
                    }
                    self.trailer_bytes += line.len() + 2;
                    if self.trailer_bytes > self.max_trailer_bytes {
                        return Err(ChunkError("trailer section too large"));
                    }
                    if !line.contains(&b':') {
                        return Err(ChunkError("invalid trailer field"));
                    }
                }
            }
        }
    }
}

/// Takes one CRLF-terminated line (without the CRLF) from the front of `buf`. A bare CR or
/// LF, or a line longer than [`MAX_LINE_BYTES`], is an error.
fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, ChunkError> {
    let window = &buf[..buf.len().min(MAX_LINE_BYTES + 2)];
    match window.iter().position(|b| *b == b'\n' || *b == b'\r') {
        Some(i) if i > MAX_LINE_BYTES => Err(ChunkError("chunked framing line too long")),
        Some(i) if window[i] == b'\n' => Err(ChunkError("bare LF in chunked framing")),
        Some(i) if i + 1 < window.len() => {
            if window[i + 1] != b'\n' {
                return Err(ChunkError("bare CR in chunked framing"));
            }
            let line = buf.split_to(i).freeze();
            buf.advance(2);
            Ok(Some(line))
        }
        Some(_) => Ok(None),
        None if window.len() > MAX_LINE_BYTES => Err(ChunkError("chunked framing line too long")),
        None => Ok(None),
    }
}

/// `1*16HEXDIG [ BWS ";" extensions ]` → the size.
fn chunk_size(line: &[u8]) -> Result<u64, ChunkError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(ChunkError("invalid chunk size"));
    }
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') {
        return Err(ChunkError("invalid chunk size"));
    }
    if rest.iter().any(|b| b.is_ascii_control() && *b != b'\t') {
        return Err(ChunkError("invalid chunk extension"));
    }
    let text =
        std::str::from_utf8(&line[..digits]).map_err(|_| ChunkError("invalid chunk size"))?;
    u64::from_str_radix(text, 16).map_err(|_| ChunkError("invalid chunk size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, bool, usize), ChunkError> {
        let mut buf = BytesMut::from(input);
        let mut d = ChunkedDecoder::new(1024);
        let mut out = Vec::new();
        loop {
            match d.decode(&mut buf)? {
                ChunkStep::Data(b) => out.extend_from_slice(&b),
                ChunkStep::End => return Ok((out, true, buf.len())),
                ChunkStep::NeedMore => return Ok((out, false, buf.len())),
            }
        }
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let (body, done, left) =
            decode_all(b"5;x=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nGET /").unwrap();
        assert_eq!(body, b"hello world");
        assert!(done);
        assert_eq!(left, 5, "pipelined bytes stay in the buffer");
    }

    #[test]
    fn partial_input_waits() {
        let (body, done, _) = decode_all(b"5\r\nhel").unwrap();
        assert_eq!(body, b"hel");
        assert!(!done);
        let (_, done, _) = decode_all(b"5\r\nhello\r\n0\r\n").unwrap();
        assert!(!done, "the trailer section's empty line is missing");
    }

    #[test]
    fn strict_framing() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"\r\nhello",
            b"-5\r\n",
            b"11111111111111111\r\n",
            b"5 x\r\n",
            b"0\r\nnocolon\r\n\r\n",
            b"5\rhello",
        ] {
            assert!(
                decode_all(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn lines_are_bounded() {
        let mut long = b"5;".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES + 10));
        assert!(decode_all(&long).is_err());
    }
}
