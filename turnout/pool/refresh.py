"""Keeps the pool fresh: the refresh task the lifespan owns.

Catalogue (hourly by default) and health (every few minutes) are re-read with jitter; each
cycle builds a new Pool (`turnout.pool.pipeline`), fills a new Router in paced slices, and publishes it with one
assignment. The last good catalogue, health and pool are persisted atomically so a start
with OpenRouter unreachable still serves. A failed refresh keeps the current pool and is
retried with exponential backoff (`RefreshBackoff`); the log says once that refreshes fail
and once that they recovered, not at every try.

What the refresh feeds in the routing layer reaches it through three small interfaces the
lifespan fills (pool does not import routing): `PoolOutlet` (where a pool goes live),
`FreeTierLimits` (what GET /key says of the free quota) and `CreditSwitch` (paid credits).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx

from turnout.config import Settings
from turnout.encoding import dumps
from turnout.pool.catalogue import Catalogue, decode_catalogue, fetch_catalogue_raw, parse_catalogue
from turnout.pool.model import Pool, make_pool, static_groups
from turnout.pool.pacing import Pacer, no_pause
from turnout.pool.pipeline import pool_from_catalogue
from turnout.pool.provider_health import HealthCycle, HealthScore, PassiveHealth, PassiveStats

log = logging.getLogger("turnout.refresh")
FREE_TIER_PER_DAY = 50  # free requests a day of an account that never bought credits
CREDITED_PER_DAY = 1000  # of one that did


def daily_allowance(key_data: object) -> int | None:
    """Free requests a day, from the `data` of OpenRouter's GET /key; None when it does not say."""
    if isinstance(key_data, dict) and isinstance(key_data.get("is_free_tier"), bool):
        return FREE_TIER_PER_DAY if key_data["is_free_tier"] else CREDITED_PER_DAY
    return None


class PoolOutlet(Protocol):
    """Where a built pool goes live (`routing.publisher.SnapshotPublisher` in the app)."""

    def current_pool(self) -> Pool | None: ...

    async def publish(self, pool: Pool, *, paced: bool) -> None: ...


class FreeTierLimits(Protocol):
    """What GET /key tells the free-tier budget (`routing.free_tier.FreeTierBudget`)."""

    def learn_limits(self, *, per_day: int | None = None, per_minute: int | None = None) -> None: ...

    def seed_day(self, used: int, now: float | None = None) -> None: ...


class CreditSwitch(Protocol):
    """The account's paid credits (`routing.credits.PaidCredits`): a refresh that finds credit
    again after a 402 turns paid models back on, and the status reports the switch."""

    out_since: float | None

    @property
    def out(self) -> bool: ...

    def restored(self) -> None: ...

    def reason(self) -> str | None: ...


class RefreshObserver:
    """Hook for metrics: every published pool and every refresh's outcome; the default does nothing."""

    def on_publish(self, pool: Pool) -> None:
        return None

    def on_refresh(self, *, kind: str, outcome: str, duration_s: float) -> None:
        return None


class RefreshBackoff:
    """When to retry after failed refreshes: `min_s`, doubling per consecutive failure, capped at
    `max_s`, each delay jittered into its upper half (retries of several replicas spread out)."""

    def __init__(self, *, min_s: float, max_s: float, rand: Callable[[], float] = random.random) -> None:
        self._min_s = min_s
        self._max_s = max(min_s, max_s)
        self._rand = rand
        self.failures = 0
        self.since: float | None = None  # when the first failure of this run happened
        self.retry_at: float | None = None
        self.error: str | None = None

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, now: float, error: str) -> float:
        """Count one failure; returns the delay before the next try."""
        self.failures += 1
        if self.since is None:
            self.since = now
        self.error = error
        ceiling = min(self._max_s, self._min_s * 2 ** min(self.failures - 1, 60))
        delay: float = ceiling * (0.5 + 0.5 * self._rand())
        self.retry_at = now + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.since = self.retry_at = self.error = None


class PoolManager:
    def __init__(
        self,
        *,
        settings: Settings,
        outlet: PoolOutlet,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: str | None,
        passive: PassiveStats,
        budget: FreeTierLimits,
        credits: CreditSwitch,
        observer: RefreshObserver | None = None,
        busy: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        after_key: Callable[[], Awaitable[None]] | None = None,
        may_refresh: Callable[[], bool] = lambda: True,
        on_published: Callable[[Pool], Awaitable[None]] | None = None,
    ) -> None:
        self.credits = credits
        # Shared state: only the leader refreshes (`may_refresh`) and publishes to the others
        # (`on_published`); the others `adopt` what it published.
        self._may_refresh = may_refresh
        self._on_published = on_published
        self._wakeup = asyncio.Event()
        self._after_key = after_key  # shared state: push what /key said to the other replicas
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self.backoff = RefreshBackoff(min_s=settings.pool.refresh_retry_min_s, max_s=settings.pool.health_refresh_s)
        self._busy = busy  # requests in flight: rebuild work then yields most of the core
        self._observer = observer or RefreshObserver()
        self._outlet = outlet
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
        if not self._settings.pool.enabled:
            await self._publish(self._static_only(), paced=False)
            return
        await self._learn_free_tier()
        try:
            await self.refresh(full=True)
            return
        except Exception as exc:  # any failure here must still leave the gateway serving
            reason = f"catalogue unavailable at start ({_describe(exc)})"
        self._load_persisted_catalogue()
        persisted, unusable = self._load_persisted_pool()
        if persisted is not None:
            pool = _replace_source(persisted, source="persisted", degraded=f"{reason}; serving the persisted pool")
            try:
                await self._publish(pool, paced=False)
                return
            except Exception as exc:  # a pool that passed the checks but cannot be routed
                unusable = _describe(exc)
                log.warning("persisted pool unusable: %s", unusable)
        if unusable:
            reason = f"{reason}; the persisted pool is unusable ({unusable})"
        deployments, groups = static_groups(self._settings)
        pool = make_pool(deployments=deployments, groups=groups, source="static",
                         degraded_reason=f"{reason}; serving static deployments only")
        await self._publish(pool, paced=False)

    async def run(self) -> None:
        """The refresh loop; cancelled by the lifespan at shutdown."""
        pool_settings = self._settings.pool
        if not pool_settings.enabled:
            return  # static-only: nothing upstream to re-read
        while True:
            now = self._clock()
            next_catalogue = self._catalogue_at + _jittered(pool_settings.catalogue_refresh_s, pool_settings.jitter)
            next_health = self._health_at + _jittered(pool_settings.health_refresh_s, pool_settings.jitter)
            due = self.backoff.retry_at if self.backoff.retry_at is not None else min(next_catalogue, next_health)
            # A follower (shared state) checks at most once a second; a takeover wakes it at once.
            await self._wait(max(0.05 if self._may_refresh() else 1.0, due - now))
            if not self._may_refresh():
                continue
            full = self._clock() >= next_catalogue or self._catalogue is None
            # A failure is counted, logged on the change of state and retried after the backoff (refresh()).
            with contextlib.suppress(Exception):
                await self.refresh(full=full)

    async def _wait(self, seconds: float) -> None:
        """Sleep (the injected sleep) until `seconds` pass or `take_over` wakes the loop."""
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        woken = asyncio.ensure_future(self._wakeup.wait())
        try:
            done, _ = await asyncio.wait((sleeper, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, woken):
                task.cancel()
            self._wakeup.clear()
        if sleeper in done:
            sleeper.result()  # what the sleep raised ends the loop here too

    def set_leader(self, *, may_refresh: Callable[[], bool], on_published: Callable[[Pool], Awaitable[None]]) -> None:
        self._may_refresh = may_refresh
        self._on_published = on_published

    def current_pool(self) -> Pool | None:
        return self._outlet.current_pool()

    def take_over(self) -> None:
        """This replica now leads the refresh: refresh at once (its pool was adopted, not built)."""
        self._health_at = 0.0
        self._wakeup.set()

    async def adopt(self, pool: Pool) -> None:
        """A pool another replica built: published here with the same paced, atomic swap."""
        await self._publish(pool, paced=self.current_pool() is not None)
        self._health_at = self._clock()
        self.last_success_at = self._health_at
        await asyncio.to_thread(self._persist, "pool.json", pool)

    async def _learn_free_tier(self) -> None:
        """GET /key: the account's daily free-request counter (`free_model_daily_requests`), else a guess.

        The counter gives today's limit and what the account already spent (by every client of
        the key, not only this gateway); without it, `is_free_tier` suggests 50 a day for an
        account that never bought credits and 1,000 for one that did."""
        data = await self._account_read("/key", "the key's limits")
        if data is None:
            return
        configured = self._settings.pool.free_tier.requests_per_day
        daily = data.get("free_model_daily_requests")
        limit = daily.get("limit") if isinstance(daily, dict) else None
        if isinstance(daily, dict) and isinstance(limit, int):
            remaining, used = daily.get("remaining"), daily.get("used")
            spent = used if isinstance(used, int) else (limit - remaining if isinstance(remaining, int) else 0)
            if configured is None:
                self._budget.learn_limits(per_day=limit)
            self._budget.seed_day(max(0, spent))
            self.key_info = {"free_requests_per_day": configured or limit, "free_requests_used_today": spent,
                             "from": "free_model_daily_requests"}
        elif (guess := daily_allowance(data)) is not None and configured is None:
            self._budget.learn_limits(per_day=guess)
            self.key_info = {"is_free_tier": data["is_free_tier"], "free_requests_per_day": guess,
                             "from": "is_free_tier"}
        else:
            return
        if self._after_key is not None:
            await self._after_key()

    async def _account_read(self, path: str, what: str) -> dict[str, Any] | None:
        """The `data` object of an OpenRouter account endpoint (`/key`, `/credits`); None, logged, when unreadable."""
        try:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            resp = await self._http.get(f"{self._base_url}{path}", headers=headers,
                                        timeout=self._settings.pool.health.timeout_s)
            data = resp.json().get("data") if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("could not read %s: %s", what, _describe(exc))
            return None
        return data if isinstance(data, dict) else None

    async def _check_credits(self) -> None:
        """After a 402: GET /credits; credit left (total_credits > total_usage) lets paid models serve again."""
        data = await self._account_read("/credits", "the account's credits")
        if data is None:
            return
        total, used = data.get("total_credits"), data.get("total_usage")
        if isinstance(total, int | float) and isinstance(used, int | float) and total > used:
            self.credits.restored()
            log.info("the account has credit again: paid OpenRouter models serve again")

    # -- one refresh --------------------------------------------------------------------

    async def refresh(self, *, full: bool) -> Pool:
        if not self._settings.pool.enabled:
            pool = self._static_only()
            await self._publish(pool, paced=self.current_pool() is not None)
            return pool
        async with self._lock:
            started = time.monotonic()
            kind = "catalogue" if full or self._catalogue is None else "health"
            try:
                pool = await self._rebuild(full=full or self._catalogue is None)
            except Exception as exc:
                self.refreshes["failed"] += 1
                self.last_attempt = {"at": self._clock(), "kind": kind, "outcome": "failed", "error": _describe(exc),
                                     "duration_s": round(time.monotonic() - started, 3)}
                self._observer.on_refresh(kind=kind, outcome="failed", duration_s=time.monotonic() - started)
                self._failed(exc)
                raise
            self._observer.on_refresh(kind=kind, outcome="ok", duration_s=time.monotonic() - started)
            self.refreshes["ok"] += 1
            self.last_success_at = self._clock()
            self._recovered()
            self.last_attempt = {"at": self.last_success_at, "kind": kind, "outcome": "ok",
                                 "duration_s": round(time.monotonic() - started, 3),
                                 "deployments": len(pool.deployments)}
            return pool

    def _failed(self, exc: BaseException) -> None:
        first = not self.backoff.failing
        delay = self.backoff.failed(self._clock(), _describe(exc))
        if first:
            keeping = "keeping the current pool" if self.current_pool() is not None else "no pool built yet"
            log.warning("pool refresh failed (%s): %s; retrying with backoff up to %.0f s, logged again when it "
                        "recovers", keeping, _describe(exc), self._settings.pool.health_refresh_s)
        else:
            log.debug("refresh failed again (%d in a row, next try in %.1f s): %s",
                      self.backoff.failures, delay, _describe(exc))

    def _recovered(self) -> None:
        if self.backoff.failing and self.backoff.since is not None:
            log.info("refresh recovered after %d failed tries over %.0f s; the pool is fresh again",
                     self.backoff.failures, self._clock() - self.backoff.since)
        self.backoff.succeeded()

    async def _rebuild(self, *, full: bool) -> Pool:
        if self.current_pool() is not None:  # the start read it already
            await self._learn_free_tier()
        if self.credits.out:
            await self._check_credits()
        now = self._clock()
        settings = self._settings
        # The pure steps run in worker threads and the Router is filled on the event loop, all
        # in paced slices (turnout.pool.pacing): a rebuild under load holds the event loop for ~1 ms at
        # a time and takes a fifth of the core. The first build, with nothing to serve yet,
        # and any work while no request is in flight, run at full speed.
        paced = self.current_pool() is not None
        pause = Pacer(busy=self._busy).in_thread if paced else no_pause
        if full:
            raw = await fetch_catalogue_raw(self._http, base_url=self._base_url, api_key=self._api_key,
                                            timeout_s=settings.pool.health.timeout_s * 4)
            self._catalogue = await asyncio.to_thread(_decode_catalogue, raw, now, pause)
            self._catalogue_at = now
            await asyncio.to_thread(self._persist, "catalogue.json", raw)
        catalogue = self._catalogue
        assert catalogue is not None
        assembled = await pool_from_catalogue(
            catalogue=catalogue, settings=settings, http=self._http, base_url=self._base_url, api_key=self._api_key,
            previous=self.current_pool(), previous_health=self._health,
            passive=self._passive.snapshot(), now=now, run=asyncio.to_thread, pause=pause)
        if assembled.cycle is not None:
            self._health = assembled.cycle.scores
            self.health_cycle = assembled.cycle
        self._health_at = now
        pool = assembled.pool
        await self._publish(pool, paced=paced)
        if self._on_published is not None:
            await self._on_published(pool)
        await asyncio.to_thread(self._persist, "pool.json", pool, pause)
        await asyncio.to_thread(_return_free_memory)
        return pool

    async def _publish(self, pool: Pool, *, paced: bool) -> None:
        await self._outlet.publish(pool, paced=paced)
        self._observer.on_publish(pool)
        log.info("pool published: %d deployments, %d groups, source=%s",
                 len(pool.deployments), len(pool.groups), pool.source)

    def _static_only(self) -> Pool:
        deployments, groups = static_groups(self._settings)
        return make_pool(deployments=deployments, groups=groups, source="static")

    # -- persistence --------------------------------------------------------------------

    def _persist(self, name: str, data: Any, pause: Callable[[], None] = no_pause) -> None:
        """Write atomically (bytes as they are); runs in a worker thread."""
        if isinstance(data, Pool):
            data = data.to_json(pause=pause)
        target = self._dir / name
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data if isinstance(data, bytes) else dumps(data))
            os.replace(tmp, target)
        except OSError as exc:
            log.warning("could not persist %s: %s", name, exc)
            with contextlib.suppress(OSError):  # a failed write leaves nothing behind
                tmp.unlink(missing_ok=True)

    def _load_persisted_catalogue(self) -> None:
        """Health refreshes can go on from the last good catalogue while the catalogue is down."""
        try:
            self._catalogue = parse_catalogue(json.loads((self._dir / "catalogue.json").read_text()))
        except (OSError, ValueError) as exc:
            log.info("no usable persisted catalogue: %s", _describe(exc))

    def _load_persisted_pool(self) -> tuple[Pool | None, str | None]:
        """The persisted pool, or None and why it cannot be used (None: there is none)."""
        path: Path = self._dir / "pool.json"
        try:
            pool = Pool.from_json(json.loads(path.read_text()), source="persisted")
        except FileNotFoundError:
            return None, None
        except RecursionError:
            problem = "nested too deeply"
            log.warning("persisted pool unusable: %s", problem)
            return None, problem
        except (OSError, ValueError) as exc:  # from_json raises ValueError for every shape problem
            problem = _describe(exc)
            log.warning("persisted pool unusable: %s", problem)
            return None, problem
        elsewhere = {d.api_base for d in pool.deployments.values() if d.provider == "openrouter"} - {self._base_url}
        if elsewhere:  # e.g. a sandbox's pool (a loopback port long gone) persisted before the two were kept apart
            log.warning("persisted pool in %s was built for another OpenRouter address (%s); not served",
                        path, ", ".join(sorted(str(a) for a in elsewhere)))
            return None, None
        return pool, None

    def passive_health(self) -> Mapping[str, PassiveHealth]:
        """Our own traffic's recent outcomes per deployment id."""
        return self._passive.snapshot(self._clock())

    def gated(self) -> dict[str, str]:
        """Models the last health cycle kept out of the pool, with the reason."""
        return {model: score.reason or "gated" for model, score in self._health.items()
                if isinstance(score, HealthScore) and score.gated}

    def status(self) -> dict[str, Any]:
        return {
            "last_attempt": self.last_attempt,
            "last_success_at": self.last_success_at,
            "refreshes": dict(self.refreshes),
            "consecutive_failures": self.backoff.failures,
            "failing_since": self.backoff.since,
            "next_retry_at": self.backoff.retry_at,
            "catalogue_models": len(self._catalogue.models) if self._catalogue else 0,
            "key": dict(self.key_info),
            "paid_credits": {"out": self.credits.out, "since": self.credits.out_since,
                             "reason": self.credits.reason()},
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
