"""Liveness and readiness."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from turnout.api.deps import State

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
    }
    if not routable:
        body.update(status="not_ready", reason="the pool has no deployments")
        return JSONResponse(body, status_code=503)
    shared = state.extras.get("shared")
    if shared is not None:
        shared_status = shared.status()
        body["shared_state"] = {k: shared_status[k] for k in ("up", "reason", "leader", "pool_version")
                                if k in shared_status}
    credits = state.engine.credits
    if pool.degraded_reason:
        body.update(status="degraded", reason=pool.degraded_reason)
    elif credits.out:
        body.update(status="degraded", reason=credits.reason())
    elif shared is not None and not body["shared_state"]["up"]:
        body.update(status="degraded",
                    reason=f"shared state: {body['shared_state']['reason']}; serving from this replica's state")
    return JSONResponse(body)
