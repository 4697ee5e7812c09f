//! The SSE framer never panics and stays within its memory bound, in any split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchback_core::sse::SseFramer;

fuzz_target!(|data: &[u8]| {
    let limit = 4096;
    let mut framer = SseFramer::new(limit);
    let split = data.first().map_or(1, |b| usize::from(*b).max(1));
    for piece in data.chunks(split) {
        framer.push(piece);
        while framer.next_event().is_some() {}
        assert!(framer.buffered_bytes() <= limit + 3);
    }
    framer.finish();
    while framer.next_event().is_some() {}
});
