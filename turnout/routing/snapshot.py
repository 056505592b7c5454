"""The live routing state: one immutable snapshot (pool + LiteLLM Router), swapped atomically.

A request reads `holder.current` once and keeps that snapshot for its whole life. A rebuild
fills a new Router in paced slices on the event loop (the first one, with nothing served
yet, in a thread in one go) and publishes it with one assignment; the old
Router's cooldowns carry over (deployment ids are stable) and its global LiteLLM callbacks
are unhooked.
"""

from __future__ import annotations

import difflib
import gc
import logging
import os
import sys
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from yarl import URL

from turnout.config import Settings
from turnout.errors import ModelNotFound
from turnout.pool.model import OPENROUTER_CREDENTIAL, Deployment, Pool
from turnout.routing.picker import Picker
from turnout.upstream import litellm_internals

if TYPE_CHECKING:
    from litellm import Router  # type: ignore[attr-defined]

log = logging.getLogger("turnout.snapshot")


def entry_id(deployment_id: str, group: str) -> str:
    """The Router's id for one deployment inside one group."""
    return f"{deployment_id}@{group}"


@dataclass(frozen=True, slots=True)
class Fitness:
    """Which deployments cannot take a request, indexed once per pool instead of per request."""

    no_tools: frozenset[str]
    no_vision: frozenset[str]
    no_image_output: frozenset[str]
    free: frozenset[str]
    paid_openrouter: frozenset[str]  # skipped while the account has no credits (routing.credits)
    context_limits: tuple[int, ...]  # ascending
    context_ids: tuple[str, ...]  # the deployment with each limit

    @classmethod
    def of(cls, pool: Pool) -> Fitness:
        deps = pool.deployments.values()
        by_context = sorted((d.context_length, d.id) for d in deps if d.context_length)
        return cls(no_tools=frozenset(d.id for d in deps if not d.capabilities.tools),
                   no_vision=frozenset(d.id for d in deps if not d.capabilities.vision),
                   no_image_output=frozenset(d.id for d in deps if not d.capabilities.image_output),
                   free=frozenset(d.id for d in deps if d.tier == "free"),
                   paid_openrouter=frozenset(d.id for d in deps
                                             if d.tier == "paid" and d.credential == OPENROUTER_CREDENTIAL),
                   context_limits=tuple(n for n, _ in by_context), context_ids=tuple(i for _, i in by_context))

    def unfit(self, *, tools: bool, vision: bool, prompt_tokens: int, image_output: bool = False) -> set[str]:
        """Deployments lacking tools, vision or image output the request needs, or too small for its prompt."""
        found: set[str] = set(self.context_ids[:bisect_left(self.context_limits, prompt_tokens)])
        if tools:
            found |= self.no_tools
        if vision:
            found |= self.no_vision
        if image_output:
            found |= self.no_image_output
        return found


@dataclass(frozen=True, slots=True)
class Snapshot:
    pool: Pool
    router: Router
    picker: Picker = field(repr=False)
    entries: Mapping[str, tuple[str, ...]]
    orders: Mapping[str, tuple[int, ...]]
    credentials: Mapping[str, str | None] = field(repr=False)
    urls: Mapping[str, URL]
    built_at: float
    fitness: Fitness = field(repr=False)
    strategies: Mapping[str, str] = field(default_factory=dict)  # group -> its Router strategy (not simple-shuffle)

    def resolve(self, name: str) -> str:
        """The group a client's model name routes to, or ModelNotFound with close names."""
        if name in self.pool.groups:
            return name
        lowered = name.lower()
        for candidate in self.pool.groups:
            if candidate.lower() == lowered:
                return candidate
        close = difflib.get_close_matches(name, list(self.pool.groups), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else " See GET /v1/models."
        raise ModelNotFound(f"The model '{name}' does not exist on this gateway.{hint}", param="model")

    def deployment(self, deployment_id: str) -> Deployment:
        return self.pool.deployments[deployment_id]

    def api_key(self, deployment: Deployment) -> str | None:
        return self.credentials.get(deployment.id)

    def url(self, deployment: Deployment) -> URL:
        return self.urls[deployment.id]

    def strategy_members(self, group: str) -> list[tuple[str, str]]:
        """(Router entry id, LiteLLM model) of each member of `group`, as its strategy keys them."""
        return [(entry_id(d.id, group), d.litellm_model) for _, d in self.pool.members_of(group)]


class SnapshotHolder:
    """Holds the current snapshot; `publish` is the only writer.

    Cooldowns are written through the holder (`bench`), into the current snapshot's Router, so
    a deployment benched by a request that started on an older snapshot stays benched; on
    publish the active cooldowns move to the new Router (entry ids are stable across rebuilds).
    """

    def __init__(self) -> None:
        self._current: Snapshot | None = None

    @property
    def current(self) -> Snapshot | None:
        return self._current

    def publish(self, snapshot: Snapshot) -> None:
        old = self._current
        if old is not None and old.router is not snapshot.router:
            _carry_cooldowns(old, snapshot)
            _carry_strategy_state(old, snapshot)
        self._current = snapshot
        if old is not None and old.router is not snapshot.router:
            litellm_internals.retire(old.router)

    def bench(self, deployment_ids: Iterable[str], *, seconds: float, reason: Exception, status: int) -> None:
        snapshot = self._current
        if snapshot is None:
            return
        entries = [eid for dep_id in deployment_ids for eid in snapshot.entries.get(dep_id, ())]
        litellm_internals.bench(snapshot.router, entries, seconds=seconds, reason=reason, status=status)

    def close(self) -> None:
        if self._current is not None:
            litellm_internals.retire(self._current.router)
            self._current = None


def _carry_cooldowns(old: Snapshot, new: Snapshot) -> None:
    ids = [eid for eids in old.entries.values() for eid in eids]
    if not ids:
        return
    now = time.time()
    for entry_id, value in litellm_internals.active_cooldowns(old.router, ids):
        left = float(value["timestamp"]) + float(value["cooldown_time"]) - now
        if left > 0:
            status = int(value["status_code"]) if str(value.get("status_code", "")).isdigit() else 500
            litellm_internals.bench(new.router, [entry_id], seconds=left,
                                    reason=Exception(str(value.get("exception_received", ""))), status=status)


def _carry_strategy_state(old: Snapshot, new: Snapshot) -> None:
    strategies = {g: s for g, s in new.strategies.items() if old.strategies.get(g) == s}
    if strategies:
        litellm_internals.carry_strategy_state(old.router, new.router, strategies=strategies,
                                               entries={g: new.strategy_members(g) for g in strategies})


def resolve_credentials(pool: Pool, settings: Settings) -> dict[str, str | None]:
    openrouter_key = settings.openrouter_api_key.get_secret_value() if settings.openrouter_api_key else None
    found: dict[str, str | None] = {}
    for dep in pool.deployments.values():
        if dep.credential == OPENROUTER_CREDENTIAL:
            found[dep.id] = openrouter_key or ("sandbox" if settings.use_sandbox else None)
        elif dep.credential and dep.credential.startswith("env:"):
            found[dep.id] = os.environ.get(dep.credential[4:])
        else:
            found[dep.id] = None
    return found


def _chat_urls(pool: Pool, settings: Settings) -> dict[str, URL]:
    """OpenRouter deployments follow the configured base (a persisted pool may predate it).

    Parsed once per snapshot: aiohttp would parse a string URL again on every call."""
    return {
        dep.id: URL((settings.openrouter_base_url if dep.credential == OPENROUTER_CREDENTIAL else dep.api_base)
                    + "/chat/completions")
        for dep in pool.deployments.values()
    }


def load_router_library() -> bool:
    """Import LiteLLM (~2 s of CPU); True when this call imported it. Blocking: call it in a thread.

    The cyclic GC is off meanwhile: the import makes ~375k objects that all live, and the
    collections it would trigger on the way rescan them again and again (~0.6 s of a 2.7 s
    import, bench/RESULTS.md). The caller collects once afterwards and freezes what is left.
    Nothing is served yet, so nothing else misses a collection."""
    if "litellm" in sys.modules:
        return False
    collecting = gc.isenabled()
    gc.disable()
    try:
        import litellm  # noqa: F401
    finally:
        if collecting:
            gc.enable()
    return True


def build_snapshot(pool: Pool, settings: Settings) -> Snapshot:
    """Build the Router for `pool` in one go. Synchronous and CPU-bound: call it in a thread."""
    plan = _RouterPlan.of(pool, settings)
    return plan.snapshot(litellm_internals.new_router(model_list=plan.model_list, args=plan.router_args))


async def build_snapshot_paced(pool: Pool, settings: Settings, *, pause: Callable[[], Awaitable[None]]) -> Snapshot:
    """The same snapshot, its Router filled one deployment at a time on the event loop.

    A 300-deployment Router is ~0.7 s of CPU that holds the GIL (LiteLLM 1.110 registers each
    deployment's pricing as it goes); built in one go it would stall the event loop. Here one
    deployment is upserted at a time (what the Router's constructor does per entry), and `pause`
    lets requests through between them. Invalid deployments are skipped, as
    `ignore_invalid_deployments` does.
    """
    plan = _RouterPlan.of(pool, settings)
    router = litellm_internals.new_router(model_list=[], args=plan.router_args)
    for entry in plan.model_list:
        try:
            litellm_internals.add_deployment(router, entry)
        except Exception as exc:  # LiteLLM refuses a deployment with several exception types
            log.warning("Router refused deployment %s: %s", entry["model_info"]["id"], type(exc).__name__)
        await pause()
    return plan.snapshot(router)


@dataclass(frozen=True, slots=True)
class _RouterPlan:
    """What a pool's Router is built from, and the snapshot around it."""

    pool: Pool
    settings: Settings
    model_list: list[dict[str, Any]]
    entries: dict[str, list[str]]
    orders: dict[str, tuple[int, ...]]
    router_args: dict[str, Any]
    strategies: dict[str, str]

    @classmethod
    def of(cls, pool: Pool, settings: Settings) -> _RouterPlan:
        model_list: list[dict[str, Any]] = []
        entries: dict[str, list[str]] = {}
        orders: dict[str, tuple[int, ...]] = {}
        for group in pool.groups.values():
            for member in group.members:
                dep = pool.deployments[member.deployment_id]
                eid = entry_id(dep.id, group.name)
                entries.setdefault(dep.id, []).append(eid)
                # No rpm/tpm here: the engine enforces them (turnout.routing.admission), across
                # replicas when state is shared; the Router's own accounting is per process and
                # did not refuse (rpm: 1 was granted 20 picks of 20).
                params: dict[str, Any] = {"model": dep.litellm_model, "weight": member.weight, "order": member.order}
                model_list.append({"model_name": group.name, "litellm_params": params,
                                   "model_info": {"id": eid, "deployment": dep.id}})
            orders[group.name] = tuple(sorted({m.order for m in group.members}))
        groups = pool.groups.values()
        strategies: dict[str, str] = {g: s for g, s in settings.strategies.items()
                                      if g in pool.groups and s != "simple-shuffle"}
        router_args = {
            "routing_strategy": "simple-shuffle",
            "num_retries": 0,
            "fallbacks": [{g.name: list(g.fallbacks)} for g in groups if g.fallbacks],
            "context_window_fallbacks": [{g.name: list(g.context_window_fallbacks)}
                                         for g in groups if g.context_window_fallbacks],
            "content_policy_fallbacks": [{g.name: list(g.content_policy_fallbacks)}
                                         for g in groups if g.content_policy_fallbacks],
            "cooldown_time": settings.retries.cooldown_s,
            "allowed_fails": settings.retries.allowed_fails,
            "ignore_invalid_deployments": True,
        }
        if strategies:
            router_args["routing_groups"] = litellm_internals.strategy_groups(strategies)
        return cls(pool=pool, settings=settings, model_list=model_list, entries=entries, orders=orders,
                   router_args=router_args, strategies=strategies)

    def snapshot(self, router: Router) -> Snapshot:
        pool, settings = self.pool, self.settings
        return Snapshot(
            pool=pool,
            router=router,
            picker=Picker(router, strategies=self.strategies),
            entries=MappingProxyType({k: tuple(v) for k, v in self.entries.items()}),
            orders=MappingProxyType(self.orders),
            credentials=MappingProxyType(resolve_credentials(pool, settings)),
            urls=MappingProxyType(_chat_urls(pool, settings)),
            built_at=time.time(),
            fitness=Fitness.of(pool),
            strategies=MappingProxyType(self.strategies),
        )
