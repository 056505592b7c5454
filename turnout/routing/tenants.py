"""Named gateway keys: who is asking (key and tenant), whether they may, and what they spent.

    KeyRing       the configured keys; `identify` matches a bearer token in constant time
                  over every key and says which one it was (`Caller`)
    Tenancy       per request: `admit` (allowed model, rpm, daily budget -> 403 / 429 with
                  Retry-After), then `record` (requests, tokens, USD by day, key, tenant, model)
    SpendStore    where usage and the rpm window live; `InProcessSpend` is the default, its
                  daily totals persisted to `data_dir/usage.json` so a restart keeps today's spend
                  (the lifespan saves it every few seconds and on shutdown)

Keys from `api_keys` (the plain list) are the key `default`, tenant `default`, without limits;
the admin key used on a client route is `admin`; with no keys configured every request is
`anonymous`. A client's `metadata.tenant_id` is honoured only when the key lists that tenant
(`tenant` or `tenants`); otherwise the request counts for the key's own tenant. Key and tenant
names are therefore always configured names: the metrics' labels stay bounded.

The budget is checked before a request and its cost known after it, so requests in flight
when the budget is reached may take it a little past; the next one is refused.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from turnout.config import GatewayKey, Settings
from turnout.errors import Forbidden, KeyLimited, Unauthorized

log = logging.getLogger("turnout.tenants")
DEFAULT_KEY = "default"
ADMIN_KEY = "admin"
ANONYMOUS = "anonymous"
KEEP_DAYS = 8  # usage.json keeps this week and the last day of the one before
_RPM_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class Caller:
    """The key a request came with; `spec` is None for the unnamed kinds (default, admin, anonymous)."""

    key: str
    tenant: str
    spec: GatewayKey | None = None

    def tenant_for(self, requested: Any) -> str:
        """The tenant to count the request for: the client's `metadata.tenant_id` when the key allows it."""
        if self.spec is not None and isinstance(requested, str) and requested in self.spec.tenants:
            return requested
        return self.tenant


class KeyRing:
    """Every key the gateway accepts, built once from the settings."""

    def __init__(self, settings: Settings) -> None:
        for off in (k for k in settings.keys if k.secret() is None):
            log.warning("key %r is off: its environment variable %s is not set", off.name, off.key_env)
        entries: list[tuple[bytes, Caller]] = [
            ((k.secret() or "").encode(), Caller(key=k.name, tenant=k.own_tenant, spec=k)) for k in settings.active_keys]
        entries += [(k.get_secret_value().encode(), Caller(key=DEFAULT_KEY, tenant=DEFAULT_KEY))
                    for k in settings.api_keys]
        self.client_keys = tuple(entries)
        self.admin = settings.admin_key.get_secret_value().encode() if settings.admin_key else None
        self.required = settings.auth_required

    def identify(self, token: str | None) -> Caller:
        """Who `token` is; Unauthorized when it is missing or matches no key (the admin key counts)."""
        if not self.required:
            return Caller(key=ANONYMOUS, tenant=ANONYMOUS)
        if token is None:
            raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")
        given = token.encode()
        found: Caller | None = None
        for secret, caller in self.client_keys:  # compare against every key: timing does not tell which
            if hmac.compare_digest(given, secret):
                found = caller
        if self.admin is not None and hmac.compare_digest(given, self.admin):
            found = found or Caller(key=ADMIN_KEY, tenant=ADMIN_KEY)
        if found is None:
            raise Unauthorized("Invalid API key.")
        return found

    def labels(self) -> list[tuple[str, str]]:
        """Every (key, tenant) pair a request can be counted under."""
        pairs = {(c.key, t) for _, c in self.client_keys for t in (c.tenant, *(c.spec.tenants if c.spec else ()))}
        if self.admin is not None:
            pairs.add((ADMIN_KEY, ADMIN_KEY))
        if not self.required:
            pairs.add((ANONYMOUS, ANONYMOUS))
        return sorted(pairs)


@dataclass(slots=True)
class Totals:
    requests: int = 0
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Totals) -> None:
        self.requests += other.requests
        self.cost_usd += other.cost_usd
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens

    def as_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "cost_usd": round(self.cost_usd, 8),
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


UsageKey = tuple[str, str, str, str]  # (UTC day, key, tenant, model)


class SpendStore(Protocol):
    """Usage by day, key, tenant and model, and each key's rpm window (Redis can stand behind it)."""

    async def add(self, usage: UsageKey, totals: Totals) -> None: ...

    async def spent(self, day: str, key: str) -> float: ...

    async def take(self, key: str, *, now: float, limit: int) -> float | None:
        """Count one request in `key`'s last minute; None when it fits, else seconds until one would."""
        ...

    async def rows(self, days: Collection[str]) -> list[tuple[UsageKey, Totals]]: ...


class InProcessSpend:
    """The default store: dicts in memory; `rows_to_save` + `write` put the daily totals in `path`."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._usage: dict[UsageKey, Totals] = {}
        self._spent: dict[tuple[str, str], float] = {}
        self._windows: dict[str, deque[float]] = {}
        self.dirty = False

    async def add(self, usage: UsageKey, totals: Totals) -> None:
        self._usage.setdefault(usage, Totals()).add(totals)
        spent = (usage[0], usage[1])
        self._spent[spent] = self._spent.get(spent, 0.0) + totals.cost_usd
        self.dirty = True

    async def spent(self, day: str, key: str) -> float:
        return self._spent.get((day, key), 0.0)

    async def take(self, key: str, *, now: float, limit: int) -> float | None:
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - _RPM_WINDOW_S:
            window.popleft()
        if len(window) >= limit:
            return window[0] + _RPM_WINDOW_S - now
        window.append(now)
        return None

    async def rows(self, days: Collection[str]) -> list[tuple[UsageKey, Totals]]:
        return [(k, v) for k, v in self._usage.items() if k[0] in days]

    # -- persistence (blocking: call in a thread) -----------------------------------------

    def load(self) -> None:
        if self._path is None or not self._path.is_file():
            return
        try:
            rows = json.loads(self._path.read_text(encoding="utf-8"))["rows"]
            for row in rows:
                key: UsageKey = (str(row["day"]), str(row["key"]), str(row["tenant"]), str(row["model"]))
                totals = Totals(requests=int(row["requests"]), cost_usd=float(row["cost_usd"]),
                                prompt_tokens=int(row["prompt_tokens"]), completion_tokens=int(row["completion_tokens"]))
                self._usage[key] = totals
                self._spent[(key[0], key[1])] = self._spent.get((key[0], key[1]), 0.0) + totals.cost_usd
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("could not read %s (%s): usage starts from zero", self._path, type(exc).__name__)

    def rows_to_save(self, *, today: str) -> list[dict[str, Any]]:
        """Forget days before the last `KEEP_DAYS`; the rest as rows for `write`. On the event loop."""
        oldest = (datetime.fromisoformat(today) - timedelta(days=KEEP_DAYS - 1)).date().isoformat()
        for key in [k for k in self._usage if k[0] < oldest]:
            del self._usage[key]
        for spent in [k for k in self._spent if k[0] < oldest]:
            del self._spent[spent]
        self.dirty = False
        return [{"day": k[0], "key": k[1], "tenant": k[2], "model": k[3], **v.as_json()}
                for k, v in sorted(self._usage.items())]

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Write `rows_to_save`'s rows atomically (blocking: in a thread, the dicts are not touched)."""
        if self._path is None:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps({"rows": rows}), encoding="utf-8")
            os.replace(tmp, self._path)
        except OSError as exc:
            log.warning("could not persist %s: %s", self._path, exc)


def day_of(now: float) -> str:
    """The UTC day of `now`, as "YYYY-MM-DD" (every request asks: the last answer is kept)."""
    day = int(now // 86400)
    if _last_day[0] != day:
        _last_day[:] = [day, datetime.fromtimestamp(now, UTC).date().isoformat()]
    return str(_last_day[1])


_last_day: list[Any] = [None, ""]


def week_of(now: float) -> list[str]:
    """This ISO week's UTC days, Monday to today."""
    today = datetime.fromtimestamp(now, UTC).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(today.weekday(), -1, -1)]


def seconds_to_midnight(now: float) -> float:
    """Until the UTC day (the budget window) resets."""
    return 86400.0 - now % 86400.0


@dataclass(slots=True)
class Tenancy:
    """Admission and accounting for named keys; the lifespan saves an `InProcessSpend` store."""

    keys: KeyRing
    store: SpendStore
    clock: Callable[[], float] = time.time
    on_usage: Callable[[Caller, str, Totals], None] | None = None
    on_reject: Callable[[Caller, str], None] | None = None
    _days: dict[str, None] = field(default_factory=dict)

    async def admit(self, caller: Caller, group: str) -> None:
        """Forbidden when the key may not call `group`; KeyLimited over its rpm or today's budget."""
        spec = caller.spec
        if spec is None:
            return
        if spec.models and group not in spec.models:
            self._rejected(caller, "model")
            raise Forbidden(f"The key '{caller.key}' may not use the model '{group}'; it may use: "
                            f"{', '.join(spec.models)}.", param="model", code="model_not_allowed")
        now = self.clock()
        if spec.daily_budget_usd is not None:
            spent = await self.store.spent(day_of(now), caller.key)
            if spent >= spec.daily_budget_usd:
                self._rejected(caller, "budget")
                wait = seconds_to_midnight(now)
                raise KeyLimited(
                    f"The key '{caller.key}' has spent its daily budget (${spent:.4f} of "
                    f"${spec.daily_budget_usd:.4f}); it resets at 00:00 UTC, in {wait:.0f}s.",
                    code="budget_exceeded", retry_after=wait)
        if spec.rpm is not None:
            wait_s = await self.store.take(caller.key, now=now, limit=spec.rpm)
            if wait_s is not None:
                self._rejected(caller, "rpm")
                raise KeyLimited(f"The key '{caller.key}' is over its limit of {spec.rpm} requests per minute; "
                                 f"retry in {max(1, round(wait_s))}s.", code="rate_limit_exceeded", retry_after=wait_s)

    async def record(self, caller: Caller, tenant: str, *, model: str, usage: Mapping[str, Any] | None,
                     cost_usd: float | None) -> None:
        prompt, completion = _tokens(usage)
        totals = Totals(requests=1, cost_usd=cost_usd or 0.0, prompt_tokens=prompt, completion_tokens=completion)
        await self.store.add((day_of(self.clock()), caller.key, tenant, model), totals)
        if self.on_usage is not None:
            self.on_usage(caller, tenant, totals)

    async def report(self) -> dict[str, Any]:
        """GET /admin/usage: today and this week, by key, tenant and model, with each key's budget."""
        now = self.clock()
        week = week_of(now)
        today = week[-1]
        rows = await self.store.rows(week)
        keys: list[dict[str, Any]] = []
        for _, caller in self.keys.client_keys:
            spec = caller.spec
            if spec is None or any(k["name"] == spec.name for k in keys):
                continue
            spent = await self.store.spent(today, spec.name)
            keys.append({"name": spec.name, "tenant": spec.own_tenant, "tenants": list(spec.tenants),
                         "models": list(spec.models), "rpm": spec.rpm, "daily_budget_usd": spec.daily_budget_usd,
                         "spent_today_usd": round(spent, 8),
                         "remaining_today_usd": None if spec.daily_budget_usd is None
                         else round(max(0.0, spec.daily_budget_usd - spent), 8)})
        return {"now": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
                "budget_resets_in_s": round(seconds_to_midnight(now)),
                "today": _summary([r for r in rows if r[0][0] == today], days=[today]),
                "week": _summary(rows, days=week), "keys": keys}

    def _rejected(self, caller: Caller, reason: str) -> None:
        if self.on_reject is not None:
            self.on_reject(caller, reason)


def _summary(rows: list[tuple[UsageKey, Totals]], *, days: list[str]) -> dict[str, Any]:
    total = Totals()
    by: dict[str, dict[str, Totals]] = {"keys": {}, "tenants": {}, "models": {}}
    for (_, key, tenant, model), totals in rows:
        total.add(totals)
        for kind, name in (("keys", key), ("tenants", tenant), ("models", model)):
            by[kind].setdefault(name, Totals()).add(totals)
    return {"from": days[0], "to": days[-1], "total": total.as_json(),
            **{kind: {name: t.as_json() for name, t in sorted(found.items())} for kind, found in by.items()}}


def _tokens(usage: Mapping[str, Any] | None) -> tuple[int, int]:
    if not isinstance(usage, Mapping):
        return 0, 0
    values = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return tuple(v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0 for v in values)  # type: ignore[return-value]
