//! Every client API × every upstream interface, in simulation (spec §9): a request of each
//! client API whose primary fails (a 429, or Anthropic's 529) fails over to a fallback of
//! each interface, streaming and not, and the client gets the fallback's answer in its own
//! API's shape and grammar, with nothing of the failed attempt spliced in.

mod apis_support;
mod common;
mod doors_support;

use common::sim;
use doors_support::*;
use serde_json::Value;
use switchback_core::apis::ClientApi;

/// What the body sent to an upstream of `speaks` must hold.
fn assert_upstream_body(speaks: Speaks, client: ClientApi, body: &Value, model_id: &str) {
    assert_eq!(body["model"], model_id, "{client:?} → {speaks:?}: {body}");
    match speaks {
        Speaks::Chat => {
            let messages = body["messages"].as_array().expect("messages");
            assert_eq!(
                messages.last().expect("a message")["role"],
                "user",
                "{body}"
            );
        }
        Speaks::Messages => {
            assert!(body["max_tokens"].as_u64().is_some(), "{body}");
            assert_eq!(body["messages"][0]["role"], "user", "{body}");
            assert!(body.get("input").is_none(), "{body}");
        }
        Speaks::Responses => {
            assert!(body.get("input").is_some(), "{body}");
            assert!(body.get("messages").is_none(), "{body}");
        }
    }
}

#[test]
fn every_client_api_fails_over_between_every_pair_of_interfaces() {
    for client in CLIENTS {
        for first in SPEAKS {
            for second in SPEAKS {
                for stream in [false, true] {
                    let case = format!("{client:?} client, {first:?} primary → {second:?} fallback, stream {stream}");
                    let (primary_model, status) = primary(first);
                    let mut s = sim(&pair_config(first, second));
                    let (first, second_config, second) =
                        (used(client, first), second, used(client, second));
                    s.script(primary_model, vec![first.error(status)]);
                    let answer_reply = if stream { second.sse() } else { second.json() };
                    let fallback_model = fallback(second_config);
                    s.script(fallback_model, vec![answer_reply]);
                    let r = post(&mut s, client, &request(client, primary_model, stream));
                    assert_eq!(
                        r.status,
                        200,
                        "{case}: {}",
                        String::from_utf8_lossy(&r.body)
                    );
                    assert_eq!(r.streamed, stream, "{case}");
                    assert_eq!(r.headers["x-switchback-attempts"], "2", "{case}");
                    assert_eq!(r.headers["x-switchback-model"], fallback_model, "{case}");
                    let (text, complete) = answer(client, &r);
                    assert_eq!(
                        text,
                        second.text(),
                        "{case}: {}",
                        String::from_utf8_lossy(&r.body)
                    );
                    assert!(complete, "{case}: {}", String::from_utf8_lossy(&r.body));
                    let content_type = r.headers["content-type"].to_str().unwrap_or("");
                    let expected = if stream {
                        "text/event-stream"
                    } else {
                        "application/json"
                    };
                    assert!(content_type.starts_with(expected), "{case}: {content_type}");

                    for (model, speaks) in [(primary_model, first), (fallback_model, second)] {
                        let up = s.upstream(model).expect("scripted");
                        assert_eq!(up.calls(), 1, "{case}: {model}");
                        assert_eq!(up.received_paths[0], speaks.path(), "{case}: {model}");
                        let body: Value =
                            serde_json::from_slice(&up.received[0]).expect("JSON body");
                        let id = model.split_once('/').map(|(_, id)| id).unwrap_or(model);
                        assert_upstream_body(speaks, client, &body, id);
                        let wants_stream = body["stream"].as_bool().unwrap_or(false);
                        assert_eq!(wants_stream, stream, "{case}: {model}: {body}");
                    }
                }
            }
        }
    }
}

#[test]
fn a_cut_before_commit_fails_over_invisibly_for_every_pair() {
    for client in CLIENTS {
        for first in SPEAKS {
            for second in SPEAKS {
                let case = format!("{client:?} client, {first:?} cut → {second:?}");
                let (primary_model, _) = primary(first);
                let fallback_model = fallback(second);
                let mut s = sim(&pair_config(first, second));
                let (first, second) = (used(client, first), used(client, second));
                // Every event before the first content, then the connection breaks.
                s.script(primary_model, vec![first.cut_after(first.held_events())]);
                s.script(fallback_model, vec![second.sse()]);
                let r = post(&mut s, client, &request(client, primary_model, true));
                assert_eq!(r.status, 200, "{case}");
                assert_eq!(r.headers["x-switchback-model"], fallback_model, "{case}");
                let (text, complete) = answer(client, &r);
                assert_eq!(text, second.text(), "{case}");
                assert!(complete, "{case}");
            }
        }
    }
}

#[test]
fn a_cut_after_commit_ends_with_the_apis_in_band_error_and_no_completion() {
    for client in CLIENTS {
        for first in SPEAKS {
            let case = format!("{client:?} client, {first:?} cut after content");
            let (primary_model, _) = primary(first);
            let mut s = sim(&pair_config(first, Speaks::Chat));
            let first = used(client, first);
            s.script(
                primary_model,
                vec![first.cut_after(first.held_events() + 1)],
            );
            s.script(fallback(Speaks::Chat), vec![Speaks::Chat.sse()]);
            let r = post(&mut s, client, &request(client, primary_model, true));
            assert_eq!(r.status, 200, "{case}");
            assert_eq!(
                s.calls(fallback(Speaks::Chat)),
                0,
                "{case}: no retry after commit"
            );
            let (text, complete) = answer(client, &r);
            assert_eq!(
                text,
                &first.text()[..5],
                "{case}: the content relayed so far"
            );
            assert!(!complete, "{case}: {}", String::from_utf8_lossy(&r.body));
            let body = String::from_utf8_lossy(&r.body);
            match client {
                ClientApi::ChatCompletions => {
                    assert!(!body.contains("[DONE]"), "{case}: {body}");
                    assert!(body.contains("stream_interrupted"), "{case}: {body}");
                }
                ClientApi::Messages => {
                    assert!(!body.contains("message_stop"), "{case}: {body}");
                    assert!(body.contains("event: error"), "{case}: {body}");
                }
                _ => {
                    assert!(!body.contains("response.completed"), "{case}: {body}");
                    assert!(body.contains("event: response.failed"), "{case}: {body}");
                }
            }
        }
    }
}

#[test]
fn same_api_streams_reach_the_client_as_the_upstreams_exact_bytes() {
    for (client, speaks) in [
        (ClientApi::ChatCompletions, Speaks::Chat),
        (ClientApi::Messages, Speaks::Messages),
        (ClientApi::Responses, Speaks::Responses),
    ] {
        let model = primary(speaks).0;
        let mut s = sim(&pair_config(speaks, Speaks::Chat));
        s.script(model, vec![speaks.sse()]);
        let r = post(&mut s, client, &request(client, model, true));
        assert_eq!(r.status, 200);
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            speaks.events().concat(),
            "{client:?}: relayed byte for byte"
        );
        s.script(model, vec![speaks.json()]);
        let r = post(&mut s, client, &request(client, model, false));
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            speaks.json_body(),
            "{client:?}"
        );
    }
}
