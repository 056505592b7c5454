"""The real agent CLIs against the running gateway on the sandbox: Claude Code (Messages) and Codex CLI (Responses).

`.ci/run` installs both (npm, into `.cache/agents`, or `$TURNOUT_AGENTS_DIR`). The sandbox is
told what to answer by a directive in the prompt (`turnout.sandbox.directives`): `sandbox:say`
for a plain turn, `sandbox:call <tool> <json>` for a tool call the CLI executes, after which the
CLI's follow-up turn (with the tool's result) gets "The tool returned: ...".
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.observability.test_metrics import value, wait_for

REPO = Path(__file__).resolve().parents[2]
AGENTS = Path(os.environ.get("TURNOUT_AGENTS_DIR", REPO / ".cache" / "agents")) / "node_modules" / ".bin"
KEY = "sk-turnout-agents-test"


def _cli(name: str) -> Path:
    path = AGENTS / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: .ci/run installs the agent CLIs")
        pytest.skip(f"{path} is not installed (bash .ci/run installs it)")
    return path


@pytest.fixture(scope="module")
def gateway(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.conftest import OPENROUTER_TEST_KEY, LiveGateway
    from turnout.config import Settings

    settings = Settings(sandbox="off", openrouter_base_url=sandbox.base_url, openrouter_api_key=OPENROUTER_TEST_KEY,
                        data_dir=tmp_path_factory.mktemp("data"), api_keys=[KEY])
    gw = LiveGateway(settings).start()
    yield gw
    gw.stop()


def claude(gateway: Any, home: Path, prompt: str, *extra: str) -> subprocess.CompletedProcess[str]:
    work = home / "work"
    work.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "ANTHROPIC_BASE_URL": gateway.url,
           "ANTHROPIC_API_KEY": KEY, "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "DISABLE_AUTOUPDATER": "1"}
    return subprocess.run([str(_cli("claude")), "-p", prompt, "--model", "auto", *extra], cwd=work, env=env,
                          capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)


def codex(gateway: Any, home: Path, prompt: str, *extra: str) -> subprocess.CompletedProcess[str]:
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    (home / ".codex" / "config.toml").write_text(
        'model = "auto"\nmodel_provider = "turnout"\n[model_providers.turnout]\nname = "turnout"\n'
        f'base_url = "{gateway.url}/v1"\nenv_key = "TURNOUT_KEY"\nwire_api = "responses"\n')
    work = home / "work"
    work.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "TURNOUT_KEY": KEY}
    return subprocess.run([str(_cli("codex")), "exec", "--skip-git-repo-check", *extra, prompt], cwd=work, env=env,
                          capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)


def answered(gateway: Any, api: str) -> float:
    return value(gateway, "turnout_requests_total", api=api, alias="auto", status_class="2xx", stream="true")


def test_claude_code_plain_turn(gateway: Any, tmp_path: Path) -> None:
    before = answered(gateway, "messages")
    done = claude(gateway, tmp_path, "sandbox:say pong")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "pong"
    wait_for(gateway, before + 1, "turnout_requests_total", api="messages", alias="auto", status_class="2xx",
             stream="true")


def test_claude_code_runs_a_write_tool_call_then_the_follow_up(gateway: Any, tmp_path: Path) -> None:
    target = tmp_path / "work" / "hello.txt"
    args = json.dumps({"file_path": str(target), "content": "hi from the sandbox"})
    pinned = value(gateway, "turnout_session_pins_total", result="pinned")
    done = claude(gateway, tmp_path, f"sandbox:call Write {args}", "--permission-mode", "acceptEdits")
    assert done.returncode == 0, done.stdout + done.stderr
    assert target.read_text() == "hi from the sandbox"
    assert done.stdout.strip().startswith("The tool returned: File created successfully")
    # The follow-up turn carried Claude Code's session id: it went to the deployment of the first.
    assert value(gateway, "turnout_session_pins_total", result="pinned") >= pinned + 1


def test_codex_plain_turn(gateway: Any, tmp_path: Path) -> None:
    before = answered(gateway, "responses")
    done = codex(gateway, tmp_path, "sandbox:say pong")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "pong"
    wait_for(gateway, before + 1, "turnout_requests_total", api="responses", alias="auto", status_class="2xx",
             stream="true")


def test_codex_runs_an_exec_command_call_then_the_follow_up(gateway: Any, tmp_path: Path) -> None:
    args = json.dumps({"cmd": "echo made-by-codex > out.txt"})
    pinned = value(gateway, "turnout_session_pins_total", result="pinned")
    done = codex(gateway, tmp_path, f"sandbox:call exec_command {args}", "--dangerously-bypass-approvals-and-sandbox")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "work" / "out.txt").read_text() == "made-by-codex\n"
    assert "The tool returned:" in done.stdout and "Process exited with code 0" in done.stdout
    assert value(gateway, "turnout_session_pins_total", result="pinned") >= pinned + 1
