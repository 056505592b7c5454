"""Recent traffic in one-minute buckets: what the status page shows as "the last minutes"."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class Minute:
    """One minute of traffic: upstream attempts by (model, outcome), client requests by status class and by API."""

    minute: int
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    apis: dict[str, int] = field(default_factory=dict)


class RecentActivity:
    """Per-minute counts over the last few minutes, for the status page."""

    def __init__(self, *, minutes: int = 15) -> None:
        self.minutes = minutes
        self._buckets: deque[Minute] = deque(maxlen=minutes)

    def _bucket(self, now: float | None) -> Minute:
        minute = int((time.time() if now is None else now) // 60)
        if not self._buckets or self._buckets[-1].minute != minute:
            self._buckets.append(Minute(minute))
        return self._buckets[-1]

    def attempt(self, model: str, outcome: str, now: float | None = None) -> None:
        counts = self._bucket(now).attempts
        key = (model, outcome)
        counts[key] = counts.get(key, 0) + 1

    def request(self, klass: str, now: float | None = None, *, api: str = "chat") -> None:
        bucket = self._bucket(now)
        bucket.requests[klass] = bucket.requests.get(klass, 0) + 1
        bucket.apis[api] = bucket.apis.get(api, 0) + 1

    def window(self, now: float | None = None) -> list[Minute]:
        """The last `minutes` minutes, oldest first, with empty minutes filled in."""
        current = int((time.time() if now is None else now) // 60)
        by_minute = {b.minute: b for b in self._buckets}
        return [by_minute.get(m) or Minute(m) for m in range(current - self.minutes + 1, current + 1)]
