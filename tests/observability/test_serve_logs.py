"""What a real `turnout serve` process writes on stderr (its logs as an operator reads them)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port
from tests.observability.serve_process import ServeProcess
from turnout.sandbox import SandboxThread


def failing_refreshes(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("logger") == "turnout.refresh" and "refresh failed" in r.get("msg", "")]


def test_an_unreachable_openrouter_is_logged_once_retried_with_backoff_and_recovers(tmp_path: Path) -> None:
    upstream_port = free_port()  # nothing listens here until the sandbox starts on it
    serve = ServeProcess({
        "OPENROUTER_API_KEY": "sk-or-v1-test-secret-0123456789abcdef",
        "OPENROUTER_BASE_URL": f"http://127.0.0.1:{upstream_port}/api/v1",
        "TURNOUT_DATA_DIR": str(tmp_path / "data"),
        "TURNOUT_POOL__HEALTH__ENABLED": "false",
        "TURNOUT_POOL__HEALTH_REFRESH_S": "3",
        "TURNOUT_POOL__REFRESH_RETRY_MIN_S": "0.25",
    }, cwd=tmp_path)
    try:
        serve.wait_ready()
        time.sleep(5)  # the old loop logged a failure every second: ~5 lines here
        metrics = httpx.get(f"{serve.url}/metrics", timeout=10).text
        failures = float(re.search(r"^turnout_pool_refresh_consecutive_failures (\S+)$", metrics, re.M).group(1))
        assert failures >= 3, "it keeps retrying"
        ready = httpx.get(f"{serve.url}/readyz", timeout=10).json()
        assert ready["stale_since"].endswith("Z") and ready["refresh_failures"] >= 3
        lines = failing_refreshes(serve.records())
        assert len(lines) == 1, lines
        assert lines[0]["level"] == "warning" and "ConnectError" in lines[0]["msg"] and "ts" in lines[0]

        with SandboxThread(port=upstream_port):
            recovered = serve.wait_for(lambda r: "refresh recovered" in r.get("msg", ""), timeout_s=60)
            assert recovered["level"] == "info"
            ready = httpx.get(f"{serve.url}/readyz", timeout=10).json()
            assert ready["status"] == "ready" and ready["source"] == "live" and "stale_since" not in ready
            assert len(failing_refreshes(serve.records())) == 1
            assert serve.terminate() in (0, -15)  # uvicorn re-raises SIGTERM after its graceful shutdown
        last = [r.get("msg") for r in serve.records()][-3:]
        assert "Application shutdown complete." in last and any("Finished server process" in m for m in last), last
    finally:
        serve.kill()
