"""OpenRouter's account-wide free-model limits: per minute and per UTC day.

Every admitted request counts, including ones that then fail upstream, as on
the real service; requests refused here do not count.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from turnout.sandbox.error_bodies import free_tier_limited
from turnout.sandbox.faults import FreeTier

_WINDOW_S = 60.0


def next_utc_midnight_ms(now_s: float) -> int:
    now = datetime.fromtimestamp(now_s, tz=UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp() * 1000)


class FreeTierGate:
    """Counts free-model requests for one `FreeTier` configuration."""

    def __init__(self, config: FreeTier) -> None:
        self.config = config
        self._minute: deque[float] = deque()
        self._today = 0
        now = time.time()
        self._day_reset_ms = config.day_reset_at_ms or next_utc_midnight_ms(now)

    def admit(self, now_s: float | None = None) -> dict[str, Any] | None:
        """Count one request; return the 429 body instead when over a limit."""
        now = time.time() if now_s is None else now_s
        self._roll_day(now)
        if self._today >= self.config.per_day:
            return free_tier_limited(
                per_day=True,
                limit=self.config.per_day,
                reset_ms=self._day_reset_ms,
                paid=not self.config.is_free_tier,
            )
        while self._minute and self._minute[0] <= now - _WINDOW_S:
            self._minute.popleft()
        if len(self._minute) >= self.config.per_minute:
            oldest = self._minute[0] if self._minute else now
            reset_ms = int((oldest + _WINDOW_S) * 1000)
            return free_tier_limited(
                per_day=False,
                limit=self.config.per_minute,
                reset_ms=reset_ms,
                paid=not self.config.is_free_tier,
            )
        self._minute.append(now)
        self._today += 1
        return None

    def status(self, now_s: float | None = None) -> dict[str, Any]:
        now = time.time() if now_s is None else now_s
        self._roll_day(now)
        return {
            "enforced": self.config.enforce,
            "per_minute": self.config.per_minute,
            "per_day": self.config.per_day,
            "used_today": self._today,
            "remaining_today": max(0, self.config.per_day - self._today),
            "day_reset_at_ms": self._day_reset_ms,
        }

    def _roll_day(self, now_s: float) -> None:
        if now_s * 1000 >= self._day_reset_ms:
            self._today = 0
            self._day_reset_ms = next_utc_midnight_ms(now_s)
