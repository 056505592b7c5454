"""One pipelined Redis connection for the call every attempt makes (the admission script).

redis-py's asyncio client spends about half of an EVALSHA's CPU on its pool and command
machinery (0.046 ms against 0.023 ms for the same command on a bare connection, measured in
bench/shared_state.py's micro run). This lane writes commands as they come and matches
replies in order (RESP replies arrive in request order on one connection), so concurrent
attempts share the connection without a lock. A reply that arrives for a caller that stopped
waiting (its timeout passed) is dropped. A lost connection fails every waiter at once.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any, cast

import redis.exceptions
from redis.asyncio.connection import parse_url

from turnout.config import SharedStateSettings


def _encode(parts: tuple[Any, ...]) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _parse(buf: bytearray, at: int) -> tuple[Any, int] | None:
    """One RESP2 value from `buf` at `at`: (value, end), or None while incomplete."""
    line_end = buf.find(b"\r\n", at)
    if line_end < 0:
        return None
    kind, body = buf[at:at + 1], bytes(buf[at + 1:line_end])
    after = line_end + 2
    if kind == b"+":
        return body, after
    if kind == b"-":
        message = body.decode(errors="replace")
        error = redis.exceptions.NoScriptError if message.startswith("NOSCRIPT") else redis.exceptions.ResponseError
        return error(message), after
    if kind == b":":
        return int(body), after
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None, after
        if len(buf) < after + size + 2:
            return None
        return bytes(buf[after:after + size]), after + size + 2
    if kind == b"*":
        count = int(body)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            found = _parse(buf, after)
            if found is None:
                return None
            item, after = found
            items.append(item)
        return items, after
    raise redis.exceptions.ConnectionError(f"unexpected RESP type {kind!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass, but is one

    def data_received(self, data: bytes) -> None:
        self._buf += data
        at = 0
        try:
            while self._waiters:
                found = _parse(self._buf, at)
                if found is None:
                    break
                value, at = found
                waiter = self._waiters.popleft()
                if waiter.done():  # its caller gave up waiting
                    continue
                if isinstance(value, redis.exceptions.ResponseError):
                    waiter.set_exception(value)
                else:
                    waiter.set_result(value)
        except redis.exceptions.ConnectionError as exc:
            self._fail(exc)
            if self.transport is not None:
                self.transport.close()
        del self._buf[:at]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(redis.exceptions.ConnectionError(f"connection lost: {exc!r}"))

    def _fail(self, exc: Exception) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)

    def send(self, parts: tuple[Any, ...]) -> asyncio.Future[Any]:
        if self.closed or self.transport is None:
            raise redis.exceptions.ConnectionError("lane closed")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.transport.write(_encode(parts))
        return waiter


class Lane:
    """`await lane.command("EVALSHA", sha, 2, *keys, *args)`; reconnects on the next call after a loss."""

    def __init__(self, settings: SharedStateSettings) -> None:
        if settings.redis_url is not None:
            found = parse_url(settings.redis_url.get_secret_value())
            self._host, self._port = found.get("host", "127.0.0.1"), int(found.get("port", 6379))
            self._db, self._user = int(found.get("db", 0)), found.get("username")
            self._password = found.get("password")
            self._tls = "connection_class" in found
        else:
            self._host, self._port, self._db, self._user = settings.host or "127.0.0.1", settings.port, \
                settings.db, None
            self._password = settings.password.get_secret_value() if settings.password else None
            self._tls = settings.tls
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def command(self, *parts: Any) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connect()
        return await protocol.send(parts)

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is not None and not self._protocol.closed:
                return self._protocol
            loop = asyncio.get_running_loop()
            context = ssl.create_default_context() if self._tls else None
            transport, protocol = await loop.create_connection(_Protocol, self._host, self._port, ssl=context)
            try:
                if self._password is not None:
                    auth = ("AUTH", self._user, self._password) if self._user else ("AUTH", self._password)
                    await protocol.send(auth)
                if self._db:
                    await protocol.send(("SELECT", self._db))
            except BaseException as exc:
                transport.close()
                if isinstance(exc, redis.exceptions.ResponseError):  # a wrong password: down, not per call
                    raise redis.exceptions.AuthenticationError(str(exc)) from None
                raise
            self._protocol = protocol
            return protocol

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
