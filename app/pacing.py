"""Pacing for background CPU work that shares the event loop with requests.

A pool rebuild is a few hundred milliseconds of CPU. Run in one go it stalls every request
in flight for that long; `Pacer` lets it run in slices of `slice_s` and sleeps `ratio` times
the slice's length after each, so requests keep most of the core and no stall is longer
than one slice. The work takes `1 + ratio` times its CPU time to finish.

Awaited (`await pacer()`) it pauses a coroutine on the event loop; called as
`pacer.in_thread()` from pure code running in a worker thread (the pure functions take it as
their `pause` hook) it sleeps that thread, which hands the GIL back to the event loop.
"""

from __future__ import annotations

import asyncio
import time


def no_pause() -> None:
    """The `pause` hook of pure functions called outside a rebuild."""


class Pacer:
    def __init__(self, *, slice_s: float = 0.001, ratio: float = 4.0) -> None:
        self.slice_s = slice_s
        self.ratio = ratio
        self._since = time.perf_counter()

    async def __call__(self) -> None:
        """A point where the work may pause: it does once the current slice is used up."""
        worked = time.perf_counter() - self._since
        if worked >= self.slice_s:
            await asyncio.sleep(worked * self.ratio)
            self._since = time.perf_counter()

    def in_thread(self) -> None:
        """The same, for work in a worker thread (never call it on the event loop)."""
        worked = time.perf_counter() - self._since
        if worked >= self.slice_s:
            time.sleep(worked * self.ratio)
            self._since = time.perf_counter()
