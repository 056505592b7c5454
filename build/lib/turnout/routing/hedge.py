"""Hedged attempts: when a stream has produced nothing after a delay, start the next candidate
too and keep whichever produces its first token first.

A deployment that takes 20 s to its first token is not failing, so no timeout fires; the
client just waits. With a hedge the wait is bounded by the delay plus the next candidate's
own time to first token. The loser is cancelled (its upstream call closed) and recorded
as `cancelled`, which passive health ignores: being slower than a peer once is not a fault.

At most one hedge per attempt: two calls in flight for one request is the cost ceiling. If
the first call fails while the hedge runs, its failure is handled at once (recorded,
benched) and the hedge carries on; if both fail, the walk goes on as after any failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from turnout.pool.model import Deployment
from turnout.upstream.failures import AttemptError

T = TypeVar("T")


@dataclass(slots=True)
class HedgedCall(Generic[T]):
    """One upstream call of a hedged attempt, running in its own task."""

    deployment: Deployment
    group: str
    started: float
    task: asyncio.Task[T]


class CallFailed(Exception):
    """The last call of an attempt failed; the walk handles `error` as after any failure."""

    def __init__(self, *, deployment: Deployment, group: str, started: float, error: AttemptError) -> None:
        super().__init__(error.message)
        self.deployment = deployment
        self.group = group
        self.started = started
        self.error = error


class HedgeEvents(Protocol[T]):
    """What the walk does for a hedge: start the next candidate, and account for each call."""

    def start_next(self) -> Awaitable[HedgedCall[T] | None]: ...

    def failed(self, call: HedgedCall[T], error: AttemptError) -> None: ...

    def cancelled(self, call: HedgedCall[T]) -> None: ...

    def discard(self, value: T) -> None: ...


async def race(first: HedgedCall[T], *, delay_s: float, events: HedgeEvents[T]) -> tuple[HedgedCall[T], T]:
    """Run `first`; after `delay_s` without an answer, start one more call; the first answer wins.

    Raises `CallFailed` for the call that failed last when none answered; any other exception
    (a cancelled request, a refusal the walk raises from `events.failed`) cancels every call.
    """
    calls = [first]
    kept: HedgedCall[T] | None = None
    hedged = False
    try:
        while True:
            done = {c.task for c in calls if c.task.done()}
            if not done:
                timeout = None if hedged else max(0.0, first.started + delay_s - time.monotonic())
                done, _ = await asyncio.wait([c.task for c in calls], timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
            if not done:
                hedged = True
                extra = await events.start_next()
                if extra is not None:
                    calls.append(extra)
                continue
            for call in [c for c in calls if c.task in done]:
                error = call.task.exception()
                if error is None:
                    kept = call
                    return call, call.task.result()
                if not isinstance(error, AttemptError):
                    raise error
                calls.remove(call)
                if not calls:
                    raise CallFailed(deployment=call.deployment, group=call.group, started=call.started, error=error)
                events.failed(call, error)
    finally:
        await _settle([c for c in calls if c is not kept], events)


async def _settle(calls: list[HedgedCall[T]], events: HedgeEvents[T]) -> None:
    """Cancel the calls not kept and wait for them; close the answer of any that finished anyway.

    Every call ending here counts as `cancelled`: its outcome, whatever it was, did not matter.
    """
    for call in calls:
        if not call.task.done():
            call.task.cancel()
    if calls:
        await asyncio.wait([c.task for c in calls])
    for call in calls:
        task = call.task
        if not task.cancelled() and task.exception() is None:
            events.discard(task.result())
        events.cancelled(call)
