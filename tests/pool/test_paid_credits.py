"""402 from paid OpenRouter models: no more spill to them until a refresh finds credit (issue 14, item 7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import LiveGateway
from turnout.sandbox import FaultPlan, ModelFaults
from turnout.sandbox.faults import FreeTier

HELLO = [{"role": "user", "content": "hello"}]
ADMIN = {"Authorization": "Bearer admin-key-credits"}


def chat(gw: LiveGateway, model: str) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"model": model, "messages": HELLO}, timeout=30)


def paid_calls(sandbox: Any) -> int:
    return sum(1 for c in sandbox.server.calls if not c.model.endswith(":free"))


def test_a_402_stops_paid_spill_until_a_refresh_finds_credit(start_gateway: Callable[..., LiveGateway],
                                                             sandbox: Any) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}}, admin_key="admin-key-credits")
    sandbox.server.set_plan(FaultPlan(default=ModelFaults(error_rate=1.0, error_codes=[402]),
                                      free_models=ModelFaults(), free_tier=FreeTier(is_free_tier=True)))
    first = chat(gw, "paid")
    assert first.status_code == 502 and first.json()["error"]["code"] == "upstream_payment"
    ready = httpx.get(f"{gw.url}/readyz", timeout=10).json()
    assert ready["status"] == "degraded" and "402 (no credits)" in ready["reason"]
    assert "paid OpenRouter models off" in httpx.get(f"{gw.url}/status", timeout=10).text
    sandbox.server.reset_calls()
    again = chat(gw, "paid")  # a paid-only group says why without calling upstream
    assert again.status_code == 502 and again.json()["error"]["code"] == "upstream_payment"
    assert chat(gw, "auto").status_code == 200  # free models go on
    assert paid_calls(sandbox) == 0
    httpx.post(f"{gw.url}/admin/refresh", timeout=60, headers=ADMIN).raise_for_status()
    assert httpx.get(f"{gw.url}/readyz", timeout=10).json()["status"] == "degraded"  # /credits says 0 still
    sandbox.server.set_plan(FaultPlan(free_tier=FreeTier(is_free_tier=False)))  # credits bought
    httpx.post(f"{gw.url}/admin/refresh", timeout=60, headers=ADMIN).raise_for_status()
    assert httpx.get(f"{gw.url}/readyz", timeout=10).json()["status"] == "ready"
    assert chat(gw, "paid").status_code == 200
    assert paid_calls(sandbox) >= 1
