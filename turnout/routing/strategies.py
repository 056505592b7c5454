"""A static group's own routing strategy, fed by the gateway's attempts.

A group named in `strategies` (`latency-based-routing`, `usage-based-routing-v2`,
`least-busy`) is picked by the LiteLLM Router's own strategy code: the snapshot gives the
Router a routing group per such group and the picker hands its picks to the Router's full
selection. Those strategies learn from LiteLLM's logging callbacks, which never see the
calls the gateway makes itself (the OpenAI wire), so every attempt of such a group is told
to the strategy here, as the callbacks would have told it (`litellm_internals.feed_strategy`):

    the call goes out      least-busy: one more in flight; usage-v2: one more request this minute
    an answer              latency (per completion token when the usage says), tokens, and
                           for a stream the time to its first token, at the stream's end
    a failure or cancel    least-busy: one fewer in flight; latency: a timeout's penalty

The state lives in the current snapshot's Router (written through the holder, like
cooldowns) and moves to the next Router on publish; it is in-process unless the Router is
given Redis, whose routing cache LiteLLM then shares across replicas.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from turnout.pool.model import Deployment
from turnout.routing.snapshot import SnapshotHolder, entry_id
from turnout.upstream import litellm_internals
from turnout.upstream.failures import AttemptError
from turnout.upstream.openai_wire import Frame

T = TypeVar("T")


class StrategyFeed:
    """Tells a group's strategy about each of its attempts, in the holder's current Router."""

    def __init__(self, holder: SnapshotHolder) -> None:
        self._holder = holder
        self._pending: set[asyncio.Task[None]] = set()  # ends told from a stream's sync close

    async def fed(self, group: str, strategy: str, dep: Deployment, attempt: Awaitable[T], *, stream: bool) -> T:
        """Run `attempt`, telling the strategy its start and end (a stream ends when it closes)."""
        started = time.time()
        event = _Event(self, group=group, strategy=strategy, dep=dep, started=started, stream=stream)
        await event.send("start")
        try:
            value = await attempt
        except AttemptError as error:
            await event.send("failure", timeout=error.kind == "timeout")
            raise
        except BaseException:  # cancelled: a hedge lost, the client left
            event.send_later("failure")
            raise
        if stream:
            opened: Any = value
            fed: Any = (FedStream(opened[0], event, first_token=time.time()), opened[1])
            return fed  # type: ignore[no-any-return]
        await event.send("success", usage=value.get("usage") if isinstance(value, dict) else None)
        return value

    async def send(self, strategy: str, event: litellm_internals.StrategyEvent) -> None:
        snapshot = self._holder.current
        if snapshot is not None and snapshot.strategies.get(event.group) == strategy:
            await litellm_internals.feed_strategy(snapshot.router, strategy, event)

    def send_later(self, strategy: str, event: litellm_internals.StrategyEvent) -> None:
        task = asyncio.get_running_loop().create_task(self.send(strategy, event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


class _Event:
    """One attempt's events: the same group, entry and start for each."""

    __slots__ = ("_dep", "_feed", "_group", "_started", "_strategy", "_stream", "ended")

    def __init__(self, feed: StrategyFeed, *, group: str, strategy: str, dep: Deployment, started: float,
                 stream: bool) -> None:
        self._feed, self._group, self._strategy, self._dep = feed, group, strategy, dep
        self._started, self._stream = started, stream
        self.ended = False

    def _of(self, kind: str, *, first_token: float | None = None, usage: Any = None,
            timeout: bool = False) -> litellm_internals.StrategyEvent:
        if kind != "start":
            self.ended = True
        completion, total = _tokens(usage)
        dep = self._dep
        return litellm_internals.StrategyEvent(
            kind=kind, group=self._group, entry_id=entry_id(dep.id, self._group), model=dep.litellm_model,
            started=self._started, ended=time.time(), first_token=first_token, stream=self._stream,
            completion_tokens=completion, total_tokens=total, timeout=timeout, rpm=dep.rpm)

    async def send(self, kind: str, *, first_token: float | None = None, usage: Any = None,
                   timeout: bool = False) -> None:
        await self._feed.send(self._strategy, self._of(kind, first_token=first_token, usage=usage, timeout=timeout))

    def send_later(self, kind: str) -> None:
        self._feed.send_later(self._strategy, self._of(kind))


class FedStream:
    """An upstream stream whose end (done, broken or closed early) is told to its group's strategy."""

    __slots__ = ("_event", "_first_token", "_source", "_usage", "ready")

    def __init__(self, source: Any, event: _Event, *, first_token: float) -> None:
        self._source = source
        self._event = event
        self._first_token = first_token
        self._usage: Any = None
        self.ready: Callable[[], bool] = getattr(source, "ready", _never)

    @property
    def done(self) -> bool:
        return bool(getattr(self._source, "done", False))

    @property
    def malformed(self) -> int:
        return int(getattr(self._source, "malformed", 0))

    async def next(self, timeout_s: float) -> Frame | None:
        try:
            frame: Frame | None = await self._source.next(timeout_s)
        except AttemptError:
            if not self._event.ended:
                await self._event.send("failure")
            raise
        if frame is None:
            if not self._event.ended:
                await self._event.send("success", first_token=self._first_token, usage=self._usage)
        elif frame.data is not None and frame.data.get("usage"):
            self._usage = frame.data["usage"]
        return frame

    def close(self) -> None:
        self._source.close()
        if not self._event.ended:
            self._event.send_later("failure")


def _tokens(usage: Any) -> tuple[int | None, int | None]:
    """(completion, total) tokens from an upstream `usage` block, when it has them."""
    if not isinstance(usage, Mapping):
        return None, None
    completion, total = usage.get("completion_tokens"), usage.get("total_tokens")
    completion = completion if isinstance(completion, int) and not isinstance(completion, bool) else None
    if not isinstance(total, int) or isinstance(total, bool):
        prompt = usage.get("prompt_tokens")
        total = prompt + completion if isinstance(prompt, int) and completion is not None else None
    return completion, total


def _never() -> bool:
    return False
