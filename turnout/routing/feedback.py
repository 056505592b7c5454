"""Our own traffic as health evidence: every attempt feeds the passive stats the next ranking reads."""

from __future__ import annotations

from turnout.pool.model import Deployment
from turnout.pool.provider_health import PassiveStats
from turnout.routing.engine import AttemptObserver, AttemptRecord

# Outcomes that say something about the deployment (not about the request).
_PASSIVE_OUTCOME = {
    "ok": "success",
    "rate_limited": "rate_limited",
    "server_error": "error",
    "timeout": "error",
    "connection_error": "error",
    "stream_broken": "error",
    "auth": "error",
    "payment": "error",
}


class PassiveFeedback(AttemptObserver):
    def __init__(self, stats: PassiveStats, *, then: AttemptObserver | None = None) -> None:
        self._stats = stats
        self._then = then or AttemptObserver()

    def on_attempt(self, record: AttemptRecord) -> None:
        outcome = _PASSIVE_OUTCOME.get(record.outcome)
        if outcome is not None:
            self._stats.record(record.deployment_id, outcome, latency_s=record.latency_s)
        self._then.on_attempt(record)

    def on_cooldown(self, deployment: Deployment, seconds: float, kind: str) -> None:
        self._then.on_cooldown(deployment, seconds, kind)

    def on_resume(self, outcome: str) -> None:
        self._then.on_resume(outcome)

    def on_malformed(self, deployment: Deployment, count: int) -> None:
        self._then.on_malformed(deployment, count)
