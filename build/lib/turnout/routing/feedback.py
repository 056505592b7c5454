"""Our own traffic as health evidence: every attempt feeds the passive stats the next ranking reads.

What an outcome counts as comes from the failure table (`FAILURES[kind].passive`); a failure
that says something about the request rather than the deployment counts as nothing.
"""

from __future__ import annotations

from turnout.errors import AttemptRecord
from turnout.pool.model import Deployment
from turnout.pool.provider_health import PassiveStats
from turnout.routing.engine import AttemptObserver
from turnout.upstream.failures import FAILURES


class PassiveFeedback(AttemptObserver):
    def __init__(self, stats: PassiveStats, *, then: AttemptObserver | None = None) -> None:
        self._stats = stats
        self._then = then or AttemptObserver()

    def on_attempt(self, record: AttemptRecord) -> None:
        if record.outcome == "ok":
            self._stats.record(record.deployment_id, "success", latency_s=record.latency_s)
        else:
            failure = FAILURES.get(record.outcome)  # type: ignore[call-overload]
            if failure is not None and failure.passive is not None:
                self._stats.record(record.deployment_id, failure.passive, latency_s=record.latency_s)
        self._then.on_attempt(record)

    def on_cooldown(self, deployment: Deployment, seconds: float, kind: str) -> None:
        self._then.on_cooldown(deployment, seconds, kind)

    def on_resume(self, outcome: str) -> None:
        self._then.on_resume(outcome)

    def on_malformed(self, deployment: Deployment, count: int) -> None:
        self._then.on_malformed(deployment, count)
