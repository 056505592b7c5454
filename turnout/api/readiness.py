"""Liveness and readiness."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from turnout.api.deps import State
from turnout.pool.model import Pool
from turnout.pool.provider_health import PassiveHealth
from turnout.pool.refresh import RefreshBackoff
from turnout.routing.credits import PaidCredits

if TYPE_CHECKING:
    from turnout.api.deps import AppState

router = APIRouter()
_FAILING_SAMPLES = 2


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="A routable pool exists (says why not)")
async def readyz(state: State) -> JSONResponse:
    snapshot = state.holder.current
    if snapshot is None:
        return JSONResponse({"status": "not_ready", "reason": "no pool has been built yet"}, status_code=503)
    pool = snapshot.pool
    routable = [g.name for g in pool.groups.values() if g.members]
    body: dict[str, Any] = {
        "status": "ready",
        "source": pool.source,
        "pool_age_s": round(time.time() - pool.built_at, 1),
        "deployments": len(pool.deployments),
        "routable_groups": len(routable),
        "empty_aliases": sorted(g.name for g in pool.groups.values() if g.kind == "alias" and not g.members),
        "sandbox": state.settings.use_sandbox,  # true: OpenRouter is the simulated sandbox
    }
    backoff = state.manager.backoff
    stale = stale_reason(backoff)
    if stale is not None:
        body.update(stale_since=_iso(backoff.since), refresh_failures=backoff.failures)
    if not routable:
        why = f": {pool.degraded_reason}" if pool.degraded_reason else ""
        body.update(status="not_ready", reason="; ".join(filter(None, (f"the pool has no deployments{why}", stale))))
        return JSONResponse(body, status_code=503)
    shared = state.extras.get("shared")
    if shared is not None:
        shared_status = shared.status()
        body["shared_state"] = {k: shared_status[k] for k in ("up", "reason", "leader", "pool_version")
                                if k in shared_status}
    seen = _Seen(state=state, pool=pool, stale=stale, shared=body.get("shared_state"))
    reasons: list[str] = []
    for check in DEGRADATIONS:
        found = check(seen)
        if found is not None:
            reasons.append(found[0])
            body.update(found[1])
    if reasons:
        body.update(status="degraded", reason="; ".join(reasons))
    return JSONResponse(body)


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the degradation checks read."""

    state: AppState
    pool: Pool
    stale: str | None
    shared: Mapping[str, Any] | None


Degradation = tuple[str, dict[str, Any]]  # the reason, and fields it adds to the answer


def _pool_degraded(seen: _Seen) -> Degradation | None:
    return (seen.pool.degraded_reason, {}) if seen.pool.degraded_reason else None


def _failing_groups(seen: _Seen) -> Degradation | None:
    failing = failing_static_groups(seen.pool, passive=seen.state.manager.passive_health())
    return (failing_reason(failing), {"failing_groups": failing}) if failing else None


def _no_credits(seen: _Seen) -> Degradation | None:
    reason = credits_reason(seen.state.engine.credits)
    return (reason, {"paid": "off: no credits"}) if reason is not None else None


def _refreshes_failing(seen: _Seen) -> Degradation | None:
    return (seen.stale, {}) if seen.stale is not None else None


def _shared_state_lost(seen: _Seen) -> Degradation | None:
    if seen.shared is None or seen.shared["up"]:
        return None
    return f"shared state: {seen.shared['reason']}; serving from this replica's state", {}


# Why a routable gateway answers "degraded": each check, in the order its reason is given.
DEGRADATIONS: tuple[Callable[[_Seen], Degradation | None], ...] = (
    _pool_degraded, _failing_groups, _no_credits, _refreshes_failing, _shared_state_lost)


def failing_static_groups(pool: Pool, *, passive: Mapping[str, PassiveHealth]) -> list[str]:
    """Static groups none of whose deployments answered lately: each one's recent attempts (at least
    `_FAILING_SAMPLES`, over the last 10 minutes) all failed, mostly with errors rather than 429s
    — an Ollama that is not running, a key that was never set. A rate-limited group is not dead."""
    def failing(dep_id: str) -> bool:
        seen = passive.get(dep_id)
        return seen is not None and seen.samples >= _FAILING_SAMPLES and seen.success_rate == 0 \
            and seen.error_rate >= 0.5

    return sorted(g.name for g in pool.groups.values()
                  if g.kind == "static" and g.members and all(failing(m.deployment_id) for m in g.members))


def credits_reason(credits: PaidCredits) -> str | None:
    return credits.reason()


def failing_reason(groups: list[str]) -> str:
    return f"every deployment of static group(s) {', '.join(groups)} is failing (see /status)"


def stale_reason(backoff: RefreshBackoff) -> str | None:
    """Refreshes are failing: since when, how often, the last error (the pool being served is kept)."""
    if not backoff.failing:
        return None
    return (f"pool refreshes failing since {_iso(backoff.since)} ({backoff.failures} in a row, retrying with "
            f"backoff): {backoff.error}")


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
