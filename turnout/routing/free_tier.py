"""OpenRouter's free quota is account-wide: every `:free` request counts, failed ones too.

The budget spends slightly below the limit (headroom) so Turnout spills to paid
models before it earns 429s, and stops free traffic entirely after the daily-quota 429
until the reset time the upstream announced.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from turnout.config import FreeTierSettings

FREE_TIER_PER_DAY = 50  # an account that never bought credits
CREDITED_PER_DAY = 1000  # one that did


def daily_allowance(key_data: object) -> int | None:
    """Free requests a day, from the `data` of OpenRouter's GET /key; None when it does not say."""
    if isinstance(key_data, dict) and isinstance(key_data.get("is_free_tier"), bool):
        return FREE_TIER_PER_DAY if key_data["is_free_tier"] else CREDITED_PER_DAY
    return None


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

    def learn_limits(self, *, per_day: int | None = None, per_minute: int | None = None) -> None:
        if per_day is not None:
            self._per_day = per_day
        if per_minute is not None:
            self._per_minute = per_minute

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
        if self.exhausted_until is not None:
            return False
        if self._per_minute and len(self._recent) >= max(1, self._per_minute - self._headroom):
            return False
        return not (self._per_day is not None and self._day_count >= max(0, self._per_day - self._headroom))

    def record(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        self._roll(now)
        self._recent.append(now)
        self._day_count += 1

    def exhaust(self, until: float) -> None:
        self.exhausted_until = max(until, self.exhausted_until or 0.0)

    def retry_after(self, now: float | None = None) -> float:
        """Seconds until the budget admits a free request again (0 when it does now)."""
        now = self._clock() if now is None else now
        if self.available(now):
            return 0.0
        if self.exhausted_until is not None:
            return self.exhausted_until - now
        if self._per_day is not None and self._day_count >= max(0, self._per_day - self._headroom):
            return (self._day + 1) * 86400 - now
        return max(0.0, self._recent[0] + 60.0 - now) if self._recent else 1.0

    def remaining_minute(self, now: float | None = None) -> int:
        now = self._clock() if now is None else now
        self._roll(now)
        return max(0, self._per_minute - len(self._recent))

    def remaining_day(self) -> int | None:
        return None if self._per_day is None else max(0, self._per_day - self._day_count)
