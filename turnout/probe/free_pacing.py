"""Free models share the account's quota: a probe waits for it instead of sleeping a fixed time.

The budget is the gateway's own `FreeTierBudget` (per minute and per day, minus headroom),
with the day's allowance learned from `GET /key` (50 a day on a free-tier account, 1,000
once credits were bought) unless `pool.free_tier.requests_per_day` says otherwise. Each
free call waits until the budget admits it; a wait longer than `max_wait_s` (the day's
quota is spent, or OpenRouter said so with its daily-quota 429) skips the call instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from turnout.config import FreeTierSettings
from turnout.pool.refresh import daily_allowance
from turnout.routing.free_tier import FreeTierBudget

Sleep = Callable[[float], Awaitable[None]]


class FreePacing:
    def __init__(self, budget: FreeTierBudget, *, max_wait_s: float, clock: Callable[[], float] = time.time,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.budget = budget
        self._max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()  # one free call at a time asks the budget: admissions stay in order

    async def admit(self) -> bool:
        """Wait until a free call fits the quota and count it; False: it would not fit within `max_wait_s`."""
        async with self._lock:
            while True:
                wait = self.budget.retry_after(self._clock())
                if wait <= 0:
                    self.budget.record(self._clock())
                    return True
                if wait > self._max_wait_s:
                    return False
                await self._sleep(wait)

    def closed(self) -> bool:
        """The daily-quota 429 came while this call waited for a slot: do not spend another."""
        until = self.budget.exhausted_until
        return until is not None and until > self._clock()

    def exhausted(self, until: float) -> None:
        """OpenRouter's daily-quota 429: no free call until `until`."""
        self.budget.exhaust(until)


async def day_allowance(client: httpx.AsyncClient, *, base_url: str, api_key: str | None,
                        settings: FreeTierSettings, timeout_s: float) -> tuple[int | None, dict[str, Any]]:
    """Free requests a day for this key: the setting, else from GET /key; and what /key said."""
    if settings.requests_per_day is not None:
        return settings.requests_per_day, {}
    try:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        response = await client.get(f"{base_url.rstrip('/')}/key", headers=headers, timeout=timeout_s)
        data = response.json().get("data") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None, {}
    per_day = daily_allowance(data)
    return per_day, ({"is_free_tier": data["is_free_tier"]} if per_day is not None and isinstance(data, dict) else {})


def free_budget(settings: FreeTierSettings, *, per_day: int | None, clock: Callable[[], float]) -> FreeTierBudget:
    budget = FreeTierBudget(settings, clock=clock)
    budget.learn_limits(per_day=per_day)
    return budget
