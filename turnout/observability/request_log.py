"""One structured log line per request: who asked for what, what answered, what it cost."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from turnout.config import Settings
from turnout.encoding import dumps
from turnout.errors import AttemptRecord, GatewayError
from turnout.observability.logs import write_request_line
from turnout.observability.metrics import RequestMeter
from turnout.observability.usage import Cost, usage_cost, usage_tokens
from turnout.routing.continuation import ResumingStream
from turnout.routing.engine import Outcome

log = logging.getLogger("turnout.requests")


class RequestLog:
    """The one line of one request: opened when the request arrives, written once (`done`), by
    `finished` (an answer), `failed` (an error, including a request refused before routing:
    400, 401, 405, 413, 415), whichever comes first. `key` is the client key's name, never the key.

    `attempts` is the request's one list of attempts (its meter's), which the engine's walk
    fills: the line lists it whatever ended the request, a client that left mid-walk too."""

    def __init__(self, *, request_id: str, settings: Settings, meter: RequestMeter, api: str = "chat") -> None:
        self.request_id = request_id
        self.attempts = meter.attempts
        self.key: str | None = None
        self.done = False
        self._api = api
        self._notes: Mapping[str, Any] | None = None  # what the API surface changed (hosted tools dropped, ...)
        self._meter = meter
        self._requested: str | None = None
        self._stream = False
        self._started = time.monotonic()
        # Prompt and completion text only when the operator asked for it.
        self._log_text = settings.log_prompts
        self._messages: Any = None

    def begin(self, *, requested: str, stream: bool, messages: Any = None,
              notes: Mapping[str, Any] | None = None, calls: int = 1) -> None:
        """The request parsed: what it asked for (`calls`: engine calls it makes in parallel)."""
        self._requested = requested
        self._stream = stream
        self._notes = notes
        if self._log_text:
            self._messages = messages
        self._meter.begin(requested=requested, stream=stream, calls=calls)

    def finished(self, outcome: Outcome[Any], *, status: int, usage: Any, stream_error: str | None = None,
                 completion: Any = None, stream: ResumingStream | None = None) -> Cost | None:
        """Meter and log the answer; returns its cost (None when the usage does not tell).

        A stream continued by other deployments logs every leg (model, how it joined, the
        characters it delivered); `model` is the first leg's, as in the headers."""
        usage = usage if isinstance(usage, dict) else {}
        cost = usage_cost(usage, outcome.deployment)
        self._meter.finished(outcome, usage=usage, cost=cost)
        prompt, completion_tokens, reasoning = usage_tokens(usage)
        self._emit(
            status=status,
            group=outcome.group,
            model=outcome.deployment.model,
            deployment=outcome.deployment.id,
            tier=outcome.deployment.tier,
            fallback=outcome.fallback,
            attempts=_attempts(self.attempts),
            prompt_tokens=prompt if usage else None,
            completion_tokens=completion_tokens if usage else None,
            reasoning_tokens=reasoning or None,
            cost_usd=None if cost is None else round(cost.usd, 10),
            cost_source=None if cost is None else cost.source,
            stream_error=stream_error,
            legs=[leg.as_json() for leg in stream.legs] if stream is not None and len(stream.legs) > 1 else None,
            unterminated=stream.unterminated if stream is not None else None,
            messages=self._messages,
            completion=completion if self._log_text else None,
            pin=outcome.pin,
            reason=stream_error or "ok",
        )
        return cost

    def finished_parallel(self, answers: Sequence[tuple[Outcome[Any], Any]], *, status: int) -> Cost | None:
        """One request answered by several engine calls made in parallel (`n` images): each
        call's usage metered under its own deployment, one line with the summed tokens and cost
        (None when any call's cost is unknown) and the last call's model, as in the headers."""
        prompt = completion_tokens = reasoning = 0
        costs: list[Cost | None] = []
        usages: list[dict[str, Any]] = []
        for outcome, usage in answers:
            usage = usage if isinstance(usage, dict) else {}
            cost = usage_cost(usage, outcome.deployment)
            self._meter.finished(outcome, usage=usage, cost=cost)
            tokens = usage_tokens(usage)
            prompt, completion_tokens, reasoning = (prompt + tokens[0], completion_tokens + tokens[1],
                                                    reasoning + tokens[2])
            costs.append(cost)
            usages.append(usage)
        known = [cost for cost in costs if cost is not None]
        total = None
        if known and len(known) == len(costs):
            sources = {cost.source for cost in known}
            total = Cost(sum(cost.usd for cost in known), sources.pop() if len(sources) == 1 else "mixed")
        last = answers[-1][0]
        counted = all(usages)
        self._emit(
            status=status,
            group=last.group,
            model=last.deployment.model,
            deployment=last.deployment.id,
            tier=last.deployment.tier,
            fallback=any(outcome.fallback for outcome, _ in answers),
            calls=len(answers) if len(answers) > 1 else None,
            attempts=_attempts(self.attempts),
            prompt_tokens=prompt if counted else None,
            completion_tokens=completion_tokens if counted else None,
            reasoning_tokens=reasoning or None,
            cost_usd=None if total is None else round(total.usd, 10),
            cost_source=None if total is None else total.source,
            messages=self._messages,
            reason="ok",
        )
        return total

    def failed(self, exc: BaseException) -> None:
        status = exc.status if isinstance(exc, GatewayError) else 500
        code = exc.code if isinstance(exc, GatewayError) else type(exc).__name__
        message = exc.message if isinstance(exc, GatewayError) else None
        self._emit(status=status, reason=code or f"http_{status}", error=code, message=message[:300] if message else None,
                   attempts=_attempts(self.attempts) or None)

    def _emit(self, **fields: Any) -> None:
        if self.done:
            return
        self.done = True
        level = logging.WARNING if fields["status"] >= 500 else logging.INFO
        if not log.isEnabledFor(level):
            return
        record = {"event": "request", "request_id": self.request_id, "api": self._api, "requested": self._requested,
                  "stream": self._stream, "key": self.key,
                  "latency_ms": round((time.monotonic() - self._started) * 1000, 1)}
        if self._notes:
            record.update(self._notes)
        record.update({k: v for k, v in fields.items() if v is not None})
        line = dumps(record).decode()
        if not write_request_line(level, line):
            log.log(level, line)


def log_route(*, method: str, path: str, status: int, request_id: str | None, latency_s: float,
              reason: str | None, key: str | None) -> None:
    """The line of a request served by a FastAPI route (models, admin, status, ...)."""
    level = logging.WARNING if status >= 500 else logging.INFO
    if log.isEnabledFor(level):
        record = {"event": "request", "request_id": request_id, "api": "http", "method": method, "path": path,
                  "status": status, "reason": reason or ("ok" if status < 400 else f"http_{status}"), "key": key,
                  "latency_ms": round(latency_s * 1000, 1)}
        log.log(level, dumps({k: v for k, v in record.items() if v is not None}).decode())


def _attempts(attempts: Iterable[AttemptRecord]) -> list[dict[str, Any]]:
    return [{"model": a.model, "outcome": a.outcome, "status": a.status, "latency_ms": round(a.latency_s * 1000, 1)}
            for a in attempts]
