//! Request translation through the facade: what each client API's documented (and
//! observed) requests become for each upstream API.

use bytes::Bytes;
use serde_json::{json, Value};
use switchback_core::apis::{ApiRequest, ClientApi, Target, TranslateError, UpstreamApi};

fn fixture(path: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/apis/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

fn request(api: ClientApi, body: &[u8]) -> ApiRequest {
    ApiRequest::inspect(api, Bytes::copy_from_slice(body)).expect("a valid client request")
}

fn translate(
    api: ClientApi,
    body: &[u8],
    to: UpstreamApi,
    model: &str,
) -> Result<Value, TranslateError> {
    request(api, body)
        .upstream_body(to, &Target::new(model))
        .map(|b| json(&b))
}

#[test]
fn claude_code_request_to_chat_follows_the_documented_rules() {
    let got = translate(
        ClientApi::Messages,
        &fixture("messages/claude_code.request.json"),
        UpstreamApi::ChatCompletions,
        "gpt-4o",
    )
    .expect("translates");
    assert_eq!(got, json(&fixture("messages/claude_code.chat.json")));
}

#[test]
fn codex_request_to_chat_flattens_namespaces_and_drops_hosted_tools() {
    let got = translate(
        ClientApi::Responses,
        &fixture("responses/codex.request.json"),
        UpstreamApi::ChatCompletions,
        "gpt-4o",
    )
    .expect("translates");
    assert_eq!(got, json(&fixture("responses/codex.chat.json")));
}

#[test]
fn codex_request_to_messages() {
    let got = translate(
        ClientApi::Responses,
        &fixture("responses/codex.request.json"),
        UpstreamApi::Messages,
        "claude-sonnet-4-5",
    )
    .expect("translates");
    assert_eq!(got, json(&fixture("responses/codex.messages.json")));
}

#[test]
fn same_api_targets_get_the_client_bytes_with_only_model_replaced() {
    for (api, file, upstream) in [
        (
            ClientApi::Messages,
            "messages/claude_code.request.json",
            UpstreamApi::Messages,
        ),
        (
            ClientApi::Responses,
            "responses/codex.request.json",
            UpstreamApi::Responses,
        ),
    ] {
        let body = fixture(file);
        let req = request(api, &body);
        let out = req
            .upstream_body(upstream, &Target::new("other-model"))
            .expect("passes through");
        let original = String::from_utf8(body.clone()).expect("utf-8");
        let model = json(&body)["model"].as_str().expect("model").to_owned();
        let expected = original.replacen(&format!("\"{model}\""), "\"other-model\"", 1);
        assert_eq!(String::from_utf8_lossy(&out), expected, "{file}");
    }
    let chat =
        br#"{"model":"openai/gpt-4o", "messages":[{"role":"user","content":"hi"}],"seed":1e3}"#;
    let out = request(ClientApi::ChatCompletions, chat)
        .upstream_body(UpstreamApi::ChatCompletions, &Target::new("gpt-4o"))
        .expect("passes through");
    assert_eq!(
        &out[..],
        br#"{"model":"gpt-4o", "messages":[{"role":"user","content":"hi"}],"seed":1e3}"#
    );
}

#[test]
fn anthropic_documented_basic_request_to_chat_and_responses() {
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello, Claude"}]}"#;
    let chat = translate(
        ClientApi::Messages,
        body,
        UpstreamApi::ChatCompletions,
        "gpt-4o",
    )
    .expect("chat");
    assert_eq!(
        chat,
        json!({"model":"gpt-4o","max_tokens":1024,"messages":[{"role":"user","content":"Hello, Claude"}]})
    );
    let responses =
        translate(ClientApi::Messages, body, UpstreamApi::Responses, "gpt-4o").expect("responses");
    assert_eq!(
        responses,
        json!({"model":"gpt-4o","max_output_tokens":1024,"store":false,
               "input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"Hello, Claude"}]}]})
    );
}

#[test]
fn responses_string_input_with_instructions_and_json_schema() {
    let body = br#"{"model":"gpt-5","instructions":"Be brief.","input":"Tell me a joke","max_output_tokens":50,
        "text":{"format":{"type":"json_schema","name":"joke","schema":{"type":"object","properties":{"joke":{"type":"string"}}},"strict":true}}}"#;
    let chat = translate(
        ClientApi::Responses,
        body,
        UpstreamApi::ChatCompletions,
        "gpt-4o",
    )
    .expect("chat");
    assert_eq!(
        chat,
        json!({"model":"gpt-4o","max_tokens":50,
               "messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Tell me a joke"}],
               "response_format":{"type":"json_schema","json_schema":{"name":"joke","strict":true,"schema":{"type":"object","properties":{"joke":{"type":"string"}}}}}})
    );
    let messages =
        translate(ClientApi::Responses, body, UpstreamApi::Messages, "claude").expect("messages");
    assert_eq!(messages["system"], "Be brief.");
    assert_eq!(messages["max_tokens"], 50);
    assert_eq!(
        messages["output_config"],
        json!({"format":{"type":"json_schema","schema":{"type":"object","properties":{"joke":{"type":"string"}}}}})
    );
}

#[test]
fn stateful_responses_fields_are_400s_unless_passed_through() {
    for field in [
        r#""previous_response_id":"resp_1""#,
        r#""conversation":"conv_1""#,
        r#""background":true"#,
        r#""prompt":{"id":"pmpt_1"}"#,
    ] {
        let body = format!(r#"{{"model":"m","input":"hi",{field}}}"#);
        for to in [UpstreamApi::ChatCompletions, UpstreamApi::Messages] {
            let err = translate(ClientApi::Responses, body.as_bytes(), to, "x").expect_err(field);
            assert!(
                matches!(err, TranslateError::Unsupported(_)),
                "{field}: {err:?}"
            );
        }
        let through = request(ClientApi::Responses, body.as_bytes())
            .upstream_body(UpstreamApi::Responses, &Target::new("x"));
        assert!(
            through.is_ok(),
            "{field} passes through to a Responses target"
        );
    }
    let err = translate(
        ClientApi::Responses,
        br#"{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}"#,
        UpstreamApi::ChatCompletions,
        "x",
    )
    .expect_err("item_reference");
    assert!(err.to_string().contains("item_reference"), "{err}");
}

#[test]
fn translation_errors_name_the_target_provider() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":2}"#;
    let err =
        translate(ClientApi::ChatCompletions, body, UpstreamApi::Messages, "c").expect_err("n=2");
    assert!(err.to_string().contains("(Anthropic)"), "{err}");
    let err = translate(
        ClientApi::ChatCompletions,
        body,
        UpstreamApi::Responses,
        "c",
    )
    .expect_err("n=2");
    assert!(err.to_string().contains("(OpenAI Responses)"), "{err}");
}

#[test]
fn messages_fields_without_an_openai_equivalent() {
    // top_k, thinking, service_tier and server tools are dropped; stop sequences map to stop;
    // tool_choice any + disable_parallel_tool_use map to required + parallel_tool_calls.
    let body = br#"{"model":"c","max_tokens":10,"top_k":5,"service_tier":"auto","stop_sequences":["END"],
        "thinking":{"type":"enabled","budget_tokens":2048},
        "tools":[{"name":"f","input_schema":{"type":"object"}},{"type":"bash_20250124","name":"bash"}],
        "tool_choice":{"type":"any","disable_parallel_tool_use":true},
        "messages":[{"role":"user","content":"x"}]}"#;
    let chat = translate(
        ClientApi::Messages,
        body,
        UpstreamApi::ChatCompletions,
        "gpt-4o",
    )
    .expect("chat");
    assert_eq!(
        chat,
        json!({"model":"gpt-4o","max_tokens":10,"stop":["END"],"messages":[{"role":"user","content":"x"}],
               "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
               "tool_choice":"required","parallel_tool_calls":false})
    );
    let err = translate(
        ClientApi::Messages,
        br#"{"model":"c","max_tokens":0,"messages":[{"role":"user","content":"x"}]}"#,
        UpstreamApi::ChatCompletions,
        "gpt-4o",
    )
    .expect_err("max_tokens 0");
    assert!(matches!(err, TranslateError::Unsupported(_)));
    let err = translate(
        ClientApi::Messages,
        br#"{"model":"c","max_tokens":5,"messages":[{"role":"user","content":[{"type":"hologram"}]}]}"#,
        UpstreamApi::ChatCompletions,
        "gpt-4o",
    )
    .expect_err("unknown block");
    assert!(err.to_string().contains("hologram"), "{err}");
}

#[test]
fn output_limits_follow_the_target() {
    use switchback_core::apis::MaxTokensField;
    let body = br#"{"model":"c","max_tokens":64000,"messages":[{"role":"user","content":"x"}]}"#;
    let req = request(ClientApi::Messages, body);
    let target = Target {
        max_output_tokens: Some(16384),
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        ..Target::new("gpt-5")
    };
    let out = json(
        &req.upstream_body(UpstreamApi::ChatCompletions, &target)
            .expect("chat"),
    );
    assert_eq!(out["max_completion_tokens"], 16384);
    assert!(out.get("max_tokens").is_none());
}

#[test]
fn responses_reasoning_is_never_sent_to_another_provider() {
    let body = fixture("responses/codex.request.json");
    for to in [UpstreamApi::ChatCompletions, UpstreamApi::Messages] {
        let out = translate(ClientApi::Responses, &body, to, "x").expect("translates");
        let text = out.to_string();
        assert!(!text.contains("gAAAAABo-opaque"), "{to:?}: {text}");
        assert!(!text.contains("Run cargo test."), "{to:?}: {text}");
    }
}

#[test]
fn anthropic_thinking_is_never_sent_to_openai() {
    let body = fixture("messages/claude_code.request.json");
    for to in [UpstreamApi::ChatCompletions, UpstreamApi::Responses] {
        let out = translate(ClientApi::Messages, &body, to, "x").expect("translates");
        assert!(!out.to_string().contains("EqQBCgIYAhIM"), "{to:?}");
    }
}

#[test]
fn chat_request_round_trips_through_messages() {
    // Chat → Messages → (decoded as a Messages client) → Chat keeps the conversation.
    let chat = br#"{"model":"m","max_tokens":300,"messages":[
        {"role":"system","content":"Use the tools."},
        {"role":"user","content":"Weather in Paris?"},
        {"role":"assistant","content":"Checking.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"18C"}],
        "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}"#;
    let messages = request(ClientApi::ChatCompletions, chat)
        .upstream_body(UpstreamApi::Messages, &Target::new("claude"))
        .expect("to messages");
    let back = request(ClientApi::Messages, &messages)
        .upstream_body(UpstreamApi::ChatCompletions, &Target::new("m"))
        .expect("back to chat");
    let mut original = json(chat);
    original["model"] = json!("m");
    assert_eq!(json(&back), original);
}

#[test]
fn bodies_each_api_rejects_before_any_translation() {
    use switchback_core::request_body::RequestBodyError;
    let cases: &[(ClientApi, &[u8])] = &[
        (ClientApi::Messages, br#"{"model":"m"}"#),
        (ClientApi::Embeddings, br#"{"model":"m"}"#),
        (ClientApi::Embeddings, br#"{"model":"m","input":3}"#),
        (ClientApi::Responses, br#"{"model":"m","input":{}}"#),
        (ClientApi::Responses, br#"{"input":"x"}"#),
    ];
    for (api, body) in cases {
        let err = ApiRequest::inspect(*api, Bytes::copy_from_slice(body)).expect_err("rejected");
        assert!(
            matches!(
                err,
                RequestBodyError::MissingMessages
                    | RequestBodyError::MissingField(_)
                    | RequestBodyError::WrongType { .. }
                    | RequestBodyError::MissingModel
            ),
            "{api:?} {err:?}"
        );
    }
    assert!(ApiRequest::inspect(
        ClientApi::Responses,
        Bytes::from_static(br#"{"model":"m"}"#)
    )
    .is_ok());
}

#[test]
fn mistral_targets_get_nine_character_tool_call_ids() {
    use switchback_core::apis::ToolCallIds;
    let body = fixture("messages/claude_code.request.json");
    let target = Target {
        tool_call_ids: ToolCallIds::NineAlphanumeric,
        ..Target::new("mistral-large-latest")
    };
    let out = json(
        &request(ClientApi::Messages, &body)
            .upstream_body(UpstreamApi::ChatCompletions, &target)
            .expect("translates"),
    );
    let msgs = out["messages"].as_array().expect("messages");
    let calls: Vec<&str> = msgs
        .iter()
        .flat_map(|m| m["tool_calls"].as_array().into_iter().flatten())
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    let results: Vec<&str> = msgs
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["tool_call_id"].as_str().expect("id"))
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls, results, "each result keeps its call's new id");
    for id in &calls {
        assert!(
            id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{id}"
        );
    }
    assert_ne!(calls[0], calls[1]);
    assert_eq!(
        switchback_core::apis::chat::tool_call_id("abcDEF123", ToolCallIds::NineAlphanumeric),
        "abcDEF123"
    );
    assert_eq!(
        switchback_core::apis::chat::tool_call_id("toolu_01A", ToolCallIds::AsGiven),
        "toolu_01A"
    );
}

#[test]
fn messages_images_and_documents_to_chat() {
    // An image by URL stays a URL, inline data becomes a `data:` URL; a base64 PDF becomes a
    // `file` part (its `title` the `filename`), a text document text.
    let got = translate(
        ClientApi::Messages,
        &fixture("messages/media.request.json"),
        UpstreamApi::ChatCompletions,
        "gpt-4o",
    )
    .expect("translates");
    assert_eq!(got, json(&fixture("messages/media.chat.json")));
}

#[test]
fn responses_images_and_files_to_chat_and_messages() {
    let body = fixture("responses/media.request.json");
    let chat = translate(
        ClientApi::Responses,
        &body,
        UpstreamApi::ChatCompletions,
        "gpt-4o",
    )
    .expect("to chat");
    assert_eq!(chat, json(&fixture("responses/media.chat.json")));
    let messages = translate(
        ClientApi::Responses,
        &body,
        UpstreamApi::Messages,
        "claude-sonnet-4-5",
    )
    .expect("to messages");
    assert_eq!(messages, json(&fixture("responses/media.messages.json")));
}

#[test]
fn a_responses_file_by_url_is_a_url_document_for_anthropic_only() {
    let body = br#"{"model":"m","input":[{"role":"user","content":[
        {"type":"input_file","file_url":"https://example.com/report.pdf"}]}]}"#;
    let messages = translate(ClientApi::Responses, body, UpstreamApi::Messages, "claude")
        .expect("Anthropic fetches URL documents");
    assert_eq!(
        messages["messages"][0]["content"][0],
        json!({"type":"document","source":{"type":"url","url":"https://example.com/report.pdf"}})
    );
    let err = translate(
        ClientApi::Responses,
        body,
        UpstreamApi::ChatCompletions,
        "gpt-4o",
    )
    .expect_err("Chat cannot fetch a document");
    assert!(matches!(err, TranslateError::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("URL"), "{err}");
}

/// Sources the target cannot take, each rejected (no upstream call; the 400 in the
/// client's shape is checked end to end in `doors_errors`) with a message naming the rule.
#[test]
fn media_sources_a_target_cannot_take_are_rejected() {
    let messages_block = |block: &str| {
        format!(
            r#"{{"model":"c","max_tokens":5,"messages":[{{"role":"user","content":[{block}]}}]}}"#
        )
    };
    let responses_part =
        |part: &str| format!(r#"{{"model":"m","input":[{{"role":"user","content":[{part}]}}]}}"#);
    let cases: &[(ClientApi, String, UpstreamApi, &str)] = &[
        (
            ClientApi::Messages,
            messages_block(r#"{"type":"image","source":{"type":"file","file_id":"file_1"}}"#),
            UpstreamApi::ChatCompletions,
            "file id",
        ),
        (
            ClientApi::Messages,
            messages_block(
                r#"{"type":"document","source":{"type":"url","url":"https://example.com/a.pdf"}}"#,
            ),
            UpstreamApi::ChatCompletions,
            "URL or file id",
        ),
        (
            ClientApi::Messages,
            messages_block(r#"{"type":"document","source":{"type":"file","file_id":"file_1"}}"#),
            UpstreamApi::ChatCompletions,
            "URL or file id",
        ),
        (
            ClientApi::Responses,
            responses_part(r#"{"type":"input_image","file_id":"file_1"}"#),
            UpstreamApi::ChatCompletions,
            "file id",
        ),
        (
            ClientApi::Responses,
            responses_part(r#"{"type":"input_image","file_id":"file_1"}"#),
            UpstreamApi::Messages,
            "file id",
        ),
        (
            ClientApi::Responses,
            responses_part(r#"{"type":"input_file","file_id":"file_1"}"#),
            UpstreamApi::ChatCompletions,
            "URL or file id",
        ),
        (
            ClientApi::Responses,
            responses_part(r#"{"type":"input_file","file_id":"file_1"}"#),
            UpstreamApi::Messages,
            "file id",
        ),
        (
            ClientApi::Responses,
            responses_part(
                r#"{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}"#,
            ),
            UpstreamApi::ChatCompletions,
            "audio",
        ),
    ];
    for (api, body, to, rule) in cases {
        let err = translate(*api, body.as_bytes(), *to, "x").expect_err(body);
        assert!(
            matches!(err, TranslateError::Unsupported(_)),
            "{api:?} → {to:?} {body}: {err:?}"
        );
        assert!(err.to_string().contains(rule), "{body}: {err}");
        assert_eq!(err.code(), "unsupported_parameter");
    }
}

#[test]
fn temperature_above_anthropics_range_is_rejected_naming_it() {
    for (api, body) in [
        (
            ClientApi::Responses,
            r#"{"model":"m","input":"hi","temperature":1.5}"#,
        ),
        (
            ClientApi::ChatCompletions,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":2}"#,
        ),
    ] {
        let err = translate(api, body.as_bytes(), UpstreamApi::Messages, "claude")
            .expect_err("outside 0..=1");
        assert!(matches!(err, TranslateError::Unsupported(_)), "{err:?}");
        assert!(err.to_string().contains("`temperature`"), "{err}");
        let chat = translate(api, body.as_bytes(), UpstreamApi::ChatCompletions, "gpt-4o");
        assert!(chat.is_ok(), "OpenAI's range is 0..=2: {chat:?}");
    }
    let ok = translate(
        ClientApi::Responses,
        br#"{"model":"m","input":"hi","temperature":0.4}"#,
        UpstreamApi::Messages,
        "claude",
    )
    .expect("in range");
    assert_eq!(ok["temperature"], 0.4);
}

#[test]
fn a_prefill_reaches_a_chat_target_only_in_a_form_it_continues() {
    use switchback_core::config::Continuation;
    let body = br#"{"model":"c","max_tokens":20,"messages":[
        {"role":"user","content":"List three colours as JSON."},
        {"role":"assistant","content":"{\"colours\": ["}]}"#;
    let req = request(ClientApi::Messages, body);
    let to = |style| {
        let target = Target {
            continuation: style,
            ..Target::new("m")
        };
        req.upstream_body(UpstreamApi::ChatCompletions, &target)
            .map(|b| json(&b))
    };
    for style in [
        Continuation::None,
        Continuation::DeepseekPrefix,
        Continuation::Native,
    ] {
        let err = to(style).expect_err("no way to continue it on /chat/completions");
        assert!(matches!(err, TranslateError::Unsupported(_)), "{err:?}");
        assert!(err.to_string().contains("prefill"), "{err}");
    }
    let last = json!({"role":"assistant","content":"{\"colours\": ["});
    let kept = to(Continuation::AssistantPrefill).expect("kept");
    assert_eq!(kept["messages"][1], last);
    assert!(kept.get("continue_final_message").is_none());
    let mistral = to(Continuation::MistralPrefix).expect("prefix");
    assert_eq!(
        mistral["messages"][1],
        json!({"role":"assistant","content":"{\"colours\": [","prefix":true})
    );
    let vllm = to(Continuation::VllmContinueFinalMessage).expect("vllm");
    assert_eq!(vllm["messages"][1], last);
    assert_eq!(vllm["continue_final_message"], true);
    assert_eq!(vllm["add_generation_prompt"], false);
    // Anthropic continues a final assistant turn natively, and a conversation that ends
    // with the user (or a tool result) is no prefill.
    let messages = request(ClientApi::Messages, body)
        .upstream_body(UpstreamApi::Messages, &Target::new("claude"))
        .expect("passes through");
    assert!(String::from_utf8_lossy(&messages).contains("colours"));
    let ends_with_user =
        br#"{"model":"c","max_tokens":20,"messages":[{"role":"user","content":"x"}]}"#;
    assert!(translate(
        ClientApi::Messages,
        ends_with_user,
        UpstreamApi::ChatCompletions,
        "m"
    )
    .is_ok());
}
