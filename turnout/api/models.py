"""GET /v1/models and /v1/models/{id}: aliases and every concrete model in the pool.

One listing serves both kinds of client: OpenAI's list shape (`object`, `data[].id`,
`created`, `owned_by`) with Anthropic's fields beside it (`data[].type`, `display_name`,
`created_at`; `has_more`, `first_id`, `last_id`), so Claude Code and the Anthropic SDK
can discover models from the same route.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from turnout.api.deps import ClientAuth, ClientCaller, State
from turnout.errors import Forbidden, NotReady
from turnout.pool.model import Deployment, Group, Pool

router = APIRouter(dependencies=[ClientAuth])


@router.get("/v1/models", summary="List models and aliases")
async def list_models(state: State, caller: ClientCaller) -> dict[str, Any]:
    snapshot = state.holder.current
    if snapshot is None:
        raise NotReady("No routable pool yet; see GET /readyz.")
    allowed = caller.spec.models if caller.spec is not None else []  # a key limited to some models lists those
    data = [describe(group, snapshot.pool) for group in snapshot.pool.groups.values()
            if not allowed or group.name in allowed]
    return {"object": "list", "data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}


@router.get("/v1/models/{model_id:path}", summary="Describe one model or alias")
async def get_model(model_id: str, state: State, caller: ClientCaller) -> dict[str, Any]:
    snapshot = state.holder.current
    if snapshot is None:
        raise NotReady("No routable pool yet; see GET /readyz.")
    group = snapshot.resolve(model_id)
    if caller.spec is not None and caller.spec.models and group not in caller.spec.models:
        raise Forbidden(f"The key '{caller.key}' may not use the model '{group}'.", param="model",
                        code="model_not_allowed")
    return describe(snapshot.pool.groups[group], snapshot.pool)


def describe(group: Group, pool: Pool) -> dict[str, Any]:
    deps = [pool.deployments[m.deployment_id] for m in group.members]
    entry: dict[str, Any] = {
        "id": group.name,
        "object": "model",
        "created": int(pool.built_at),
        "owned_by": _owner(group, deps),
        "type": "model",
        "display_name": group.name,
        "created_at": datetime.fromtimestamp(int(pool.built_at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kind": group.kind,
        "tier": _tier(deps),
        "context_length": max((d.context_length or 0 for d in deps), default=0) or None,
        "capabilities": {
            "tools": bool(deps) and all(d.capabilities.tools for d in deps),
            "vision": any(d.capabilities.vision for d in deps),
            "json": bool(deps) and all(d.capabilities.json_mode for d in deps),
            "reasoning": any(d.capabilities.reasoning for d in deps),
            "image_output": any(d.capabilities.image_output for d in deps),
        },
        "pricing": _pricing(deps),
    }
    if group.kind != "model":
        entry["description"] = group.description
        entry["members"] = [pool.deployments[m.deployment_id].model for m in group.members]
        entry["fallbacks"] = list(group.fallbacks)
        # The other kinds: where a request goes on a context-window error, on a content-policy refusal.
        entry["context_window_fallbacks"] = list(group.context_window_fallbacks)
        entry["content_policy_fallbacks"] = list(group.content_policy_fallbacks)
    return entry


def _owner(group: Group, deps: list[Deployment]) -> str:
    if group.kind == "model" and deps:
        return deps[0].model.split("/", 1)[0]
    return "turnout"


def _tier(deps: list[Deployment]) -> str:
    tiers = {d.tier for d in deps}
    return tiers.pop() if len(tiers) == 1 else ("mixed" if tiers else "none")


def _pricing(deps: list[Deployment]) -> dict[str, float]:
    if not deps:
        return {"prompt": 0.0, "completion": 0.0}
    return {"prompt": min(d.prompt_price for d in deps), "completion": min(d.completion_price for d in deps)}
