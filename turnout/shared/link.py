"""One Redis client for the replica: bounded calls, one log line per change of state, reconnects.

A call waits at most `op_timeout_s`. A connection error, or `TIMEOUTS_DOWN` timeouts in a
row (one slow answer on a loaded machine is not an outage), and the link is down: further
calls fail at once (no client request waits on a Redis that is away) while one
task reconnects with backoff (0.1 s doubling to `reconnect_max_s`). When a PING answers
again the link is up, and every `on_resync` callback runs so local state is pushed and
pulled again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions

from turnout.config import SharedStateSettings
from turnout.shared.lane import Lane

log = logging.getLogger("turnout.shared")
T = TypeVar("T")
_BACKOFF_START_S = 0.1
TIMEOUTS_DOWN = 3


class SharedStateDown(Exception):
    """Redis did not answer in time (or at all); the caller uses its local state."""


def replica_name() -> str:
    """Host, PID and a random tag: two gateways in one process (tests) are still two replicas."""
    return f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(24):06x}"


def _client(settings: SharedStateSettings, *, blocking: bool) -> aioredis.Redis:
    timeout = None if blocking else max(settings.op_timeout_s, 0.05)
    common: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": max(settings.op_timeout_s, 0.25),
                              "retry_on_timeout": False, "health_check_interval": 0}
    if settings.redis_url is not None:
        return aioredis.Redis.from_url(settings.redis_url.get_secret_value(), **common)
    password = settings.password.get_secret_value() if settings.password else None
    return aioredis.Redis(host=settings.host or "127.0.0.1", port=settings.port, db=settings.db, password=password,
                          ssl=settings.tls, **common)


class RedisLink:
    def __init__(self, settings: SharedStateSettings, *, name: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.prefix = settings.key_prefix
        self.name = name or replica_name()
        self._clock = clock
        self._client = _client(settings, blocking=False)
        self.lane = Lane(settings)  # the per-attempt script, on a leaner connection
        self._up = False
        self._timeouts = 0  # in a row
        self.reason: str | None = "not connected yet"
        self.since = time.time()
        self.failures = 0
        self._resync: list[Callable[[], Awaitable[None]]] = []
        self._reconnect: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def up(self) -> bool:
        return self._up

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def on_resync(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._resync.append(callback)

    def pubsub(self) -> aioredis.client.PubSub:
        """A connection of its own for subscriptions (its reads block; requests never wait on it)."""
        return _client(self.settings, blocking=True).pubsub(ignore_subscribe_messages=True)

    def script(self, lua: str) -> Any:
        return self._client.register_script(lua)

    async def start(self) -> None:
        """Connect once (bounded); down at start is not an error: the reconnect task goes on."""
        try:
            await asyncio.wait_for(self._client.ping(), timeout=max(1.0, self.settings.op_timeout_s))
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            self._went_down(exc)
            return
        self._came_up()

    async def close(self) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
        for task in list(self._tasks):
            task.cancel()
        self.lane.close()
        await self._client.aclose()

    async def call(self, op: Callable[[Any], Awaitable[T]], *, timeout_s: float | None = None) -> T:
        """Run `op` on the client, bounded; `SharedStateDown` when Redis is away or slow."""
        if not self._up:
            raise SharedStateDown(self.reason or "down")
        try:
            async with asyncio.timeout(timeout_s or self.settings.op_timeout_s):  # no task per call, unlike wait_for
                found = await op(self._client)
        except (TimeoutError, redis.exceptions.TimeoutError) as exc:
            self._timeouts += 1
            if self._timeouts >= TIMEOUTS_DOWN:
                self._went_down(exc)
            raise SharedStateDown(f"Redis slower than {self.settings.op_timeout_s}s") from None
        except redis.exceptions.ResponseError:
            self._timeouts = 0
            raise  # Redis answered (NOSCRIPT, a wrong type): up, and the caller's to handle
        except (redis.exceptions.RedisError, OSError) as exc:
            self._went_down(exc)
            raise SharedStateDown(self.reason or "down") from None
        self._timeouts = 0
        return found

    def spawn(self, op: Callable[[Any], Awaitable[Any]]) -> None:
        """Fire and forget (a write nobody waits for); failures only mark the link down."""
        if not self._up:
            return
        task = asyncio.get_running_loop().create_task(self._quiet(op))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quiet(self, op: Callable[[Any], Awaitable[Any]]) -> None:
        with contextlib.suppress(SharedStateDown, redis.exceptions.RedisError):
            await self.call(op, timeout_s=max(self.settings.op_timeout_s, 0.5))

    def _went_down(self, exc: BaseException) -> None:
        self.failures += 1
        if self._up or self._reconnect is None:
            self.reason = f"Redis unreachable: {type(exc).__name__}"
            if self._up:
                log.warning("shared state down, serving from local state: %s", self.reason)
            else:
                log.warning("shared state unavailable at start, serving from local state: %s", self.reason)
            self.since = time.time()
        self._up = False
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop(), name="turnout-redis")

    def _came_up(self) -> None:
        if not self._up:
            log.info("shared state up (%s)", "Redis")
        self._up = True
        self._timeouts = 0
        self.reason = None
        self.since = time.time()

    async def _reconnect_loop(self) -> None:
        delay = _BACKOFF_START_S
        while True:
            await asyncio.sleep(delay)
            try:
                await self._client.connection_pool.disconnect()
                self.lane.close()
                await asyncio.wait_for(self._client.ping(), timeout=max(0.5, self.settings.op_timeout_s))
            except (redis.exceptions.RedisError, OSError, TimeoutError):
                delay = min(self.settings.reconnect_max_s, delay * 2)
                continue
            self._came_up()
            for callback in self._resync:
                try:
                    await callback()
                except SharedStateDown:
                    break
                except Exception as exc:  # one part failing to resync must not stop the others
                    log.warning("shared state resync %s failed: %s: %s", getattr(callback, "__qualname__", "?"),
                                type(exc).__name__, str(exc)[:200])
            if self._up:
                return

    def status(self) -> dict[str, Any]:
        return {"backend": "redis", "up": self._up, "reason": self.reason, "since": self.since,
                "failures": self.failures}
