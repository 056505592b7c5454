"""Paid OpenRouter models answering 402 (no credits): paid is off until a refresh finds credit, free answers on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from turnout.sandbox import FaultPlan, ModelFaults
from turnout.sandbox.faults import FreeTier

HELLO = [{"role": "user", "content": "hi"}]
ADMIN = {"Authorization": "Bearer admin-key-credits"}


def chat(gw: Any, model: str) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"model": model, "messages": HELLO}, timeout=60)


def test_402_on_paid_stops_paid_until_a_refresh_and_says_so(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(admin_key="admin-key-credits", pool={"health": {"enabled": False},
                                               "free_tier": {"requests_per_minute": 0, "requests_per_day": 10_000}})
    sandbox.server.set_plan(FaultPlan(default=ModelFaults(error_rate=1.0, error_codes=[402]),
                                      free_models=ModelFaults()))
    first = chat(gw, "paid")
    assert first.status_code == 502 and first.json()["error"]["code"] == "upstream_payment"
    paid_calls = [c for c in sandbox.server.calls if not c.model.endswith(":free")]
    assert len(paid_calls) == 1, "one 402 is enough: no other paid model is asked"

    again = chat(gw, "paid")
    assert again.status_code == 502 and "no credits" in again.json()["error"]["message"]
    assert len([c for c in sandbox.server.calls if not c.model.endswith(":free")]) == 1, "paid is off"
    for _ in range(4):  # free models need no credits: the OpenRouter credential is not benched
        resp = chat(gw, "auto")
        assert resp.status_code == 200 and resp.headers["x-turnout-model"].endswith(":free")

    ready = httpx.get(f"{gw.url}/readyz").json()
    assert ready["status"] == "degraded" and ready["paid"] == "off: no credits"
    assert "402 (no credits)" in ready["reason"]
    assert "402 (no credits)" in httpx.get(f"{gw.url}/status").text

    sandbox.server.set_plan(FaultPlan(free_tier=FreeTier(is_free_tier=False)))  # credits bought: GET /credits says so
    httpx.post(f"{gw.url}/admin/refresh", headers=ADMIN, timeout=60).raise_for_status()
    ready = httpx.get(f"{gw.url}/readyz").json()
    assert "paid" not in ready and ready["status"] == "ready"
    assert chat(gw, "paid").status_code == 200
