"""`turnout probe` as a person runs it: the real CLI in a subprocess, against the sandbox on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import OPENROUTER_TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
# Paid sandbox models (no free-quota pacing) and free ones.
PAID = ["qwen/qwen3-14b", "qwen/qwen3-235b-a22b", "qwen/qwen3.8-27b", "qwen/qwen3.8-max", "qwen/qwen3.8-2.4t-a95b"]
FREE = ["poolside/laguna-s-2.1:free", "poolside/laguna-xs-2.1:free", "z-ai/glm-5.2:free",
        "google/gemma-4-26b-a4b-it:free", "google/gemma-4-31b-it:free"]


@dataclass
class ProbeRun:
    code: int
    stdout: str
    stderr: str
    report_path: Path

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.report_path.read_text())
        return data

    def by_model(self) -> dict[str, dict[str, Any]]:
        return {r["model"]: r for r in self.report["results"]}


def probe_env(sandbox: Any, tmp_path: Path, unset: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith("TURNOUT_") and k.upper() not in {"OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"}}
    env.update(OPENROUTER_BASE_URL=sandbox.base_url, OPENROUTER_API_KEY=OPENROUTER_TEST_KEY,
               TURNOUT_DATA_DIR=str(tmp_path / "data"), LITELLM_LOCAL_MODEL_COST_MAP="True", COLUMNS="120")
    env.update(extra)
    for name in unset:
        env.pop(name, None)
    return env


def probe_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "turnout.cli", "probe", *args]


@pytest.fixture
def run_probe(sandbox: Any, tmp_path: Path) -> Callable[..., ProbeRun]:
    def run(*args: str, env: dict[str, str] | None = None, unset: tuple[str, ...] = (),
            report: str = "report.json") -> ProbeRun:
        path = tmp_path / report
        done = subprocess.run(probe_command("--report", str(path), *args), cwd=tmp_path, capture_output=True,
                              text=True, timeout=180, env=probe_env(sandbox, tmp_path, unset, **(env or {})))
        return ProbeRun(done.returncode, done.stdout, done.stderr, path)

    return run
