"""Sticky pins shared: a conversation keeps its deployment whichever replica takes the next turn.

Reads come from this replica's copy (`InProcessPins`) first; only a key it has never seen
costs one bounded Redis GET, and the answer is kept locally. Writes go to both, the Redis one
without waiting. A copy can lag when another replica moved the pin; the moved-from
deployment has failed or cooled down there, which the shared cooldowns bring here too, so the
walk moves on and re-pins.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions

from turnout.routing.sticky import InProcessPins
from turnout.shared.link import RedisLink, SharedStateDown


class RedisPins:
    def __init__(self, link: RedisLink, local: InProcessPins, *, ttl_s: float) -> None:
        self._link = link
        self._local = local
        self._ttl_s = ttl_s

    def _key(self, key: str) -> str:
        return self._link.key("pin", key.replace("\x00", "/"))

    async def get(self, key: str) -> str | None:
        found = await self._local.get(key)
        if found is not None:
            return found
        try:
            raw = await self._link.call(lambda client: client.get(self._key(key)))
        except (SharedStateDown, redis.exceptions.RedisError):  # no Redis error reaches a request
            return None
        if raw is None:
            return None
        value = raw.decode() if isinstance(raw, bytes) else str(raw)
        await self._local.set(key, value, self._ttl_s)
        return value

    async def set(self, key: str, deployment_id: str, ttl_s: float) -> None:
        previous = await self._local.get(key)
        await self._local.set(key, deployment_id, ttl_s)
        redis_key, ms = self._key(key), max(1, int(ttl_s * 1000))

        async def write(client: Any) -> None:
            await client.set(redis_key, deployment_id, px=ms)

        # A pin that held is not written again (no Redis call per turn): its Redis copy lives
        # `ttl_s` from the last change, the local copy from the last answer.
        if previous != deployment_id:
            self._link.spawn(write)

    async def delete(self, key: str) -> None:
        await self._local.delete(key)
        redis_key = self._key(key)
        self._link.spawn(lambda client: client.delete(redis_key))
