//! The relay framer yields the events `SseFramer` yields, each with its bytes exactly as sent.

use proptest::prelude::*;
use switchback_core::apis::{ClientApi, EventKind, RelayFramer, StreamTranslator};
use switchback_core::sse::SseFramer;

fn relay_frame(input: &[u8], split: usize, limit: usize) -> (Vec<String>, Vec<u8>, usize) {
    let mut f = RelayFramer::new(limit);
    let mut data = Vec::new();
    let mut raw = Vec::new();
    let mut errors = 0;
    for piece in input.chunks(split.max(1)) {
        f.push(piece);
        while let Some(r) = f.next_event() {
            match r {
                Ok(ev) => {
                    data.push(format!("{:?}|{}", ev.event.event, ev.event.data));
                    raw.extend_from_slice(&ev.raw);
                }
                Err(_) => errors += 1,
            }
        }
    }
    f.finish();
    (data, raw, errors)
}

fn plain_frame(input: &[u8], limit: usize) -> (Vec<String>, usize) {
    let mut f = SseFramer::new(limit);
    f.push(input);
    f.finish();
    let mut data = Vec::new();
    let mut errors = 0;
    while let Some(r) = f.next_event() {
        match r {
            Ok(ev) => data.push(format!("{:?}|{}", ev.event, ev.data)),
            Err(_) => errors += 1,
        }
    }
    (data, errors)
}

#[test]
fn fixtures_are_relayed_byte_for_byte() {
    for file in [
        "anthropic/stream/tool_call.sse",
        "apis/chat/tool_call.sse",
        "apis/responses/function_call.sse",
    ] {
        let input = std::fs::read(format!(
            "{}/tests/fixtures/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        for split in [1, 2, 7, 64, usize::MAX] {
            let (_, raw, errors) = relay_frame(&input, split, 1 << 20);
            assert_eq!(errors, 0);
            assert_eq!(raw, input, "{file} split every {split}");
        }
    }
}

#[test]
fn odd_framing_survives_exactly() {
    let input = b"\xEF\xBB\xBF: keep-alive\n\nevent:message_start\r\ndata:{\"a\" :  1}\r\nid: 7\r\n\r\ndata: x\rdata: y\r\r: c\ndata: [DONE]\n\n";
    for split in [1, 3, usize::MAX] {
        let (data, _, _) = relay_frame(input, split, 1024);
        assert_eq!(data, plain_frame(input, 1024).0, "split {split}");
    }
    for split in [4, usize::MAX] {
        let (_, raw, _) = relay_frame(input, split, 1024);
        assert_eq!(
            raw,
            b"event:message_start\r\ndata:{\"a\" :  1}\r\nid: 7\r\n\r\ndata: x\rdata: y\r\r: c\ndata: [DONE]\n\n".to_vec(),
            "split {split}: the BOM and the comment-only block are not events"
        );
    }
}

#[test]
fn a_crlf_blank_line_split_after_its_cr_is_yielded_at_once() {
    let mut f = RelayFramer::new(1024);
    f.push(b"data: x\r\n\r");
    let first = f
        .next_event()
        .expect("yielded without waiting")
        .expect("ok");
    assert_eq!(&first.raw[..], b"data: x\r\n\r");
    f.push(b"\ndata: y\n\n");
    let second = f.next_event().expect("second").expect("ok");
    assert_eq!(
        &second.raw[..],
        b"data: y\n\n",
        "the LF of the first blank line is dropped"
    );
    assert!(f.next_event().is_none());
}

#[test]
fn relays_forward_the_upstreams_bytes() {
    let input =
        b"data:{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\r\n\r\ndata:  [DONE]\r\n\r\n";
    let mut f = RelayFramer::new(1 << 20);
    f.push(input);
    let mut t = StreamTranslator::relay(ClientApi::ChatCompletions, "p/m");
    let mut out = Vec::new();
    let mut kinds = Vec::new();
    while let Some(Ok(ev)) = f.next_event() {
        for e in t.push_framed(&ev) {
            out.extend_from_slice(&e.bytes);
            kinds.push(e.kind);
        }
    }
    assert_eq!(out, input.to_vec());
    assert_eq!(kinds, [EventKind::Content, EventKind::Done]);
}

#[test]
fn oversize_blocks_are_reported_and_skipped() {
    let big = format!("data: {}\n\ndata: ok\n\n", "x".repeat(10_000));
    let (data, _, errors) = relay_frame(big.as_bytes(), 100, 1024);
    assert_eq!(errors, 1);
    assert_eq!(data, ["None|ok"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn same_events_as_the_plain_framer(
        parts in prop::collection::vec(prop::sample::select(&["data: a", "data:b", "event: e", "id: 1", ": c", "retry: 5", "\n", "\r", "\r\n", "x", "data: {\"k\":1}"][..]), 0..40),
        split in 1usize..9,
    ) {
        let input: Vec<u8> = parts.concat().into_bytes();
        let (relayed, raw, _) = relay_frame(&input, split, 1 << 20);
        let (plain, _) = plain_frame(&input, 1 << 20);
        prop_assert_eq!(&relayed, &plain);
        // The raw bytes are a subsequence-preserving slice of the input: every event's bytes
        // appear in the input, in order.
        prop_assert!(raw.len() <= input.len());
    }
}
