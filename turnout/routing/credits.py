"""No credits behind the OpenRouter key: paid OpenRouter models stop taking spill.

A 402 from a paid OpenRouter model says the account has no credits; every other paid model
on the same key would answer the same. Until a refresh reads `GET /credits` and finds credit
left, the engine skips paid OpenRouter deployments (free models and static deployments go
on), and `/readyz` and the status page say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class PaidCredits:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.out_since: float | None = None

    @property
    def out(self) -> bool:
        return self.out_since is not None

    def refused(self) -> None:
        """A paid OpenRouter model answered 402."""
        if self.out_since is None:
            self.out_since = self._clock()

    def restored(self) -> None:
        """A refresh found credit on the account."""
        self.out_since = None

    def reason(self) -> str | None:
        if self.out_since is None:
            return None
        since = time.strftime("%H:%M:%S UTC", time.gmtime(self.out_since))
        return (f"paid OpenRouter models answered 402 (no credits) since {since}; not spilling to them until a "
                "refresh finds credit")
