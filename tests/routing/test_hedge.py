"""`hedge.race` with stand-in calls (coroutines that wait and answer or fail), on a real event loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.routing.test_continuation_units import dep
from turnout.routing.hedge import CallFailed, HedgedCall, race
from turnout.upstream.failures import AttemptError


async def answer(after_s: float, value: str) -> str:
    await asyncio.sleep(after_s)
    return value


async def fail(after_s: float, kind: str = "server_error") -> str:
    await asyncio.sleep(after_s)
    raise AttemptError(kind, f"{kind} after {after_s}")  # type: ignore[arg-type]


class Events:
    def __init__(self, hedge: Any = None, *, slow_start_s: float = 0.0) -> None:
        self._hedge = hedge
        self._slow_start_s = slow_start_s
        self.started: list[str] = []
        self.failed_: list[str] = []
        self.cancelled_: list[str] = []
        self.discarded: list[str] = []

    async def start_next(self) -> HedgedCall[str] | None:
        if self._hedge is None:
            return None
        self.started.append("hedge")
        task = asyncio.ensure_future(self._hedge)
        await asyncio.sleep(self._slow_start_s)  # picking the candidate took a while
        return HedgedCall(deployment=dep("hedge"), group="g", started=time.monotonic(), task=task)

    def failed(self, call: HedgedCall[str], error: AttemptError) -> None:
        self.failed_.append(call.deployment.model)

    def cancelled(self, call: HedgedCall[str]) -> None:
        self.cancelled_.append(call.deployment.model)

    def discard(self, value: str) -> None:
        self.discarded.append(value)


def first(coro: Any) -> HedgedCall[str]:
    return HedgedCall(deployment=dep("first"), group="g", started=time.monotonic(), task=asyncio.ensure_future(coro))


@pytest.mark.asyncio
async def test_an_answer_before_the_delay_starts_no_hedge() -> None:
    events = Events(hedge=answer(0, "hedge"))
    call, value = await race(first(answer(0.01, "first")), delay_s=0.5, events=events)
    assert (call.deployment.model, value) == ("first", "first")
    assert events.started == [] and events.cancelled_ == []
    events._hedge.close()


@pytest.mark.asyncio
async def test_a_slow_call_is_hedged_and_the_faster_answer_wins() -> None:
    events = Events(hedge=answer(0.01, "hedge"))
    call, value = await race(first(answer(5, "first")), delay_s=0.05, events=events)
    assert (call.deployment.model, value) == ("hedge", "hedge")
    assert events.cancelled_ == ["first"]


@pytest.mark.asyncio
async def test_a_failure_before_the_delay_is_the_walks_to_handle() -> None:
    events = Events(hedge=answer(0, "hedge"))
    with pytest.raises(CallFailed) as failed:
        await race(first(fail(0.01)), delay_s=0.5, events=events)
    assert failed.value.deployment.model == "first" and failed.value.error.kind == "server_error"
    assert events.started == []
    events._hedge.close()


@pytest.mark.asyncio
async def test_a_call_failing_while_the_hedge_runs_is_reported_and_the_hedge_goes_on() -> None:
    events = Events(hedge=answer(0.1, "hedge"))
    _call, value = await race(first(fail(0.06)), delay_s=0.05, events=events)
    assert value == "hedge"
    assert events.failed_ == ["first"] and events.cancelled_ == []


@pytest.mark.asyncio
async def test_when_both_fail_the_last_failure_is_raised() -> None:
    events = Events(hedge=fail(0.1, "timeout"))
    with pytest.raises(CallFailed) as failed:
        await race(first(fail(0.06)), delay_s=0.05, events=events)
    assert failed.value.deployment.model == "hedge" and failed.value.error.kind == "timeout"
    assert events.failed_ == ["first"]


@pytest.mark.asyncio
async def test_without_a_candidate_the_first_call_is_awaited() -> None:
    events = Events(hedge=None)
    _call, value = await race(first(answer(0.1, "first")), delay_s=0.02, events=events)
    assert value == "first"


@pytest.mark.asyncio
async def test_a_tie_keeps_one_answer_and_discards_the_other() -> None:
    # Both have answered by the time the race looks again: the first in line is kept.
    events = Events(hedge=answer(0.0, "hedge"), slow_start_s=0.1)
    _call, value = await race(first(answer(0.06, "first")), delay_s=0.05, events=events)
    assert value == "first"
    assert events.discarded == ["hedge"] and events.cancelled_ == ["hedge"]


@pytest.mark.asyncio
async def test_a_cancelled_request_cancels_every_call() -> None:
    events = Events(hedge=answer(5, "hedge"))
    one = first(answer(5, "first"))
    task = asyncio.ensure_future(race(one, delay_s=0.01, events=events))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert one.task.cancelled()
    assert sorted(events.cancelled_) == ["first", "hedge"]
