"""Pacing for background CPU work that shares the event loop with requests.

A pool rebuild is a few hundred milliseconds of CPU. Run in one go it stalls every request
in flight for that long; `Pacer` lets it run in slices of `slice_s` and, while `busy()` says
requests are being served, sleeps `ratio` times the slice's length after each, so requests
keep most of the core and no stall is longer than one slice. Under load the work takes
`1 + ratio` times its CPU time to finish; with nothing in flight it runs at full speed,
yielding to the event loop between slices.

Awaited (`await pacer()`) it pauses a coroutine on the event loop; called as
`pacer.in_thread()` from pure code running in a worker thread (the pure functions take it as
their `pause` hook) it sleeps that thread, which hands the GIL back to the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def no_pause() -> None:
    """The `pause` hook of pure functions called outside a rebuild."""


class Pacer:
    def __init__(self, *, slice_s: float = 0.001, ratio: float = 4.0, busy: Callable[[], bool] = lambda: True) -> None:
        self.slice_s = slice_s
        self.ratio = ratio
        self._busy = busy
        self._since = time.perf_counter()

    async def __call__(self) -> None:
        """A point where the work may pause: it does once the current slice is used up."""
        worked = time.perf_counter() - self._since
        if worked >= self.slice_s:
            await asyncio.sleep(worked * self.ratio if self._busy() else 0)
            self._since = time.perf_counter()

    def in_thread(self) -> None:
        """The same, for work in a worker thread (never call it on the event loop)."""
        worked = time.perf_counter() - self._since
        if worked >= self.slice_s:
            if self._busy():
                time.sleep(worked * self.ratio)
            self._since = time.perf_counter()
