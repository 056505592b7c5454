"""The free quota and rpm decided across replicas by one Lua call, against a real redis-server."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.shared.conftest import RedisProcess
from turnout.config import FreeTierSettings, SharedStateSettings
from turnout.pool.model import Deployment
from turnout.routing.admission import LocalAdmission
from turnout.routing.free_tier import FreeTierBudget
from turnout.shared.account_limits import SharedAdmission
from turnout.shared.link import TIMEOUTS_DOWN, RedisLink

FREE = Deployment(id="m:free", model="m:free", provider="openrouter", upstream_model="m:free", wire="openai",
                  api_base="http://127.0.0.1:9", credential=None, tier="free")
LIMITED = Deployment(id="local", model="local", provider="openai", upstream_model="x", wire="openai",
                     api_base="http://127.0.0.1:9", credential=None, tier="static", rpm=3)


async def replicas(server: RedisProcess, n: int, *, op_timeout_s: float = 5.0, **free: int) -> list[SharedAdmission]:
    """Generous timeouts unless a test is about them: a call that times out is decided locally,
    which is right for a slow Redis but would blur what these tests count on a busy machine."""
    found = []
    for _ in range(n):
        link = RedisLink(SharedStateSettings(redis_url=server.url, key_prefix="t:", op_timeout_s=op_timeout_s))
        await link.start()
        assert link.up
        budget = FreeTierBudget(FreeTierSettings(**free))
        found.append(SharedAdmission(link, LocalAdmission(budget)))
    return found


@pytest.mark.asyncio
async def test_three_replicas_together_stay_under_the_account_limit(redis_server: RedisProcess) -> None:
    three = await replicas(redis_server, 3, requests_per_minute=10, headroom=2)
    try:
        answers = await asyncio.gather(*[three[i % 3].admit(FREE) for i in range(30)])
        assert sum(a is None for a in answers) == 8
        refused = [a for a in answers if a is not None]
        assert {a.reason for a in refused} == {"free_quota"}
        assert all(0 < a.retry_after_s <= 60 for a in refused)
        # a replica's own view counts at least its own admissions (the account's count as of its
        # last one); under stress-ng the best view was once 4 of the 8: see the session note
        own = [sum(1 for i, a in enumerate(answers) if a is None and i % 3 == k) for k in range(3)]
        used = [10 - r.budget.remaining_minute() for r in three]
        assert all(u >= o for u, o in zip(used, own, strict=True)), (used, own)
        assert not any(r.budget.available() for r in three)
    finally:
        for r in three:
            await r._link.close()


@pytest.mark.asyncio
async def test_rpm_holds_across_replicas(redis_server: RedisProcess) -> None:
    three = await replicas(redis_server, 3)
    try:
        answers = await asyncio.gather(*[three[i % 3].admit(LIMITED) for i in range(9)])
        assert sum(a is None for a in answers) == 3
        assert {a.reason for a in answers if a is not None} == {"deployment_limit"}
    finally:
        for r in three:
            await r._link.close()


@pytest.mark.asyncio
async def test_a_daily_stop_seen_by_one_replica_reaches_the_others(redis_server: RedisProcess) -> None:
    one, other = await replicas(redis_server, 2)
    try:
        assert await other.admit(FREE) is None
        one.exhaust(time.time() + 3600)
        for _ in range(100):
            await asyncio.sleep(0.01)
            refusal = await other.admit(FREE)
            if refusal is not None:
                break
        assert refusal is not None and refusal.reason == "free_quota" and refusal.retry_after_s > 3000
        assert other.budget.exhausted_until is not None
    finally:
        await one._link.close()
        await other._link.close()


@pytest.mark.asyncio
async def test_a_stopped_redis_costs_one_timeout_then_nothing(redis_server: RedisProcess) -> None:
    (one,) = await replicas(redis_server, 1, op_timeout_s=0.05, requests_per_minute=5, headroom=0)
    try:
        assert await one.admit(FREE) is None
        redis_server.pause()
        started = time.monotonic()
        first = [await one.admit(FREE) for _ in range(TIMEOUTS_DOWN)]  # each waits op_timeout_s, then local
        first_s = time.monotonic() - started
        started = time.monotonic()
        rest = [await one.admit(FREE) for _ in range(10)]
        rest_s = time.monotonic() - started
        assert first == [None] * TIMEOUTS_DOWN and first_s < 2.0
        assert rest_s < 0.5  # the link is down: no call waits on Redis
        assert sum(r is None for r in rest) == 1  # the local budget goes on from the account's count (1 + 3)
        assert not one._link.up and "Redis" in (one._link.reason or "")
        redis_server.resume()
        for _ in range(200):
            if one._link.up:
                break
            await asyncio.sleep(0.05)
        assert one._link.up
    finally:
        redis_server.resume()
        await one._link.close()
