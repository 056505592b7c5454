"""The compose file as Docker Compose itself reads it (`compose config`, which needs no engine)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from turnout.config import load_settings

ROOT = Path(__file__).resolve().parent.parent


def compose_config() -> dict[str, Any]:
    """`docker compose config` (v2), else `docker-compose config` (v1, what Debian ships)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_") and k != "OPENROUTER_API_KEY"}
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        result = subprocess.run([*command, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True,
                                text=True, cwd=ROOT, env=env, timeout=60)
        if result.returncode == 0:
            parsed: dict[str, Any] = yaml.safe_load(result.stdout)
            return parsed
    pytest.fail("neither `docker compose` nor `docker-compose` could run `config` (.ci/run installs docker-compose)")


def test_the_default_compose_service_joins_no_example_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    service = compose_config()["services"]["turnout"]
    environment = service.get("environment") or {}
    config_path = environment.get("TURNOUT_CONFIG")
    for name in list(os.environ):
        if name.startswith("TURNOUT_") or name in {"OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"}:
            monkeypatch.delenv(name)
    if config_path:  # the file the container would read: the host side of the mount that puts it there
        mounts = [v for v in service.get("volumes", []) if isinstance(v, dict) and v.get("target") == config_path]
        assert mounts, f"TURNOUT_CONFIG={config_path} is not mounted"
        monkeypatch.setenv("TURNOUT_CONFIG", mounts[0]["source"])
    settings = load_settings(auth_disabled=True)
    assert settings.deployments == [], "the default compose joins deployments that are not there"
    assert environment.get("TURNOUT_AUTH_DISABLED") == "true"
    assert "127.0.0.1" in str(service["ports"]), "published on the host's loopback only"
