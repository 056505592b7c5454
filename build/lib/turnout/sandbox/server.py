"""`SandboxServer`: the fake OpenRouter's state and lifecycle.

The HTTP shell lives in `routes.py` (OpenRouter's API) and `control.py`
(`/__sandbox/...`); this module owns the catalogue, the plan, the random
source, the free-tier counters and the call log.  Plan and catalogue are
replaced with one assignment each, so another thread may swap them.
"""

from __future__ import annotations

import asyncio
import random
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from aiohttp import web

from turnout.sandbox.calls import CallLog, SandboxCall
from turnout.sandbox.decide import CallContext, Fate, decide
from turnout.sandbox.faults import FaultPlan, ModelFaults
from turnout.sandbox.model_list import ModelInfo, ModelList, load_model_list
from turnout.sandbox.quota import FreeTierGate
from turnout.sandbox.routes import build_app

API_PREFIX = "/api/v1"
_SHUTDOWN_TIMEOUT_S = 0.25
_MAX_BODY_BYTES = 64 * 1024 * 1024


class SandboxServer:
    """A loopback HTTP server imitating OpenRouter, with fault injection."""

    def __init__(
        self,
        catalogue_path: Path | None = None,
        plan: FaultPlan | None = None,
        require_key: str | None = None,
        seed: int = 0,
    ) -> None:
        self.catalogue: ModelList = load_model_list(catalogue_path)
        self.require_key = require_key
        self._seed = seed
        self._plan = plan or FaultPlan()
        self._rng = random.Random(self._plan_seed(self._plan))
        self._fail_next: dict[str, int] = {}
        self._plan_at = time.monotonic()  # when the plan was set: `fail_for_s` windows start here
        self._free_tier = FreeTierGate(self._plan.free_tier)
        self._log = CallLog()
        self._spent = 0.0
        self._stopping: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # -- lifecycle ---------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._runner is not None:
            raise RuntimeError("sandbox already started")
        self._stopping = asyncio.Event()
        runner = web.AppRunner(
            build_app(self, client_max_size=_MAX_BODY_BYTES),
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=_SHUTDOWN_TIMEOUT_S,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._base_url = f"http://{shown}:{bound_port}{API_PREFIX}"

    async def stop(self) -> None:
        """Close everything, hung and stalled connections included."""
        if self._stopping is not None:
            self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("sandbox not started")
        return self._base_url

    @property
    def stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    async def wait_stopped(self) -> None:
        if self._stopping is not None:
            await self._stopping.wait()

    async def pause(self, ms: float) -> None:
        """Sleep `ms`, waking early when the server stops."""
        if ms <= 0:
            return
        if self._stopping is None or ms < 50:
            await asyncio.sleep(ms / 1000)
            return
        with suppress(TimeoutError):
            async with asyncio.timeout(ms / 1000):
                await self._stopping.wait()

    # -- plan ----------------------------------------------------------------

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    def set_plan(self, plan: FaultPlan | dict[str, Any]) -> None:
        """Replace the whole plan; fail_next counters restart from the new plan."""
        new = plan if isinstance(plan, FaultPlan) else FaultPlan.model_validate(plan)
        old, self._plan = self._plan, new
        self._fail_next = {}
        self._plan_at = time.monotonic()
        if new.seed is not None:
            self._rng = random.Random(new.seed)
        if new.free_tier != old.free_tier:
            self._free_tier = FreeTierGate(new.free_tier)

    def faults_for(self, model: ModelInfo) -> ModelFaults:
        return self._plan.faults_for(model.id, is_free=model.is_free)

    def decide(self, ctx: CallContext) -> Fate:
        u = self._rng.random()  # exactly one draw per call keeps runs reproducible
        refusal = None
        fail_next = self._take_fail_next(ctx.model.id, ctx.faults) or self._in_outage(ctx.faults)
        if not fail_next and ctx.model.is_free and self._plan.free_tier.enforce:
            refusal = self._free_tier.admit()
        return decide(ctx, u=u, fail_next=fail_next, free_tier_refusal=refusal)

    def _take_fail_next(self, model_id: str, faults: ModelFaults) -> bool:
        remaining = self._fail_next.get(model_id, faults.fail_next)
        if remaining <= 0:
            return False
        self._fail_next[model_id] = remaining - 1
        return True

    def _in_outage(self, faults: ModelFaults) -> bool:
        return faults.fail_for_s > 0 and time.monotonic() - self._plan_at < faults.fail_for_s

    def _plan_seed(self, plan: FaultPlan) -> int:
        return plan.seed if plan.seed is not None else self._seed

    # -- catalogue -----------------------------------------------------------

    def add_model(self, entry: dict[str, Any]) -> None:
        self.catalogue = self.catalogue.with_model(entry)

    def remove_model(self, model_id: str) -> None:
        """Remove a model; KeyError if it is not in the catalogue."""
        self.catalogue = self.catalogue.without_model(model_id)

    # -- calls and accounting ------------------------------------------------

    @property
    def calls(self) -> list[SandboxCall]:
        return self._log.all()

    def calls_for(self, model: str) -> list[SandboxCall]:
        return [call for call in self._log.all() if call.model == model]

    def reset_calls(self) -> None:
        self._log.clear()

    def reset(self) -> None:
        """Forget calls, counters, spend and free-tier usage; reseed."""
        self._log.clear()
        self._fail_next = {}
        self._plan_at = time.monotonic()
        self._rng = random.Random(self._plan_seed(self._plan))
        self._free_tier = FreeTierGate(self._plan.free_tier)
        self._spent = 0.0

    @property
    def log(self) -> CallLog:
        return self._log

    @property
    def free_tier(self) -> FreeTierGate:
        return self._free_tier

    @property
    def spent(self) -> float:
        return self._spent

    def charge(self, cost: float) -> None:
        self._spent += cost

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
