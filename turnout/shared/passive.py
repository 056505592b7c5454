"""Passive health pooled: every replica's outcomes reach every replica, so all rank alike.

Samples are buffered here and appended as one stream entry per `sync_s` (a Redis stream
capped at ~10,000 entries); each replica reads the entries it has not seen and records the
other replicas' samples into its own `PassiveStats`. Whoever leads the refresh then ranks on
the whole fleet's traffic, and a new leader already has it.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from turnout.pool.provider_health import PassiveStats
from turnout.shared.link import RedisLink

_MAX_BUFFER = 5000
_STREAM_LEN = 10_000


class SharedPassive(PassiveStats):
    def __init__(self, link: RedisLink, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._link = link
        self._key = link.key("passive")
        self._buffer: deque[tuple[str, str, float, float]] = deque(maxlen=_MAX_BUFFER)
        self._last_id = "$"  # only what was written after this replica started

    def record(self, deployment_id: str, outcome: str, *, latency_s: float, now: float | None = None) -> None:
        super().record(deployment_id, outcome, latency_s=latency_s, now=now)
        if now is None:  # samples adopted from other replicas carry their time and are not sent back
            import time

            self._buffer.append((deployment_id, outcome, latency_s, time.time()))

    async def sync(self) -> None:
        if self._buffer:
            batch = list(self._buffer)
            payload = json.dumps({"from": self._link.name, "samples": batch})
            await self._link.call(lambda client: client.xadd(self._key, {"s": payload}, maxlen=_STREAM_LEN,
                                                             approximate=True))
            for _ in batch:
                self._buffer.popleft()
        if self._last_id == "$":
            last = await self._link.call(lambda client: client.xrevrange(self._key, count=1))
            self._last_id = last[0][0].decode() if last else "0-0"
            return
        entries = await self._link.call(lambda client: client.xread({self._key: self._last_id}, count=1000))
        for _, items in entries or ():
            for entry_id, fields in items:
                self._last_id = entry_id.decode()
                data = json.loads(fields[b"s"])
                if data.get("from") == self._link.name:
                    continue
                for dep_id, outcome, latency_s, at in data.get("samples", ()):
                    super().record(dep_id, outcome, latency_s=latency_s, now=at)
