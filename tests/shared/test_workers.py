"""`turnout serve --workers N`: N processes on one port; N > 1 without Redis refuses, unless accepted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.shared.conftest import RedisProcess
from tests.shared.replicas import ROOT, Replica


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TURNOUT_", "OPENROUTER_"))}
    return subprocess.run([sys.executable, "-m", "turnout.cli", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def test_workers_without_shared_state_refuse_with_the_reason() -> None:
    for how in (["serve", "--workers", "3"], ["serve"]):
        done = run_cli(*how, env={"TURNOUT_WORKERS": "3"} if how == ["serve"] else {})
        assert done.returncode == 2, done.stderr
        assert "workers: 3 processes without shared_state.redis_url" in done.stderr
        assert "accept_per_process_state" in done.stderr
        assert "Traceback" not in done.stderr


def test_two_workers_share_one_redis(redis_server: RedisProcess, sandbox: Any, tmp_path: Path) -> None:
    replica = Replica(name="workers", directory=tmp_path, env={
        "TURNOUT_WORKERS": "2", "TURNOUT_SHARED_STATE__REDIS_URL": redis_server.url,
        "TURNOUT_SHARED_STATE__OP_TIMEOUT_S": "0.25", "OPENROUTER_BASE_URL": sandbox.base_url,
        "TURNOUT_DATA_DIR": str(tmp_path / "data")}).start()
    try:
        replica.wait_ready()
        for _ in range(6):
            resp = httpx.post(f"{replica.url}/v1/chat/completions", timeout=60,
                              json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
            assert resp.status_code == 200, resp.text
        deadline = time.monotonic() + 120  # the second worker may still be importing LiteLLM
        while replica.log.read_text().count("Application startup complete") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        log = replica.log.read_text()
        assert log.count("Started server process") == 2  # one per worker (the supervisor logs "Started parent")
        assert log.count("shared state up") == 2
    finally:
        replica.stop()
