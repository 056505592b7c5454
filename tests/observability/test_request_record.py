"""One record per request: every attempt the engine's walk makes lands on its own request's meter
and log line, on every API, whatever else is in flight, and whatever ended the request.

The walk appends each attempt to the request's list (`Engine.complete(attempts=...)`), so
the log line and the meter read one list; nothing is looked up per task.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import CHAIN_BACKUP, CHAIN_PRIMARY
from tests.observability.test_metrics import value, wait_for
from turnout.sandbox import FaultPlan, ModelFaults

HELLO = [{"role": "user", "content": "hello"}]
SLOW_MS = 2500  # the backup's answer time: long enough for the second request to overlap the first


def _until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _lines(caplog: pytest.LogCaptureFixture) -> dict[str, dict[str, Any]]:
    """The request log lines by request id."""
    found = [json.loads(r.getMessage()) for r in caplog.records if r.name == "turnout.requests"]
    return {line["request_id"]: line for line in found}


def _attempts(line: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["model"], a["outcome"]) for a in line.get("attempts") or []]


def _post(gw: Any, path: str, body: dict[str, Any], request_id: str) -> int:
    headers = {"x-request-id": request_id}
    if body.get("stream"):
        with httpx.stream("POST", f"{gw.url}{path}", json=body, headers=headers, timeout=60) as resp:
            for _ in resp.iter_bytes():
                pass
            return resp.status_code
    return httpx.post(f"{gw.url}{path}", json=body, headers=headers, timeout=60).status_code


FAILING_OVER = {
    "chat": ("/v1/chat/completions", {"model": "primary", "messages": HELLO}),
    "chat-stream": ("/v1/chat/completions", {"model": "primary", "messages": HELLO, "stream": True}),
    "messages": ("/v1/messages", {"model": "primary", "max_tokens": 64, "messages": HELLO}),
    "responses": ("/v1/responses", {"model": "primary", "input": "hello"}),
}


@pytest.mark.parametrize("case", list(FAILING_OVER))
def test_concurrent_requests_keep_their_own_attempts(
    chain: Callable[..., Any], sandbox: Any, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    """A request that fails over while another is in flight: each line and meter has its own attempts."""
    caplog.set_level(logging.INFO, logger="turnout.requests")
    gw = chain()
    sandbox.server.set_plan(FaultPlan(models={CHAIN_PRIMARY: ModelFaults(rate_limit_rate=1.0, retry_after_s=30),
                                              CHAIN_BACKUP: ModelFaults(latency_ms=SLOW_MS)}))
    statuses: dict[str, int] = {}

    def send(request_id: str, path: str, body: dict[str, Any]) -> None:
        statuses[request_id] = _post(gw, path, body, request_id)

    plain = threading.Thread(target=send, args=("req-plain", "/v1/chat/completions",
                                                {"model": "backup", "messages": HELLO}))
    plain.start()
    assert _until(lambda: gw.state.engine.upstream_in_flight == 1)
    path, body = FAILING_OVER[case]
    failing = threading.Thread(target=send, args=("req-failover", path, body))
    failing.start()
    overlapped = _until(lambda: gw.state.engine.upstream_in_flight == 2)
    plain.join(timeout=60)
    failing.join(timeout=60)
    assert overlapped, "the two requests were never in flight together"
    assert statuses == {"req-plain": 200, "req-failover": 200}

    api = case.removesuffix("-stream")
    stream = "true" if body.get("stream") else "false"
    wait_for(gw, 1, "turnout_requests_total", api=api, alias="primary", status_class="2xx", stream=stream)
    wait_for(gw, 1, "turnout_requests_total", api="chat", alias="backup", status_class="2xx", stream="false")
    lines = _lines(caplog)
    assert _attempts(lines["req-plain"]) == [("backup", "ok")]
    assert _attempts(lines["req-failover"]) == [("primary", "rate_limited"), ("backup", "ok")]
    assert lines["req-failover"]["api"] == api
    assert value(gw, "turnout_retries_total", alias="primary") == 1
    assert value(gw, "turnout_retries_total", alias="backup") == 0
    assert value(gw, "turnout_gateway_overhead_seconds_count") == 2


def test_a_client_that_leaves_mid_walk_has_its_attempts_logged(
    chain: Callable[..., Any], sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The primary failed, the backup is still thinking, the client hangs up: the 499 line names the
    attempt that was made, and the meter counts it."""
    caplog.set_level(logging.INFO, logger="turnout.requests")
    gw = chain(retries={"attempts_per_group": 1})
    sandbox.server.set_plan(FaultPlan(models={CHAIN_PRIMARY: ModelFaults(error_rate=1.0, error_codes=[503]),
                                              CHAIN_BACKUP: ModelFaults(latency_ms=30_000)}))
    body = json.dumps({"model": "primary", "messages": HELLO}).encode()
    client = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
    try:
        client.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\nx-request-id: req-gone\r\n"
                       b"content-type: application/json\r\ncontent-length: " + str(len(body)).encode() +
                       b"\r\n\r\n" + body)
        # The primary's 503 is recorded and the backup's call is the one open now.
        assert _until(lambda: value(gw, "turnout_upstream_attempts_total", model="primary", tier="static",
                                    outcome="server_error") == 1 and gw.state.engine.upstream_in_flight == 1)
    finally:
        client.close()
    wait_for(gw, 1, "turnout_requests_total", api="chat", alias="primary", status_class="4xx", stream="false")
    assert _until(lambda: gw.state.engine.upstream_in_flight == 0)
    line = _lines(caplog)["req-gone"]
    assert line["status"] == 499
    assert _attempts(line) == [("primary", "server_error")]


def test_a_stream_continued_after_its_headers_logs_every_leg_and_counts_no_retry(
    chain: Callable[..., Any], sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The break after the headers is on the line (it happened), not a retry (the client was not waiting)."""
    caplog.set_level(logging.INFO, logger="turnout.requests")
    gw = chain()
    sandbox.server.set_plan(FaultPlan(models={CHAIN_PRIMARY: ModelFaults(stream_cut_after=3)}))
    body = {"model": "primary", "messages": [{"role": "user", "content": "tell me a long story " * 5}],
            "stream": True}
    assert _post(gw, "/v1/chat/completions", body, "req-resumed") == 200
    wait_for(gw, 1, "turnout_requests_total", api="chat", alias="primary", status_class="2xx", stream="true")
    line = _lines(caplog)["req-resumed"]
    attempts = _attempts(line)
    assert attempts[0] == ("primary", "ok") and attempts[-1][1] == "ok" and len(attempts) >= 3, line
    assert any(outcome == "stream_broken" for _, outcome in attempts), line
    assert value(gw, "turnout_retries_total", alias="primary") == 0
