"""The plain-ASGI edge shared by the hot API surfaces (chat completions, and any other API
served outside FastAPI): the request head, the reply with its meter, the request body read as
strict JSON, errors in the API's shape, and the watch that cancels work when the client leaves.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.types import Receive, Scope, Send

from turnout.api.error_shapes import error_body, error_headers
from turnout.errors import ClientClosedRequest, GatewayError, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from turnout.observability.metrics import RequestMeter

JSON_TYPE = b"application/json"
# Printable ASCII but '%': what a header value may carry as it is (see `header_value`).
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
_WATCH_AFTER_S = 0.05
Headers = list[tuple[bytes, bytes]]
ErrorBody = Callable[[GatewayError], bytes]
Redact = Callable[[bytes], bytes]


def header_value(text: str) -> bytes:
    """A response header value from any text: printable ASCII as it is, anything else
    percent-encoded (UTF-8), so a model id such as `evil/模型-x:free` or one carrying CR/LF can
    neither fail the response after the upstream was paid nor inject a header."""
    if text.isascii() and text.isprintable():
        return text.encode()
    return quote(text, safe=_HEADER_SAFE).encode()


class RequestHead:
    """The request line and the few headers the handler reads (names are lower-case in ASGI)."""

    __slots__ = ("_headers", "method")

    def __init__(self, scope: Scope) -> None:
        self.method: str = scope["method"]
        self._headers: Headers = scope["headers"]

    def get(self, name: bytes) -> str | None:
        for key, value in self._headers:
            if key == name:
                return value.decode("latin-1")
        return None

    def request_id(self) -> str:
        given = self.get(b"x-request-id") or ""
        if 0 < len(given) <= 128 and given.isprintable():
            return given
        return f"req_{random.getrandbits(128):032x}"  # unique, not secret: no syscall


class Reply:
    """The response side: ASGI sends, with the meter told the status and the first byte."""

    __slots__ = ("_redact", "_send", "meter", "shape", "started")

    def __init__(self, send: Send, meter: RequestMeter, *, shape: ErrorBody = error_body,
                 redact: Redact | None = None) -> None:
        self._send = send
        self.meter = meter
        self.shape = shape  # the error body in the API's own shape
        self._redact = redact  # masks configured secrets in error bodies (observability.redaction)
        self.started = False

    async def start(self, status: int, headers: Headers) -> None:
        self.meter.replied(status)
        await self._send({"type": "http.response.start", "status": status, "headers": headers})
        # Only once the server took the headers: if it refused them (a value it cannot send),
        # `error` can still answer with a proper error response instead of leaving the client
        # waiting for headers that never come.
        self.started = True

    async def body(self, data: bytes, *, more: bool) -> None:
        if data and self.meter.first_byte_at is None:
            self.meter.first_byte_at = time.monotonic()
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def error(self, exc: GatewayError, request_id: str) -> None:
        if self.started:  # headers are out: nothing to say but to end the body
            await self.body(b"", more=False)
            return
        self.meter.replied(exc.status)
        self.started = True
        await send_error(self._send, exc, request_id, shape=self.shape, redact=self._redact)


async def send_error(send: Send, exc: GatewayError, request_id: str, *, shape: ErrorBody = error_body,
                     redact: Redact | None = None) -> None:
    data = shape(exc) if redact is None else redact(shape(exc))
    headers = [(k.lower().encode("latin-1"), header_value(v)) for k, v in error_headers(exc, request_id).items()]
    headers += ((b"content-type", JSON_TYPE), (b"content-length", str(len(data)).encode()))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})


class DisconnectWatch:
    """Cancels the request's task when the client goes away: no upstream call runs for nobody.

    A task waits on `receive` once the body is read; the server answers it with
    `http.disconnect` when the client leaves, and also once the response is complete, so the
    watch is stopped before the last write. It starts `_WATCH_AFTER_S` in: an answer faster
    than that costs one timer instead of a task.
    """

    __slots__ = ("_receive", "_task", "_timer", "_watcher", "gone")

    def __init__(self, receive: Receive) -> None:
        self.gone = False
        self._task = asyncio.current_task()
        self._receive = receive
        self._watcher: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(_WATCH_AFTER_S, self._start)

    def _start(self) -> None:
        self._timer = None
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        self._watcher = None
        if self._task is not None:
            self._task.cancel()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    def absorb(self) -> None:
        """The cancellation was ours and has been handled: clear it from the task's count."""
        if self._task is not None:
            self._task.uncancel()


def is_json_media_type(content_type: str | None) -> bool:
    """`application/json` or `application/<anything>+json`, parameters aside (RFC 9110 media type).

    A missing type is not JSON: a browser page can send a body without a JSON type and
    without a preflight, so requiring one is what keeps cross-site posts out."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or (subtype.endswith("+json") and len(subtype) > 5))


async def read_json(receive: Receive, head: RequestHead, limit: int) -> Any:
    content_type = head.get(b"content-type")
    if not is_json_media_type(content_type):
        got = f"got {content_type[:100]!r}" if content_type else "none was sent"
        raise UnsupportedMediaType(
            f"Send the body as JSON with the header 'Content-Type: application/json' ({got}).")
    declared = head.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is {declared} bytes; the limit is {limit}.")
    raw = await read_body(receive, limit)
    if not raw:
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        # Strict UTF-8 first: json.loads on bytes would let encoded surrogates through.
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply.", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}", code="invalid_json") from None


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientClosedRequest("The client closed the connection while sending the body.")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: valid JSON, but an infinity no upstream can be sent
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


