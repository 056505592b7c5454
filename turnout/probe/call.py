"""One probe call: the prompt to one model, as JSON or SSE, and how it ended.

A failure is classified the way the gateway classifies its own attempts
(`turnout.upstream.failures.classify_error`, kinds of the `FAILURES` table). Through a
gateway, the answer is the gateway's final error: its `code` names the kind when only one
kind has that code (`upstream_payment` is `payment`), else the status is classified.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from turnout.probe.results import ProbeResult
from turnout.upstream.failures import FAILURES, AttemptError, Kind, classify_error

# A gateway error code that only one kind of failure leaves with names that kind.
_UNIQUE_CODES: Mapping[str, Kind] = {
    failure.code: kind for kind, failure in FAILURES.items()
    if Counter(f.code for f in FAILURES.values())[failure.code] == 1
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where probe calls go: OpenRouter (`via="openrouter"`) or a Turnout gateway."""

    url: str  # the chat-completions URL
    api_key: str | None
    via: str


@dataclass(frozen=True, slots=True)
class Ask:
    prompt: str
    max_tokens: int
    timeout_s: float
    stream: bool


@dataclass(frozen=True, slots=True)
class Called:
    result: ProbeResult
    reset_at: float | None = None  # a daily-quota 429: when the free quota comes back


async def probe_model(client: httpx.AsyncClient, *, endpoint: Endpoint, ask: Ask, model: str, tier: str) -> Called:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": ask.prompt}],
                            "max_tokens": ask.max_tokens, "stream": ask.stream}
    if ask.stream:
        body["stream_options"] = {"include_usage": True}
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    if endpoint.via == "openrouter":  # OpenRouter's app attribution, as the gateway's own calls send it
        headers.update({"X-Title": "Turnout probe", "HTTP-Referer": "https://github.com/turnout/turnout"})
    started = time.monotonic()
    call = _Call(model=model, tier=tier, started=started, via=endpoint.via)
    try:
        async with asyncio.timeout(ask.timeout_s):
            async with client.stream("POST", endpoint.url, json=body, headers=headers,
                                     timeout=ask.timeout_s) as response:
                if response.status_code != 200 or not ask.stream:
                    return call.from_json(response, await response.aread())
                return await call.from_stream(response)
    except (TimeoutError, httpx.TimeoutException):
        return call.failed("timeout", f"no answer within {ask.timeout_s:g} s")
    except httpx.TransportError as exc:
        kind: Kind = "stream_broken" if call.first_token is not None else "connection_error"
        return call.failed(kind, f"{type(exc).__name__}: {exc}"[:300])


@dataclass(slots=True)
class _Call:
    model: str
    tier: str
    started: float
    via: str
    first_token: float | None = None

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 4)

    def failed(self, kind: Kind, message: str, *, status: int | None = None,
               retry_after: float | None = None) -> Called:
        return Called(ProbeResult(model=self.model, tier=self.tier, ok=False, status=status, kind=kind,
                                  error=message, latency_s=self.elapsed(), retry_after_s=retry_after))

    def error(self, status: int, payload: Any, response: httpx.Response) -> Called:
        error = self._classify(status, payload, response)
        return Called(ProbeResult(model=self.model, tier=self.tier, ok=False, status=error.status or status,
                                  kind=error.kind, error=error.message, latency_s=self.elapsed(),
                                  retry_after_s=error.retry_after), reset_at=error.reset_at)

    def _classify(self, status: int, payload: Any, response: httpx.Response) -> AttemptError:
        retry_after = response.headers.get("retry-after")
        if self.via == "gateway" and status != 200:
            raw = payload.get("error") if isinstance(payload, Mapping) else None
            error: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            code = error.get("code")
            message = f"{self.model}: {error.get('message')}"[:500]
            if status == 404 and code == "model_not_found":
                return AttemptError("unsupported", message, status=404)
            kind = _UNIQUE_CODES.get(code) if isinstance(code, str) else None
            if kind is not None:
                found = classify_error(status=status, payload=payload, retry_after_header=retry_after, model=self.model)
                return AttemptError(kind, message, status=status, retry_after=found.retry_after,
                                    reset_at=found.reset_at)
        return classify_error(status=status, payload=payload, retry_after_header=retry_after, model=self.model)

    def from_json(self, response: httpx.Response, raw: bytes) -> Called:
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        status = response.status_code
        if status != 200 or not isinstance(payload, Mapping) or "error" in payload:
            if status == 200 and not isinstance(payload, Mapping):
                return self.failed("server_error", "HTTP 200 whose body is not a JSON object", status=200)
            return self.error(status, payload, response)
        return self.ok(response, payload.get("usage"), model=payload.get("model"))

    async def from_stream(self, response: httpx.Response) -> Called:
        usage: Any = None
        served: Any = None
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                continue
            if not isinstance(chunk, Mapping):
                continue
            if "error" in chunk:
                return self.error(200, chunk, response)
            served = chunk.get("model") or served
            usage = chunk.get("usage") or usage
            if self.first_token is None and _has_content(chunk):
                self.first_token = time.monotonic()
        return self.ok(response, usage, model=served)

    def ok(self, response: httpx.Response, usage: Any, *, model: Any) -> Called:
        usage = usage if isinstance(usage, Mapping) else {}
        cost = usage.get("cost")
        header_cost = response.headers.get("x-turnout-cost-usd")
        if not isinstance(cost, (int, float)) and header_cost:
            try:
                cost = float(header_cost)
            except ValueError:
                cost = None
        served = response.headers.get("x-turnout-model") or (model if isinstance(model, str) else None)
        return Called(ProbeResult(
            model=self.model, tier=self.tier, ok=True, status=200, latency_s=self.elapsed(),
            ttft_s=None if self.first_token is None else round(self.first_token - self.started, 4),
            prompt_tokens=_int(usage.get("prompt_tokens")), completion_tokens=_int(usage.get("completion_tokens")),
            cost_usd=float(cost) if isinstance(cost, (int, float)) else None, served_by=served))


def _has_content(chunk: Mapping[str, Any]) -> bool:
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, Mapping) else None
        if isinstance(delta, Mapping) and (delta.get("content") or delta.get("reasoning") or delta.get("tool_calls")):
            return True
    return False


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
