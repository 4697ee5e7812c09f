//! Non-streamed answers and errors through the facade, for each client API × upstream API.

use bytes::Bytes;
use serde_json::{json, Value};
use switchback_core::apis::{errors, ApiRequest, ClientApi, Target, TranslateError, UpstreamApi};

fn fixture(path: &str) -> Bytes {
    let p = format!("{}/tests/fixtures/apis/{path}", env!("CARGO_MANIFEST_DIR"));
    Bytes::from(std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}")))
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

/// A minimal valid request of `api`.
fn client(api: ClientApi) -> ApiRequest {
    let body: &[u8] = match api {
        ClientApi::Responses => br#"{"model":"m","input":"hi"}"#,
        ClientApi::Embeddings => br#"{"model":"m","input":"hi"}"#,
        _ => br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
    };
    ApiRequest::inspect(api, Bytes::copy_from_slice(body)).expect("valid")
}

fn answer(
    api: ClientApi,
    upstream: UpstreamApi,
    model: &str,
    raw: Bytes,
) -> Result<Value, TranslateError> {
    let req = client(api);
    req.upstream_body(upstream, &Target::new("x"))
        .expect("request translates");
    req.translation(upstream, model)
        .success_body(raw)
        .map(|b| json(&b))
}

#[test]
fn chat_tool_call_to_messages_and_responses() {
    let raw = fixture("chat/tool_call.response.json");
    let m = answer(
        ClientApi::Messages,
        UpstreamApi::ChatCompletions,
        "openai/gpt-4o-mini",
        raw.clone(),
    )
    .expect("messages");
    assert_eq!(m, json(&fixture("chat/tool_call.messages.json")));
    let r = answer(
        ClientApi::Responses,
        UpstreamApi::ChatCompletions,
        "openai/gpt-4o-mini",
        raw,
    )
    .expect("responses");
    assert_eq!(r, json(&fixture("chat/tool_call.responses.json")));
}

#[test]
fn anthropic_text_to_responses_drops_thinking_and_marks_length_incomplete() {
    let raw = fixture("messages/text.response.json");
    let r = answer(
        ClientApi::Responses,
        UpstreamApi::Messages,
        "anthropic/claude-sonnet-4-5",
        raw,
    )
    .expect("responses");
    assert_eq!(r, json(&fixture("messages/text.responses.json")));
}

#[test]
fn responses_function_call_to_chat_and_messages() {
    let raw = fixture("responses/function_call.response.json");
    let c = answer(
        ClientApi::ChatCompletions,
        UpstreamApi::Responses,
        "openai/gpt-4.1",
        raw.clone(),
    )
    .expect("chat");
    assert_eq!(c, json(&fixture("responses/function_call.chat.json")));
    let m = answer(
        ClientApi::Messages,
        UpstreamApi::Responses,
        "openai/gpt-4.1",
        raw,
    )
    .expect("messages");
    assert_eq!(m, json(&fixture("responses/function_call.messages.json")));
}

#[test]
fn namespaced_calls_get_their_namespace_back() {
    let body = br#"{"model":"m","input":"hi","tools":[{"type":"namespace","name":"crm","description":"CRM","tools":[{"type":"function","name":"lookup","parameters":{"type":"object"}}]}]}"#;
    let req =
        ApiRequest::inspect(ClientApi::Responses, Bytes::copy_from_slice(body)).expect("valid");
    let up = json(
        &req.upstream_body(UpstreamApi::ChatCompletions, &Target::new("gpt-4o"))
            .expect("chat"),
    );
    assert_eq!(up["tools"][0]["function"]["name"], "crm__lookup");
    let raw = Bytes::from_static(br#"{"id":"c1","choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"crm__lookup","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#);
    let out = json(
        &req.translation(UpstreamApi::ChatCompletions, "openai/gpt-4o")
            .success_body(raw)
            .expect("ok"),
    );
    assert_eq!(out["output"][0]["namespace"], "crm");
    assert_eq!(out["output"][0]["name"], "lookup");
    assert_eq!(out["output"][0]["call_id"], "call_9");
}

#[test]
fn passthrough_bodies_are_unchanged_and_must_be_json() {
    for (api, upstream) in [
        (ClientApi::ChatCompletions, UpstreamApi::ChatCompletions),
        (ClientApi::Messages, UpstreamApi::Messages),
        (ClientApi::Responses, UpstreamApi::Responses),
    ] {
        let t = client(api).translation(upstream, "p/m");
        assert!(t.is_passthrough());
        let raw = Bytes::from_static(b"{\"id\" : 1, \"odd\":[1e3]}");
        assert_eq!(t.success_body(raw.clone()).expect("json"), raw);
        assert!(t.success_body(Bytes::from_static(b"{\"cut")).is_err());
    }
    // Embeddings answers must also hold their `data` list.
    let t = client(ClientApi::Embeddings).translation(UpstreamApi::Embeddings, "p/m");
    assert!(t.is_passthrough());
    let raw = Bytes::from_static(b"{\"object\":\"list\", \"data\":[{\"embedding\":[1e-3]}]}");
    assert_eq!(t.success_body(raw.clone()).expect("embeddings"), raw);
    for bad in [&b"{\"id\" : 1}"[..], b"{\"data\":{}}", b"{\"cut"] {
        assert!(t.success_body(Bytes::copy_from_slice(bad)).is_err());
    }
}

#[test]
fn unusable_translated_answers_are_failed_attempts() {
    let cases: &[(ClientApi, UpstreamApi, &[u8])] = &[
        (ClientApi::Messages, UpstreamApi::ChatCompletions, b"<html>"),
        (ClientApi::Messages, UpstreamApi::ChatCompletions, br#"{"choices":[]}"#),
        (ClientApi::Messages, UpstreamApi::ChatCompletions, br#"{"error":{"message":"x"}}"#),
        // A tool call whose arguments are not a JSON object cannot become a tool_use block.
        (ClientApi::Messages, UpstreamApi::ChatCompletions,
         br#"{"choices":[{"message":{"tool_calls":[{"id":"c","function":{"name":"f","arguments":"[1"}}]},"finish_reason":"tool_calls"}]}"#),
        (ClientApi::Responses, UpstreamApi::Messages, br#"{"type":"error","error":{"type":"api_error","message":"x"}}"#),
        (ClientApi::ChatCompletions, UpstreamApi::Responses, br#"{"status":"failed","error":{"code":"server_error","message":"x"}}"#),
        (ClientApi::ChatCompletions, UpstreamApi::Responses, br#"{"output":"nope"}"#),
    ];
    for (api, upstream, raw) in cases {
        let got = answer(*api, *upstream, "p/m", Bytes::copy_from_slice(raw));
        assert!(
            got.is_err(),
            "{api:?} from {upstream:?}: {}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn stop_reasons_map_across_apis() {
    for (finish, stop, status) in [
        ("stop", "end_turn", "completed"),
        ("length", "max_tokens", "incomplete"),
        ("tool_calls", "tool_use", "completed"),
        ("content_filter", "refusal", "incomplete"),
    ] {
        let raw = format!(
            r#"{{"id":"c","choices":[{{"message":{{"role":"assistant","content":"x"}},"finish_reason":"{finish}"}}]}}"#
        );
        let m = answer(
            ClientApi::Messages,
            UpstreamApi::ChatCompletions,
            "p/m",
            Bytes::from(raw.clone()),
        )
        .expect("m");
        assert_eq!(m["stop_reason"], stop, "{finish}");
        let r = answer(
            ClientApi::Responses,
            UpstreamApi::ChatCompletions,
            "p/m",
            Bytes::from(raw),
        )
        .expect("r");
        assert_eq!(r["status"], status, "{finish}");
    }
}

#[test]
fn upstream_errors_reach_each_client_in_its_shape() {
    let openai = Bytes::from_static(br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded","param":null}}"#);
    let anthropic = Bytes::from_static(
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );

    let m = client(ClientApi::Messages);
    let from_openai = json(
        &m.translation(UpstreamApi::ChatCompletions, "p/m")
            .error_for_client(429, openai.clone()),
    );
    assert_eq!(from_openai["type"], "error");
    assert_eq!(from_openai["error"]["type"], "rate_limit_error");
    assert_eq!(from_openai["error"]["message"], "Rate limit reached");
    assert_eq!(from_openai["error"]["code"], "rate_limit_exceeded");
    let same = m
        .translation(UpstreamApi::Messages, "p/m")
        .error_for_client(529, anthropic.clone());
    assert_eq!(
        same, anthropic,
        "Anthropic errors reach Anthropic clients unchanged"
    );

    for api in [ClientApi::ChatCompletions, ClientApi::Responses] {
        let c = client(api);
        let from_anthropic = json(
            &c.translation(UpstreamApi::Messages, "p/m")
                .error_for_client(529, anthropic.clone()),
        );
        assert_eq!(
            from_anthropic["error"]["code"], "overloaded_error",
            "{api:?}"
        );
        let same = c
            .translation(UpstreamApi::ChatCompletions, "p/m")
            .error_for_client(429, openai.clone());
        assert_eq!(same, openai, "{api:?}");
    }
    // The retry rules read OpenAI's shape whatever the upstream.
    let rules = json(
        &m.translation(UpstreamApi::Messages, "p/m")
            .error_for_rules(529, &anthropic),
    );
    assert_eq!(rules["error"]["code"], "overloaded_error");
    assert_eq!(
        m.translation(UpstreamApi::ChatCompletions, "p/m")
            .error_for_rules(429, &openai),
        openai
    );
}

#[test]
fn gateway_errors_are_reshaped_for_anthropic_clients_with_the_attempts() {
    let exhausted = switchback_core::errors::error_body(
        "All retry attempts exhausted",
        "retry_exhausted",
        Some("retry_exhausted"),
        json!({"total_attempts": 2, "attempts": [{"attempt": 1, "model": "anthropic/c", "error_type": "http_529", "status": 529}]}),
    );
    let m = json(&errors::reshape(ClientApi::Messages, 529, &exhausted));
    assert_eq!(m["type"], "error");
    assert_eq!(m["error"]["type"], "overloaded_error");
    assert_eq!(m["error"]["message"], "All retry attempts exhausted");
    assert_eq!(m["error"]["code"], "retry_exhausted");
    assert_eq!(m["error"]["total_attempts"], 2);
    assert_eq!(m["error"]["attempts"][0]["error_type"], "http_529");
    for api in [
        ClientApi::ChatCompletions,
        ClientApi::Responses,
        ClientApi::Embeddings,
    ] {
        assert_eq!(errors::reshape(api, 529, &exhausted), exhausted, "{api:?}");
    }
    let bad = switchback_core::errors::invalid_request(
        "missing required parameter: `model`",
        Some("invalid_value"),
    );
    let r = errors::reshape_response(ClientApi::CountTokens, bad);
    let v = json(&r.body);
    assert_eq!(r.status, 400);
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["code"], "invalid_value");
    let not_found = switchback_core::errors::not_found("GET", "/nope");
    assert_eq!(
        json(&errors::reshape_response(ClientApi::Messages, not_found).body)["error"]["type"],
        "not_found_error"
    );
}

#[test]
fn embeddings_are_passthrough_only() {
    use switchback_core::apis::{embeddings, upstream_api_for};
    use switchback_core::config::Interface;
    assert_eq!(
        upstream_api_for(ClientApi::Embeddings, Interface::OpenAi, false),
        Some(UpstreamApi::Embeddings)
    );
    assert_eq!(
        upstream_api_for(ClientApi::Embeddings, Interface::AzureOpenAi, false),
        Some(UpstreamApi::Embeddings)
    );
    assert_eq!(
        upstream_api_for(ClientApi::Embeddings, Interface::Anthropic, false),
        None
    );
    assert_eq!(
        upstream_api_for(ClientApi::Embeddings, Interface::Mock, false),
        None
    );
    let r = embeddings::not_served("anthropic/claude");
    assert_eq!(r.status, 400);
    assert_eq!(json(&r.body)["error"]["code"], "embeddings_not_supported");
    assert!(embeddings::is_well_formed(
        br#"{"object":"list","data":[{"embedding":[0.1]}]}"#
    ));
    assert!(!embeddings::is_well_formed(br#"{"object":"list"}"#));
    let req = client(ClientApi::Embeddings);
    assert!(req
        .upstream_body(UpstreamApi::ChatCompletions, &Target::new("x"))
        .is_err());
    let out = req
        .upstream_body(
            UpstreamApi::Embeddings,
            &Target::new("text-embedding-3-small"),
        )
        .expect("passthrough");
    assert_eq!(
        &out[..],
        br#"{"model":"text-embedding-3-small","input":"hi"}"#
    );
}

#[test]
fn upstream_api_choice_per_client() {
    use switchback_core::apis::upstream_api_for;
    use switchback_core::config::Interface::*;
    let cases = [
        (
            ClientApi::ChatCompletions,
            OpenAi,
            true,
            Some(UpstreamApi::ChatCompletions),
        ),
        (
            ClientApi::ChatCompletions,
            Anthropic,
            false,
            Some(UpstreamApi::Messages),
        ),
        (
            ClientApi::Messages,
            OpenAi,
            true,
            Some(UpstreamApi::ChatCompletions),
        ),
        (
            ClientApi::Messages,
            Anthropic,
            false,
            Some(UpstreamApi::Messages),
        ),
        (
            ClientApi::Messages,
            Mock,
            false,
            Some(UpstreamApi::ChatCompletions),
        ),
        (
            ClientApi::Responses,
            OpenAi,
            true,
            Some(UpstreamApi::Responses),
        ),
        (
            ClientApi::Responses,
            OpenAi,
            false,
            Some(UpstreamApi::ChatCompletions),
        ),
        (
            ClientApi::Responses,
            AzureOpenAi,
            true,
            Some(UpstreamApi::ChatCompletions),
        ),
        (
            ClientApi::Responses,
            Anthropic,
            true,
            Some(UpstreamApi::Messages),
        ),
        (
            ClientApi::CountTokens,
            Anthropic,
            false,
            Some(UpstreamApi::CountTokens),
        ),
        (ClientApi::CountTokens, OpenAi, false, None),
    ];
    for (client, interface, responses, want) in cases {
        assert_eq!(
            upstream_api_for(client, interface, responses),
            want,
            "{client:?} {interface:?} {responses}"
        );
    }
}

#[test]
fn answers_round_trip_through_every_other_api() {
    use switchback_core::apis::model::{Part, Response};
    use switchback_core::apis::responses::ToolNames;
    use switchback_core::apis::{chat, messages, responses};

    fn decode(api: ClientApi, body: &[u8]) -> Response {
        match api {
            ClientApi::Messages => messages::decode_response(body),
            ClientApi::Responses => responses::decode_response(body),
            _ => chat::decode_response(body),
        }
        .expect("decodes")
    }
    fn encode(api: ClientApi, r: &Response) -> Bytes {
        match api {
            ClientApi::Messages => messages::encode_response(r, "p/m").expect("encodes"),
            ClientApi::Responses => responses::encode_response(r, "p/m", &ToolNames::default()),
            _ => chat::encode_response(r, "p/m"),
        }
    }
    /// What every API carries: text, refusals and tool calls (with arguments as JSON values),
    /// the stop reason and the usage.
    fn portable(r: &Response) -> Value {
        let parts: Vec<Value> = r
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text, .. } => Some(json!({"text": text})),
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                } => Some(json!({
                    "call": id, "name": name,
                    "args": serde_json::from_str::<Value>(arguments).unwrap_or(json!({})),
                })),
                _ => None,
            })
            .collect();
        // Responses always reports reasoning tokens; no report and 0 mean the same.
        let u = &r.usage;
        let usage = [
            u.input,
            u.cache_read,
            u.cache_write,
            u.output,
            u.reasoning.unwrap_or(0),
        ];
        json!({"parts": parts, "stop": format!("{:?}", r.stop), "usage": usage})
    }
    let apis = [
        ClientApi::ChatCompletions,
        ClientApi::Messages,
        ClientApi::Responses,
    ];
    let originals = [
        (
            ClientApi::ChatCompletions,
            fixture("chat/tool_call.response.json"),
        ),
        (
            ClientApi::Messages,
            Bytes::from(
                std::fs::read(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/anthropic/response/tool_use.anthropic.json"
                ))
                .expect("fixture"),
            ),
        ),
        (
            ClientApi::Responses,
            fixture("responses/function_call.response.json"),
        ),
    ];
    for (home, body) in originals {
        let original = decode(home, &body);
        for via in apis {
            let there = encode(via, &original);
            let back = decode(home, &encode(home, &decode(via, &there)));
            let mut want = portable(&original);
            if via == ClientApi::ChatCompletions || home == ClientApi::ChatCompletions {
                // Chat joins text parts into one content string.
                let text: String = original
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Text { text, .. } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                let mut parts: Vec<Value> = want["parts"]
                    .as_array()
                    .expect("parts")
                    .iter()
                    .filter(|p| p.get("text").is_none())
                    .cloned()
                    .collect();
                if !text.is_empty() {
                    parts.insert(0, json!({"text": text}));
                }
                want["parts"] = Value::Array(parts);
            }
            assert_eq!(portable(&back), want, "{home:?} via {via:?}");
        }
    }
}
