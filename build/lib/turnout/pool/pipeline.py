"""Catalogue -> health targets -> active health -> the Pool: the one pipeline.

The refresh task (`turnout.pool.refresh`) and `turnout pool` (`turnout.pool.report`) both
call `pool_from_catalogue`, so the CLI prints exactly the pool the gateway would build from
the same catalogue, lists and settings. Only how the catalogue arrives differs (fetched and
persisted, or read from a file), and how the pure steps run (`run`: in a worker thread with
pauses under load, or inline).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from turnout.config import Settings
from turnout.pool.catalogue import Catalogue, load_id_list
from turnout.pool.model import Pool
from turnout.pool.pacing import no_pause
from turnout.pool.provider_health import HealthCycle, HealthScore, PassiveHealth, read_health
from turnout.pool.selection import build_pool, health_targets

T = TypeVar("T")
Runner = Callable[[Callable[[], T]], Awaitable[T]]


async def inline(step: Callable[[], T]) -> T:
    return step()


@dataclass(frozen=True, slots=True)
class Assembled:
    pool: Pool
    cycle: HealthCycle | None  # None when active health is off


def id_lists(settings: Settings) -> tuple[frozenset[str], frozenset[str]]:
    """The allow- and blocklist: inline ids plus the files' (read on every build: files change)."""
    pool_settings = settings.pool
    allow = set(pool_settings.allowlist)
    block = set(pool_settings.blocklist)
    if pool_settings.allowlist_file:
        allow |= load_id_list(pool_settings.allowlist_file)
    if pool_settings.blocklist_file:
        block |= load_id_list(pool_settings.blocklist_file)
    return frozenset(allow), frozenset(block)


async def pool_from_catalogue(
    *,
    catalogue: Catalogue,
    settings: Settings,
    http: httpx.AsyncClient,
    base_url: str,
    api_key: str | None,
    previous: Pool | None,
    previous_health: Mapping[str, HealthScore],
    passive: Mapping[str, PassiveHealth],
    now: float,
    run: Runner[Any] = inline,
    pause: Callable[[], None] = no_pause,
) -> Assembled:
    allow, block = id_lists(settings)
    cycle: HealthCycle | None = None
    health: Mapping[str, HealthScore] = previous_health
    if settings.pool.health.enabled:
        targets: list[str] = await run(lambda: health_targets(
            catalogue=catalogue, settings=settings, previous=previous, now=now, allow=allow, block=block,
            pause=pause))
        cycle = await read_health(http, base_url=base_url, api_key=api_key, model_ids=targets,
                                  settings=settings.pool.health, previous=previous_health)
        health = cycle.scores
    pool: Pool = await run(lambda: build_pool(
        catalogue=catalogue, health=health, passive=passive, settings=settings, previous=previous, now=now,
        allow=allow, block=block, pause=pause))
    return Assembled(pool=pool, cycle=cycle)
