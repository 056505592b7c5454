"""The tenancy rules as plain tables, on an injected clock: windows, resets, tenants, persistence."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from turnout.config import Settings
from turnout.errors import Forbidden, KeyLimited, Unauthorized
from turnout.routing.tenants import (
    InProcessSpend,
    KeyRing,
    Tenancy,
    Totals,
    day_of,
    seconds_to_midnight,
    week_of,
)

WED_NOON = 1796212800.0  # 2026-12-02 12:00:00 UTC, a Wednesday


def settings(**key: Any) -> Settings:
    return Settings(keys=[{"name": "k", "key": "sk-k-0123456789", **key}], api_keys="sk-plain-0123456789",
                    admin_key="admin-0123456789")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("now", "day", "week", "to_midnight"), [
    (WED_NOON, "2026-12-02", ["2026-11-30", "2026-12-01", "2026-12-02"], 43200),
    (WED_NOON - 12 * 3600 - 2 * 86400, "2026-11-30", ["2026-11-30"], 86400),  # Monday 00:00
    (WED_NOON + 12 * 3600 - 1, "2026-12-02", ["2026-11-30", "2026-12-01", "2026-12-02"], 1),
])
def test_days_weeks_and_the_budget_reset(now: float, day: str, week: list[str], to_midnight: float) -> None:
    assert day_of(now) == day and week_of(now) == week and seconds_to_midnight(now) == pytest.approx(to_midnight)


def test_identify_says_which_key_and_refuses_the_rest() -> None:
    ring = KeyRing(settings())
    assert ring.identify("sk-k-0123456789").key == "k"
    assert ring.identify("sk-plain-0123456789").key == "default"
    assert ring.identify("admin-0123456789").key == "admin"
    for bad in (None, "", "sk-k-012345678", "sk-k-0123456789x"):
        with pytest.raises(Unauthorized):
            ring.identify(bad)
    assert KeyRing(Settings()).identify(None).key == "anonymous"


@pytest.mark.parametrize(("requested", "counted"), [
    (None, "acme"), ("acme-eu", "acme-eu"), ("someone", "acme"), (7, "acme"), ("acme", "acme")])
def test_a_client_tenant_counts_only_when_the_key_lists_it(requested: Any, counted: str) -> None:
    caller = KeyRing(settings(tenant="acme", tenants=["acme-eu"])).identify("sk-k-0123456789")
    assert caller.tenant_for(requested) == counted


def test_the_rpm_window_slides_and_retry_after_is_when_a_slot_frees() -> None:
    clock = Clock(WED_NOON)
    tenancy = Tenancy(keys=KeyRing(settings(rpm=2)), store=InProcessSpend(), clock=clock)
    caller = tenancy.keys.identify("sk-k-0123456789")

    async def run() -> None:
        await tenancy.admit(caller, "g")
        clock.now += 20
        await tenancy.admit(caller, "g")
        clock.now += 10
        with pytest.raises(KeyLimited) as refused:
            await tenancy.admit(caller, "g")
        assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "30"
        clock.now += 30  # the first request left the window
        await tenancy.admit(caller, "g")

    asyncio.run(run())


def test_the_budget_counts_the_utc_day_and_resets_at_midnight() -> None:
    clock = Clock(WED_NOON)
    tenancy = Tenancy(keys=KeyRing(settings(daily_budget_usd=0.5, models=["g"])), store=InProcessSpend(),
                      clock=clock)
    caller = tenancy.keys.identify("sk-k-0123456789")

    async def run() -> None:
        with pytest.raises(Forbidden):
            await tenancy.admit(caller, "other")
        await tenancy.record(caller, "k", model="m", usage={"prompt_tokens": 1, "completion_tokens": 2}, cost_usd=0.3)
        await tenancy.admit(caller, "g")
        await tenancy.record(caller, "k", model="m", usage=None, cost_usd=0.2)
        with pytest.raises(KeyLimited) as refused:
            await tenancy.admit(caller, "g")
        assert refused.value.headers["Retry-After"] == str(12 * 3600)
        clock.now += 12 * 3600  # Thursday 00:00 UTC
        await tenancy.admit(caller, "g")
        report = await tenancy.report()
        assert report["today"]["total"]["requests"] == 0 and report["week"]["total"]["requests"] == 2
        assert report["week"]["models"]["m"]["cost_usd"] == pytest.approx(0.5)

    asyncio.run(run())


def test_the_store_survives_a_restart_and_forgets_old_weeks(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    store = InProcessSpend(path)

    async def fill() -> None:
        await store.add(("2026-11-01", "k", "t", "m"), Totals(requests=1, cost_usd=9.0))
        await store.add(("2026-12-02", "k", "t", "m"), Totals(requests=2, cost_usd=0.25, prompt_tokens=3))

    asyncio.run(fill())
    store.write(store.rows_to_save(today="2026-12-02"))
    again = InProcessSpend(path)
    again.load()
    assert asyncio.run(again.spent("2026-12-02", "k")) == 0.25
    assert asyncio.run(again.spent("2026-11-01", "k")) == 0.0
    rows = asyncio.run(again.rows(["2026-12-02"]))
    assert rows == [(("2026-12-02", "k", "t", "m"), Totals(requests=2, cost_usd=0.25, prompt_tokens=3))]
    path.write_text("{not json", encoding="utf-8")
    broken = InProcessSpend(path)
    broken.load()  # a damaged file starts from zero, with a warning
    assert asyncio.run(broken.spent("2026-12-02", "k")) == 0.0
