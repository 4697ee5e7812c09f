//! Errors in each client API's own shape, in simulation (spec §9, §4.8): the exhaustion
//! error with its attempts, upstream errors passed through (unchanged from a target of the
//! client's API, converted from another), the gateway's own errors, and in-band errors.

mod apis_support;
mod common;
mod doors_support;

use common::sim;
use doors_support::*;
use http::Method;
use serde_json::Value;
use switchback_core::apis::ClientApi;
use switchback_core::sim::Simulation;

const OPENAI: &str = "openai/gpt-4o";
const CLAUDE: &str = "anthropic/claude-sonnet-4-5";
/// A Chat Completions request for `CLAUDE` with a temperature Anthropic cannot take.
const CLAUDE_TEMPERATURE_1_5: &str = r#"{"model":"anthropic/claude-sonnet-4-5","temperature":1.5,"messages":[{"role":"user","content":"Hi"}]}"#;

/// `OPENAI` and `CLAUDE` (in `order`), the first the default with one failover.
fn two(first_is_openai: bool) -> Simulation {
    let openai =
        "  - model: openai/gpt-4o\n    base_url: http://127.0.0.1:1\n    access_key: OPENAI-KEY\n";
    let claude = "  - model: anthropic/claude-sonnet-4-5\n    base_url: http://127.0.0.1:2\n    access_key: ANTHROPIC-KEY\n";
    let policy = "    default: true\n    retry_policy:\n      default_strategy: different_provider\n      default_max_attempts: 1\n";
    let (a, b) = if first_is_openai {
        (openai, claude)
    } else {
        (claude, openai)
    };
    sim(&format!(
        "version: v0.3.0\nmodel_providers:\n{a}{policy}{b}"
    ))
}

#[test]
fn exhaustion_comes_in_each_clients_shape_with_every_attempt() {
    for client in CLIENTS {
        for stream in [false, true] {
            let mut s = two(false);
            s.script(CLAUDE, vec![Speaks::Messages.error(529)]);
            s.script(OPENAI, vec![Speaks::Chat.error(429)]);
            let r = post(&mut s, client, &request(client, CLAUDE, stream));
            assert_eq!(
                r.status,
                429,
                "{client:?}: {}",
                String::from_utf8_lossy(&r.body)
            );
            assert!(!r.streamed, "nothing committed: a whole error response");
            assert_eq!(r.headers["x-should-retry"], "false");
            let e = error_object(client, &r);
            let expected_type = if client.anthropic_errors() {
                "rate_limit_error"
            } else {
                "retry_exhausted"
            };
            assert_eq!(e["type"], expected_type, "{client:?}: {e}");
            assert_eq!(e["code"], "retry_exhausted", "{client:?}: {e}");
            assert_eq!(e["message"], "All retry attempts exhausted");
            assert_eq!(e["total_attempts"], 2, "{e}");
            let attempts = e["attempts"].as_array().expect("attempts");
            assert_eq!(attempts[0]["model"], CLAUDE);
            assert_eq!(attempts[0]["error_type"], "http_529");
            assert_eq!(attempts[1]["model"], OPENAI);
            assert_eq!(attempts[1]["error_type"], "http_429");
            // The last upstream error, in OpenAI's shape (what the rules read), unmasked.
            assert_eq!(
                e["last_error"]["error"]["message"], "upstream says 429",
                "{e}"
            );
        }
    }
}

#[test]
fn upstream_errors_that_pass_through_keep_their_body_from_the_clients_own_api() {
    // A 400 is not retried: it passes through. From Anthropic to a Messages client, byte for byte.
    let mut s = two(false);
    let raw = Speaks::Messages.error_body(400);
    s.script(CLAUDE, vec![Speaks::Messages.error(400)]);
    let r = post(
        &mut s,
        ClientApi::Messages,
        &request(ClientApi::Messages, CLAUDE, false),
    );
    assert_eq!(r.status, 400);
    assert_eq!(String::from_utf8_lossy(&r.body), raw);
    assert_eq!(s.calls(OPENAI), 0);

    // From OpenAI to a Chat client, byte for byte; to a Responses client too.
    for client in [ClientApi::ChatCompletions, ClientApi::Responses] {
        let mut s = two(true);
        s.script(OPENAI, vec![Speaks::Chat.error(400)]);
        let r = post(&mut s, client, &request(client, OPENAI, false));
        assert_eq!(r.status, 400);
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            Speaks::Chat.error_body(400)
        );
    }
}

#[test]
fn upstream_errors_from_another_api_are_converted_to_the_clients_shape() {
    // OpenAI's 400 for an Anthropic client: Anthropic's shape, OpenAI's code kept.
    let mut s = two(true);
    s.script(OPENAI, vec![Speaks::Chat.error(400)]);
    let r = post(
        &mut s,
        ClientApi::Messages,
        &request(ClientApi::Messages, OPENAI, true),
    );
    assert_eq!(r.status, 400);
    let e = error_object(ClientApi::Messages, &r);
    assert_eq!(e["type"], "invalid_request_error", "{e}");
    assert_eq!(e["message"], "upstream says 400", "{e}");
    assert_eq!(e["code"], "e400", "{e}");

    // Anthropic's 400 for a Chat or Responses client: OpenAI's shape, the type as code.
    for client in [ClientApi::ChatCompletions, ClientApi::Responses] {
        let mut s = two(false);
        s.script(CLAUDE, vec![Speaks::Messages.error(400)]);
        let r = post(&mut s, client, &request(client, CLAUDE, false));
        assert_eq!(r.status, 400);
        let e = error_object(client, &r);
        assert_eq!(e["type"], "invalid_request_error", "{e}");
        assert_eq!(e["code"], "invalid_request_error", "{e}");
        assert_eq!(e["message"], "upstream says 400", "{e}");
    }
}

#[test]
fn error_codes_rules_read_anthropic_errors_in_openai_terms_for_every_client() {
    let yaml = "version: v0.3.0\nmodel_providers:\n  - model: anthropic/claude-sonnet-4-5\n    base_url: http://127.0.0.1:2\n    access_key: K\n    default: true\n    retry_policy:\n      default_max_attempts: 0\n      on_status_codes:\n        - codes: [400]\n          error_codes: [invalid_request_error]\n          strategy: different_provider\n          max_attempts: 1\n  - model: openai/gpt-4o\n    base_url: http://127.0.0.1:1\n    access_key: K2\n";
    for client in CLIENTS {
        let mut s = sim(yaml);
        s.script(CLAUDE, vec![Speaks::Messages.error(400)]);
        s.script(OPENAI, vec![Speaks::Chat.json()]);
        let r = post(&mut s, client, &request(client, CLAUDE, false));
        assert_eq!(r.status, 200, "{client:?}");
        assert_eq!(answer(client, &r).0, Speaks::Chat.text());
    }
}

#[test]
fn a_request_a_target_cannot_express_is_its_400_in_the_clients_shape_without_a_call() {
    // `previous_response_id` needs the state of the provider that made the response:
    // neither Anthropic nor a Chat target can take it. The 400 is the target's as if it had
    // answered it, so it passes through (a rule would have to list 400 to go on).
    let body =
        r#"{"model":"anthropic/claude-sonnet-4-5","input":"Hi","previous_response_id":"resp_1"}"#;
    let mut s = two(false);
    s.script(CLAUDE, vec![Speaks::Messages.json()]);
    s.script(OPENAI, vec![Speaks::Chat.json()]);
    let r = post(&mut s, ClientApi::Responses, body);
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let e = error_object(ClientApi::Responses, &r);
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("previous_response_id"),
        "{e}"
    );
    assert_eq!(e["code"], "unsupported_parameter", "{e}");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["x-switchback-attempts"], "1");
    assert_eq!(
        (s.calls(CLAUDE), s.calls(OPENAI)),
        (0, 0),
        "no upstream call"
    );

    // A Messages request that Chat cannot carry (a Files API document), sent to an OpenAI
    // primary: the 400 in Anthropic's shape, naming the rule.
    let body = r#"{"model":"openai/gpt-4o","max_tokens":10,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"file","file_id":"file_1"}}]}]}"#;
    let mut s = two(true);
    s.script(OPENAI, vec![Speaks::Chat.json()]);
    let r = post(&mut s, ClientApi::Messages, body);
    assert_eq!(s.calls(OPENAI), 0, "never sent");
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let e = error_object(ClientApi::Messages, &r);
    assert_eq!(e["type"], "invalid_request_error", "{e}");
    assert_eq!(e["code"], "unsupported_parameter", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("documents given by URL or file id"),
        "{e}"
    );
}

#[test]
fn a_fallback_that_cannot_express_the_request_is_skipped_not_the_answer() {
    // The request is valid for its Anthropic primary, which is overloaded; the OpenAI
    // fallback cannot carry a Files API document. The client is told what happened (the
    // exhaustion error with both attempts, the primary's status), not a 400 that only the
    // fallback would give; the fallback was never called and is not failure-blocked.
    let body = r#"{"model":"anthropic/claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"file","file_id":"file_1"}}]}]}"#;
    let mut s = two(false);
    s.script(CLAUDE, vec![Speaks::Messages.error(529)]);
    s.script(OPENAI, vec![Speaks::Chat.json()]);
    let r = post(&mut s, ClientApi::Messages, body);
    assert_eq!(s.calls(OPENAI), 0, "never sent");
    assert_eq!(r.status, 529, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.headers["x-switchback-attempts"], "2");
    let e = error_object(ClientApi::Messages, &r);
    assert_eq!(e["code"], "retry_exhausted", "{e}");
    let kinds: Vec<&str> = e["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["error_type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["http_529", "untranslatable_request"], "{e}");
    assert!(
        e["attempts"][1].get("status").is_none(),
        "no upstream status: {e}"
    );
}

#[test]
fn temperature_above_one_skips_an_anthropic_fallback_for_the_next_candidate() {
    // OpenAI accepts temperature 1.5, Anthropic's range ends at 1: the Anthropic fallback
    // is skipped (never called) and the next OpenAI-interface entry answers.
    let yaml = "version: v0.3.0\nmodel_providers:\n  - model: openai/gpt-4o\n    base_url: http://127.0.0.1:1\n    access_key: K1\n    default: true\n    retry_policy:\n      fallback_models: [anthropic/claude-sonnet-4-5, mistral/mistral-large-latest]\n      default_strategy: different_provider\n      default_max_attempts: 2\n  - model: anthropic/claude-sonnet-4-5\n    base_url: http://127.0.0.1:2\n    access_key: K2\n  - model: mistral/mistral-large-latest\n    base_url: http://127.0.0.1:3\n    access_key: K3\n";
    const MISTRAL: &str = "mistral/mistral-large-latest";
    for client in [ClientApi::ChatCompletions, ClientApi::Responses] {
        let body = match client {
            ClientApi::ChatCompletions => {
                r#"{"model":"openai/gpt-4o","temperature":1.5,"messages":[{"role":"user","content":"Hi"}]}"#
            }
            _ => r#"{"model":"openai/gpt-4o","temperature":1.5,"input":"Hi"}"#,
        };
        let mut s = sim(yaml);
        s.script(OPENAI, vec![Speaks::Chat.error(429)]);
        s.script(CLAUDE, vec![Speaks::Messages.json()]);
        s.script(MISTRAL, vec![Speaks::Chat.json()]);
        let r = post(&mut s, client, body);
        assert_eq!(
            r.status,
            200,
            "{client:?}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(s.calls(CLAUDE), 0, "{client:?}: Anthropic never asked");
        assert_eq!(s.calls(MISTRAL), 1, "{client:?}");
        assert_eq!(r.headers["x-switchback-model"], MISTRAL);
        assert_eq!(r.headers["x-switchback-attempts"], "3");
    }
    // Sent to an Anthropic primary, the same value is the request's own 400, in the
    // client's shape, naming the parameter.
    let mut s = two(false);
    s.script(CLAUDE, vec![Speaks::Messages.json()]);
    let r = post(&mut s, ClientApi::ChatCompletions, CLAUDE_TEMPERATURE_1_5);
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(s.calls(CLAUDE), 0);
    let e = error_object(ClientApi::ChatCompletions, &r);
    assert_eq!(e["code"], "unsupported_parameter", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("`temperature`"),
        "{e}"
    );
}

#[test]
fn the_gateways_own_errors_come_in_the_clients_shape() {
    let mut s = two(true);
    for client in [ClientApi::Messages, ClientApi::CountTokens] {
        let r = post(&mut s, client, "{not json");
        assert_eq!(r.status, 400);
        let e = error_object(client, &r);
        assert_eq!(e["type"], "invalid_request_error", "{e}");
        let r = post(&mut s, client, r#"{"model":"openai/gpt-4o"}"#);
        assert_eq!(r.status, 400);
        assert_eq!(error_object(client, &r)["param"], "messages");
    }
    let mut s = sim("version: v0.3.0\nmodel_providers:\n  - model: openai/gpt-4o\n    base_url: http://127.0.0.1:1\n    access_key: K\n");
    let r = post(
        &mut s,
        ClientApi::Messages,
        r#"{"model":"nope/none","max_tokens":1,"messages":[]}"#,
    );
    assert_eq!(r.status, 404);
    let e = error_object(ClientApi::Messages, &r);
    assert_eq!(e["type"], "not_found_error", "{e}");
    assert_eq!(e["code"], "model_not_found", "{e}");
    let r = post(
        &mut s,
        ClientApi::Responses,
        r#"{"model":"nope/none","input":"Hi"}"#,
    );
    assert_eq!(
        error_object(ClientApi::Responses, &r)["code"],
        "model_not_found"
    );
    let r = post(
        &mut s,
        ClientApi::Embeddings,
        r#"{"model":"openai/gpt-4o"}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(error_object(ClientApi::Embeddings, &r)["param"], "input");

    for (path, api) in [
        ("/v1/messages", ClientApi::Messages),
        ("/v1/messages/count_tokens", ClientApi::CountTokens),
        ("/v1/responses", ClientApi::Responses),
        ("/v1/embeddings", ClientApi::Embeddings),
    ] {
        let r = s
            .request(Method::GET, path, Default::default(), "", None)
            .expect("simulation");
        assert_eq!(r.status, 405, "{path}");
        assert_eq!(r.headers["allow"], "POST");
        error_object(api, &r);
    }
    let r = s
        .request(
            Method::POST,
            "/v1/messages/batches",
            Default::default(),
            "{}",
            None,
        )
        .expect("simulation");
    assert_eq!(r.status, 404);
    assert_eq!(
        error_object(ClientApi::Messages, &r)["type"],
        "not_found_error"
    );
    let r = s
        .request(Method::POST, "/v1/nothing", Default::default(), "{}", None)
        .expect("simulation");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("/v1/messages"));
}

#[test]
fn claude_codes_warm_up_is_answered() {
    let mut s = two(true);
    for method in [Method::HEAD, Method::GET] {
        let r = s
            .request(method.clone(), "/", Default::default(), "", None)
            .expect("simulation");
        assert_eq!(r.status, 200, "{method}");
    }
}

#[test]
fn an_in_band_error_before_commit_fails_over_and_after_commit_ends_in_the_clients_shape() {
    let error_event = |speaks: Speaks| {
        match speaks {
        Speaks::Messages => "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".to_owned(),
        _ => "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"code\":\"boom\"}}\n\n".to_owned(),
    }
    };
    for client in CLIENTS {
        for (first_is_openai, speaks) in [(true, Speaks::Chat), (false, Speaks::Messages)] {
            let model = if first_is_openai { OPENAI } else { CLAUDE };
            let fallback = if first_is_openai {
                (CLAUDE, Speaks::Messages)
            } else {
                (OPENAI, Speaks::Chat)
            };
            // Before commit: an ordinary failed attempt.
            let mut events = speaks.events()[..speaks.held_events()].to_vec();
            events.push(error_event(speaks));
            let mut s = two(first_is_openai);
            s.script(model, vec![sse(&events, switchback_core::sim::Ending::End)]);
            s.script(fallback.0, vec![fallback.1.sse()]);
            let r = post(&mut s, client, &request(client, model, true));
            let (text, complete) = answer(client, &r);
            assert_eq!(
                (text.as_str(), complete),
                (fallback.1.text(), true),
                "{client:?} {speaks:?}"
            );
            // After commit: the error event in the client's shape, and the end.
            let mut events = speaks.events()[..speaks.held_events() + 1].to_vec();
            events.push(error_event(speaks));
            let mut s = two(first_is_openai);
            s.script(model, vec![sse(&events, switchback_core::sim::Ending::End)]);
            let r = post(&mut s, client, &request(client, model, true));
            let (text, complete) = answer(client, &r);
            assert_eq!(text, &speaks.text()[..5], "{client:?} {speaks:?}");
            assert!(!complete, "{client:?} {speaks:?}");
            assert_eq!(s.calls(fallback.0), 0);
            let last = client_events(&r.body).pop().expect("events");
            let data: Value = serde_json::from_slice(
                last.bytes
                    .split(|b| *b == b'\n')
                    .find_map(|l| l.strip_prefix(b"data: "))
                    .unwrap_or(b"null"),
            )
            .unwrap_or(Value::Null);
            match client {
                ClientApi::Messages => assert_eq!(data["type"], "error", "{data}"),
                ClientApi::Responses => assert_eq!(data["type"], "response.failed", "{data}"),
                _ => assert!(data["error"].is_object(), "{data}"),
            }
        }
    }
}

#[test]
fn a_refusal_the_gateway_makes_is_no_upstream_failure() {
    // An Anthropic primary whose rules retry 400 and block after one failure: a request
    // it cannot express (temperature above 1) is refused here, with no call. The attempt
    // is recorded as `untranslatable_request` with no status, and it opens no circuit:
    // the next valid request still reaches the primary.
    let yaml = "version: v0.3.0\nmodel_providers:\n  - model: anthropic/claude-sonnet-4-5\n    base_url: http://127.0.0.1:2\n    access_key: K2\n    default: true\n    retry_policy:\n      default_strategy: same_model\n      default_max_attempts: 0\n      on_status_codes:\n        - codes: [400]\n          strategy: same_model\n          max_attempts: 1\n      on_failures: {consecutive: 1, block_duration_seconds: 60}\n";
    let mut s = sim(yaml);
    s.script(CLAUDE, vec![Speaks::Messages.json()]);
    let refused = post(&mut s, ClientApi::ChatCompletions, CLAUDE_TEMPERATURE_1_5);
    assert_eq!(s.calls(CLAUDE), 0, "never sent");
    // The rule retried the 400 once (same model, refused again), then the exhaustion
    // error carries the refusal as its last error.
    assert_eq!(
        refused.status,
        400,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    let summary = refused.summary.as_ref().expect("finished");
    assert_eq!(summary.records.len(), 2);
    for r in &summary.records {
        assert_eq!(r.error_type, "untranslatable_request", "{r:?}");
        assert_eq!(r.status, None, "{r:?}");
    }
    let ok = post(
        &mut s,
        ClientApi::ChatCompletions,
        r#"{"model":"anthropic/claude-sonnet-4-5","temperature":0.5,"messages":[{"role":"user","content":"Hi"}]}"#,
    );
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(s.calls(CLAUDE), 1, "no failure block was opened");
}
