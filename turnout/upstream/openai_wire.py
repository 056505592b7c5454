"""The lean path: OpenAI chat-completions wire to OpenRouter, vLLM, OpenAI and friends.

The client's body goes upstream as it came (only `model`, the paid `max_tokens` cap and
`stream_options` change); answers come back as the upstream's own JSON. Streams are split
into frames so a broken stream is noticed, but frames are forwarded as raw bytes and only
parsed when they may carry an error, usage or a null to drop. An event whose JSON does not
parse is skipped and counted (`WireStream.malformed`): one garbled event is not worth a
broken answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from turnout.encoding import dumps, loads
from turnout.upstream.failures import AttemptError, classify_error

_DONE = b"[DONE]"


@dataclass(frozen=True, slots=True)
class Frame:
    """One SSE `data:` frame, raw for forwarding.

    `data` is the parsed frame, or None for a plain content frame: one that has choices and
    carries no error, no usage and no null the API must drop, so it is forwarded untouched.
    """

    data: Mapping[str, Any] | None
    raw: bytes


class OpenAIWire:
    def __init__(self, session: aiohttp.ClientSession, *, connect_s: float, app_title: str = "Turnout") -> None:
        self._session = session
        self._connect = aiohttp.ClientTimeout(total=None, sock_connect=connect_s, connect=connect_s)
        self._title = app_title
        self._by_key: dict[str | None, dict[str, str]] = {}  # one per credential; aiohttp copies them
        self.in_flight = 0  # upstream calls open right now (streams until closed)

    def _headers(self, api_key: str | None) -> dict[str, str]:
        headers = self._by_key.get(api_key)
        if headers is None:
            headers = {"Content-Type": "application/json", "X-Title": self._title,
                       "HTTP-Referer": "https://github.com/turnout/turnout"}
            if api_key:
                headers["Authorization"] = f"Bearer {api_key}"
            self._by_key[api_key] = headers
        return headers

    async def complete(
        self, *, url: str | URL, api_key: str | None, body: Mapping[str, Any], first_byte_s: float, timeout_s: float,
        model: str,
    ) -> dict[str, Any]:
        """Response headers must arrive within `first_byte_s`; the whole answer within `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self.in_flight += 1
        try:
            async with asyncio.timeout(min(first_byte_s, timeout_s)) as scope:
                async with self._session.post(
                    url, data=dumps(body), headers=self._headers(api_key), timeout=self._connect
                ) as resp:
                    scope.reschedule(deadline)
                    raw = await resp.read()
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After")
        except TimeoutError:
            raise AttemptError("timeout", f"{model}: no answer in time") from None
        except aiohttp.ClientError as exc:
            raise AttemptError("connection_error", f"{model}: {type(exc).__name__}") from None
        finally:
            self.in_flight -= 1
        payload = _loads(raw)
        if status != 200 or not isinstance(payload, dict) or "error" in payload or not payload.get("choices"):
            if status == 200 and isinstance(payload, dict) and "error" not in payload:
                raise AttemptError("server_error", f"{model}: upstream answered 200 without choices", status=502)
            raise classify_error(status=status, payload=payload, retry_after_header=retry_after, model=model)
        return payload

    async def stream(
        self, *, url: str | URL, api_key: str | None, body: Mapping[str, Any], timeout_s: float, model: str
    ) -> WireStream:
        """Open a stream; returns once the upstream answered 200 (raises otherwise)."""
        self.in_flight += 1
        try:
            async with asyncio.timeout(timeout_s):
                resp = await self._session.post(
                    url, data=dumps(body), headers=self._headers(api_key), timeout=self._connect
                )
                if resp.status != 200:
                    try:
                        raw = await resp.read()
                    finally:
                        resp.release()
                    raise classify_error(
                        status=resp.status,
                        payload=_loads(raw),
                        retry_after_header=resp.headers.get("Retry-After"),
                        model=model,
                    )
        except TimeoutError:
            self.in_flight -= 1
            raise AttemptError("timeout", f"{model}: no response headers within {timeout_s:.1f}s") from None
        except aiohttp.ClientError as exc:
            self.in_flight -= 1
            raise AttemptError("connection_error", f"{model}: {type(exc).__name__}") from None
        except BaseException:
            self.in_flight -= 1
            raise
        return WireStream(resp, model=model, on_close=self._stream_closed)

    def _stream_closed(self) -> None:
        self.in_flight -= 1


class _Stalled(Exception):
    """Set on the response's reader when the idle deadline passes mid-read."""


class WireStream:
    """Frames of one upstream SSE stream. `next` returns None after `data: [DONE]`.

    The upstream's bytes are read in whatever chunks arrive and split into lines here, so a
    burst of frames costs one read. The idle timeout is one loop-time deadline per stream,
    moved forward by each `next` and checked by a single timer that only re-arms when it
    fires early, instead of a timeout scope per frame.
    """

    def __init__(self, resp: aiohttp.ClientResponse, *, model: str, on_close: Callable[[], None]) -> None:
        self._resp = resp
        self._model = model
        self._on_close: Callable[[], None] | None = on_close
        self._loop = asyncio.get_running_loop()
        self._lines: list[bytes] = []  # complete lines not yet read, last one first
        self._tail = b""
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._reading = False
        self.done = False
        self.malformed = 0  # events skipped because their JSON did not parse

    def ready(self) -> bool:
        """Whether `next` has a frame (or the end) without waiting for the network."""
        lines = self._lines
        while lines and not lines[-1].lstrip().startswith(b"data:"):
            lines.pop()
        return bool(lines) and not self.done

    async def next(self, timeout_s: float) -> Frame | None:
        if self.done:
            return None
        self._deadline = self._loop.time() + timeout_s
        if self._timer is None or self._timer.when() > self._deadline:
            self._arm()
        self._reading = True
        try:
            return await self._next_frame()
        except _Stalled:
            raise AttemptError("stream_broken", f"{self._model}: stream stalled for {timeout_s:.1f}s") from None
        except aiohttp.ClientError as exc:
            raise AttemptError("stream_broken", f"{self._model}: stream cut ({type(exc).__name__})") from None
        finally:
            self._reading = False

    async def _next_frame(self) -> Frame | None:
        lines = self._lines
        while True:
            if not lines:
                if not await self._fill():
                    raise AttemptError("stream_broken", f"{self._model}: stream ended without [DONE]")
                continue
            line = lines.pop().strip()
            if not line.startswith(b"data:"):
                continue
            raw = line[5:].lstrip()
            if raw == _DONE:
                self.done = True
                self._disarm()
                return None
            if _plain(raw):
                return Frame(data=None, raw=raw)
            data = _loads(raw)
            if not isinstance(data, dict):
                self.malformed += 1
                continue
            _raise_for_frame_error(data, self._model)
            return Frame(data=data, raw=raw)

    async def _fill(self) -> bool:
        """Read what the upstream sent next into lines; False at the end of the body."""
        chunk = await self._resp.content.readany()
        if not chunk:
            if not self._tail:
                return False
            self._lines.append(self._tail)
            self._tail = b""
            return True
        parts = (self._tail + chunk).split(b"\n") if self._tail else chunk.split(b"\n")
        self._tail = parts.pop()
        parts.reverse()
        self._lines.extend(parts)
        return True

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(self._deadline, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if not self._reading:
            return  # the next `next` re-arms; time spent with the client is not the upstream's
        if self._loop.time() < self._deadline:
            self._arm()
            return
        self._resp.content.set_exception(_Stalled())

    def close(self) -> None:
        self._disarm()
        self._resp.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()


def _plain(raw: bytes) -> bool:
    """A content frame that needs no parsing: choices, and no error, usage or droppable null.

    Byte checks only; anything unusual (spacing, a key inside the text) just gets parsed, and
    so does a frame that does not end like a JSON object (it may be cut or garbled).
    """
    if not raw.endswith(b"}") or b'"error"' in raw or not _follows(raw, b'"choices"', (b"[{",)):
        return False
    if b'"usage"' in raw and not _every_null(raw, b'"usage"'):
        return False
    return not _follows(raw, b'"system_fingerprint"', (b"null",)) and not _follows(raw, b'"service_tier"', (b"null",))


def _follows(raw: bytes, key: bytes, values: tuple[bytes, ...]) -> bool:
    """Whether `key` appears as `key:<value>` (no spaces) with one of `values` after it."""
    at = raw.find(key + b":")
    while at >= 0:
        if raw.startswith(values, at + len(key) + 1):
            return True
        at = raw.find(key + b":", at + 1)
    return False


def _every_null(raw: bytes, key: bytes) -> bool:
    return raw.count(key) == raw.count(key + b":null")


def _raise_for_frame_error(data: Mapping[str, Any], model: str) -> None:
    if "error" in data:
        error = data.get("error")
        code = error.get("code") if isinstance(error, Mapping) else None
        status = code if isinstance(code, int) and code >= 400 else 502
        raise classify_error(status=status, payload=data, model=model)
    choices = data.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, Mapping) and (
                choice.get("finish_reason") == "error" or choice.get("native_finish_reason") == "error"
            ):
                raise AttemptError("server_error", f"{model}: upstream stream reported an error", status=502)


def _loads(raw: bytes) -> Any:
    try:
        return loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
