//! `translators`: every client-API translation of `core/src/apis/` (requests, answers, errors
//! and streams, for every client API × upstream API pair) over arbitrary input. Checks: no
//! panic; a request translated for a target, and a translated answer, are JSON.

use bytes::Bytes;
use switchback_core::apis::{
    ApiRequest, ClientApi, RelayFramer, StreamTranslator, Target, UpstreamApi,
};
use switchback_core::sse::SseFramer;

const CLIENTS: [ClientApi; 5] = [
    ClientApi::ChatCompletions,
    ClientApi::Messages,
    ClientApi::CountTokens,
    ClientApi::Responses,
    ClientApi::Embeddings,
];
const UPSTREAMS: [UpstreamApi; 5] = [
    UpstreamApi::ChatCompletions,
    UpstreamApi::Messages,
    UpstreamApi::Responses,
    UpstreamApi::Embeddings,
    UpstreamApi::CountTokens,
];

fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// The first byte picks the client and upstream APIs; the rest is the body, the answer and
/// the event stream at once.
pub fn check(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let client = CLIENTS[usize::from(pick) % CLIENTS.len()];
    let upstream = UPSTREAMS[usize::from(pick / 8) % UPSTREAMS.len()];
    let body = Bytes::copy_from_slice(rest);
    if let Ok(req) = ApiRequest::inspect(client, body.clone()) {
        if let Ok(out) = req.upstream_body(upstream, &Target::new("m")) {
            assert!(is_json(&out), "a translated request is not JSON");
        }
        let t = req.translation(upstream, "p/m");
        if let Ok(out) = t.success_body(body.clone()) {
            assert!(is_json(&out), "a translated answer is not JSON");
        }
        let _ = t.error_for_client(400, body.clone());
    }
    let mut stream =
        StreamTranslator::translating(upstream, client, "p/m", pick % 2 == 0, Default::default());
    let mut framer = SseFramer::new(1 << 16);
    framer.push(rest);
    while let Some(Ok(event)) = framer.next_event() {
        let _ = stream.push(&event);
    }
    let _ = stream.end();
    let _ = stream.terminal_error("cut", "stream_truncated");
    let mut relay = StreamTranslator::relay(client, "p/m");
    let mut framer = RelayFramer::new(1 << 16);
    for piece in rest.chunks(usize::from(pick).max(1)) {
        framer.push(piece);
        while let Some(Ok(event)) = framer.next_event() {
            let _ = relay.push_framed(&event);
        }
    }
    framer.finish();
}
