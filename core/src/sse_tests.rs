use super::*;
use proptest::prelude::*;

const LIMIT: usize = 1024;

/// Pushes `chunks` in order and returns everything framed (events and errors).
fn frame_chunks(limit: usize, chunks: &[&[u8]]) -> Vec<Result<SseEvent, SseError>> {
    let mut framer = SseFramer::new(limit);
    let mut out = Vec::new();
    for chunk in chunks {
        framer.push(chunk);
        while let Some(item) = framer.next_event() {
            out.push(item);
        }
    }
    framer.finish();
    while let Some(item) = framer.next_event() {
        out.push(item);
    }
    out
}

fn frame(input: &str) -> Vec<SseEvent> {
    frame_chunks(LIMIT, &[input.as_bytes()])
        .into_iter()
        .map(|r| r.expect("no error expected"))
        .collect()
}

/// Frames `input` whole and split at every single position, and checks they agree.
fn frame_all_splits(input: &[u8]) -> Vec<Result<SseEvent, SseError>> {
    let whole = frame_chunks(LIMIT, &[input]);
    for i in 0..=input.len() {
        let (a, b) = input.split_at(i);
        assert_eq!(frame_chunks(LIMIT, &[a, b]), whole, "split at {i}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(frame_chunks(LIMIT, &bytes), whole, "byte by byte");
    whole
}

fn ev(data: &str) -> SseEvent {
    SseEvent::data(data)
}

#[test]
fn simple_data_event() {
    assert_eq!(frame("data: hello\n\n"), vec![ev("hello")]);
}

#[test]
fn multi_line_data_joined_with_newline() {
    assert_eq!(frame("data: a\ndata: b\ndata:c\n\n"), vec![ev("a\nb\nc")]);
}

#[test]
fn all_line_endings() {
    assert_eq!(frame("data: a\r\ndata: b\r\n\r\n"), vec![ev("a\nb")]);
    assert_eq!(frame("data: a\rdata: b\r\r"), vec![ev("a\nb")]);
    assert_eq!(frame("data: a\rdata: b\n\r\n"), vec![ev("a\nb")]);
    // \n\r is two line endings: the \r after \n ends an empty line
    assert_eq!(frame("data: a\n\rdata: b\n\n"), vec![ev("a"), ev("b")]);
}

#[test]
fn crlf_split_across_pushes() {
    let got = frame_chunks(LIMIT, &[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
    assert_eq!(got, vec![Ok(ev("a\nb"))]);
    // \r at the end of a push followed by a non-\n: a lone CR
    let got = frame_chunks(LIMIT, &[b"data: a\r", b"\r"]);
    assert_eq!(got, vec![Ok(ev("a"))]);
    // empty pushes in between do not lose the pending CR
    let got = frame_chunks(LIMIT, &[b"data: a\r", b"", b"\n", b"", b"\r", b"", b"\n"]);
    assert_eq!(got, vec![Ok(ev("a"))]);
}

#[test]
fn every_split_of_a_rich_stream_agrees() {
    let input = "\u{feff}: hi\r\nevent: delta\r\nid: 7\r\nretry: 1500\r\ndata: {\"a\":1}\r\n\r\n\
                 data\rdata:  two spaces\r\rfoo: bar\nnocolon\n: comment\ndata: [DONE]\n\n";
    let got = frame_all_splits(input.as_bytes());
    assert_eq!(
        got,
        vec![
            Ok(SseEvent {
                event: Some("delta".into()),
                data: "{\"a\":1}".into(),
                id: Some("7".into()),
                retry: Some(1500),
            }),
            Ok(ev("\n two spaces")),
            Ok(ev("[DONE]")),
        ]
    );
}

#[test]
fn comments_are_ignored() {
    assert_eq!(
        frame(": keep-alive\n\n:\ndata: x\n: mid\n\n"),
        vec![ev("x")]
    );
}

#[test]
fn fields_without_colon_and_unknown_fields() {
    // "data" alone is a data field with an empty value
    assert_eq!(frame("data\n\n"), vec![ev("")]);
    assert_eq!(frame("data\ndata\n\n"), vec![ev("\n")]);
    // unknown fields are ignored; a block without data dispatches nothing
    assert_eq!(frame("foo: bar\nbaz\n\ndata: y\n\n"), vec![ev("y")]);
    // field names are case-sensitive
    assert_eq!(frame("Data: x\n\n"), vec![]);
}

#[test]
fn only_one_leading_space_is_stripped() {
    assert_eq!(frame("data:x\n\n"), vec![ev("x")]);
    assert_eq!(frame("data: x\n\n"), vec![ev("x")]);
    assert_eq!(frame("data:  x \n\n"), vec![ev(" x ")]);
    assert_eq!(frame("data:\tx\n\n"), vec![ev("\tx")]);
    assert_eq!(frame("data: a: b\n\n"), vec![ev("a: b")]);
}

#[test]
fn event_and_id_fields() {
    let got = frame("event: ping\nid: 42\ndata: x\n\ndata: y\n\n");
    assert_eq!(
        got,
        vec![
            SseEvent {
                event: Some("ping".into()),
                id: Some("42".into()),
                ..ev("x")
            },
            ev("y"),
        ]
    );
    // an empty event type is the default type
    assert_eq!(frame("event:\ndata: x\n\n"), vec![ev("x")]);
    // the last field of a kind in a block wins
    assert_eq!(
        frame("event: a\nevent: b\ndata: x\n\n")[0].event.as_deref(),
        Some("b")
    );
}

#[test]
fn last_event_id_persists_and_nul_ids_are_ignored() {
    let mut framer = SseFramer::new(LIMIT);
    framer.push(b"id: 1\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid\ndata: d\n\n");
    let ids: Vec<_> = std::iter::from_fn(|| framer.next_event())
        .map(|r| r.expect("event").id)
        .collect();
    assert_eq!(ids, vec![Some("1".into()), None, None, Some(String::new())]);
    assert_eq!(framer.last_event_id(), "");
    framer.push(b"id: 9\n\n");
    assert_eq!(framer.next_event(), None);
    assert_eq!(framer.last_event_id(), "9");
}

#[test]
fn retry_field_must_be_digits() {
    let got = frame("retry: 10\nretry: 1x\nretry: -5\nretry:\ndata: a\n\nretry: 99999999999999999999999\ndata: b\n\n");
    assert_eq!(got[0].retry, Some(10));
    assert_eq!(got[1].retry, None);
}

#[test]
fn empty_data_buffer_dispatches_nothing() {
    assert_eq!(frame("\n\n\n"), vec![]);
    assert_eq!(frame("event: x\n\n"), vec![]);
    assert_eq!(frame("data:\n\n"), vec![ev("")]);
}

#[test]
fn bom_is_stripped_only_at_stream_start() {
    assert_eq!(frame("\u{feff}data: a\n\n"), vec![ev("a")]);
    // split inside the BOM
    let got = frame_chunks(LIMIT, &[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"]);
    assert_eq!(got, vec![Ok(ev("a"))]);
    // a second BOM is part of the field name, so the line is an unknown field
    assert_eq!(
        frame("\u{feff}\u{feff}data: a\n\ndata: b\n\n"),
        vec![ev("b")]
    );
    // a BOM later in the stream is not special either
    assert_eq!(frame("data: a\n\n\u{feff}data: b\n\n"), vec![ev("a")]);
    // a partial BOM prefix is ordinary input
    let got = frame_chunks(LIMIT, &[b"\xEF\xBB", b"\n\ndata: z\n\n"]);
    assert_eq!(got, vec![Ok(ev("z"))]);
}

#[test]
fn invalid_utf8_is_replaced() {
    let got = frame_chunks(
        LIMIT,
        &[b"data: a\xffb\xe2\x82\n", b"data: \xe2\x82\xac\n\n"],
    );
    assert_eq!(got, vec![Ok(ev("a\u{fffd}b\u{fffd}\n\u{20ac}"))]);
    // a multi-byte character split across pushes survives
    let got = frame_chunks(LIMIT, &[b"data: \xe2\x82", b"\xac\n\n"]);
    assert_eq!(got, vec![Ok(ev("\u{20ac}"))]);
}

#[test]
fn finish_discards_incomplete_event() {
    let mut framer = SseFramer::new(LIMIT);
    framer.push(b"data: complete\n\ndata: partial\n");
    assert_eq!(framer.next_event(), Some(Ok(ev("complete"))));
    assert_eq!(framer.next_event(), None);
    assert!(framer.finish());
    assert_eq!(framer.next_event(), None);
    // pushes after finish are ignored
    framer.push(b"\n");
    assert_eq!(framer.next_event(), None);

    let mut clean = SseFramer::new(LIMIT);
    clean.push(b"data: [DONE]\n\n");
    assert!(!clean.finish());
    assert_eq!(clean.next_event(), Some(Ok(ev("[DONE]"))));

    let mut cut_mid_line = SseFramer::new(LIMIT);
    cut_mid_line.push(b"data: [DO");
    assert!(cut_mid_line.finish());
    assert_eq!(cut_mid_line.next_event(), None);
}

#[test]
fn oversized_event_is_reported_once_and_framing_stops() {
    let mut framer = SseFramer::new(16);
    framer.push(b"data: ok\n\ndata: 0123456789\ndata: 0123456789\ndata: more\n\ndata: x\n\n");
    assert_eq!(
        framer.next_event(),
        Some(Ok(ev("ok"))),
        "events before it come first"
    );
    assert_eq!(
        framer.next_event(),
        Some(Err(SseError::EventTooLarge { limit: 16 }))
    );
    assert_eq!(framer.next_event(), None);
    assert!(framer.has_failed());
    framer.push(b"data: ignored\n\n");
    assert_eq!(framer.next_event(), None);
    assert_eq!(framer.buffered_bytes(), 0);
    assert!(!framer.finish(), "the error was already reported");
}

#[test]
fn oversized_line_is_bounded_while_streaming_in() {
    let mut framer = SseFramer::new(64);
    framer.push(b"data: ");
    for _ in 0..1000 {
        framer.push(&[b'x'; 100]);
        assert!(framer.buffered_bytes() <= 64);
    }
    framer.push(b"\r\n\r\ndata: after\r\n\r\n");
    let got: Vec<_> = std::iter::from_fn(|| framer.next_event()).collect();
    assert_eq!(got, vec![Err(SseError::EventTooLarge { limit: 64 })]);
    assert_eq!(framer.buffered_bytes(), 0);
}

#[test]
fn long_comments_do_not_count() {
    let mut framer = SseFramer::new(8);
    framer.push(b":");
    for _ in 0..100 {
        framer.push(&[b'c'; 100]);
    }
    framer.push(b"\ndata: ok\n\n");
    assert_eq!(framer.next_event(), Some(Ok(ev("ok"))));
    assert_eq!(framer.buffered_bytes(), 0);
}

#[test]
fn event_exactly_at_limit_is_accepted() {
    // "data: abcd" is 10 raw bytes
    let got = frame_chunks(10, &[b"data: abcd\n\n"]);
    assert_eq!(got, vec![Ok(ev("abcd"))]);
    let got = frame_chunks(9, &[b"data: abcd\n\n"]);
    assert_eq!(got, vec![Err(SseError::EventTooLarge { limit: 9 })]);
}

#[test]
fn encode_data_lines() {
    assert_eq!(encode_data("hello"), Bytes::from_static(b"data: hello\n\n"));
    assert_eq!(
        encode_data("[DONE]"),
        Bytes::from_static(b"data: [DONE]\n\n")
    );
    assert_eq!(
        encode_data("a\nb"),
        Bytes::from_static(b"data: a\ndata: b\n\n")
    );
    assert_eq!(
        encode_data("a\r\nb\rc\n"),
        Bytes::from_static(b"data: a\ndata: b\ndata: c\ndata:\n\n")
    );
    assert_eq!(encode_data(""), Bytes::from_static(b"data:\n\n"));
}

#[test]
fn event_to_bytes() {
    let event = SseEvent {
        event: Some("delta".into()),
        data: " x\ny".into(),
        id: Some("3".into()),
        retry: Some(250),
    };
    assert_eq!(
        event.to_bytes(),
        Bytes::from_static(b"event: delta\nid: 3\nretry: 250\ndata:  x\ndata: y\n\n")
    );
    assert_eq!(frame_chunks(LIMIT, &[&event.to_bytes()]), vec![Ok(event)]);
    let odd = SseEvent {
        event: Some("a\nb".into()),
        ..ev("z")
    };
    assert_eq!(
        odd.to_bytes(),
        Bytes::from_static(b"event: ab\ndata: z\n\n")
    );
}

#[test]
fn done_marker() {
    assert!(is_done(&ev("[DONE]")));
    assert!(is_done(&ev(" [DONE] ")));
    assert!(!is_done(&ev("[DONE]x")));
    assert!(!is_done(&ev("{\"choices\":[]}")));
}

fn arb_event() -> impl Strategy<Value = SseEvent> {
    (
        prop::option::of("[^\r\n]{0,8}"),
        prop_oneof![
            any::<String>(),
            "[a-z \r\n:]{0,20}",
            "\\{\"x\":[0-9]{1,3}\\}"
        ],
        prop::option::of("[^\r\n\0]{0,6}"),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(event, data, id, retry)| SseEvent {
            event,
            data,
            id,
            retry,
        })
}

/// What framing `event.to_bytes()` gives back.
fn normalised(event: &SseEvent) -> SseEvent {
    SseEvent {
        event: event.event.clone().filter(|e| !e.is_empty()),
        data: event.data.replace("\r\n", "\n").replace('\r', "\n"),
        id: event.id.clone(),
        retry: event.retry,
    }
}

/// Cuts `bytes` at the given (unsorted, possibly repeated) offsets.
fn split_at_points(bytes: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(bytes[start..cut].to_vec());
        start = cut;
    }
    chunks.push(bytes[start..].to_vec());
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encoded_events_frame_back_under_any_split(
        events in prop::collection::vec(arb_event(), 0..8),
        points in prop::collection::vec(any::<usize>(), 0..12),
        bom in any::<bool>(),
    ) {
        let mut wire = Vec::new();
        if bom {
            wire.extend_from_slice(BOM);
        }
        for event in &events {
            wire.extend_from_slice(&event.to_bytes());
        }
        let whole = frame_chunks(1 << 20, &[&wire]);
        let expected: Vec<_> = events.iter().map(|e| Ok(normalised(e))).collect();
        prop_assert_eq!(&whole, &expected);
        let chunks = split_at_points(&wire, &points);
        let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(frame_chunks(1 << 20, &refs), whole);
    }

    #[test]
    fn garbage_never_panics_and_stays_bounded(
        chunks in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..64),
                prop::collection::vec(
                    prop::sample::select(vec![b'\r', b'\n', b':', b' ', b'd', b'a', b't', 0xEF, 0xBB, 0xBF]),
                    0..64,
                ),
                "(data|event|id|retry|:)?:? ?[a-z0-9]{0,40}(\r\n|\r|\n){0,2}".prop_map(String::into_bytes),
            ],
            0..24,
        ),
        limit in 0usize..48,
    ) {
        let mut framer = SseFramer::new(limit);
        for chunk in &chunks {
            framer.push(chunk);
            prop_assert!(framer.buffered_bytes() <= limit + 3);
            while let Some(item) = framer.next_event() {
                if let Ok(event) = item {
                    let size = event.data.len() + event.event.map_or(0, |e| e.len());
                    // lossy decoding may expand each raw byte to at most 3
                    prop_assert!(size <= 3 * limit);
                }
            }
        }
        framer.finish();
        while framer.next_event().is_some() {}
        // the same bytes whole give the same result as split
        let joined: Vec<u8> = chunks.concat();
        let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(frame_chunks(limit, &refs), frame_chunks(limit, &[&joined]));
    }
}
