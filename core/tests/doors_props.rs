//! A property of every door, in simulation: whatever a primary and its fallback (of any
//! interfaces) answer, for a client of any API, the client gets exactly one well-formed
//! answer in its own API: a whole response, or a stream in its API's grammar (checked by the
//! SDK-style accumulators) that either completes with one upstream's whole answer or ends
//! with the API's error after a prefix of one upstream's answer. Never two upstreams'
//! outputs spliced, never a completion event on a truncated answer.

mod apis_support;
mod common;
mod doors_support;

use common::sim;
use doors_support::*;
use proptest::prelude::*;
use switchback_core::apis::ClientApi;
use switchback_core::sim::{Ending, FakeReply};

#[derive(Debug, Clone)]
enum Script {
    Error(u16),
    Whole,
    Stream,
    /// The stream's first `n` events, then a cut (`Cut`) or a clean end (`End`).
    Partial(usize, bool),
    Garbage,
    Refuse,
}

fn script() -> impl Strategy<Value = Script> {
    prop_oneof![
        prop::sample::select(vec![400u16, 429, 500, 503, 529]).prop_map(Script::Error),
        Just(Script::Whole),
        Just(Script::Stream),
        (0usize..10, any::<bool>()).prop_map(|(n, cut)| Script::Partial(n, cut)),
        Just(Script::Garbage),
        Just(Script::Refuse),
    ]
}

fn reply(speaks: Speaks, s: &Script) -> FakeReply {
    match s {
        Script::Error(status) => speaks.error(*status),
        Script::Whole => speaks.json(),
        Script::Stream => speaks.sse(),
        Script::Partial(n, cut) => {
            let events = speaks.events();
            let n = (*n).min(events.len());
            sse(&events[..n], if *cut { Ending::Cut } else { Ending::End })
        }
        Script::Garbage => FakeReply::json(200, "{\"half"),
        Script::Refuse => FakeReply::Refuse,
    }
}

const CLIENT_APIS: [ClientApi; 3] = CLIENTS;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_door_gives_one_well_formed_answer(
        client in prop::sample::select(CLIENT_APIS.to_vec()),
        first in prop::sample::select(SPEAKS.to_vec()),
        second in prop::sample::select(SPEAKS.to_vec()),
        first_script in script(),
        second_script in script(),
        stream in any::<bool>(),
    ) {
        let (primary_model, _) = primary(first);
        let fallback_model = fallback(second);
        let mut s = sim(&pair_config(first, second));
        let (up1, up2) = (used(client, first), used(client, second));
        s.script(primary_model, vec![reply(up1, &first_script)]);
        s.script(fallback_model, vec![reply(up2, &second_script)]);
        let r = post(&mut s, client, &request(client, primary_model, stream));
        let attempts: u32 = r.headers["x-switchback-attempts"].to_str().unwrap().parse().unwrap();
        prop_assert!((1..=2).contains(&attempts), "{attempts}");
        let body = String::from_utf8_lossy(&r.body).into_owned();
        let texts = [up1.text(), up2.text()];
        if r.status == 200 {
            let (text, complete) = answer(client, &r);
            if complete {
                prop_assert!(texts.contains(&text.as_str()), "{text:?}: {body}");
            } else {
                prop_assert!(r.streamed, "{body}");
                prop_assert!(
                    texts.iter().any(|t| t.starts_with(&text)),
                    "spliced or foreign text {text:?}: {body}"
                );
                for marker in ["[DONE]", "message_stop", "response.completed"] {
                    prop_assert!(!body.contains(marker), "{marker} after a failure: {body}");
                }
            }
        } else {
            prop_assert!(!r.streamed, "an error status on a committed stream: {body}");
            error_object(client, &r);
        }
    }
}
