"""When a failed attempt benches a deployment, and for how long.

The decision is ours; the state lives in the LiteLLM Router's cooldown cache, so the
Router's own selection skips benched deployments (and, with Redis, so do other replicas).

- A 429 with `Retry-After`: benched for exactly that long (the upstream told us).
- 401/402/403: every deployment behind that credential is benched for 10 x `cooldown_s`.
- Any other failure (429 without a hint, 5xx, timeouts, resets, broken streams): benched
  after more than `allowed_fails` consecutive failures, first for `cooldown_min_s`, then
  twice as long on each new bench without a success in between, up to `cooldown_s`.
  A model that fails half its calls keeps serving the other half; one that is down stays
  out for longer and longer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from turnout.config import Retries
from turnout.upstream.failures import AttemptError

_CREDENTIAL_KINDS = frozenset({"auth", "payment"})
_FAILURE_KINDS = frozenset({"rate_limited", "server_error", "timeout", "connection_error", "stream_broken"})


@dataclass(slots=True)
class _Streak:
    failures: int = 0
    benches: int = 0
    benched_at: float = 0.0


class CooldownPolicy:
    def __init__(self, retries: Retries) -> None:
        self._max = retries.cooldown_s
        self._min = min(retries.cooldown_min_s, retries.cooldown_s)
        self._allowed_fails = retries.allowed_fails
        self._streaks: dict[str, _Streak] = {}

    def cooldown_for(self, deployment_id: str, error: AttemptError, *, started_at: float) -> float | None:
        """Seconds to bench `deployment_id` after `error`, or None to keep it in rotation.

        `started_at` (monotonic) is when the failed attempt began: attempts already in
        flight when the deployment was benched do not count toward the next bench."""
        if error.kind == "rate_limited" and error.retry_after:
            return error.retry_after
        if error.kind in _CREDENTIAL_KINDS:
            return self._max * 10
        if error.kind not in _FAILURE_KINDS:
            return None
        streak = self._streaks.setdefault(deployment_id, _Streak())
        if started_at < streak.benched_at:
            return None
        streak.failures += 1
        if streak.failures <= self._allowed_fails:
            return None
        streak.failures = 0
        streak.benched_at = time.monotonic()
        seconds = min(self._max, self._min * 2**streak.benches)
        streak.benches += 1
        return seconds

    def record_success(self, deployment_id: str) -> None:
        self._streaks.pop(deployment_id, None)

    @staticmethod
    def shares_credential(error: AttemptError) -> bool:
        return error.kind in _CREDENTIAL_KINDS
