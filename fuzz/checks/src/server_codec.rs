//! `server_codec`: the client-facing `RequestReader` over arbitrary bytes in arbitrary splits.
//!
//! Invariants: no panic; bounded buffering (while a head is awaited, never more than the
//! head limit is held once the reader has looked at it); events in a legal order (`Head`,
//! `Body`*, then `End` or `Error`; nothing after `Error`); the body of a request framed by
//! `Content-Length` is exactly that long, and no body passes the body limit.

use std::time::Duration;

use switchback_core::server::{BodyFraming, ReadEvent, RequestReader, ServerLimits};

use crate::script::Script;

/// The input is a script: the first bytes choose the limits, then each step takes a piece
/// of the input (its size from the script) and feeds it, sometimes holding back
/// `next_request` to leave pipelined bytes waiting.
pub fn check(data: &[u8]) {
    let mut s = Script::new(data);
    let limits = ServerLimits {
        max_head_bytes: 64 + usize::from(s.u16() % 2048),
        max_headers: 1 + s.below(32),
        max_body_bytes: usize::from(s.u16()),
        head_timeout: Duration::from_secs(10),
        body_idle_timeout: Duration::from_secs(30),
    };
    let mut reader = RequestReader::new(limits);
    let mut state = Expect::Head;
    while !s.is_empty() {
        let hold = s.byte() % 8 == 0;
        let piece = s.bytes(512);
        reader.push(piece);
        drain(&mut reader, &mut state, &limits, hold);
    }
    drain(&mut reader, &mut state, &limits, false);
}

/// Where the reader is in the request grammar, as seen from its events.
#[derive(Debug)]
enum Expect {
    Head,
    Body {
        framing: BodyFraming,
        read: u64,
    },
    /// `End` seen; `next_request` not called yet.
    Between,
    Failed,
}

fn drain(reader: &mut RequestReader, state: &mut Expect, limits: &ServerLimits, hold: bool) {
    loop {
        if matches!(state, Expect::Between) {
            assert!(
                reader.is_complete(),
                "End seen but the reader is not complete"
            );
            if hold {
                return;
            }
            reader.next_request();
            *state = Expect::Head;
        }
        let Some(ev) = reader.poll_event() else { break };
        *state = match (std::mem::replace(state, Expect::Failed), ev) {
            (Expect::Failed, ev) => panic!("an event after Error: {ev:?}"),
            (Expect::Between, ev) => panic!("an event before next_request: {ev:?}"),
            (Expect::Head, ReadEvent::Head(h)) => {
                assert!(
                    h.target.starts_with('/') || h.target == "*",
                    "target {:?}",
                    h.target
                );
                Expect::Body {
                    framing: h.framing,
                    read: 0,
                }
            }
            (Expect::Head, ReadEvent::Error(_)) => Expect::Failed,
            (Expect::Head, ev) => panic!("{ev:?} before a head"),
            (Expect::Body { framing, read }, ReadEvent::Body(b)) => {
                assert!(!b.is_empty(), "an empty Body event");
                let read = read + b.len() as u64;
                assert!(
                    read <= limits.max_body_bytes as u64,
                    "a body past the limit: {read}"
                );
                if let BodyFraming::Length(n) = framing {
                    assert!(read <= n, "{read} body bytes for Content-Length {n}");
                }
                assert!(
                    framing != BodyFraming::None,
                    "body bytes for a bodiless request"
                );
                Expect::Body { framing, read }
            }
            (Expect::Body { framing, read }, ReadEvent::End) => {
                if let BodyFraming::Length(n) = framing {
                    assert_eq!(read, n, "End after {read} of {n} bytes");
                }
                Expect::Between
            }
            (Expect::Body { .. }, ReadEvent::Error(_)) => Expect::Failed,
            (Expect::Body { .. }, ReadEvent::Head(_)) => panic!("a Head inside a body"),
        };
    }
    if matches!(state, Expect::Head) {
        assert!(
            reader.buffered() <= limits.max_head_bytes,
            "{} bytes held while waiting for a head (limit {})",
            reader.buffered(),
            limits.max_head_bytes
        );
    }
    if matches!(state, Expect::Failed) {
        assert_eq!(reader.buffered(), 0, "a failed reader still holds input");
    }
}
