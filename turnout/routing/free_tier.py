"""OpenRouter's free quota is account-wide: every `:free` request counts, failed ones too.

The budget spends slightly below the limit (headroom) so Turnout spills to paid
models before it earns 429s, and stops free traffic entirely after the daily-quota 429
until the reset time the upstream announced.

This object is the replica's own view. Without shared state it is the whole truth (and
`state()` / `restore()` carry it across restarts through `data_dir`); with Redis the
shared admission decides each free request atomically and `sync` copies the account's
counts back here, so the status page, metrics and `available()` show the account's.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from turnout.config import FreeTierSettings


class FreeTierBudget:
    """`clock` gives epoch seconds (the day window is OpenRouter's UTC day)."""

    def __init__(self, settings: FreeTierSettings, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._per_minute = settings.requests_per_minute
        self._per_day = settings.requests_per_day
        self._headroom = settings.headroom
        self._recent: deque[float] = deque()
        self._day_count = 0
        self._day = self._day_of(clock())
        self.exhausted_until: float | None = None
        self._held_until = 0.0  # the shared budget refused: no free attempt before then

    def learn_limits(self, *, per_day: int | None = None, per_minute: int | None = None) -> None:
        if per_day is not None:
            self._per_day = per_day
        if per_minute is not None:
            self._per_minute = per_minute

    @property
    def per_minute(self) -> int:
        """The minute limit the budget admits up to (the account's, less the headroom); 0: none."""
        return max(1, self._per_minute - self._headroom) if self._per_minute else 0

    @property
    def per_day(self) -> int | None:
        return None if self._per_day is None else max(0, self._per_day - self._headroom)

    def seed_day(self, used: int, now: float | None = None) -> None:
        """The account already spent `used` free requests today (from `GET /key`): never count fewer."""
        self._roll(self._clock() if now is None else now)
        self._day_count = max(self._day_count, used)

    def sync(self, *, minute: Iterable[float], day_count: int, exhausted_until: float | None,
             now: float | None = None) -> None:
        """Adopt the account-wide counts the shared state holds (their times, today's count)."""
        self._roll(self._clock() if now is None else now)
        self._recent = deque(sorted(minute))
        self._day_count = day_count
        self.exhausted_until = exhausted_until

    def day(self) -> int:
        return self._day

    def day_count(self) -> int:
        return self._day_count

    def state(self) -> dict[str, Any]:
        """What a restart must not forget (the file in `data_dir` holds it)."""
        return {"day": self._day, "day_count": self._day_count, "minute": list(self._recent),
                "exhausted_until": self.exhausted_until}

    def restore(self, state: dict[str, Any], now: float | None = None) -> None:
        now = self._clock() if now is None else now
        if int(state.get("day", -1)) == self._day_of(now):
            self._day_count = max(self._day_count, int(state.get("day_count", 0)))
        minute = [float(t) for t in state.get("minute", []) if now - 60.0 < float(t) <= now]
        self._recent = deque(sorted([*self._recent, *minute]))
        until = state.get("exhausted_until")
        if isinstance(until, int | float) and until > now:
            self.exhaust(float(until))

    @staticmethod
    def _day_of(now: float) -> int:
        return int(now // 86400)

    def _roll(self, now: float) -> None:
        while self._recent and self._recent[0] <= now - 60.0:
            self._recent.popleft()
        day = self._day_of(now)
        if day != self._day:
            self._day, self._day_count = day, 0
        if self.exhausted_until is not None and now >= self.exhausted_until:
            self.exhausted_until = None

    def available(self, now: float | None = None) -> bool:
        now = self._clock() if now is None else now
        self._roll(now)
        if self.exhausted_until is not None or now < self._held_until:
            return False
        if self._per_minute and len(self._recent) >= max(1, self._per_minute - self._headroom):
            return False
        return not (self._per_day is not None and self._day_count >= max(0, self._per_day - self._headroom))

    def record(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        self._roll(now)
        self._recent.append(now)
        self._day_count += 1

    def hold(self, until: float) -> None:
        """The account-wide budget is full until `until` (what the shared state answered)."""
        self._held_until = max(self._held_until, until)

    def exhaust(self, until: float) -> None:
        self.exhausted_until = max(until, self.exhausted_until or 0.0)

    def retry_after(self, now: float | None = None) -> float:
        """Seconds until the budget admits a free request again (0 when it does now)."""
        now = self._clock() if now is None else now
        if self.available(now):
            return 0.0
        if self.exhausted_until is not None:
            return self.exhausted_until - now
        if now < self._held_until:
            return self._held_until - now
        if self._per_day is not None and self._day_count >= max(0, self._per_day - self._headroom):
            return (self._day + 1) * 86400 - now
        return max(0.0, self._recent[0] + 60.0 - now) if self._recent else 1.0

    def remaining_minute(self, now: float | None = None) -> int:
        now = self._clock() if now is None else now
        self._roll(now)
        return max(0, self._per_minute - len(self._recent))

    def remaining_day(self) -> int | None:
        return None if self._per_day is None else max(0, self._per_day - self._day_count)
