"""The official `openai` Python client, pointed at a running switchback binary.

Chat Completions on the built-in mock provider (answered in-process, no network): a
non-streaming and a streaming call, and a failover from a rate-limited model. Then the
other OpenAI doors behind a mock upstream (`upstream_mock.py`): `responses.create`,
streaming and not, each through a failover (a 429 or 529 primary) to an Anthropic, an
OpenAI Chat and an OpenAI Responses fallback, and `embeddings.create` through a failover.

    SWITCHBACK_BIN=target/release/switchback python3 -m pytest tests/python
"""

import json

import openai
import pytest
from conftest import RUNTIMES, serve
from upstream_mock import TEXT

CONFIG = """
version: v0.3.0
listeners:
  - type: model
    name: test
    port: {port}
model_providers:
  - model: mock/rate-limited
    default: true
    retry_policy:
      fallback_models: [mock/ok]
      default_strategy: same_provider
  - model: mock/ok
"""


@pytest.fixture(scope="module", params=RUNTIMES)
def gateway(request):
    with serve(CONFIG, request.param) as base:
        yield base


def client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="not-used", max_retries=0)


def test_non_streaming_completion(gateway):
    c = client(gateway)
    resp = c.chat.completions.with_raw_response.create(
        model="mock/ok", messages=[{"role": "user", "content": "Hello"}]
    )
    completion = resp.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens > 0
    assert resp.headers["x-switchback-model"] == "mock/ok"


def test_streaming_completion(gateway):
    c = client(gateway)
    stream = c.chat.completions.create(
        model="mock/ok",
        messages=[{"role": "user", "content": "Hello"}],
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert "mock" in text


def test_failover_is_invisible_to_the_client(gateway):
    c = client(gateway)
    resp = c.chat.completions.with_raw_response.create(
        model="mock/rate-limited", messages=[{"role": "user", "content": "Hello"}]
    )
    assert resp.parse().choices[0].message.content
    assert resp.headers["x-switchback-model"] == "mock/ok"


def test_models_list(gateway):
    ids = [m.id for m in client(gateway).models.list()]
    assert "mock/ok" in ids and "mock/rate-limited" in ids


# ---------------------------------------------------------------- Responses and Embeddings

# (primary, fallback that answers, the path the fallback was asked on)
RESPONSES_FAILOVERS = [
    ("openai/down-o", "anthropic/up-a", "/v1/messages"),  # OpenAI 429 → Anthropic
    ("anthropic/down-a", "openai/up-o", "/v1/chat/completions"),  # Anthropic 529 → OpenAI Chat
    ("openai/down-r", "respond/up-r", "/v1/responses"),  # Responses 429 → Responses
]


def doors_client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="sk-client", max_retries=0)


def model_id(model: str) -> str:
    return model.split("/", 1)[1]


@pytest.mark.parametrize("primary,fallback,path", RESPONSES_FAILOVERS)
def test_responses_create_fails_over(doors, primary, fallback, path):
    base, mock = doors
    raw = doors_client(base).responses.with_raw_response.create(
        model=primary,
        instructions="Answer briefly.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Hello"}]}],
        max_output_tokens=200,
        store=False,
    )
    response = raw.parse()
    assert response.status == "completed"
    assert response.output_text == TEXT
    assert response.usage.output_tokens > 0
    assert raw.headers["x-switchback-model"] == fallback
    assert raw.headers["x-switchback-attempts"] == "2"
    mock.only(model_id(primary))
    sent = mock.only(model_id(fallback))
    assert sent["path"] == path
    assert sent["headers"].get("authorization") != "Bearer sk-client"


@pytest.mark.parametrize("primary,fallback,path", RESPONSES_FAILOVERS)
def test_responses_stream_fails_over(doors, primary, fallback, path):
    base, mock = doors
    stream = doors_client(base).responses.create(
        model=primary, input="Hello", stream=True, store=False
    )
    kinds, deltas, final = [], [], None
    for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        if event.type == "response.completed":
            final = event.response
    assert kinds[0] == "response.created", kinds
    assert "response.output_item.added" in kinds, kinds
    assert kinds[-1] == "response.completed", kinds
    assert "response.failed" not in kinds, kinds
    assert "".join(deltas) == TEXT
    assert final.output_text == TEXT
    mock.only(model_id(primary))
    assert mock.only(model_id(fallback))["path"] == path


def test_responses_stream_helper_accumulates_the_translated_stream(doors):
    base, mock = doors
    with doors_client(base).responses.stream(model="anthropic/down-a", input="Hello") as s:
        text = "".join(e.delta for e in s if e.type == "response.output_text.delta")
        final = s.get_final_response()
    assert text == TEXT
    assert final.output_text == TEXT
    assert mock.only("up-o")["path"] == "/v1/chat/completions"


def test_embeddings_create_fails_over(doors):
    base, mock = doors
    raw = doors_client(base).embeddings.with_raw_response.create(
        model="openai/down-e", input=["first", "second"], encoding_format="float"
    )
    result = raw.parse()
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == [0.5, -0.25, 0.125]
    assert raw.headers["x-switchback-model"] == "together_ai/up-e"
    assert raw.headers["x-switchback-attempts"] == "2"
    assert mock.only("down-e")["path"] == "/v1/embeddings"
    sent = mock.only("up-e")
    assert sent["path"] == "/v1/embeddings"
    assert sent["body"]["input"] == ["first", "second"]
    assert sent["headers"]["authorization"] == "Bearer key-together"


def test_exhaustion_is_an_openai_error_with_the_attempts(doors):
    base, _ = doors
    with pytest.raises(openai.APIStatusError) as caught:
        doors_client(base).responses.create(model="openai/down-x", input="Hello")
    e = caught.value
    assert e.status_code == 529  # the last attempt's status (Anthropic's overloaded)
    assert e.response.headers["x-should-retry"] == "false"
    error = e.body if "attempts" in (e.body or {}) else e.body.get("error", e.body)
    assert error["type"] == "retry_exhausted"
    assert [a["error_type"] for a in error["attempts"]] == ["http_429", "http_529"]


# ---------------------------------------------------------------- stream recovery


def test_a_chat_stream_cut_after_commit_is_continued(doors):
    base, mock = doors
    stream = doors_client(base).chat.completions.create(
        model="openai/cut-o",
        messages=[{"role": "user", "content": "Hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    assert len({c.id for c in chunks}) == 1, "one stream, one id"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and not chunks[-1].choices
    cut, continuation = mock.sent("cut-o")
    assert cut["body"]["messages"][-1]["role"] == "user"
    assert continuation["body"]["messages"][-1] == {"role": "assistant", "content": "Hello from"}


def test_a_responses_stream_cut_after_commit_is_continued(doors):
    base, mock = doors
    with doors_client(base).responses.stream(model="openai/cut-o", input="Hello") as s:
        text = "".join(e.delta for e in s if e.type == "response.output_text.delta")
        final = s.get_final_response()
    assert text == TEXT
    assert final.status == "completed"
    assert final.output_text == TEXT
    cut, continuation = mock.sent("cut-o")
    assert cut["path"] == continuation["path"] == "/v1/chat/completions"
    assert continuation["body"]["messages"][-1] == {"role": "assistant", "content": "Hello from"}


# ---------------------------------------------------------------- Responses function calls

WEATHER_FUNCTION = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}


@pytest.mark.parametrize("primary,fallback,path", RESPONSES_FAILOVERS)
@pytest.mark.parametrize("streaming", [False, True])
def test_responses_function_call_fails_over(doors, primary, fallback, path, streaming):
    base, mock = doors
    c = doors_client(base)
    question = {"role": "user", "content": [{"type": "input_text", "text": "What is the weather in Paris?"}]}
    args = dict(model=primary, input=[question], tools=[WEATHER_FUNCTION], tool_choice="auto", store=False)
    if streaming:
        with c.responses.stream(**args) as s:
            kinds = [e.type for e in s]
            response = s.get_final_response()
        assert "response.function_call_arguments.delta" in kinds, kinds
        assert kinds[-1] == "response.completed", kinds
    else:
        response = c.responses.create(**args)
    assert response.status == "completed"
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1, response.output
    assert calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    assert calls[0].call_id
    mock.only(model_id(primary))
    sent = mock.only(model_id(fallback))
    assert sent["path"] == path
    if path == "/v1/chat/completions":
        assert sent["body"]["tools"][0]["function"]["name"] == "get_weather"
        assert sent["body"]["tools"][0]["function"]["parameters"] == WEATHER_FUNCTION["parameters"]
    elif path == "/v1/messages":
        assert sent["body"]["tools"][0]["name"] == "get_weather"
        assert sent["body"]["tools"][0]["input_schema"] == WEATHER_FUNCTION["parameters"]
    else:
        assert sent["body"]["tools"] == [WEATHER_FUNCTION]

    # The call's output goes back as a function_call_output item; the answer is text.
    follow = c.responses.create(
        model=primary,
        input=[question,
               {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather",
                "arguments": calls[0].arguments},
               {"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 21 C"}],
        tools=[WEATHER_FUNCTION],
        store=False,
    )
    assert follow.output_text == TEXT
    sent = mock.sent(model_id(fallback))
    assert len(sent) == 2, [r["path"] for r in sent]
    body = sent[1]["body"]
    if path == "/v1/chat/completions":
        tool_message = [m for m in body["messages"] if m["role"] == "tool"][0]
        assert tool_message == {"role": "tool", "tool_call_id": calls[0].call_id, "content": "Sunny, 21 C"}
    elif path == "/v1/messages":
        results = [b for m in body["messages"] if isinstance(m["content"], list)
                   for b in m["content"] if b["type"] == "tool_result"]
        assert results[0]["tool_use_id"] == calls[0].call_id
        assert results[0]["content"] == "Sunny, 21 C"
    else:
        assert body["input"][-1] == {"type": "function_call_output", "call_id": calls[0].call_id,
                                     "output": "Sunny, 21 C"}
