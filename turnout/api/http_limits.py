"""Limits on what a connection may cost before the gateway has read a whole request.

uvicorn's httptools protocol buffers an unterminated header without bound and, once a
connection's first byte arrived, waits for the rest of the request forever (its keep-alive
timer covers only the gap between requests). `limited_protocol` returns a subclass that adds:

- at most `max_header_bytes` of request line and headers per request, else 431 and close;
- the request line and headers within `header_timeout_s` of the connection opening, or of
  the first byte of a later request on it (idle and trickling connections alike; between
  requests the keep-alive timeout applies), else 408 and close;
- the body within `body_timeout_s` of the headers, else 408 (or a close, once the
  response has started);

and `uvicorn_options` the rest: keep-alive, the h11 fallback's buffer limit, and
`max_connections` (uvicorn answers 503 beyond it, before memory grows without bound).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from turnout.config import ServerSettings, Settings


def _reply(status: bytes, message: str) -> bytes:
    body = message.encode()
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


class _LimitedProtocol(HttpToolsProtocol):
    limits: ServerSettings

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._heads = 0  # heads completed on this connection
        self._in_head = True
        self._deadline: asyncio.TimerHandle | None = None
        self._arm(self.limits.header_timeout_s, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head and self._deadline is None:  # the first byte of a request after a keep-alive pause
            self._arm(self.limits.header_timeout_s, self._head_too_slow)
        heads = self._heads
        super().data_received(data)
        # Counted after parsing, and only while no head completed in this read: a chunk that
        # carries the end of the headers and the body is not a long head. The parser holds
        # at most the limit plus one read.
        if self._in_head and self._heads == heads and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(b"431 Request Header Fields Too Large",
                             f"The request line and headers exceed {self.limits.max_header_bytes} bytes.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._heads += 1
        self._head_bytes = 0
        self._arm(self.limits.body_timeout_s, self._body_too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._in_head = True  # the next request's deadline starts with its first byte

    def _arm(self, seconds: float, then: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, then)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_too_slow(self) -> None:
        self._deadline = None
        if not self._in_head:
            return
        self._refuse(b"408 Request Timeout",
                     f"The request line and headers did not arrive within {self.limits.header_timeout_s:g} s.")

    def _body_too_slow(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body:
            return
        # Closing reads as a disconnect to the app (its body read ends, its reply is dropped).
        if cycle.response_started:
            self.transport.close()
        else:
            self._refuse(b"408 Request Timeout",
                         f"The request body did not arrive within {self.limits.body_timeout_s:g} s.")

    def _refuse(self, status: bytes, message: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_reply(status, message))
            self.transport.close()


def limited_protocol(limits: ServerSettings) -> type[HttpToolsProtocol]:
    return type("LimitedHttpToolsProtocol", (_LimitedProtocol,), {"limits": limits})


class WorkerHttpToolsProtocol(_LimitedProtocol):
    """The importable protocol for `turnout serve --workers N`: uvicorn pickles its config into
    each worker process, and a class made by `limited_protocol` does not pickle. Each worker's
    app factory (`turnout.main.app_from_env`) sets its limits before the first connection."""

    limits = ServerSettings()


WORKER_PROTOCOL = f"{__name__}:WorkerHttpToolsProtocol"


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `turnout serve` passes to uvicorn besides the app, the address and logging."""
    limits = settings.server
    return {
        "http": limited_protocol(limits) if settings.workers <= 1 else WORKER_PROTOCOL,
        "timeout_keep_alive": limits.keep_alive_s,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "limit_concurrency": limits.max_connections,
    }
