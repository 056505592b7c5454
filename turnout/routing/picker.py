"""The Router's pick without the Router's per-request passes over every deployment.

The Router's full selection (`Router.select`) re-derives a group's candidates on every call (about
ten passes over the whole model list, and a cooldown read for every deployment in the
Router). For the plain case — the `simple-shuffle` strategy, no rpm/tpm limits — the
candidates of a (group, order) never change within a snapshot, so `Picker` lists the
Router's own deployment dicts once. Per request it drops the excluded ones, draws with
LiteLLM's `simple_shuffle` (the Router's weights) and asks the Router's cooldown store
about the drawn entry; only when that one is cooling does it read the cooldowns of the
rest of the group and draw again among the healthy ones. Drawing, rejecting a cooling
entry and drawing among the rest gives the same distribution as drawing among the healthy
ones in the first place, and one cache key is read instead of hundreds.

The draw is LiteLLM's `simple_shuffle` rule (a weighted pick on the Router's `weight`, else
`rpm`, else `tpm`, else uniform) with the cumulative weights of each (group, order) worked
out once per snapshot: `simple_shuffle` itself rebuilds its weight list and formats a log
argument on every call, which made a pick cost grow with the group's size.

A group with its own strategy (`strategies`: latency-based, usage-based-v2, least-busy)
gets the same candidates, cooldowns read for all of them, and the healthy ones go to the
strategy's own selector (`litellm_internals.strategy_pick`), as the Router's selection
hands them to it: a tenth of the CPU of the Router's full selection for the same choice.

Everything else (rpm/tpm accounting, the Router's own strategy, least-busy with rpm/tpm
limits, health-check routing, pre-call checks) goes to the Router's full selection.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Collection, Mapping, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from turnout.upstream import litellm_internals

if TYPE_CHECKING:
    from litellm import Router  # type: ignore[attr-defined]

_Candidates = tuple[tuple[str, str, dict[str, Any]], ...]  # (deployment id, entry id, the Router's dict)


class Picker:
    """Picks for one Router; built with its snapshot, read-only afterwards."""

    def __init__(self, router: Router, *, strategies: Mapping[str, str] | None = None) -> None:
        strategies = strategies or {}
        self._router = router
        self._candidates: dict[tuple[str, int], _Candidates] = {}
        self._full: dict[tuple[str, int], tuple[dict[str, Any], ...]] = {}
        self._cumulative: dict[tuple[str, int], list[float] | None] = {}
        self._delegated: set[str] = set()
        self._strategies = dict(strategies)
        self._entry_ids: dict[tuple[str, str], list[str]] = {}  # (group, deployment id) -> Router ids
        settings = litellm_internals.routing_settings(router)
        plain = (settings.strategy == "simple-shuffle" and not settings.pre_call_checks
                 and not settings.health_check_routing and not settings.tag_filtering)
        grouped: dict[tuple[str, int], list[tuple[str, str, dict[str, Any]]]] = {}
        for entry in litellm_internals.router_entries(router):
            group = entry["model_name"]
            params = entry.get("litellm_params") or {}
            info = entry.get("model_info") or {}
            self._entry_ids.setdefault((group, info.get("deployment") or ""), []).append(info["id"])
            strategy = strategies.get(group)
            if not plain or (_limited(params, info) and strategy in (None, "least-busy")):
                self._delegated.add(group)
            if info.get("blocked") is True or params.get("order") is None:
                continue
            grouped.setdefault((group, params["order"]), []).append((info.get("deployment") or "", info["id"], entry))
        for key, found in grouped.items():
            if key[0] not in self._delegated:
                self._candidates[key] = tuple(found)
                self._full[key] = tuple(entry for _, _, entry in found)
                self._cumulative[key] = cumulative_weights(self._full[key])

    def delegates(self, group: str) -> bool:
        """Whether picks for `group` go through the Router's full selection."""
        return group in self._delegated

    async def pick(self, group: str, order: int, exclude: Collection[str], *,
                   stream: bool = False) -> dict[str, Any] | None:
        """The Router deployment dict to try next, or None; `exclude` holds deployment ids."""
        if group in self._delegated:
            return await self._router_pick(group, order, exclude)
        strategy = self._strategies.get(group)
        if strategy is not None:
            return await self._strategy_pick(group, order, exclude, strategy=strategy, stream=stream)
        candidates = self._candidates.get((group, order), ())
        if exclude:
            candidates = tuple(c for c in candidates if c[0] not in exclude)
            entries: Sequence[dict[str, Any]] = [c[2] for c in candidates]
            cumulative = cumulative_weights(entries)
        else:
            entries = self._full.get((group, order), ())
            cumulative = self._cumulative.get((group, order))
        if not entries:
            return None
        router = self._router
        chosen = draw(entries, cumulative)
        chosen_id = chosen["model_info"]["id"]
        if not litellm_internals.may_be_cooling(router) or not litellm_internals.active_cooldowns(router, [chosen_id]):
            return chosen
        rest = [c for c in candidates if c[1] != chosen_id]
        cooling = {eid for eid, _ in litellm_internals.active_cooldowns(router, [c[1] for c in rest])}
        healthy = [c[2] for c in rest if c[1] not in cooling]
        if not healthy:
            return None
        return draw(healthy, cumulative_weights(healthy))

    async def pinned(self, group: str, order: int, deployment_id: str, *,
                     exclude: Collection[str]) -> dict[str, Any] | None:
        """The Router's dict for `deployment_id` in this tier of `group`, unless excluded or cooling down."""
        if deployment_id in exclude or group in self._delegated or group in self._strategies:
            # rpm/tpm groups: the Router's accounting decides; strategy groups: the strategy
            return None
        entry = next((c for c in self._candidates.get((group, order), ()) if c[0] == deployment_id), None)
        if entry is None:
            return None
        router = self._router
        cooling = litellm_internals.may_be_cooling(router) and litellm_internals.active_cooldowns(router, [entry[1]])
        return None if cooling else entry[2]

    async def _strategy_pick(self, group: str, order: int, exclude: Collection[str], *, strategy: str,
                             stream: bool) -> dict[str, Any] | None:
        candidates = [c for c in self._candidates.get((group, order), ()) if c[0] not in exclude]
        if not candidates:
            return None
        cooling = {eid for eid, _ in litellm_internals.active_cooldowns(self._router, [c[1] for c in candidates])} \
            if litellm_internals.may_be_cooling(self._router) else set()
        healthy = [c[2] for c in candidates if c[1] not in cooling]
        if not healthy:
            return None
        return await litellm_internals.strategy_pick(self._router, strategy, group, healthy, stream=stream)

    async def _router_pick(self, group: str, order: int, exclude: Collection[str]) -> dict[str, Any] | None:
        excluded = [eid for dep_id in exclude for eid in self._entry_ids.get((group, dep_id), ())]
        return await litellm_internals.full_pick(self._router, group, order=order, excluded=excluded)


def cumulative_weights(entries: Sequence[dict[str, Any]]) -> list[float] | None:
    """`simple_shuffle`'s weights for these Router entries, accumulated; None for a uniform pick."""
    for weight_by in ("weight", "rpm", "tpm"):
        if any(e["litellm_params"].get(weight_by) is not None for e in entries):
            cumulative = list(accumulate(e["litellm_params"].get(weight_by) or 0 for e in entries))
            if cumulative[-1] > 0:
                return cumulative
    return None


def draw(entries: Sequence[dict[str, Any]], cumulative: list[float] | None) -> dict[str, Any]:
    """One pick, as `random.choices` makes it inside `simple_shuffle` (same `random` state)."""
    if cumulative is None:
        return random.choice(entries)
    return entries[bisect(cumulative, random.random() * cumulative[-1], 0, len(entries) - 1)]


def _limited(params: dict[str, Any], info: dict[str, Any]) -> bool:
    """rpm/tpm limits need the Router's usage accounting on every pick."""
    return any(source.get(key) is not None for source in (params, info) for key in ("rpm", "tpm"))
