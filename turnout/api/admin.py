"""Admin routes (admin key): the live pool with its scores, a manual rebuild, and usage by key and tenant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from turnout.api.deps import AdminAuth, State
from turnout.errors import NotReady, UpstreamFailed

router = APIRouter(prefix="/admin", dependencies=[AdminAuth])


@router.get("/pool", summary="The live pool with scores, health and weights")
async def admin_pool(state: State) -> dict[str, Any]:
    snapshot = state.holder.current
    if snapshot is None:
        raise NotReady("No pool has been built yet.")
    pool = snapshot.pool
    return {
        "built_at": pool.built_at,
        "source": pool.source,
        "degraded_reason": pool.degraded_reason,
        "refresh": state.manager.status(),
        "free_tier": {
            "available": state.budget.available(),
            "remaining_minute": state.budget.remaining_minute(),
            "remaining_day": state.budget.remaining_day(),
            "exhausted_until": state.budget.exhausted_until,
        },
        "groups": {
            name: [
                {
                    "rank": m.rank, "order": m.order, "weight": m.weight, "score": round(m.score, 4),
                    "health": None if m.health is None else round(m.health, 4),
                    "model": pool.deployments[m.deployment_id].model, "deployment": m.deployment_id,
                    "tier": pool.deployments[m.deployment_id].tier,
                }
                for m in group.members
            ]
            for name, group in pool.groups.items()
            if group.kind != "model"
        },
    }


@router.post("/refresh", summary="Rebuild the pool now (catalogue and health)")
async def admin_refresh(state: State) -> dict[str, Any]:
    try:
        await state.manager.refresh(full=True)
    except Exception as exc:  # the refresh failed; the live pool stays as it was
        raise UpstreamFailed(
            f"Refresh failed, the current pool is kept: {state.manager.last_attempt.get('error', type(exc).__name__)}",
            status=502, code="refresh_failed",
        ) from None
    return {"status": "ok", "refresh": state.manager.status()}


@router.get("/usage", summary="Usage and cost today and this week, by key, tenant and model; each key's budget")
async def admin_usage(state: State) -> dict[str, Any]:
    return await state.tenancy.report()
