"""Liveness and readiness."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from turnout.api.deps import State
from turnout.pool.refresh import RefreshBackoff

router = APIRouter()


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
    credits = state.engine.credits
    if pool.degraded_reason:
        body.update(status="degraded", reason=pool.degraded_reason)
    if stale is not None:
        body.update(status="degraded", reason="; ".join(filter(None, (body.get("reason"), stale))))
    if credits.out:
        body.update(status="degraded", reason="; ".join(filter(None, (body.get("reason"), credits.reason()))))
    if shared is not None and not body["shared_state"]["up"]:
        lost = f"shared state: {body['shared_state']['reason']}; serving from this replica's state"
        body.update(status="degraded", reason="; ".join(filter(None, (body.get("reason"), lost))))
    return JSONResponse(body)


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
