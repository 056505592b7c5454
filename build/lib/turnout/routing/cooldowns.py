"""When a failed attempt benches a deployment, for how long, and which deployments with it.

The decision is ours (from the `bench` column of `turnout.upstream.failures.FAILURES`); the
state lives in the LiteLLM Router's cooldown store, so the Router's own selection skips
benched deployments.

- `hint` (a 429): benched for exactly the upstream's Retry-After; without one, as `streak`.
- `streak` (5xx, timeouts, resets, broken streams): benched after more than `allowed_fails`
  consecutive failures, first for `cooldown_min_s`, then twice as long on each new bench
  without a success in between, up to `cooldown_s`. A model that fails half its calls keeps
  serving the other half; one that is down stays out for longer and longer.
- `credential` (401/402/403): this deployment is benched for `cooldown_s` at once; every
  deployment on the same credential only once `credential_strikes` distinct requests saw such
  a failure on it within `cooldown_s` — one request cannot bench a whole account, and the
  account-wide bench lasts `cooldown_s`, then the next request tries again. Deployments
  without a credential share none.

Time comes from an injected monotonic clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from turnout.config import Retries
from turnout.upstream.failures import AttemptError

Clock = Callable[[], float]
CREDENTIAL_STRIKES = 2


@dataclass(slots=True)
class _Streak:
    failures: int = 0
    benches: int = 0
    benched_at: float = float("-inf")


@dataclass(frozen=True, slots=True)
class Bench:
    """A decision to bench: for how long, and whether every deployment on the credential goes too."""

    seconds: float
    credential_wide: bool = False


@dataclass(slots=True)
class _Strikes:
    requests: dict[str, float] = field(default_factory=dict)  # request id -> when it struck


class CooldownPolicy:
    def __init__(self, retries: Retries, *, clock: Clock = time.monotonic) -> None:
        self._max = retries.cooldown_s
        self._min = min(retries.cooldown_min_s, retries.cooldown_s)
        self._allowed_fails = retries.allowed_fails
        self._clock = clock
        self._streaks: dict[str, _Streak] = {}
        self._strikes: dict[str, _Strikes] = {}

    def after_failure(
        self, deployment_id: str, error: AttemptError, *, started_at: float, credential: str | None, request_id: str,
    ) -> Bench | None:
        """What to bench after `error` on `deployment_id`, or None to keep it in rotation.

        `started_at` (the clock's time) is when the failed attempt began: attempts already in
        flight when the deployment was benched do not count toward the next bench."""
        rule = error.failure.bench
        if rule == "hint" and error.retry_after:
            return Bench(error.retry_after)
        if rule == "credential":
            return Bench(self._max, credential_wide=self._strike(credential, request_id))
        if rule in ("hint", "streak"):
            seconds = self._streak(deployment_id, started_at)
            return Bench(seconds) if seconds else None
        return None

    def record_success(self, deployment_id: str) -> None:
        self._streaks.pop(deployment_id, None)

    def _streak(self, deployment_id: str, started_at: float) -> float | None:
        streak = self._streaks.setdefault(deployment_id, _Streak())
        if started_at < streak.benched_at:
            return None
        streak.failures += 1
        if streak.failures <= self._allowed_fails:
            return None
        streak.failures = 0
        streak.benched_at = self._clock()
        seconds: float = min(self._max, self._min * 2.0**streak.benches)
        streak.benches += 1
        return seconds

    def _strike(self, credential: str | None, request_id: str) -> bool:
        """Count an auth failure against a credential; True once enough distinct requests struck."""
        if credential is None:
            return False
        now = self._clock()
        strikes = self._strikes.setdefault(credential, _Strikes())
        strikes.requests = {rid: at for rid, at in strikes.requests.items() if now - at < self._max}
        strikes.requests[request_id] = now
        if len(strikes.requests) < CREDENTIAL_STRIKES:
            return False
        strikes.requests.clear()
        return True
