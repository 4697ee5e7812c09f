//! Cross-protocol failover

use serde_json::{json, Value};
use switchback_tests::client::{post_chat, Streaming};
use switchback_tests::fixtures::{
    error_body, stream_content, stream_events, success_body, STREAM_TEXT, SUCCESS_CONTENT,
};
use switchback_tests::gateway::Runtime;
use switchback_tests::mock_upstream::{MockUpstream, Reply};
use switchback_tests::table::{assert_header, assert_status, error_of, ms, HEAD};

use crate::anthropic::{
    CLAUDE, INVALID_REQUEST, MESSAGE_TEXT, MESSAGE_TEXT_CONTENT, OPENAI, OVERLOADED,
    STREAM_ERROR_MID, STREAM_TOOL_CALL,
};
use crate::harness::{
    anthropic_sse, assert_anthropic_request, entry, failover_pair, gateway, stream_chunks,
};

/// OpenAI answers 429; the Anthropic fallback's Messages answer reaches the client as a
/// `chat.completion`, and the fallback got a Messages request.
pub(crate) fn openai_429_fails_over_to_anthropic<R: Runtime>() {
    let openai = MockUpstream::start(vec![Reply::json(429, error_body(429, "Rate limited"))]);
    let claude = MockUpstream::start(vec![Reply::json(200, MESSAGE_TEXT)]);
    let gw = gateway::<R>(&failover_pair(OPENAI, CLAUDE), &[&openai, &claude]);
    let r = post_chat(
        gw.addr,
        r#"{"model": "openai/gpt-4o", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "temperature": 0.2}"#,
    );
    assert_status(&r, 200);
    assert_header(&r, "x-switchback-model", CLAUDE);
    assert_header(&r, "x-switchback-attempts", "2");
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    let v = r.json();
    assert_eq!(v["object"], "chat.completion", "{v}");
    assert_eq!(v["id"], "chatcmpl-msg_013Zva2CMHLNnXjNJJKqJ2EF", "{v}");
    assert_eq!(v["model"], CLAUDE, "{v}");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant", "{v}");
    assert_eq!(
        v["choices"][0]["message"]["content"], MESSAGE_TEXT_CONTENT,
        "{v}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    assert_eq!(v["usage"]["prompt_tokens"], 2095, "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 503, "{v}");
    assert_eq!(v["usage"]["total_tokens"], 2598, "{v}");

    assert_eq!(openai.calls(), 1);
    let q = &openai.requests()[0];
    assert_eq!(q.path, "/v1/chat/completions");
    assert_eq!(q.header("authorization"), Some("Bearer key-openai"));
    assert_eq!(claude.calls(), 1);
    let sent = assert_anthropic_request(&claude.requests()[0]);
    assert_eq!(sent["system"], "Be brief.", "{sent}");
    let messages = sent["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{sent}");
    assert_eq!(messages[0]["role"], "user", "{sent}");
    assert!(
        !sent.to_string().contains("\"role\":\"system\""),
        "the system message stays in the messages: {sent}"
    );
    assert_eq!(sent["temperature"], 0.2, "{sent}");
}

/// The same, streaming: Anthropic's SSE (with `ping`, thinking, text and two tool calls
/// whose arguments arrive in fragments) reaches the client as `chat.completion.chunk`s,
/// the tool calls as `delta.tool_calls`, a usage chunk before `[DONE]`.
pub(crate) fn openai_429_fails_over_to_anthropic_streaming_with_tool_calls<R: Runtime>() {
    let openai = MockUpstream::start(vec![Reply::json(429, error_body(429, "Rate limited"))]);
    let claude = MockUpstream::start(vec![anthropic_sse(STREAM_TOOL_CALL)]);
    let gw = gateway::<R>(&failover_pair(OPENAI, CLAUDE), &[&openai, &claude]);
    let body = json!({
        "model": OPENAI,
        "messages": [{"role": "user", "content": "Weather in San Francisco?"}],
        "stream": true,
        "stream_options": {"include_usage": true},
        "tools": [{
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": {
                    "type": "object",
                    "properties": {"location": {"type": "string"}},
                    "required": ["location"],
                },
            },
        }, {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object"}},
        }],
    })
    .to_string();
    let r = Streaming::chat(gw.addr, &body).finish();
    assert_header(&r, "x-switchback-model", CLAUDE);
    let chunks = stream_chunks(&r);
    let all = format!("{chunks:#?}");
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
        assert_eq!(c["id"], "chatcmpl-msg_014p7gG3wDgGV9EUtLvnow3U", "{c}");
        assert_eq!(c["model"], CLAUDE, "{c}");
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["role"], "assistant",
        "{all}"
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Checking the weather.", "{all}");
    assert!(
        !all.contains("I should call the tool") && !all.contains("EqQBCgIYAhIM"),
        "thinking leaked: {all}"
    );

    // Tool calls: OpenAI indexes 0 and 1, the id and name first, then the arguments.
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    let of = |index: u64| calls.iter().filter(move |t| t["index"] == index);
    let first = |index: u64, key: &str| {
        of(index)
            .find_map(|t| t["function"][key].as_str().or(t[key].as_str()))
            .map(str::to_owned)
    };
    assert_eq!(
        of(0).find_map(|t| t["id"].as_str()),
        Some("toolu_01T1x1fJ34qAmk2tNTrN7Up6"),
        "{all}"
    );
    assert_eq!(first(0, "name").as_deref(), Some("get_weather"), "{all}");
    assert_eq!(first(1, "name").as_deref(), Some("get_time"), "{all}");
    assert!(
        of(0).all(|t| t["type"].is_null() || t["type"] == "function"),
        "{all}"
    );
    let args = |index: u64| -> String {
        of(index)
            .filter_map(|t| t["function"]["arguments"].as_str())
            .collect()
    };
    let weather: Value = serde_json::from_str(&args(0))
        .unwrap_or_else(|e| panic!("arguments {:?} are not JSON ({e}): {all}", args(0)));
    assert_eq!(weather, json!({"location": "San Francisco, CA"}));
    let time: Value = serde_json::from_str(&args(1))
        .unwrap_or_else(|e| panic!("arguments {:?} are not JSON ({e}): {all}", args(1)));
    assert_eq!(time, json!({}));
    assert!(
        of(0)
            .filter(|t| t["function"]["arguments"].is_string())
            .count()
            >= 2,
        "the argument fragments were not streamed: {all}"
    );

    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("tool_calls")], "{all}");

    // include_usage: the last chunk has no choices and the totals.
    let last = chunks.last().expect("chunks");
    assert_eq!(last["choices"], json!([]), "{all}");
    assert_eq!(last["usage"]["prompt_tokens"], 572, "{last}");
    assert_eq!(last["usage"]["completion_tokens"], 89, "{last}");
    assert_eq!(last["usage"]["total_tokens"], 661, "{last}");
    assert_eq!(
        last["usage"]["prompt_tokens_details"]["cached_tokens"], 100,
        "{last}"
    );

    let sent = assert_anthropic_request(&claude.requests()[0]);
    assert_eq!(sent["stream"], true, "{sent}");
    assert!(sent.get("stream_options").is_none(), "{sent}");
    assert_eq!(sent["tools"][0]["name"], "get_weather", "{sent}");
    assert_eq!(
        sent["tools"][0]["input_schema"]["required"],
        json!(["location"]),
        "{sent}"
    );
    assert_eq!(sent["tools"][1]["name"], "get_time", "{sent}");
    assert_eq!(openai.calls(), 1);
}

/// Anthropic answers 529 `overloaded_error` (retriable by default); the OpenAI fallback
/// gets the client's bytes with only the model replaced.
pub(crate) fn anthropic_529_fails_over_to_openai_with_the_clients_body<R: Runtime>() {
    let claude = MockUpstream::start(vec![Reply::json(529, OVERLOADED)]);
    let openai = MockUpstream::start(vec![Reply::json(200, success_body())]);
    let gw = gateway::<R>(&failover_pair(CLAUDE, OPENAI), &[&claude, &openai]);
    let body = r#"{"model":  "anthropic/claude-sonnet-4-5" , "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
  "temperature": 0.70, "x_vendor_field": {"keep": [1, 2.50, "z"]}, "seed": 7}"#;
    let r = post_chat(gw.addr, body);
    assert_status(&r, 200);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        SUCCESS_CONTENT,
        "{}",
        r.text()
    );
    assert_header(&r, "x-switchback-model", OPENAI);
    assert_header(&r, "x-switchback-attempts", "2");

    assert_eq!(claude.calls(), 1);
    assert_anthropic_request(&claude.requests()[0]);
    assert_eq!(openai.calls(), 1);
    let q = &openai.requests()[0];
    assert_eq!(q.path, "/v1/chat/completions");
    assert_eq!(q.header("authorization"), Some("Bearer key-openai"));
    assert_eq!(q.header("x-api-key"), None);
    assert_eq!(q.header("anthropic-version"), None);
    assert_eq!(
        q.text(),
        body.replace("\"anthropic/claude-sonnet-4-5\"", "\"gpt-4o\""),
        "the OpenAI upstream must get the client's bytes with only the model replaced"
    );
}

/// An Anthropic-only config: Anthropic's 400 reaches the client as a 400 in OpenAI's
/// error shape, without a retry.
pub(crate) fn anthropic_400_reaches_the_client_in_openai_shape<R: Runtime>() {
    let claude = MockUpstream::start(vec![Reply::json(400, INVALID_REQUEST)]);
    let yaml = format!(
        "{HEAD}{}",
        entry(CLAUDE, "http://127.0.0.1:${PRIMARY}", true, None)
    );
    let gw = gateway::<R>(&yaml, &[&claude]);
    let r = post_chat(
        gw.addr,
        r#"{"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]}"#,
    );
    assert_status(&r, 400);
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    let e = error_of(&r);
    assert_eq!(e["type"], "invalid_request_error", "{e}");
    assert_eq!(e["code"], "invalid_request_error", "{e}");
    assert_eq!(
        e["message"],
        "messages.1.content.0.image.source.base64.data: Image does not match the provided media type image/png",
        "{e}"
    );
    assert!(
        r.json().get("type").is_none(),
        "Anthropic's envelope reached the client: {}",
        r.text()
    );
    assert_eq!(claude.calls(), 1);
    assert_anthropic_request(&claude.requests()[0]);
}

/// An Anthropic stream whose `error` event (`overloaded_error`) comes before any content
/// is a failed attempt: the OpenAI fallback's stream reaches the client, and nothing of
/// the failed one does.
pub(crate) fn anthropic_stream_error_before_content_fails_over_to_openai<R: Runtime>() {
    let failing = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_x\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n\
event: ping\ndata: {\"type\": \"ping\"}\n\n\
event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";
    let claude = MockUpstream::start(vec![anthropic_sse(failing)]);
    let openai = MockUpstream::start(vec![Reply::sse(&stream_events(), ms(5))]);
    let gw = gateway::<R>(&failover_pair(CLAUDE, OPENAI), &[&claude, &openai]);
    let body = r#"{"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}], "stream": true}"#;
    let r = Streaming::chat(gw.addr, body).finish();
    assert_header(&r, "x-switchback-model", OPENAI);
    let chunks = stream_chunks(&r);
    assert_eq!(stream_content(&r.sse_data()), STREAM_TEXT);
    assert!(
        !r.text().contains("verloaded") && !r.text().contains("msg_x"),
        "the failed attempt reached the client: {}",
        r.text()
    );
    let roles = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["role"] == "assistant")
        .count();
    assert_eq!(roles, 1, "{chunks:?}");
    assert_eq!(claude.calls(), 1);
    assert_eq!(
        assert_anthropic_request(&claude.requests()[0])["stream"],
        true
    );
    assert_eq!(openai.calls(), 1);
    assert_eq!(
        openai.requests()[0].text(),
        body.replace("anthropic/claude-sonnet-4-5", "gpt-4o")
    );
}

/// After content reached the client, an Anthropic `error` event ends the stream with an
/// error event in OpenAI's shape and no `[DONE]`; nothing fails over.
pub(crate) fn anthropic_stream_error_after_content_ends_the_stream_with_an_error<R: Runtime>() {
    let claude = MockUpstream::start(vec![anthropic_sse(STREAM_ERROR_MID)]);
    let openai = MockUpstream::start(vec![Reply::sse(&stream_events(), ms(5))]);
    let gw = gateway::<R>(&failover_pair(CLAUDE, OPENAI), &[&claude, &openai]);
    let r = Streaming::chat(
        gw.addr,
        r#"{"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}], "stream": true}"#,
    )
    .finish();
    assert_status(&r, 200);
    let data = r.sse_data();
    assert_eq!(stream_content(&data), "Partial", "{data:?}");
    assert!(
        !data.iter().any(|d| d == "[DONE]"),
        "a failed stream must not end with [DONE]: {data:?}"
    );
    let last: Value = data
        .last()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    assert_eq!(last["error"]["message"], "Overloaded", "{data:?}");
    assert_eq!(last["error"]["type"], "overloaded_error", "{data:?}");
    assert_eq!(openai.calls(), 0, "a committed stream failed over");
}
