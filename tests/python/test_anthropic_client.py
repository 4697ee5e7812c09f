"""The official `anthropic` Python client, pointed at a running switchback binary (spec §9).

`messages.create` non-streaming, streaming (raw events and the `messages.stream` helper)
and with tools, each through a failover: an Anthropic primary answering 529 to an OpenAI
fallback (translated both ways), and an OpenAI primary answering 429 to an Anthropic
fallback (passed through). Then `messages.count_tokens`, and the exhaustion error in
Anthropic's shape. The upstreams are `upstream_mock.py`, behind `DOORS_CONFIG`.

    SWITCHBACK_BIN=target/release/switchback python3 -m pytest tests/python
"""

import anthropic
import pytest
from upstream_mock import TEXT

# (primary, fallback that answers, the path the fallback was asked on)
FAILOVERS = [
    ("anthropic/down-a", "openai/up-o", "/v1/chat/completions"),  # 529 → OpenAI, translated
    ("openai/down-o", "anthropic/up-a", "/v1/messages"),  # 429 → Anthropic, passed through
]

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def client(base: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base, api_key="sk-ant-client", max_retries=0)


def model_id(model: str) -> str:
    return model.split("/", 1)[1]


@pytest.mark.parametrize("primary,fallback,path", FAILOVERS)
def test_messages_create_fails_over(doors, primary, fallback, path):
    base, mock = doors
    raw = client(base).messages.with_raw_response.create(
        model=primary,
        max_tokens=1024,
        system=[{"type": "text", "text": "Answer briefly.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Hello"}],
        stop_sequences=["\n\nHuman:"],
        metadata={"user_id": "user-1"},
    )
    message = raw.parse()
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.stop_reason == "end_turn"
    assert "".join(b.text for b in message.content if b.type == "text") == TEXT
    assert message.usage.output_tokens > 0
    assert raw.headers["x-switchback-model"] == fallback
    assert raw.headers["x-switchback-attempts"] == "2"
    mock.only(model_id(primary))
    sent = mock.only(model_id(fallback))
    assert sent["path"] == path
    assert sent["headers"].get("x-api-key") != "sk-ant-client", "the client's key never goes upstream"
    if path == "/v1/chat/completions":
        assert sent["body"]["messages"][0] == {"role": "system", "content": "Answer briefly."}
        assert sent["body"]["stop"] == ["\n\nHuman:"]
        assert sent["headers"]["authorization"] == "Bearer key-openai"
    else:
        assert sent["body"]["system"][0]["cache_control"] == {"type": "ephemeral"}
        assert sent["headers"]["x-api-key"] == "key-anthropic"
        assert sent["headers"]["anthropic-version"]


@pytest.mark.parametrize("primary,fallback,path", FAILOVERS)
def test_messages_stream_fails_over(doors, primary, fallback, path):
    base, mock = doors
    stream = client(base).messages.create(
        model=primary, max_tokens=1024, messages=[{"role": "user", "content": "Hello"}], stream=True
    )
    kinds, text = [], []
    for event in stream:
        kinds.append(event.type)
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            text.append(event.delta.text)
    assert kinds[0] == "message_start", kinds
    assert kinds[-1] == "message_stop", kinds
    assert "content_block_start" in kinds and "message_delta" in kinds, kinds
    assert "".join(text) == TEXT
    mock.only(model_id(primary))
    assert mock.only(model_id(fallback))["path"] == path


@pytest.mark.parametrize("primary,fallback,path", FAILOVERS)
def test_messages_stream_helper_fails_over(doors, primary, fallback, path):
    base, mock = doors
    with client(base).messages.stream(
        model=primary, max_tokens=1024, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == TEXT
    assert final.stop_reason == "end_turn"
    assert "".join(b.text for b in final.content if b.type == "text") == TEXT
    mock.only(model_id(primary))
    assert mock.only(model_id(fallback))["path"] == path


@pytest.mark.parametrize("primary,fallback,path", FAILOVERS)
@pytest.mark.parametrize("streaming", [False, True])
def test_tool_use_fails_over(doors, primary, fallback, path, streaming):
    base, mock = doors
    args = dict(
        model=primary,
        max_tokens=1024,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "auto"},
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    )
    if streaming:
        with client(base).messages.stream(**args) as stream:
            message = stream.get_final_message()
    else:
        message = client(base).messages.create(**args)
    assert message.stop_reason == "tool_use"
    calls = [b for b in message.content if b.type == "tool_use"]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert calls[0].input == {"city": "Paris"}
    mock.only(model_id(primary))
    sent = mock.only(model_id(fallback))
    assert sent["path"] == path
    if path == "/v1/chat/completions":
        assert sent["body"]["tools"][0]["function"]["name"] == "get_weather"
        assert sent["body"]["tools"][0]["function"]["parameters"] == WEATHER_TOOL["input_schema"]
    else:
        assert sent["body"]["tools"][0] == WEATHER_TOOL

    # The tool's result goes back the same way: a tool_result block in the next turn.
    follow = client(base).messages.create(
        model=primary,
        max_tokens=1024,
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": calls[0].id, "name": "get_weather",
                                               "input": calls[0].input}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "Sunny, 21 C"}]},
        ],
    )
    assert "".join(b.text for b in follow.content if b.type == "text") == TEXT
    sent = mock.sent(model_id(fallback))
    assert len(sent) == 2, [r["path"] for r in sent]
    sent = sent[1]
    if path == "/v1/chat/completions":
        tool_message = [m for m in sent["body"]["messages"] if m["role"] == "tool"][0]
        assert tool_message["content"] == "Sunny, 21 C"


def test_count_tokens(doors):
    base, mock = doors
    # From Anthropic itself for an Anthropic model...
    counted = client(base).messages.count_tokens(
        model="anthropic/up-a", messages=[{"role": "user", "content": "Hello there"}]
    )
    assert counted.input_tokens == 21
    assert mock.only("up-a")["path"].startswith("/v1/messages/count_tokens")
    # ... and estimated by the gateway for any other.
    response = client(base).messages.with_raw_response.count_tokens(
        model="openai/up-o", messages=[{"role": "user", "content": "Hello there"}]
    )
    assert response.parse().input_tokens > 0
    assert response.headers["x-switchback-token-count"] == "estimated"
    assert mock.sent("up-o") == [], "estimated without an upstream call"


def test_exhaustion_is_an_anthropic_error_with_the_attempts(doors):
    base, _ = doors
    with pytest.raises(anthropic.RateLimitError) as caught:
        client(base).messages.create(
            model="anthropic/down-x", max_tokens=10, messages=[{"role": "user", "content": "Hello"}]
        )
    e = caught.value
    assert e.status_code == 429  # the last attempt's status
    assert e.body["type"] == "error"
    error = e.body["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "retry_exhausted"
    assert [a["error_type"] for a in error["attempts"]] == ["http_529", "http_429"]
    assert e.response.headers["x-should-retry"] == "false"


def test_unknown_model_is_an_anthropic_not_found_error(doors):
    base, _ = doors
    with pytest.raises(anthropic.NotFoundError) as caught:
        client(base).messages.create(model="nobody/none", max_tokens=10,
                                     messages=[{"role": "user", "content": "Hello"}])
    assert caught.value.body["error"]["type"] == "not_found_error"


def test_a_messages_stream_cut_after_commit_is_continued_natively(doors):
    base, mock = doors
    with client(base).messages.stream(
        model="anthropic/cut-a", max_tokens=256, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == TEXT
    assert final.stop_reason == "end_turn"
    assert "".join(b.text for b in final.content if b.type == "text") == TEXT
    cut, continuation = mock.sent("cut-a")
    assert cut["body"]["messages"][-1]["role"] == "user"
    assert continuation["path"] == "/v1/messages"
    assert continuation["body"]["messages"][-1] == {"role": "assistant", "content": "Hello from"}
