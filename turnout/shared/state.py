"""The shared state of one replica, built and run by the lifespan: one object, one sync task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from turnout.config import Settings
from turnout.pool.refresh import PoolManager
from turnout.routing.admission import LocalAdmission
from turnout.routing.snapshot import SnapshotHolder
from turnout.routing.sticky import InProcessPins
from turnout.shared.account_limits import SharedAdmission
from turnout.shared.benches import SharedCooldowns
from turnout.shared.leader import PoolLeader
from turnout.shared.link import RedisLink, SharedStateDown
from turnout.shared.passive import SharedPassive
from turnout.shared.pins import RedisPins

log = logging.getLogger("turnout.shared")


class SharedState:
    """Redis-backed parts, each with the local state it falls back to."""

    def __init__(self, settings: Settings, *, holder: SnapshotHolder, local: LocalAdmission) -> None:
        self.settings = settings.shared_state
        self.link = RedisLink(self.settings)
        self.admission = SharedAdmission(self.link, local)
        self.cooldowns = SharedCooldowns(self.link, holder)
        self.passive = SharedPassive(self.link)
        self.pins = RedisPins(self.link, InProcessPins(max_entries=settings.sessions.max_entries),
                              ttl_s=settings.sessions.ttl_s)
        self.leader: PoolLeader | None = None

    def lead(self, manager: PoolManager) -> PoolLeader:
        self.leader = PoolLeader(self.link, manager)
        return self.leader

    async def start(self) -> None:
        await self.link.start()

    async def push_budget(self) -> None:
        """What `GET /key` said the account spent today, as a floor for every replica."""
        with contextlib.suppress(SharedStateDown):
            await self.admission.resync()

    async def close(self) -> None:
        if self.leader is not None:
            await self.leader.release()
        await self.link.close()

    async def run(self) -> None:
        """Every `sync_s`: the leader lock, the pool version, cooldowns, passive health."""
        steps = [self.cooldowns.sync, self.passive.sync]
        if self.leader is not None:
            steps.insert(0, self.leader.tick)
        while True:
            await asyncio.sleep(self.settings.sync_s)
            for step in steps:
                if not self.link.up:
                    break
                try:
                    await step()
                except SharedStateDown:
                    break
                except Exception as exc:  # a bad entry in Redis must not end the sync
                    log.warning("shared state sync step %s failed: %s: %s", step.__qualname__,
                                type(exc).__name__, str(exc)[:200])

    def status(self) -> dict[str, Any]:
        found = self.link.status()
        if self.leader is not None:
            found.update(self.leader.status())
        found["cooldowns_adopted"] = self.cooldowns.applied
        return found
