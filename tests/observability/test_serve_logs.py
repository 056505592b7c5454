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


def test_every_request_gets_one_line_with_ts_level_status_reason_and_key_name(tmp_path: Path) -> None:
    keys = ["sk-client-one-0123456789", "sk-client-two-0123456789"]
    serve = ServeProcess({"TURNOUT_API_KEYS": ",".join(keys), "TURNOUT_ADMIN_KEY": "sk-admin-0123456789",
                          "TURNOUT_DATA_DIR": str(tmp_path / "data"), "TURNOUT_MAX_BODY_BYTES": "2048",
                          "TURNOUT_POOL__HEALTH__ENABLED": "false"}, cwd=tmp_path)
    chat = f"{serve.url}/v1/chat/completions"
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}

    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    try:
        serve.wait_ready()
        sent = {
            "ok": httpx.post(chat, json=body, headers={**auth(keys[1]), "X-Request-ID": "ok"}, timeout=30),
            "no-key": httpx.post(chat, json=body, headers={"X-Request-ID": "no-key"}, timeout=30),
            "bad-key": httpx.post(chat, json=body, headers={**auth("sk-wrong"), "X-Request-ID": "bad-key"}),
            "bad-json": httpx.post(chat, content=b"{", headers={**auth(keys[0]), "X-Request-ID": "bad-json",
                                                                "Content-Type": "application/json"}),
            "get": httpx.get(chat, headers={**auth(keys[0]), "X-Request-ID": "get"}),
            "too-large": httpx.post(chat, content=b"x" * 4096, headers={**auth(keys[0]), "X-Request-ID": "too-large",
                                                                        "Content-Type": "application/json"}),
            "not-json": httpx.post(chat, content=b"hi", headers={**auth(keys[0]), "X-Request-ID": "not-json",
                                                                 "Content-Type": "text/plain"}),
            "models": httpx.get(f"{serve.url}/v1/models", headers={**auth(keys[0]), "X-Request-ID": "models"}),
            "nowhere": httpx.get(f"{serve.url}/v1/nowhere", headers={"X-Request-ID": "nowhere"}),
        }
        assert {name: r.status_code for name, r in sent.items()} == {
            "ok": 200, "no-key": 401, "bad-key": 401, "bad-json": 400, "get": 405, "too-large": 413,
            "not-json": 415, "models": 200, "nowhere": 404}
        httpx.get(f"{serve.url}/healthz")  # a probe that succeeds writes no line
        assert serve.terminate() in (0, -15)  # uvicorn re-raises SIGTERM after its graceful shutdown
    finally:
        serve.kill()

    records = serve.records()
    assert all("ts" in r and "level" in r for r in records), [r for r in records if "ts" not in r]
    requests = [r for r in records if r.get("event") == "request"]
    by_id: dict[str, list[dict[str, Any]]] = {}
    for line in requests:
        by_id.setdefault(line["request_id"], []).append(line)
    assert set(by_id) == set(sent), "one line per request, none for the probe"
    assert all(len(lines) == 1 for lines in by_id.values()), by_id
    seen = {rid: (lines[0]["status"], lines[0]["reason"], lines[0].get("key")) for rid, lines in by_id.items()}
    assert seen == {
        "ok": (200, "ok", "default"), "no-key": (401, "invalid_api_key", None),
        "bad-key": (401, "invalid_api_key", None), "bad-json": (400, "invalid_json", "default"),
        "get": (405, "method_not_allowed", None), "too-large": (413, "request_too_large", "default"),
        "not-json": (415, "unsupported_media_type", "default"), "models": (200, "ok", "default"),
        "nowhere": (404, "no_route", None)}
    assert all(r["level"] == "info" for r in requests)
    text = "\n".join(serve.lines)
    assert not any(secret in text for secret in [*keys, "sk-admin-0123456789", "sk-wrong"])
    last = [r.get("msg") for r in records][-3:]
    assert "Application shutdown complete." in last and any("Finished server process" in m for m in last), last
