//! No body, answer or event stream panics a client-API translation, for any pair.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
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

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let client = CLIENTS[usize::from(pick) % CLIENTS.len()];
    let upstream = UPSTREAMS[usize::from(pick / 8) % UPSTREAMS.len()];
    let body = Bytes::copy_from_slice(rest);
    if let Ok(req) = ApiRequest::inspect(client, body.clone()) {
        let _ = req.upstream_body(upstream, &Target::new("m"));
        let t = req.translation(upstream, "p/m");
        let _ = t.success_body(body.clone());
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
});
