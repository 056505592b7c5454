"""The pool manager's outlet: a built pool becomes a routing snapshot (its Router and all) and goes live.

`turnout.pool.refresh` builds pools and must not import routing (STYLE.md: dependencies point
`routing -> pool`); the lifespan hands it this object as its `PoolOutlet`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from turnout.config import Settings
from turnout.pool.model import Pool
from turnout.pool.pacing import Pacer
from turnout.routing.snapshot import SnapshotHolder, build_snapshot, build_snapshot_paced


class SnapshotPublisher:
    def __init__(self, holder: SnapshotHolder, *, settings: Settings, busy: Callable[[], bool] = lambda: True) -> None:
        self._holder = holder
        self._settings = settings
        self._busy = busy  # requests in flight: the Router is filled in slices that yield most of the core

    def current_pool(self) -> Pool | None:
        current = self._holder.current
        return current.pool if current is not None else None

    async def publish(self, pool: Pool, *, paced: bool) -> None:
        """Build `pool`'s snapshot (`paced`: in slices, while requests are served) and publish it."""
        # usage-based-routing-v2 starts a sync task on the running loop as its Router is built.
        if paced or "usage-based-routing-v2" in self._settings.strategies.values():
            snapshot = await build_snapshot_paced(pool, self._settings, pause=Pacer(busy=self._busy))
        else:  # the first pool: nothing is served yet, build it in one go
            snapshot = await asyncio.to_thread(build_snapshot, pool, self._settings)
        self._holder.publish(snapshot)
