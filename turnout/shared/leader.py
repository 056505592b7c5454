"""One refresher for all replicas: a Redis lock with a TTL, the pool published by version.

The replica holding `leader` (SET NX PX, renewed every `sync_s` by a compare-and-expire
script) reads the catalogue, probes health and builds the pool, then stores it with a new
version (one script: INCR and SET). The others read the version every `sync_s` and, when it
moved, fetch the pool and publish it with the same paced, atomic swap a refresh uses. The
lock expires `lock_ttl_s` after its holder stopped renewing: another replica takes it at its
next tick and refreshes at once, so a dead leader is replaced within twice the TTL. Health
probes happen on the leader only. While Redis is away, every replica refreshes on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from turnout.encoding import dumps
from turnout.pool.model import Pool
from turnout.pool.refresh import PoolManager
from turnout.shared.link import RedisLink, SharedStateDown

log = logging.getLogger("turnout.shared")
_POOL_TIMEOUT_S = 5.0  # a pool is ~1 MB of JSON: longer than a request-path call, off that path

_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# ARGV: the pool, the version this replica serves. Versions never go back, even after Redis
# lost its data (restarted without persistence): followers compare with what they serve.
_PUBLISH = """
local version = redis.call('INCR', KEYS[1])
if version <= tonumber(ARGV[2]) then
  version = tonumber(ARGV[2]) + 1
  redis.call('SET', KEYS[1], version)
end
redis.call('SET', KEYS[2], ARGV[1])
return version
"""


class PoolLeader:
    def __init__(self, link: RedisLink, manager: PoolManager) -> None:
        self._link = link
        self._manager = manager
        self._ttl_ms = int(link.settings.lock_ttl_s * 1000)
        self._lock_key, self._version_key, self._pool_key = link.key("leader"), link.key("pool", "version"), \
            link.key("pool", "data")
        self._lock = link.script(_LOCK)
        self._unlock = link.script(_UNLOCK)
        self._publish = link.script(_PUBLISH)
        self.is_leader = False
        self.version = 0  # of the pool this replica serves (built here or adopted)
        self.adopted = 0
        link.on_resync(self._resync)

    async def _resync(self) -> None:
        """Redis is back (maybe empty): the leader stores its pool again for the others."""
        await self._try_lock()
        pool = self._manager.current_pool()
        if self.is_leader and pool is not None:
            await self.published(pool)

    def may_refresh(self) -> bool:
        return self.is_leader or not self._link.up

    async def start(self) -> None:
        """The first pool: the leader builds it; a follower adopts the leader's (waiting up to 2 TTLs)."""
        try:
            await self._try_lock()
            if not self.is_leader:
                deadline = time.monotonic() + 2 * self._link.settings.lock_ttl_s
                while time.monotonic() < deadline and not self.is_leader:
                    if await self.adopt_latest():
                        return
                    await asyncio.sleep(0.25)
                    await self._try_lock()
        except SharedStateDown:
            pass
        await self._manager.start()  # the leader's refresh publishes through `published`

    async def tick(self) -> None:
        await self._try_lock()
        if not self.is_leader:
            await self.adopt_latest()

    async def published(self, pool: Pool) -> None:
        """The leader built `pool`: store it under a new version (a follower's call does nothing)."""
        if not self.is_leader:
            return
        data = await asyncio.to_thread(lambda: dumps(pool.to_json()))
        try:
            version = await self._link.call(
                lambda client: self._publish(keys=[self._version_key, self._pool_key], args=[data, self.version],
                                             client=client),
                timeout_s=_POOL_TIMEOUT_S)
        except SharedStateDown:
            return
        self.version = int(version)
        log.info("pool version %d published to the other replicas", self.version)

    async def adopt_latest(self) -> bool:
        raw_version = await self._link.call(lambda client: client.get(self._version_key))
        version = int(raw_version or 0)
        if version <= self.version:
            return False
        raw = await self._link.call(lambda client: client.get(self._pool_key), timeout_s=_POOL_TIMEOUT_S)
        if raw is None:
            return False
        pool = await asyncio.to_thread(_decode_pool, raw)
        await self._manager.adopt(pool)
        self.version = version
        self.adopted += 1
        return True

    async def _try_lock(self) -> None:
        was = self.is_leader
        got = await self._link.call(
            lambda client: self._lock(keys=[self._lock_key], args=[self._link.name, self._ttl_ms], client=client))
        self.is_leader = bool(int(got))
        if self.is_leader and not was:
            log.info("this replica now leads the pool refresh")
            if self._manager.current_pool() is not None:
                self._manager.take_over()
        elif was and not self.is_leader:
            log.info("another replica leads the pool refresh now")

    async def release(self) -> None:
        if self.is_leader:
            with contextlib.suppress(SharedStateDown):
                await self._link.call(
                    lambda client: self._unlock(keys=[self._lock_key], args=[self._link.name], client=client),
                    timeout_s=0.5)
            self.is_leader = False

    def status(self) -> dict[str, Any]:
        return {"leader": self.is_leader, "pool_version": self.version, "pools_adopted": self.adopted}


def _decode_pool(raw: bytes) -> Pool:
    return Pool.from_json(json.loads(raw))
