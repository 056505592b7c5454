"""GET / and GET /status: the operator's page (rendered by `turnout.observability.status_page`).

`gather` reads the live app state into a `StatusView`; the page needs no key and shows no secret.
"""

from __future__ import annotations

import functools
import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from turnout.api.deps import AppState, State
from turnout.api.readiness import credits_reason, failing_reason, failing_static_groups, stale_reason
from turnout.api.scrape import metrics_of
from turnout.observability.metrics import cooling_down
from turnout.observability.status_page import AliasView, MemberRow, StatusView, render

router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
@router.get("/status", response_class=HTMLResponse, summary="Status page (HTML, no key needed)")
async def status_page(request: Request, state: State) -> HTMLResponse:
    return HTMLResponse(render(gather(state, version=request.app.version)))


def gather(state: AppState, *, version: str) -> StatusView:
    """Everything the page shows, read once from the live state."""
    now = time.time()
    snapshot = state.holder.current
    minutes = metrics_of(state).activity.window(now)
    per_model: dict[str, list[int]] = {}
    for minute in minutes:
        for (model, outcome), count in minute.attempts.items():
            tally = per_model.setdefault(model, [0, 0])
            tally[0] += count if outcome == "ok" else 0
            tally[1] += count
    budget = state.budget
    budget_view = {"available": budget.available(now), "minute": budget.remaining_minute(now),
                   "day": budget.remaining_day(), "exhausted_until": budget.exhausted_until}
    common = functools.partial(StatusView, now=now, version=version, gated=state.manager.gated(),
                               refresh=state.manager.status(), budget=budget_view, minutes=minutes)
    if snapshot is None:
        return common(state="not ready", reason="no pool has been built yet", source="none", built_at=None,
                      aliases=(), tiers={}, answered={})
    pool = snapshot.pool
    cooling = cooling_down(snapshot, now)
    aliases = []
    for group in pool.groups.values():
        if group.kind == "model":
            continue
        rows = []
        for member in group.members:
            dep = pool.deployments[member.deployment_id]
            ok, total = per_model.get(dep.model, (0, 0))
            rows.append(MemberRow(rank=member.rank, order=member.order, model=dep.model, tier=dep.tier,
                                  health=member.health, score=member.score, weight=member.weight, ok=ok,
                                  total=total, cooling_s=cooling.get(dep.id)))
        aliases.append(AliasView(name=group.name, kind=group.kind, description=group.description,
                                 fallbacks=(*group.fallbacks, *group.context_window_fallbacks), rows=tuple(rows)))
    tiers: dict[str, int] = {}
    tier_of: dict[str, str] = {}
    for dep in pool.deployments.values():
        tiers[dep.tier] = tiers.get(dep.tier, 0) + 1
        tier_of[dep.model] = dep.tier
    answered: dict[str, int] = {}
    for model, (ok, _) in per_model.items():
        if ok and model in tier_of:
            answered[tier_of[model]] = answered.get(tier_of[model], 0) + ok
    routable = any(g.members for g in pool.groups.values())
    stale = stale_reason(state.manager.backoff)
    failing = failing_static_groups(pool, passive=state.manager.passive_health())
    dead = failing_reason(failing) if failing else None
    no_credits = credits_reason(state.engine.credits)
    trouble = pool.degraded_reason or stale or dead or no_credits
    condition = "not ready" if not routable else ("degraded" if trouble else "ready")
    reason = "; ".join(filter(None, (pool.degraded_reason or (None if routable else "the pool has no deployments"),
                                     dead, no_credits, stale))) or None
    return common(state=condition, reason=reason, source=pool.source, built_at=pool.built_at,
                  aliases=tuple(aliases), tiers=tiers, answered=answered)


# -- rendering ---------------------------------------------------------------------------
