"""Real `turnout serve` processes for the multi-replica tests: started, watched and stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import OPENROUTER_TEST_KEY, free_port

ROOT = Path(__file__).resolve().parents[2]


class Replica:
    def __init__(self, *, name: str, directory: Path, env: Mapping[str, str], port: int | None = None) -> None:
        self.name = name
        self.dir = directory
        self.port = port or free_port()
        self.env = dict(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / f"{name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Replica:
        self.dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TURNOUT_", "OPENROUTER_"))}
        env.update({"TURNOUT_PORT": str(self.port), "TURNOUT_SANDBOX": "off",
                    "OPENROUTER_API_KEY": OPENROUTER_TEST_KEY, "TURNOUT_SHUTDOWN_GRACE_S": "2",
                    "LITELLM_LOCAL_MODEL_COST_MAP": "True", **self.env})
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "turnout.cli", "serve"], cwd=ROOT, env=env,
                                         stdout=out, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout_s: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                resp = httpx.get(f"{self.url}/readyz", timeout=2)
                if resp.status_code == 200:
                    return dict(resp.json())
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready in {timeout_s}s:\n{self.tail()}")

    def ready(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/readyz", timeout=5).json())

    def admin(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/admin/pool", timeout=10).json())

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signum)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def chat(replica: Replica, model: str, *, timeout: float = 60, session: str | None = None) -> httpx.Response:
    headers = {"x-turnout-session": session} if session else {}
    return httpx.post(f"{replica.url}/v1/chat/completions", headers=headers, timeout=timeout,
                      json={"model": model, "messages": [{"role": "user", "content": "hello"}]})
