//! `sse_framer`: the SSE framer never panics and stays within its memory bound.

use switchback_core::sse::SseFramer;

/// The first byte sets the split size; the framer holds at most its limit plus a constant.
pub fn check(data: &[u8]) {
    let limit = 4096;
    let mut framer = SseFramer::new(limit);
    let split = data.first().map_or(1, |b| usize::from(*b).max(1));
    for piece in data.chunks(split) {
        framer.push(piece);
        while framer.next_event().is_some() {}
        assert!(
            framer.buffered_bytes() <= limit + 3,
            "the framer holds {} bytes",
            framer.buffered_bytes()
        );
    }
    framer.finish();
    while framer.next_event().is_some() {}
}
