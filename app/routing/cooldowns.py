"""When a failed attempt benches a deployment, and for how long.

The decision is ours; the state lives in the LiteLLM Router's cooldown cache, so the
Router's own selection skips benched deployments (and, with Redis, so do other replicas).
"""

from __future__ import annotations

import time
from collections import defaultdict, deque

from app.config import Retries
from app.routing.attempt import AttemptError

_CREDENTIAL_KINDS = frozenset({"auth", "payment"})
_FAILURE_KINDS = frozenset({"server_error", "timeout", "connection_error", "stream_broken"})


class CooldownPolicy:
    def __init__(self, retries: Retries) -> None:
        self._cooldown = retries.cooldown_s
        self._allowed_fails = retries.allowed_fails
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def cooldown_for(self, deployment_id: str, error: AttemptError, now: float | None = None) -> float | None:
        """Seconds to bench `deployment_id` after `error`, or None to keep it in rotation."""
        now = time.time() if now is None else now
        if error.kind == "rate_limited":
            return error.retry_after if error.retry_after else min(self._cooldown, 10.0)
        if error.kind in _CREDENTIAL_KINDS:
            return self._cooldown * 10
        if error.kind not in _FAILURE_KINDS:
            return None
        window = self._failures[deployment_id]
        window.append(now)
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) > self._allowed_fails:
            window.clear()
            return self._cooldown
        return None

    def record_success(self, deployment_id: str) -> None:
        window = self._failures.get(deployment_id)
        if window:
            window.popleft()

    @staticmethod
    def shares_credential(error: AttemptError) -> bool:
        return error.kind in _CREDENTIAL_KINDS
