//! RESP2, the Redis wire protocol, as far as the gateway speaks it: commands out (arrays
//! of bulk strings) and replies in (simple strings, errors, integers, bulk strings,
//! arrays). Pure functions over bytes.
//!
//! Hand-written rather than taken from a crate: the well-kept RESP crate
//! (`redis-protocol`) parses nested arrays by recursion without a depth bound, so 64 KiB
//! of `*1\r\n` from a broken or hostile server overflows a worker thread's stack and
//! aborts the process (measured; see docs/scaling.md). This decoder bounds the depth, the
//! element count, the line and bulk lengths, and never allocates for what has not
//! arrived.

use std::fmt;

/// The deepest array nesting accepted (the gateway's replies nest at most two deep:
/// a SCAN reply holds the cursor and an array of keys).
pub const MAX_DEPTH: usize = 4;
/// The longest simple string, error or number line.
pub const MAX_LINE: usize = 16 * 1024;
/// The longest bulk string.
pub const MAX_BULK: usize = 64 * 1024;
/// The most elements one array may announce.
pub const MAX_ELEMENTS: usize = 16 * 1024;

/// One decoded reply.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`
    Error(String),
    /// `:1`
    Integer(i64),
    /// `$3\r\nfoo` (`None`: the null bulk string `$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n...` (`None`: the null array `*-1`).
    Array(Option<Vec<Value>>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Simple(s) => write!(f, "+{s}"),
            Value::Error(s) => write!(f, "-{s}"),
            Value::Integer(n) => write!(f, ":{n}"),
            Value::Bulk(None) => f.write_str("$nil"),
            Value::Bulk(Some(b)) => write!(f, "${:?}", String::from_utf8_lossy(b)),
            Value::Array(None) => f.write_str("*nil"),
            Value::Array(Some(items)) => f.debug_list().entries(items).finish(),
        }
    }
}

impl Value {
    /// The bytes of a simple or bulk string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Simple(s) => Some(s.as_bytes()),
            Value::Bulk(Some(b)) => Some(b),
            _ => None,
        }
    }

    /// The text of a simple or bulk string, if UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }
}

/// The server sent something that is not RESP2, or exceeds a bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    #[error("an unknown reply type byte 0x{0:02x}")]
    Type(u8),
    #[error("a malformed length or number")]
    Number,
    #[error("a line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("a bulk string longer than {MAX_BULK} bytes")]
    BulkTooLong,
    #[error("an array of more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    #[error("arrays nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("a bulk string not ended by CRLF")]
    Framing,
}

/// Appends one command (`args[0]` is its name) to `out` as a RESP2 array of bulk strings.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Decodes the first reply in `buf`: `Ok(Some((value, consumed)))`, `Ok(None)` when
/// it has not fully arrived (read more and call again with the longer buffer), or an
/// error when the bytes cannot be RESP2 within the bounds (drop the connection).
pub fn decode(buf: &[u8]) -> Result<Option<(Value, usize)>, RespError> {
    let mut pos = 0;
    match value(buf, &mut pos, 0)? {
        Some(v) => Ok(Some((v, pos))),
        None => Ok(None),
    }
}

fn value(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Value>, RespError> {
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    let Some(line) = line(buf, *pos + 1)? else {
        return Ok(None);
    };
    let after_line = *pos + 1 + line.len() + 2;
    let text = || std::str::from_utf8(line).map_err(|_| RespError::Number);
    let parsed = match kind {
        b'+' => {
            *pos = after_line;
            Value::Simple(String::from_utf8_lossy(line).into_owned())
        }
        b'-' => {
            *pos = after_line;
            Value::Error(String::from_utf8_lossy(line).into_owned())
        }
        b':' => {
            *pos = after_line;
            Value::Integer(text()?.parse().map_err(|_| RespError::Number)?)
        }
        b'$' => {
            let len: i64 = text()?.parse().map_err(|_| RespError::Number)?;
            if len == -1 {
                *pos = after_line;
                Value::Bulk(None)
            } else {
                let len = usize::try_from(len).map_err(|_| RespError::Number)?;
                if len > MAX_BULK {
                    return Err(RespError::BulkTooLong);
                }
                let end = after_line + len;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Err(RespError::Framing);
                }
                *pos = end + 2;
                Value::Bulk(Some(buf[after_line..end].to_vec()))
            }
        }
        b'*' => {
            let len: i64 = text()?.parse().map_err(|_| RespError::Number)?;
            if len == -1 {
                *pos = after_line;
                Value::Array(None)
            } else {
                let len = usize::try_from(len).map_err(|_| RespError::Number)?;
                if len > MAX_ELEMENTS {
                    return Err(RespError::TooManyElements);
                }
                if depth + 1 > MAX_DEPTH {
                    return Err(RespError::TooDeep);
                }
                let mut at = after_line;
                let mut items = Vec::with_capacity(len.min(64));
                for _ in 0..len {
                    match value(buf, &mut at, depth + 1)? {
                        Some(v) => items.push(v),
                        None => return Ok(None),
                    }
                }
                *pos = at;
                Value::Array(Some(items))
            }
        }
        other => return Err(RespError::Type(other)),
    };
    Ok(Some(parsed))
}

/// The bytes from `start` to the next CRLF (exclusive), if it has arrived.
fn line(buf: &[u8], start: usize) -> Result<Option<&[u8]>, RespError> {
    let rest = buf.get(start..).unwrap_or_default();
    let window = &rest[..rest.len().min(MAX_LINE + 2)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok(Some(&rest[..i])),
        None if rest.len() > MAX_LINE + 1 => Err(RespError::LineTooLong),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Value {
        let (v, n) = decode(bytes).unwrap().unwrap();
        assert_eq!(n, bytes.len(), "{v:?}");
        v
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET", b"k", b"v\r\n"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n");
    }

    #[test]
    fn every_reply_type_decodes() {
        assert_eq!(one(b"+OK\r\n"), Value::Simple("OK".into()));
        assert_eq!(one(b"-ERR no\r\n"), Value::Error("ERR no".into()));
        assert_eq!(one(b":-42\r\n"), Value::Integer(-42));
        assert_eq!(one(b"$-1\r\n"), Value::Bulk(None));
        assert_eq!(one(b"$0\r\n\r\n"), Value::Bulk(Some(vec![])));
        assert_eq!(one(b"*-1\r\n"), Value::Array(None));
        assert_eq!(
            one(b"*2\r\n$1\r\n0\r\n*1\r\n$3\r\na:b\r\n"),
            Value::Array(Some(vec![
                Value::Bulk(Some(b"0".to_vec())),
                Value::Array(Some(vec![Value::Bulk(Some(b"a:b".to_vec()))])),
            ]))
        );
    }

    #[test]
    fn every_prefix_of_a_reply_is_incomplete() {
        let whole = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n";
        for n in 0..whole.len() {
            assert_eq!(decode(&whole[..n]), Ok(None), "prefix {n}");
        }
        let (_, used) = decode(&[&whole[..], b"+OK\r\n"].concat()).unwrap().unwrap();
        assert_eq!(used, whole.len());
    }

    proptest::proptest! {
        /// Whatever a server sends, decoding returns (a value, "more", or an error) and
        /// never claims more bytes than it was given.
        #[test]
        fn decoding_is_total(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            if let Ok(Some((_, used))) = decode(&bytes) {
                proptest::prop_assert!(used <= bytes.len());
            }
        }

        /// Every command encodes to a RESP2 array that decodes to its arguments.
        #[test]
        fn commands_round_trip(args in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 1..8)) {
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let mut out = Vec::new();
            encode_command(&mut out, &refs);
            let (value, used) = decode(&out).unwrap().unwrap();
            proptest::prop_assert_eq!(used, out.len());
            let expected = Value::Array(Some(args.into_iter().map(|a| Value::Bulk(Some(a))).collect()));
            proptest::prop_assert_eq!(value, expected);
        }
    }

    #[test]
    fn bounds_are_errors_not_allocations() {
        let deep = b"*1\r\n".repeat(16_000);
        assert_eq!(decode(&deep), Err(RespError::TooDeep));
        assert_eq!(decode(b"$99999999999\r\n"), Err(RespError::BulkTooLong));
        assert_eq!(decode(b"*99999999\r\n"), Err(RespError::TooManyElements));
        assert_eq!(
            decode(&vec![b'+'; MAX_LINE + 8]),
            Err(RespError::LineTooLong)
        );
        assert_eq!(decode(b"$3\r\nabcde\r\n"), Err(RespError::Framing));
        assert_eq!(decode(b"?\r\n"), Err(RespError::Type(b'?')));
        assert_eq!(decode(b":x\r\n"), Err(RespError::Number));
        assert_eq!(decode(b"$-2\r\n"), Err(RespError::Number));
    }
}
