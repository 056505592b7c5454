"""Admin routes (admin key): the live pool with its scores, a manual rebuild, probe results, and usage by
key and tenant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from turnout.api.deps import AdminAuth, State
from turnout.errors import NotReady, UpstreamFailed
from turnout.routing.probe_feed import FedResult, apply_probe
from turnout.upstream.failures import Kind

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
            "used_today": state.budget.day_count(),
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


class ProbeResultIn(BaseModel):
    """One model's probe result, as `turnout probe --feed` sends it (its report's fields; others ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=300)
    ok: bool
    kind: Kind | None = None
    status: int | None = Field(None, ge=100, le=599)
    latency_s: float = Field(0.0, ge=0)
    retry_after_s: float | None = Field(None, ge=0, le=86400)


class ProbeFeed(BaseModel):
    results: list[ProbeResultIn] = Field(max_length=10_000)


@router.post("/probe", summary="Feed `turnout probe` results into passive health and cooldowns")
async def admin_probe(feed: ProbeFeed, state: State) -> dict[str, Any]:
    if state.holder.current is None:
        raise NotReady("No pool has been built yet.")
    results = [FedResult(model=r.model, ok=r.ok, kind=r.kind, status=r.status, latency_s=r.latency_s,
                         retry_after_s=r.retry_after_s) for r in feed.results]
    outcome = apply_probe(results, holder=state.holder, passive=state.passive,
                          cooldown_s=state.settings.probe.feed_cooldown_s)
    return {"recorded": outcome.recorded, "benched": list(outcome.benched), "not_in_pool": list(outcome.not_in_pool)}


@router.get("/usage", summary="Usage and cost today and this week, by key, tenant and model; each key's budget")
async def admin_usage(state: State) -> dict[str, Any]:
    return await state.tenancy.report()
