"""Run a plan: every target once, `concurrency` calls at a time, free ones paced by the quota.

Results arrive through `on_result` as they finish (the progress bar and the partial report
read them); a cancelled run (Ctrl-C) stops the calls in flight and keeps what finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from turnout.probe.call import Ask, Called, Endpoint
from turnout.probe.free_pacing import FreePacing
from turnout.probe.results import ProbeResult
from turnout.probe.targets import Plan, Target

QUOTA_SKIP = "free quota spent"
CAP_SKIP = "over --max-requests"
Caller = Callable[..., Awaitable[Called]]


async def run_plan(plan: Plan, *, client: httpx.AsyncClient, endpoint: Endpoint, ask: Ask, pacing: FreePacing,
                   on_result: Callable[[ProbeResult], None], call: Caller) -> None:
    """Probe every target of `plan`; `call` is `call.probe_model` (a parameter for the tests' sake)."""
    slots = asyncio.Semaphore(plan.concurrency)

    async def one(target: Target) -> None:
        # The quota first, then a slot: a free call waiting for the next minute holds no slot paid ones need.
        if target.tier == "free" and not await pacing.admit():
            on_result(ProbeResult(model=target.model, tier=target.tier, ok=False, skipped=QUOTA_SKIP))
            return
        async with slots:
            if target.tier == "free" and pacing.closed():
                on_result(ProbeResult(model=target.model, tier=target.tier, ok=False, skipped=QUOTA_SKIP))
                return
            called = await call(client, endpoint=endpoint, ask=ask, model=target.model, tier=target.tier)
        if called.reset_at is not None:
            pacing.exhausted(called.reset_at)
        on_result(called.result)

    for target in plan.capped:
        on_result(ProbeResult(model=target.model, tier=target.tier, ok=False, skipped=CAP_SKIP))
    async with asyncio.TaskGroup() as group:
        for target in plan.targets:
            group.create_task(one(target), name=f"probe {target.model}")
