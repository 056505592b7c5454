"""OpenRouter's paid models answered 402: the account has no credits for them.

Free models still answer (they need no credits), so a 402 on a paid OpenRouter model must not
bench the whole OpenRouter credential: paid OpenRouter deployments are left out of every
walk instead, until the next successful pool refresh clears the mark and lets paid be tried
again (a new 402 sets it again at once).
"""

from __future__ import annotations

from turnout.pool.model import Deployment


def paid_openrouter(dep: Deployment) -> bool:
    return dep.provider == "openrouter" and dep.tier == "paid"


class PaidCredits:
    def __init__(self) -> None:
        self.exhausted_at: float | None = None
        self.message: str | None = None

    @property
    def exhausted(self) -> bool:
        return self.exhausted_at is not None

    def exhaust(self, now: float, message: str) -> bool:
        """Mark the paid tier spent; True when it was not already."""
        first = self.exhausted_at is None
        if first:
            self.exhausted_at = now
        self.message = message
        return first

    def restore(self) -> bool:
        """A refresh succeeded: paid models may be tried again. True when they were off."""
        was = self.exhausted_at is not None
        self.exhausted_at = self.message = None
        return was
