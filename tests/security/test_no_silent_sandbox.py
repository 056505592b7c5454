"""Item 10: a gateway never serves the sandbox's simulated answers because a secret failed to mount."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from turnout.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("TURNOUT_") or name.startswith("OPENROUTER_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("variable", ["OPENROUTER_API_KEY", "TURNOUT_API_KEYS", "TURNOUT_ADMIN_KEY"])
def test_a_secret_variable_set_but_empty_stops_the_start(env: pytest.MonkeyPatch, variable: str) -> None:
    env.setenv(variable, "")
    with pytest.raises(ConfigError, match=f"{variable}: is set but empty"):
        load_settings()


def test_an_empty_deployment_key_variable_stops_the_start(env: pytest.MonkeyPatch) -> None:
    env.setenv("ANTHROPIC_KEY", "")
    with pytest.raises(ConfigError, match="ANTHROPIC_KEY: is set but empty"):
        load_settings(deployments=[{"name": "q", "model": "anthropic/claude", "api_key_env": "ANTHROPIC_KEY"}])


def test_the_sandbox_only_when_asked_for(env: pytest.MonkeyPatch) -> None:
    env.setenv("OPENROUTER_API_KEY", "")
    assert load_settings(sandbox="on").use_sandbox  # asked for explicitly: the empty key does not matter
    env.delenv("OPENROUTER_API_KEY")
    assert load_settings().use_sandbox  # loopback, no key variable at all: the sandbox, as make run says
    with pytest.raises(ConfigError, match="refusing to serve simulated answers on non-loopback"):
        load_settings(host="0.0.0.0", auth_disabled=True)
    assert load_settings(host="0.0.0.0", auth_disabled=True, sandbox="on").use_sandbox
    with pytest.raises(ConfigError, match="openrouter_api_key: is empty"):
        load_settings(openrouter_api_key="")


def test_turnout_serve_with_an_empty_key_exits_with_one_line(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TURNOUT_", "OPENROUTER_"))}
    result = subprocess.run([sys.executable, "-m", "turnout.cli", "serve"], capture_output=True, text=True, cwd=ROOT,
                            env={**clean, "OPENROUTER_API_KEY": "", "TURNOUT_PORT": "0",
                                 "TURNOUT_DATA_DIR": str(tmp_path)}, timeout=60)
    assert result.returncode == 2
    assert "OPENROUTER_API_KEY: is set but empty" in result.stderr and "Traceback" not in result.stderr
