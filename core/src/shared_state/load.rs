//! Loading the blocks stored in Redis, on every (re)connect: `SCAN` over the prefix's
//! block keys, then `PTTL` and `GETRANGE` for each key, pipelined within the commands
//! connection's window. Bounded: at most [`MAX_LOADED_KEYS`] keys and
//! [`STORED_BYTES`] bytes of each.

use std::collections::VecDeque;
use std::time::Instant;

use super::link::{Expect, Link};
use super::resp::Value;
use super::wire;

/// The most block keys one load reads.
pub const MAX_LOADED_KEYS: usize = 10_000;
/// The most bytes of a stored record read; a longer value is not a record of ours and
/// fails to parse.
pub const STORED_BYTES: usize = 1024;
/// Keys asked for per `SCAN` call.
const SCAN_COUNT: &[u8] = b"500";
/// `GETRANGE key 0 <this>` reads [`STORED_BYTES`].
const STORED_BYTES_END: &[u8] = b"1023";

/// A load in progress.
#[derive(Debug)]
pub(crate) struct Load {
    /// A `SCAN` is awaited.
    scanning: bool,
    /// The cursor to continue from (`None`: the scan is complete).
    cursor: Option<Vec<u8>>,
    /// Keys found and not yet read.
    keys: VecDeque<String>,
    /// Keys found so far.
    found: usize,
    /// The `PTTL` of the key whose `GETRANGE` reply comes next.
    pttl: Option<i64>,
}

impl Load {
    /// A load from the first `SCAN` cursor.
    pub(crate) fn new() -> Load {
        Load {
            scanning: false,
            cursor: Some(b"0".to_vec()),
            keys: VecDeque::new(),
            found: 0,
            pttl: None,
        }
    }

    /// Queues the next requests on `link`, keeping at most `max_in_flight` replies
    /// awaited. True once everything has been read.
    pub(crate) fn pump(
        &mut self,
        now: Instant,
        link: &mut Link,
        prefix: &str,
        max_in_flight: usize,
    ) -> bool {
        while link.in_flight() + 2 <= max_in_flight {
            if let Some(key) = self.keys.pop_front() {
                link.send(now, &[b"PTTL", key.as_bytes()], Expect::Pttl);
                let get: [&[u8]; 4] = [b"GETRANGE", key.as_bytes(), b"0", STORED_BYTES_END];
                link.send(now, &get, Expect::Get(key.clone()));
                continue;
            }
            if self.scanning {
                return false;
            }
            let Some(cursor) = self.cursor.take() else {
                break;
            };
            let pattern = wire::scan_pattern(prefix);
            let scan: [&[u8]; 6] = [
                b"SCAN",
                &cursor,
                b"MATCH",
                pattern.as_bytes(),
                b"COUNT",
                SCAN_COUNT,
            ];
            link.send(now, &scan, Expect::Scan);
            self.scanning = true;
            return false;
        }
        let reading = link.awaits(|e| matches!(e, Expect::Get(_) | Expect::Pttl));
        self.keys.is_empty() && self.cursor.is_none() && !self.scanning && !reading
    }

    /// A `SCAN` reply: queues the block keys it names and takes its cursor. `Ok(Some)`
    /// with Redis's error when it refused the scan (the load then ends); `Err` for a reply
    /// that is not a SCAN reply.
    pub(crate) fn on_scan(&mut self, value: Value, prefix: &str) -> Result<Option<String>, String> {
        self.scanning = false;
        let parts = match value {
            Value::Array(Some(parts)) => parts,
            Value::Error(e) => {
                self.cursor = None;
                return Ok(Some(e));
            }
            _ => return Err("a malformed SCAN reply".to_string()),
        };
        let mut parts = parts.into_iter();
        let cursor = parts.next().and_then(|c| c.as_bytes().map(<[u8]>::to_vec));
        let Some(Value::Array(Some(keys))) = parts.next() else {
            return Err("a malformed SCAN reply".to_string());
        };
        let block_keys = format!("{prefix}:block:");
        for k in keys {
            if self.found >= MAX_LOADED_KEYS {
                break;
            }
            if let Some(k) = k.as_str().filter(|k| k.starts_with(&block_keys)) {
                self.keys.push_back(k.to_string());
                self.found += 1;
            }
        }
        self.cursor = cursor.filter(|c| c.as_slice() != b"0" && self.found < MAX_LOADED_KEYS);
        Ok(None)
    }

    /// A `PTTL` reply for the key whose `GETRANGE` reply comes next.
    pub(crate) fn on_pttl(&mut self, value: &Value) {
        self.pttl = match value {
            Value::Integer(n) => Some(*n),
            _ => None,
        };
    }

    /// The `PTTL` of the key whose `GETRANGE` reply just arrived.
    pub(crate) fn take_pttl(&mut self) -> Option<i64> {
        self.pttl.take()
    }
}
