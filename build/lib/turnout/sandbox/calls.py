"""The record of chat calls the sandbox received, readable from any thread."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

MAX_CALLS = 10_000


@dataclass(frozen=True, slots=True)
class SandboxCall:
    model: str
    body: dict[str, Any]
    headers: dict[str, str]
    outcome: str
    stream: bool
    at: float

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: ("Bearer ***" if name.lower() == "authorization" else value)
        for name, value in headers.items()
    }


class CallLog:
    """The last `MAX_CALLS` calls plus counts over every call since reset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: deque[SandboxCall] = deque(maxlen=MAX_CALLS)
        self._counts: Counter[tuple[str, str]] = Counter()

    def record(
        self,
        *,
        model: str,
        body: dict[str, Any],
        headers: dict[str, str],
        outcome: str,
        stream: bool,
    ) -> SandboxCall:
        call = SandboxCall(model, body, headers, outcome, stream, time.monotonic())
        with self._lock:
            self._calls.append(call)
            self._counts[(model, outcome)] += 1
        return call

    def all(self) -> list[SandboxCall]:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self._counts.clear()

    def summary(self, *, last: int = 100) -> dict[str, Any]:
        with self._lock:
            recent = list(self._calls)[-last:] if last else []
            counts = list(self._counts.items())
        per_model: dict[str, dict[str, int]] = {}
        per_outcome: Counter[str] = Counter()
        for (model, outcome), count in counts:
            per_model.setdefault(model, {})[outcome] = count
            per_outcome[outcome] += count
        return {
            "total": sum(per_outcome.values()),
            "outcomes": dict(per_outcome),
            "counts": per_model,
            "calls": [call.as_json() for call in recent],
        }
