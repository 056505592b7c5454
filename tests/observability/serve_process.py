"""A real `turnout serve` process (the console script), its stderr captured line by line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

TURNOUT = Path(sys.executable).with_name("turnout")


class ServeProcess:
    def __init__(self, env: Mapping[str, str], *, cwd: Path) -> None:
        self.port = free_port()
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith("TURNOUT_") and k not in {"OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"}}
        self.proc = subprocess.Popen(
            [str(TURNOUT), "serve"], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**clean, "TURNOUT_PORT": str(self.port), "TURNOUT_HOST": "127.0.0.1", **env})
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def records(self) -> list[dict[str, Any]]:
        """Every stderr line as JSON (a line that is not JSON fails the test that reads it)."""
        return [json.loads(line) for line in list(self.lines) if line.strip()]

    def wait_ready(self, timeout_s: float = 90) -> ServeProcess:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"turnout serve exited {self.proc.returncode}: {self.lines[-20:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"turnout serve did not answer within {timeout_s} s: {self.lines[-20:]}")

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for record in self.records():
                if predicate(record):
                    return record
            time.sleep(0.1)
        raise TimeoutError(f"no such log line within {timeout_s} s: {self.lines[-20:]}")

    def terminate(self, timeout_s: float = 60) -> int:
        """SIGTERM, as Docker or systemd stop it; the exit code once stderr is closed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        """The test's cleanup: whatever state it is in, the process is gone and its pipe closed."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
