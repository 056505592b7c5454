"""Failed refreshes back off exponentially (jittered, capped at the health interval), the state
change is logged once and the recovery once, and the failures are counted (metric, /readyz)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from turnout.pool.provider_health import PassiveStats
from turnout.pool.refresh import PoolManager, RefreshBackoff
from turnout.routing.credits import PaidCredits
from turnout.routing.free_tier import FreeTierBudget
from turnout.routing.publisher import SnapshotPublisher
from turnout.routing.snapshot import SnapshotHolder
from turnout.sandbox import FaultPlan


@pytest.mark.parametrize(("rand", "expected"), [
    (1.0, [5, 10, 20, 40, 60, 60, 60]),      # the ceiling: doubling, capped at max_s
    (0.0, [2.5, 5, 10, 20, 30, 30, 30]),     # the jitter's floor: half the ceiling
])
def test_delays_double_and_stop_at_the_cap(rand: float, expected: list[float]) -> None:
    backoff = RefreshBackoff(min_s=5, max_s=60, rand=lambda: rand)
    delays = [backoff.failed(1000.0 + i, "ConnectError") for i in range(len(expected))]
    assert delays == expected
    assert backoff.failures == len(expected) and backoff.since == 1000.0
    assert backoff.retry_at == 1000.0 + len(expected) - 1 + expected[-1]
    backoff.succeeded()
    assert (backoff.failing, backoff.since, backoff.retry_at, backoff.error) == (False, None, None, None)
    assert backoff.failed(2000.0, "again") == expected[0]


class FakeTime:
    """A clock the loop's sleep advances; stops the loop after `limit` sleeps."""

    def __init__(self, *, limit: int, on_sleep: Callable[[int], None]) -> None:
        self.now = 1_800_000_000.0
        self.sleeps: list[float] = []
        self._limit = limit
        self._on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if len(self.sleeps) > self._limit:
            raise asyncio.CancelledError
        self._on_sleep(len(self.sleeps))


def test_the_loop_backs_off_logs_once_and_recovers(make_settings: Callable[..., Any], sandbox: Any,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="turnout.refresh")
    settings = make_settings(pool={"health": {"enabled": False}, "health_refresh_s": 60,
                                   "refresh_retry_min_s": 2, "jitter": 0})
    sandbox.server.set_plan(FaultPlan(catalogue_error=503))
    recover_after = 7

    def on_sleep(count: int) -> None:
        if count == recover_after:
            sandbox.server.set_plan(FaultPlan())

    fake = FakeTime(limit=recover_after + 1, on_sleep=on_sleep)

    async def scenario() -> tuple[PoolManager, str]:
        async with httpx.AsyncClient() as http:
            holder = SnapshotHolder()
            manager = PoolManager(settings=settings, outlet=SnapshotPublisher(holder, settings=settings), http=http,
                                  base_url=settings.openrouter_base_url, api_key="k", passive=PassiveStats(),
                                  budget=FreeTierBudget(settings.pool.free_tier), credits=PaidCredits(),
                                  clock=fake.clock, sleep=fake.sleep)
            await manager.start()  # the first failure: a static-only pool is served
            assert manager.backoff.failures == 1
            with pytest.raises(asyncio.CancelledError):
                await manager.run()
            source = holder.current.pool.source if holder.current else "none"
            holder.close()
            return manager, source

    manager, source = asyncio.run(scenario())
    # 1 failure at start + 6 in the loop, then the 7th try in the loop succeeds.
    retries = fake.sleeps[:recover_after]
    assert all(0.5 * c <= s <= c for s, c in zip(retries, [2, 4, 8, 16, 32, 60, 60], strict=True)), retries
    assert retries[-1] > 25, "capped at the health interval, not at 1 s"
    assert fake.sleeps[-1] >= 50, "after recovery the normal schedule (health_refresh_s) applies"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "refresh failed" in r.getMessage()]
    assert len(warnings) == 1 and "503" in warnings[0].getMessage()
    recovered = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    assert len(recovered) == 1 and "after 7 failed tries" in recovered[0]
    assert manager.status()["consecutive_failures"] == 0
    assert source == "live"


def test_readyz_and_metrics_say_since_when_the_pool_is_stale(start_gateway: Callable[..., Any],
                                                             sandbox: Any) -> None:
    gw = start_gateway(admin_key="admin-key-backoff", pool={"health": {"enabled": False}})
    assert httpx.get(f"{gw.url}/readyz").json()["status"] == "ready"
    sandbox.server.set_plan(FaultPlan(catalogue_error=500))
    for _ in range(2):
        resp = httpx.post(f"{gw.url}/admin/refresh", headers={"Authorization": "Bearer admin-key-backoff"}, timeout=30)
        assert resp.status_code == 502
    ready = httpx.get(f"{gw.url}/readyz").json()
    assert ready["status"] == "degraded" and ready["source"] == "live"
    assert ready["refresh_failures"] == 2 and ready["stale_since"].endswith("Z")
    assert "pool refreshes failing since" in ready["reason"] and "500" in ready["reason"]
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert "turnout_pool_refresh_consecutive_failures 2.0" in metrics
    page = httpx.get(f"{gw.url}/status").text
    assert "pool refreshes failing since" in page
    sandbox.server.set_plan(FaultPlan())
    httpx.post(f"{gw.url}/admin/refresh", headers={"Authorization": "Bearer admin-key-backoff"}, timeout=30).raise_for_status()
    ready = httpx.get(f"{gw.url}/readyz").json()
    assert ready["status"] == "ready" and "stale_since" not in ready
    assert "turnout_pool_refresh_consecutive_failures 0.0" in httpx.get(f"{gw.url}/metrics").text
