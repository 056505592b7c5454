"""A restart remembers what the account spent today: in `data_dir` alone, or in Redis; and `GET /key`
seeds the day from OpenRouter's own counter (`free_model_daily_requests`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import LiveGateway
from tests.shared.conftest import RedisProcess
from turnout.sandbox import FaultPlan
from turnout.sandbox.faults import FreeTier

HELLO = [{"role": "user", "content": "hello"}]


def spend(gw: LiveGateway, n: int) -> None:
    for _ in range(n):
        resp = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "free", "messages": HELLO}, timeout=30)
        assert resp.status_code == 200, resp.text


ADMIN_KEY = "admin-key-restart"


def free_tier(gw: LiveGateway) -> dict[str, Any]:
    return dict(httpx.get(f"{gw.url}/admin/pool", timeout=10,
                          headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()["free_tier"])


def test_without_redis_the_days_count_survives_a_restart(start_gateway: Callable[..., LiveGateway]) -> None:
    first = start_gateway(admin_key=ADMIN_KEY)
    spend(first, 4)
    assert free_tier(first)["used_today"] == 4
    first.stop()
    second = start_gateway(admin_key=ADMIN_KEY)  # the same data_dir; the sandbox's /key says 0 (it does not count unenforced)
    assert free_tier(second)["used_today"] == 4


def test_with_redis_the_days_count_survives_a_restart_elsewhere(start_gateway: Callable[..., LiveGateway],
                                                                redis_server: RedisProcess, tmp_path: Path) -> None:
    shared = {"redis_url": redis_server.url, "op_timeout_s": 0.5}
    first = start_gateway(admin_key=ADMIN_KEY, shared_state=shared, data_dir=tmp_path / "one")
    spend(first, 3)
    first.stop()
    second = start_gateway(admin_key=ADMIN_KEY, shared_state=shared, data_dir=tmp_path / "two")  # nothing on disk: Redis remembers
    spend(second, 1)
    assert free_tier(second)["used_today"] == 4


def test_key_reports_the_accounts_daily_free_counter_and_it_seeds_the_day(
        start_gateway: Callable[..., LiveGateway], sandbox: Any) -> None:
    sandbox.server.set_plan(FaultPlan(free_tier=FreeTier(enforce=True, per_minute=100, per_day=40)))
    for _ in range(3):  # another client of the same key spent 3 today
        resp = httpx.post(f"{sandbox.base_url}/chat/completions", timeout=30,
                          headers={"Authorization": "Bearer x"},
                          json={"model": "z-ai/glm-5.2:free", "messages": HELLO})
        assert resp.status_code == 200
    key = httpx.get(f"{sandbox.base_url}/key", headers={"Authorization": "Bearer x"}, timeout=10).json()["data"]
    assert key["free_model_daily_requests"] == {"limit": 40, "remaining": 37, "used": 3}
    gw = start_gateway(admin_key=ADMIN_KEY)
    budget = free_tier(gw)
    assert budget["used_today"] == 3
    assert budget["remaining_day"] == 37
    assert gw.state.manager.status()["key"]["from"] == "free_model_daily_requests"
