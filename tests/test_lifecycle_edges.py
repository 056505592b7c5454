"""Client disconnects, graceful shutdown and a flapping primary."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import CHAIN_PRIMARY as A
from turnout.sandbox import FaultPlan, ModelFaults

HELLO = [{"role": "user", "content": "hello"}]


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.mark.parametrize("stream", [False, True])
def test_client_disconnect_cancels_the_upstream_call(chain: Callable[..., Any], sandbox: Any, stream: bool) -> None:
    gw = chain()
    sandbox.server.set_plan(FaultPlan(models={A: ModelFaults(latency_ms=5000)}))
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "primary", "messages": HELLO, "stream": stream},
                   timeout=0.5)
    assert wait_for(lambda: gw.state.engine.upstream_in_flight == 0, timeout=2.0)
    assert httpx.get(f"{gw.url}/healthz").status_code == 200


def test_client_leaving_mid_stream_closes_the_upstream_stream(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain()
    sandbox.server.set_plan(FaultPlan(models={A: ModelFaults(chunk_delay_ms=300)}))
    body = {"model": "primary", "messages": [{"role": "user", "content": "tell me a long story " * 5}], "stream": True}
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=10) as resp:
        lines = resp.iter_lines()
        got = [next(lines) for _ in range(3)]
        assert gw.state.engine.upstream_in_flight == 1, got
    assert wait_for(lambda: gw.state.engine.upstream_in_flight == 0, timeout=3.0)


def test_shutdown_drains_requests_in_flight(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain()
    sandbox.server.set_plan(FaultPlan(models={A: ModelFaults(latency_ms=1000)}))
    results: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: results.append(httpx.post(
        f"{gw.url}/v1/chat/completions", json={"model": "primary", "messages": HELLO}, timeout=10)))
    worker.start()
    assert wait_for(lambda: gw.state.engine.upstream_in_flight == 1)
    gw.stop()
    worker.join(timeout=10)
    assert results and results[0].status_code == 200
    assert "Hello from" in results[0].json()["choices"][0]["message"]["content"]


def test_flapping_primary_is_served_through(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain(retries={"cooldown_min_s": 0.5, "cooldown_s": 4.0})
    down = FaultPlan(models={A: ModelFaults(error_rate=1.0, error_codes=[503])})
    stop = threading.Event()

    def flap() -> None:
        while not stop.is_set():
            sandbox.server.set_plan(down)
            time.sleep(0.4)
            sandbox.server.set_plan(FaultPlan())
            time.sleep(0.4)

    phases = [0]

    def count_phases() -> None:
        while not stop.is_set():
            time.sleep(0.8)
            phases[0] += 1

    flapper = threading.Thread(target=flap)
    threading.Thread(target=count_phases, daemon=True).start()
    flapper.start()
    statuses, answered_by = [], []
    try:
        for _ in range(80):
            resp = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "primary", "messages": HELLO}, timeout=10)
            statuses.append(resp.status_code)
            answered_by.append(resp.headers.get("x-turnout-model"))
            time.sleep(0.02)
    finally:
        stop.set()
        flapper.join()
    assert statuses == [200] * 80
    assert answered_by.count("primary") >= 5 and answered_by.count("backup") >= 1, answered_by
    failed_attempts = [c for c in sandbox.server.calls_for(A) if c.outcome != "ok"]
    # Benched while down instead of tried (twice) on every request of a down phase.
    assert len(failed_attempts) <= 5 * (phases[0] + 1), (len(failed_attempts), phases[0])
