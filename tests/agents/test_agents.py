"""Claude Code and the Codex CLI, run headless through the gateway (spec §9).

Each CLI completes a prompt against the release binary (`SWITCHBACK_BIN`) on each runtime,
in front of the mock upstream of `tests/python/upstream_mock.py`, through a failover: the
primary answers 529 (Anthropic) or 429 (OpenAI) and the fallback, of another interface,
answers. The CLIs talk only to the local gateway: Claude Code through `ANTHROPIC_BASE_URL`
and an API key in the environment (no account, non-essential traffic off), Codex through a
custom model provider with `wire_api = "responses"` and its key in an environment variable.
Their homes are temporary directories.

Install the CLIs first (`npm ci` here: package.json pins the versions); without them the
tests are skipped with a message saying so, and with `SWITCHBACK_REQUIRE_AGENTS=1` (as
`.ci/run` sets) a missing CLI fails instead.

    (cd tests/agents && npm ci)
    SWITCHBACK_BIN=target/release/switchback python3 -m pytest tests/agents
"""

import glob
import os
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from conftest import RUNTIMES, serve  # noqa: E402
from upstream_mock import TEXT, MockUpstream  # noqa: E402

BIN_DIR = os.path.join(HERE, "node_modules", ".bin")
TIMEOUT = 180


def cli(name: str) -> str:
    """The installed CLI `name` that runs (`--version` answers)."""
    candidates = [os.path.join(BIN_DIR, name)]
    if name == "claude":
        # The wrapper's postinstall copies its platform's binary over bin/claude.exe; where a
        # package manager skipped it, the platform package's binary is the same program.
        pattern = os.path.join(HERE, "node_modules", "@anthropic-ai", "claude-code-*", "claude")
        candidates += sorted(glob.glob(pattern))
    for path in candidates:
        if not os.access(path, os.X_OK):
            continue
        try:
            probe = subprocess.run([path, "--version"], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return path
    message = (
        f"the {name} CLI is not installed in {BIN_DIR}: run `npm ci` in tests/agents "
        "(it needs the npm registry) to run the agent tests"
    )
    if os.environ.get("SWITCHBACK_REQUIRE_AGENTS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def config(primary: str, primary_lines: str, fallback: str, fallback_lines: str) -> str:
    """The primary is the default (every model the CLI names, side requests included, goes
    there) and fails over once to the fallback."""
    return f"""
version: v0.3.0
listeners:
  - type: model
    name: agents
    port: {{port}}
model_providers:
  - model: {primary}
    base_url: http://127.0.0.1:{{mock}}
    access_key: key-primary
    default: true
{primary_lines}    retry_policy: {{fallback_models: [{fallback}], default_max_attempts: 1}}
  - model: {fallback}
    base_url: http://127.0.0.1:{{mock}}
    access_key: key-fallback
{fallback_lines}"""


ANTHROPIC = "    provider_interface: anthropic\n"
OPENAI = "    provider_interface: openai\n"
RESPONSES = "    provider_interface: openai\n    responses: true\n"


@pytest.fixture
def sandbox():
    """A temporary home and working directory for one CLI run."""
    with tempfile.TemporaryDirectory(prefix="switchback-agent-") as root:
        home = os.path.join(root, "home")
        work = os.path.join(root, "work")
        os.makedirs(home)
        os.makedirs(work)
        yield home, work


def base_env(home: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "CLAUDE_", "CODEX_"))}
    env.update({"HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config"), "NO_COLOR": "1"})
    return env


def run(argv, env, cwd):
    done = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=TIMEOUT)
    output = f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, output
    return done.stdout, output


def paths(mock, model_id):
    return [r["path"] for r in mock.requests if r["body"].get("model") == model_id]


CLAUDE_CASES = [
    # (primary, its lines, fallback, its lines, path the primary is asked on, the fallback's)
    ("anthropic/down-a", ANTHROPIC, "openai/up-o", OPENAI, "/v1/messages?beta=true", "/v1/chat/completions"),
    ("openai/down-o", OPENAI, "anthropic/up-a", ANTHROPIC, "/v1/chat/completions", "/v1/messages?beta=true"),
]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("primary,primary_lines,fallback,fallback_lines,primary_path,fallback_path", CLAUDE_CASES)
def test_claude_code_completes_a_prompt_through_a_failover(
    sandbox, runtime, primary, primary_lines, fallback, fallback_lines, primary_path, fallback_path
):
    claude = cli("claude")
    home, work = sandbox
    mock = MockUpstream()
    try:
        yaml = config(primary, primary_lines, fallback, fallback_lines).replace("{mock}", str(mock.port))
        with serve(yaml, runtime) as base:
            env = base_env(home)
            env.update({
                "ANTHROPIC_BASE_URL": base,
                "ANTHROPIC_API_KEY": "sk-ant-agent-test",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
                "DISABLE_TELEMETRY": "1",
                "DISABLE_ERROR_REPORTING": "1",
            })
            out, log = run([claude, "-p", "Say hello", "--model", primary], env, work)
        assert TEXT in out, log
        assert primary_path in paths(mock, primary.split("/", 1)[1]), (mock.requests, log)
        assert fallback_path in paths(mock, fallback.split("/", 1)[1]), (mock.requests, log)
        sent = [r for r in mock.requests if r["path"].startswith("/v1/messages")]
        for r in sent:
            assert r["headers"].get("x-api-key") == "key-primary" or r["headers"].get("x-api-key") == "key-fallback"
            assert "claude-code" in r["headers"].get("anthropic-beta", ""), r["headers"]
        for r in mock.requests:
            assert "sk-ant-agent-test" not in str(r["headers"]), "the client's key went upstream"
    finally:
        mock.close()


CODEX_CASES = [
    ("openai/down-r", RESPONSES, "anthropic/up-a", ANTHROPIC, "/v1/responses", "/v1/messages"),
    ("openai/down-o", OPENAI, "respond/up-r", RESPONSES, "/v1/chat/completions", "/v1/responses"),
    ("anthropic/down-a", ANTHROPIC, "openai/up-o", OPENAI, "/v1/messages", "/v1/chat/completions"),
]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("primary,primary_lines,fallback,fallback_lines,primary_path,fallback_path", CODEX_CASES)
def test_codex_completes_a_prompt_through_a_failover(
    sandbox, runtime, primary, primary_lines, fallback, fallback_lines, primary_path, fallback_path
):
    codex = cli("codex")
    home, work = sandbox
    codex_home = os.path.join(home, ".codex")
    os.makedirs(codex_home)
    mock = MockUpstream()
    try:
        yaml = config(primary, primary_lines, fallback, fallback_lines).replace("{mock}", str(mock.port))
        with serve(yaml, runtime) as base:
            with open(os.path.join(codex_home, "config.toml"), "w") as f:
                f.write(f"""model = "{primary}"
model_provider = "switchback"

[model_providers.switchback]
name = "switchback"
base_url = "{base}/v1"
env_key = "SWITCHBACK_AGENT_KEY"
wire_api = "responses"
""")
            env = base_env(home)
            env.update({"CODEX_HOME": codex_home, "SWITCHBACK_AGENT_KEY": "sk-agent-test"})
            out, log = run([codex, "exec", "--skip-git-repo-check", "Say hello"], env, work)
        assert TEXT in out, log
        assert primary_path in paths(mock, primary.split("/", 1)[1]), (mock.requests, log)
        assert fallback_path in paths(mock, fallback.split("/", 1)[1]), (mock.requests, log)
        for r in mock.requests:
            assert "sk-agent-test" not in str(r["headers"]), "the client's key went upstream"
            tools = r["body"].get("tools") or []
            if not r["path"].startswith("/v1/responses"):
                assert all(t.get("type") in (None, "function") for t in tools), tools
    finally:
        mock.close()
