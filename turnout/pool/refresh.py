"""Keeps the pool fresh: the refresh task the lifespan owns.

Catalogue (hourly by default) and health (every few minutes) are re-read with jitter; each
cycle builds a new Pool (`turnout.pool.pipeline`), fills a new Router in paced slices, and publishes it with one
assignment. The last good catalogue, health and pool are persisted atomically so a start
with OpenRouter unreachable still serves. A failed refresh keeps the current pool.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from turnout.config import Settings
from turnout.encoding import dumps
from turnout.pool.catalogue import Catalogue, decode_catalogue, fetch_catalogue_raw, parse_catalogue
from turnout.pool.model import Pool, make_pool, static_groups
from turnout.pool.pacing import Pacer, no_pause
from turnout.pool.pipeline import pool_from_catalogue
from turnout.pool.provider_health import HealthCycle, HealthScore, PassiveStats
from turnout.routing.free_tier import FreeTierBudget
from turnout.routing.snapshot import SnapshotHolder, build_snapshot, build_snapshot_paced

log = logging.getLogger("turnout.refresh")


class RefreshObserver:
    """Hook for metrics: every published pool and every refresh's outcome; the default does nothing."""

    def on_publish(self, pool: Pool) -> None:
        return None

    def on_refresh(self, *, kind: str, outcome: str, duration_s: float) -> None:
        return None


class PoolManager:
    def __init__(
        self,
        *,
        settings: Settings,
        holder: SnapshotHolder,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: str | None,
        passive: PassiveStats,
        budget: FreeTierBudget,
        observer: RefreshObserver | None = None,
        busy: Callable[[], bool] = lambda: True,
    ) -> None:
        self._settings = settings
        self._busy = busy  # requests in flight: rebuild work then yields most of the core
        self._observer = observer or RefreshObserver()
        self._holder = holder
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._passive = passive
        self._budget = budget
        self._lock = asyncio.Lock()
        self._catalogue: Catalogue | None = None
        self._health: Mapping[str, Any] = {}
        self._catalogue_at = 0.0
        self._health_at = 0.0
        self.last_attempt: dict[str, Any] = {}
        self.last_success_at: float | None = None
        self.refreshes: dict[str, int] = {"ok": 0, "failed": 0}
        self.key_info: dict[str, Any] = {}
        self.health_cycle: HealthCycle | None = None  # the last active health read
        self._dir = settings.data_dir

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Build the first pool: live, else persisted, else static deployments only."""
        await self._learn_free_tier()
        try:
            await self.refresh(full=True)
            return
        except Exception as exc:  # any failure here must still leave the gateway serving
            reason = f"catalogue unavailable at start ({_describe(exc)})"
            log.warning("%s", reason)
        self._load_persisted_catalogue()
        persisted = self._load_persisted_pool()
        if persisted is not None:
            pool = _replace_source(persisted, source="persisted", degraded=f"{reason}; serving the persisted pool")
        else:
            deployments, groups = static_groups(self._settings)
            pool = make_pool(deployments=deployments, groups=groups, source="static",
                             degraded_reason=f"{reason}; serving static deployments only")
        await self._publish(pool, paced=False)

    async def run(self) -> None:
        """The refresh loop; cancelled by the lifespan at shutdown."""
        pool_settings = self._settings.pool
        while True:
            now = time.time()
            next_catalogue = self._catalogue_at + _jittered(pool_settings.catalogue_refresh_s, pool_settings.jitter)
            next_health = self._health_at + _jittered(pool_settings.health_refresh_s, pool_settings.jitter)
            wake = max(1.0, min(next_catalogue, next_health) - now)
            await asyncio.sleep(wake)
            full = time.time() >= next_catalogue or self._catalogue is None
            try:
                await self.refresh(full=full)
            except Exception as exc:
                log.warning("refresh failed, keeping the current pool: %s", _describe(exc))

    async def _learn_free_tier(self) -> None:
        """GET /key: a free-tier account gets 50 free requests a day, one that bought credits 1,000."""
        if self._settings.pool.free_tier.requests_per_day is not None:
            return
        try:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            resp = await self._http.get(f"{self._base_url}/key", headers=headers,
                                        timeout=self._settings.pool.health.timeout_s)
            data = resp.json().get("data") if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("could not read the key's limits: %s", _describe(exc))
            return
        if isinstance(data, dict) and isinstance(data.get("is_free_tier"), bool):
            self._budget.learn_limits(per_day=50 if data["is_free_tier"] else 1000)
            self.key_info = {"is_free_tier": data["is_free_tier"], "free_requests_per_day": 50 if data["is_free_tier"] else 1000}

    # -- one refresh --------------------------------------------------------------------

    async def refresh(self, *, full: bool) -> Pool:
        async with self._lock:
            started = time.monotonic()
            kind = "catalogue" if full or self._catalogue is None else "health"
            try:
                pool = await self._rebuild(full=full or self._catalogue is None)
            except Exception as exc:
                self.refreshes["failed"] += 1
                self.last_attempt = {"at": time.time(), "kind": kind, "outcome": "failed", "error": _describe(exc),
                                     "duration_s": round(time.monotonic() - started, 3)}
                self._observer.on_refresh(kind=kind, outcome="failed", duration_s=time.monotonic() - started)
                raise
            self._observer.on_refresh(kind=kind, outcome="ok", duration_s=time.monotonic() - started)
            self.refreshes["ok"] += 1
            self.last_success_at = time.time()
            self.last_attempt = {"at": self.last_success_at, "kind": kind, "outcome": "ok",
                                 "duration_s": round(time.monotonic() - started, 3),
                                 "deployments": len(pool.deployments)}
            return pool

    async def _rebuild(self, *, full: bool) -> Pool:
        now = time.time()
        settings = self._settings
        # The pure steps run in worker threads and the Router is filled on the event loop, all
        # in paced slices (turnout.pool.pacing): a rebuild under load holds the event loop for ~1 ms at
        # a time and takes a fifth of the core. The first build, with nothing to serve yet,
        # and any work while no request is in flight, run at full speed.
        paced = self._holder.current is not None
        pause = Pacer(busy=self._busy).in_thread if paced else no_pause
        if full:
            raw = await fetch_catalogue_raw(self._http, base_url=self._base_url, api_key=self._api_key,
                                            timeout_s=settings.pool.health.timeout_s * 4)
            self._catalogue = await asyncio.to_thread(_decode_catalogue, raw, now, pause)
            self._catalogue_at = now
            await asyncio.to_thread(self._persist, "catalogue.json", raw)
        catalogue = self._catalogue
        assert catalogue is not None
        current = self._holder.current
        assembled = await pool_from_catalogue(
            catalogue=catalogue, settings=settings, http=self._http, base_url=self._base_url, api_key=self._api_key,
            previous=current.pool if current else None, previous_health=self._health,
            passive=self._passive.snapshot(), now=now, run=asyncio.to_thread, pause=pause)
        if assembled.cycle is not None:
            self._health = assembled.cycle.scores
            self.health_cycle = assembled.cycle
        self._health_at = now
        pool = assembled.pool
        await self._publish(pool, paced=paced)
        await asyncio.to_thread(self._persist, "pool.json", pool, pause)
        await asyncio.to_thread(_return_free_memory)
        return pool

    async def _publish(self, pool: Pool, *, paced: bool) -> None:
        # usage-based-routing-v2 starts a sync task on the running loop as its Router is built.
        if paced or "usage-based-routing-v2" in self._settings.strategies.values():
            snapshot = await build_snapshot_paced(pool, self._settings, pause=Pacer(busy=self._busy))
        else:  # the first pool: nothing is served yet, build it in one go
            snapshot = await asyncio.to_thread(build_snapshot, pool, self._settings)
        self._holder.publish(snapshot)
        self._observer.on_publish(pool)
        log.info("pool published: %d deployments, %d groups, source=%s",
                 len(pool.deployments), len(pool.groups), pool.source)

    # -- persistence --------------------------------------------------------------------

    def _persist(self, name: str, data: Any, pause: Callable[[], None] = no_pause) -> None:
        """Write atomically (bytes as they are); runs in a worker thread."""
        if isinstance(data, Pool):
            data = data.to_json(pause=pause)
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            target = self._dir / name
            tmp = target.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(data if isinstance(data, bytes) else dumps(data))
            os.replace(tmp, target)
        except OSError as exc:
            log.warning("could not persist %s: %s", name, exc)

    def _load_persisted_catalogue(self) -> None:
        """Health refreshes can go on from the last good catalogue while the catalogue is down."""
        try:
            self._catalogue = parse_catalogue(json.loads((self._dir / "catalogue.json").read_text()))
        except (OSError, ValueError) as exc:
            log.info("no usable persisted catalogue: %s", _describe(exc))

    def _load_persisted_pool(self) -> Pool | None:
        path: Path = self._dir / "pool.json"
        try:
            return Pool.from_json(json.loads(path.read_text()), source="persisted")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("persisted pool unreadable: %s", exc)
            return None

    def gated(self) -> dict[str, str]:
        """Models the last health cycle kept out of the pool, with the reason."""
        return {model: score.reason or "gated" for model, score in self._health.items()
                if isinstance(score, HealthScore) and score.gated}

    def status(self) -> dict[str, Any]:
        return {
            "last_attempt": self.last_attempt,
            "last_success_at": self.last_success_at,
            "refreshes": dict(self.refreshes),
            "catalogue_models": len(self._catalogue.models) if self._catalogue else 0,
            "key": dict(self.key_info),
        }


def _return_free_memory() -> None:
    """Hand the allocator's free pages back to the OS (glibc's `malloc_trim`; elsewhere nothing).

    A rebuild's temporaries (the decoded catalogue alone is ~10 MB) are freed but stay
    resident otherwise: this keeps an idle gateway ~15 MB smaller. ctypes releases the GIL.
    """
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


def _decode_catalogue(raw: bytes, now: float, pause: Callable[[], None]) -> Catalogue:
    return parse_catalogue(decode_catalogue(raw), now=now, pause=pause)


def _replace_source(pool: Pool, *, source: str, degraded: str) -> Pool:
    return make_pool(deployments=pool.deployments.values(), groups=pool.groups.values(), source=source,
                     built_at=pool.built_at, degraded_reason=degraded)


def _jittered(seconds: float, jitter: float) -> float:
    return seconds * (1 + random.uniform(-jitter, jitter))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
