"""The lean path: OpenAI chat-completions wire to OpenRouter, vLLM, OpenAI and friends.

The client's body goes upstream as it came (only `model`, the paid `max_tokens` cap and
`stream_options` change); answers come back as the upstream's own JSON. Streams are read
frame by frame so a broken stream is noticed, but frames are forwarded as raw bytes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from app.routing.attempt import AttemptError, classify_error

_DONE = b"[DONE]"


@dataclass(frozen=True, slots=True)
class Frame:
    """One SSE `data:` frame: parsed for inspection, raw for forwarding."""

    data: Mapping[str, Any]
    raw: bytes


class OpenAIWire:
    def __init__(self, session: aiohttp.ClientSession, *, connect_s: float, app_title: str = "Switchyard") -> None:
        self._session = session
        self._connect = aiohttp.ClientTimeout(total=None, sock_connect=connect_s, connect=connect_s)
        self._title = app_title
        self.in_flight = 0  # upstream calls open right now (streams until closed)

    def _headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "X-Title": self._title,
                   "HTTP-Referer": "https://github.com/switchyard/switchyard"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return headers

    async def complete(
        self, *, url: str, api_key: str | None, body: Mapping[str, Any], first_byte_s: float, timeout_s: float,
        model: str,
    ) -> dict[str, Any]:
        """Response headers must arrive within `first_byte_s`; the whole answer within `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self.in_flight += 1
        try:
            async with asyncio.timeout(min(first_byte_s, timeout_s)) as scope:
                async with self._session.post(
                    url, data=json.dumps(body).encode(), headers=self._headers(api_key), timeout=self._connect
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
        self, *, url: str, api_key: str | None, body: Mapping[str, Any], timeout_s: float, model: str
    ) -> WireStream:
        """Open a stream; returns once the upstream answered 200 (raises otherwise)."""
        self.in_flight += 1
        try:
            async with asyncio.timeout(timeout_s):
                resp = await self._session.post(
                    url, data=json.dumps(body).encode(), headers=self._headers(api_key), timeout=self._connect
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


class WireStream:
    """Frames of one upstream SSE stream. `next` returns None after `data: [DONE]`."""

    def __init__(self, resp: aiohttp.ClientResponse, *, model: str, on_close: Callable[[], None]) -> None:
        self._resp = resp
        self._model = model
        self._on_close: Callable[[], None] | None = on_close
        self.done = False

    async def next(self, timeout_s: float) -> Frame | None:
        if self.done:
            return None
        try:
            async with asyncio.timeout(timeout_s):
                return await self._next_frame()
        except TimeoutError:
            raise AttemptError("stream_broken", f"{self._model}: stream stalled for {timeout_s:.1f}s") from None
        except aiohttp.ClientError as exc:
            raise AttemptError("stream_broken", f"{self._model}: stream cut ({type(exc).__name__})") from None

    async def _next_frame(self) -> Frame | None:
        content = self._resp.content
        while True:
            line = await content.readline()
            if not line:
                raise AttemptError("stream_broken", f"{self._model}: stream ended without [DONE]")
            line = line.strip()
            if not line or line.startswith(b":") or not line.startswith(b"data:"):
                continue
            raw = line[5:].lstrip()
            if raw == _DONE:
                self.done = True
                return None
            data = _loads(raw)
            if not isinstance(data, dict):
                raise AttemptError("stream_broken", f"{self._model}: malformed stream frame")
            _raise_for_frame_error(data, self._model)
            return Frame(data=data, raw=raw)

    def close(self) -> None:
        self._resp.close()
        if self._on_close is not None:
            self._on_close, on_close = None, self._on_close
            on_close()


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
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
