"""Shared by the SDK tests: start the release binary (`SWITCHBACK_BIN`) on a config on
either runtime, and a mock upstream speaking every API (`upstream_mock.py`) behind it.

    SWITCHBACK_BIN=target/release/switchback python3 -m pytest tests/python
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import pytest
import requests

sys.path.insert(0, os.path.dirname(__file__))

from upstream_mock import MockUpstream  # noqa: E402

BIN = os.environ.get("SWITCHBACK_BIN", "target/release/switchback")
RUNTIMES = ["smol", "tokio"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The stderr logs of the gateways running now, shown with any test that fails meanwhile.
_LIVE_LOGS = []
LOG_TAIL_BYTES = 20_000


def _tail(path: str) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - LOG_TAIL_BYTES))
        text = f.read().decode(errors="replace")
    return text if size <= LOG_TAIL_BYTES else f"[... last {LOG_TAIL_BYTES} bytes]\n{text}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for path in _LIVE_LOGS:
            report.sections.append((f"switchback stderr ({path})", _tail(path)))


@contextmanager
def serve(config: str, runtime: str):
    """Runs `switchback serve` on `config` (with `{port}` filled in) until the block ends;
    yields the gateway's base URL once `/healthz` answers, and fails if it never does.
    The gateway's stderr goes to a temporary file, shown with every test that fails while
    it runs (and when it fails to start, or the block raises)."""
    port = free_port()
    fd, path = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write(config.replace("{port}", str(port)))
    log = tempfile.NamedTemporaryFile(prefix="switchback-", suffix=".stderr", delete=False)
    proc = subprocess.Popen(
        [BIN, "serve", path, "--runtime", runtime],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    _LIVE_LOGS.append(log.name)
    try:
        for _ in range(100):
            if proc.poll() is not None:
                pytest.fail(f"gateway exited with {proc.returncode}:\n{_tail(log.name)}")
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail(f"gateway never answered {base}/healthz with 200:\n{_tail(log.name)}")
        try:
            yield base
        except BaseException:
            sys.stderr.write(f"switchback stderr ({log.name}):\n{_tail(log.name)}\n")
            raise
    finally:
        _LIVE_LOGS.remove(log.name)
        proc.terminate()
        proc.wait(timeout=15)
        os.unlink(path)
        log.close()
        os.unlink(log.name)


# Every primary fails (the mock fails model ids starting with `down`: 529 on Anthropic
# paths, 429 on OpenAI ones) and fails over once to its fallback, of the other interface
# or of the same API. The `cut` models' streams end after two words, and stream recovery
# has the same model continue them.
DOORS_CONFIG = """
version: v0.3.0
listeners:
  - type: model
    name: doors
    port: {port}
model_providers:
  - model: anthropic/down-a
    base_url: http://127.0.0.1:{mock}
    access_key: key-anthropic
    retry_policy: {fallback_models: [openai/up-o], default_max_attempts: 1}
  - model: openai/down-o
    base_url: http://127.0.0.1:{mock}
    access_key: key-openai
    retry_policy: {fallback_models: [anthropic/up-a], default_max_attempts: 1}
  - model: openai/down-r
    base_url: http://127.0.0.1:{mock}
    access_key: key-openai
    responses: true
    retry_policy: {fallback_models: [respond/up-r], default_max_attempts: 1}
  - model: openai/down-e
    base_url: http://127.0.0.1:{mock}
    access_key: key-openai
    retry_policy: {fallback_models: [together_ai/up-e], default_max_attempts: 1}
  - model: openai/down-x
    base_url: http://127.0.0.1:{mock}
    access_key: key-openai
    retry_policy: {fallback_models: [anthropic/down-a], default_max_attempts: 1}
  - model: anthropic/down-x
    base_url: http://127.0.0.1:{mock}
    access_key: key-anthropic
    retry_policy: {fallback_models: [openai/down-o], default_max_attempts: 1}
  - model: anthropic/up-a
    base_url: http://127.0.0.1:{mock}
    access_key: key-anthropic
  - model: openai/up-o
    base_url: http://127.0.0.1:{mock}
    access_key: key-openai
  - model: respond/up-r
    base_url: http://127.0.0.1:{mock}
    provider_interface: openai
    responses: true
    access_key: key-respond
  - model: together_ai/up-e
    base_url: http://127.0.0.1:{mock}
    access_key: key-together
  - model: openai/cut-o
    base_url: http://127.0.0.1:{mock}
    access_key: key-openai
    continuation: assistant_prefill
    retry_policy: {stream_recovery: {}}
  - model: anthropic/cut-a
    base_url: http://127.0.0.1:{mock}
    access_key: key-anthropic
    retry_policy: {stream_recovery: {}}
"""


@pytest.fixture(scope="module", params=RUNTIMES)
def doors_server(request):
    """(gateway base URL, mock upstream) for `DOORS_CONFIG` on each runtime, shared by a
    module's tests."""
    mock = MockUpstream()
    try:
        with serve(DOORS_CONFIG.replace("{mock}", str(mock.port)), request.param) as base:
            yield base, mock
    finally:
        mock.close()


@pytest.fixture
def doors(doors_server):
    """`doors_server` for one test: the mock's `sent` and `only` see this test's requests
    alone, so a test proves which upstream path its own request took."""
    base, mock = doors_server
    mock.begin_test()
    return base, mock
