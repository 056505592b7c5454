"""Benches shared: a deployment one replica benches is skipped by every replica within `sync_s`.

The bench itself stays in each replica's LiteLLM Router (its cooldown store is what the
picker reads, locally, per request). LiteLLM's own Redis-backed cooldown cache was not used:
in 1.110 `DualCache.batch_get_cache` falls through to a synchronous Redis read on every
local miss (every pick of a healthy deployment), on the event loop, with no bound shorter
than the socket timeout — a stopped Redis would stall every request. Here a bench is written
once (a hash field per deployment: until, status, kind) and every replica reads the hash every
`sync_s` and benches locally what it had not seen: no Redis read on a request's path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from turnout.routing.snapshot import SnapshotHolder
from turnout.shared.link import RedisLink

log = logging.getLogger("turnout.shared")


class SharedCooldowns:
    def __init__(self, link: RedisLink, holder: SnapshotHolder, *, clock: Callable[[], float] = time.time) -> None:
        self._link = link
        self._holder = holder
        self._clock = clock
        self._key = link.key("cooldowns")
        self._seen: dict[str, float] = {}  # deployment id -> the bench end already applied here
        self.applied = 0  # benches adopted from other replicas

    def benched(self, deployment_ids: list[str], seconds: float, status: int, kind: str) -> None:
        """The engine benched these here: tell the others (a write nobody waits for)."""
        until = self._clock() + seconds
        fields = {}
        for dep_id in deployment_ids:
            self._seen[dep_id] = max(until, self._seen.get(dep_id, 0.0))
            fields[dep_id] = f"{until!r}|{status}|{kind}"
        key = self._key

        async def write(client: Any) -> None:
            await client.hset(key, mapping=fields)

        self._link.spawn(write)

    async def sync(self) -> None:
        """Adopt benches other replicas wrote; drop the expired ones from the hash."""
        raw: dict[bytes, bytes] = await self._link.call(lambda client: client.hgetall(self._key))
        now = self._clock()
        expired: list[bytes] = []
        by_end: dict[tuple[float, int, str], list[str]] = {}
        for field, value in raw.items():
            try:
                until_s, status_s, kind = value.decode().split("|", 2)
                until, status = float(until_s), int(status_s)
            except ValueError:
                expired.append(field)
                continue
            if until <= now:
                expired.append(field)
                continue
            dep_id = field.decode()
            if self._seen.get(dep_id, 0.0) >= until - 0.001:
                continue
            self._seen[dep_id] = until
            by_end.setdefault((until, status, kind), []).append(dep_id)
        for (until, status, kind), ids in by_end.items():
            self._holder.bench(ids, seconds=until - now, reason=Exception(f"benched by another replica: {kind}"),
                               status=status)
            self.applied += len(ids)
        if expired:
            self._link.spawn(lambda client: client.hdel(self._key, *expired))
        self._seen = {k: v for k, v in self._seen.items() if v > now}
