"""Which models a probe calls, and the plan: how many, in which order, and how long it takes.

Sources (`--source`): `pool`, the deployments of the pool the gateway would build now
(`pool.report.live_pool`, the refresh's own pipeline); `catalogue`, every catalogue model
that passes the pool's global filters (`catalogue.filter_reasons`); through `--gateway`,
the concrete models its `GET /v1/models` lists. `--tier`, `--match` (substring, any of
them) and `--ids` narrow any source; `--max-requests` caps the calls.

Estimated duration: free calls burst up to the free quota's per-minute allowance (minus
headroom), then one allowance per minute; paid calls run `concurrency` at a time. Both
lanes run side by side, each call taking `latency_s` (the timeout is the worst case)::

    free_s = (ceil(free / per_minute) - 1) * 60 + latency_s      (0 without free calls)
    paid_s = ceil(paid / concurrency) * latency_s
    estimate = max(free_s, paid_s)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from turnout.config import Settings
from turnout.pool.catalogue import Catalogue, filter_reasons
from turnout.pool.model import Pool


@dataclass(frozen=True, slots=True)
class Target:
    model: str
    tier: str  # free, paid (or static, through a gateway)


@dataclass(frozen=True, slots=True)
class Plan:
    targets: tuple[Target, ...]
    resumed: tuple[str, ...]  # fresh in the `--resume` report: not called again
    capped: tuple[Target, ...]  # left out by `--max-requests`
    free_day_left: int | None  # free calls the day's quota still allows, when known
    per_minute: int  # free calls admitted per minute (quota minus headroom)
    concurrency: int

    @property
    def free(self) -> int:
        return sum(1 for t in self.targets if t.tier == "free")

    @property
    def paid(self) -> int:
        return len(self.targets) - self.free

    def estimate_s(self, latency_s: float) -> float:
        free = self.free if self.free_day_left is None else min(self.free, self.free_day_left)
        free_s = (math.ceil(free / max(1, self.per_minute)) - 1) * 60 + latency_s if free else 0.0
        paid_s = math.ceil(self.paid / self.concurrency) * latency_s
        return max(free_s, paid_s)


def from_pool(pool: Pool) -> list[Target]:
    """Every OpenRouter deployment of the pool (static deployments are not OpenRouter models)."""
    return sorted({Target(d.model, d.tier) for d in pool.deployments.values() if d.provider == "openrouter"},
                  key=_order)


def from_catalogue(catalogue: Catalogue, settings: Settings, *, now: float,
                   allow: frozenset[str] = frozenset(), block: frozenset[str] = frozenset()) -> list[Target]:
    return sorted((Target(m.id, m.tier) for m in catalogue.models.values()
                   if not filter_reasons(m, settings=settings.pool, now=now, allow=allow, block=block)), key=_order)


def from_gateway(listing: Mapping[str, Any]) -> list[Target]:
    """The concrete models a gateway's `GET /v1/models` lists (aliases are groups of them)."""
    data = listing.get("data") if isinstance(listing, Mapping) else None
    found = []
    for entry in data if isinstance(data, list) else []:
        if isinstance(entry, Mapping) and entry.get("kind") == "model" and isinstance(entry.get("id"), str):
            found.append(Target(entry["id"], str(entry.get("tier") or "paid")))
    return sorted(set(found), key=_order)


def narrow(targets: Iterable[Target], *, tier: str | None, match: Sequence[str], ids: Sequence[str]) -> list[Target]:
    """`--tier`, `--match` (any substring, case-insensitive) and `--ids` (exact; order kept)."""
    chosen = [t for t in targets if tier is None or t.tier == tier]
    if match:
        needles = [m.lower() for m in match]
        chosen = [t for t in chosen if any(n in t.model.lower() for n in needles)]
    if ids:
        by_id = {t.model: t for t in chosen}
        chosen = [by_id[i] for i in dict.fromkeys(ids) if i in by_id]
    return chosen


def make_plan(targets: Sequence[Target], *, resumed: Iterable[str], max_requests: int | None,
              free_day_left: int | None, per_minute: int, concurrency: int) -> Plan:
    done = set(resumed)
    todo = [t for t in targets if t.model not in done]
    cap = len(todo) if max_requests is None else max_requests
    return Plan(targets=tuple(todo[:cap]), resumed=tuple(t.model for t in targets if t.model in done),
                capped=tuple(todo[cap:]), free_day_left=free_day_left, per_minute=per_minute,
                concurrency=concurrency)


def _order(target: Target) -> tuple[bool, str]:
    return (target.tier != "free", target.model)  # free first: they wait for the quota, paid fill the gaps
