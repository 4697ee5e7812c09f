"""The official `openai` Python client, pointed at a running switchback binary.

Starts `switchback serve` on a config that uses the built-in mock provider (answered
in-process, no network) and completes a non-streaming and a streaming call, including
a failover from a rate-limited model.

    SWITCHBACK_BIN=target/release/switchback python3 -m pytest tests/python
"""

import os
import socket
import subprocess
import tempfile
import time

import openai
import pytest
import requests

BIN = os.environ.get("SWITCHBACK_BIN", "target/release/switchback")

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=["smol", "tokio"])
def gateway(request):
    port = free_port()
    fd, path = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write(CONFIG.format(port=port))
    proc = subprocess.Popen(
        [BIN, "serve", path, "--runtime", request.param],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            if proc.poll() is not None:
                pytest.fail(f"gateway exited: {proc.stderr.read().decode()}")
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        os.unlink(path)


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
