"""Probe results as health evidence: `POST /admin/probe` (what `turnout probe --feed` sends).

Each result counts in passive health like one of the gateway's own attempts (what a kind
counts as comes from `FAILURES[kind].passive`), and a model the probe found broken leaves
rotation at once: its deployments are benched in every group for `probe.feed_cooldown_s`.
Broken means a failure passive health counts as an error (5xx, timeouts, resets, 401/402/403)
or a 404 (`unsupported`: the model is gone, or cannot serve a plain prompt). A 429 benches
only for the Retry-After it came with: a busy free model is not broken. Results for models
not in the live pool are reported back and otherwise ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from turnout.pool.provider_health import PassiveStats
from turnout.routing.snapshot import SnapshotHolder
from turnout.upstream.failures import FAILURES, AttemptError, Kind


@dataclass(frozen=True, slots=True)
class FedResult:
    model: str
    ok: bool
    kind: Kind | None
    status: int | None
    latency_s: float
    retry_after_s: float | None


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    recorded: int
    benched: tuple[str, ...]
    not_in_pool: tuple[str, ...]


def bench_seconds(result: FedResult, *, cooldown_s: float) -> float | None:
    """How long the probe's result benches its model, or None."""
    if result.ok or result.kind is None:
        return None
    if result.kind == "rate_limited":
        return result.retry_after_s or None
    if FAILURES[result.kind].passive == "error" or result.kind == "unsupported":
        return cooldown_s
    return None


def apply_probe(results: Sequence[FedResult], *, holder: SnapshotHolder, passive: PassiveStats,
                cooldown_s: float) -> FeedOutcome:
    snapshot = holder.current
    deployments: dict[str, list[str]] = {}
    if snapshot is not None:
        for dep in snapshot.pool.deployments.values():
            deployments.setdefault(dep.model, []).append(dep.id)
    recorded, benched, missing = 0, [], []
    for result in results:
        ids = deployments.get(result.model)
        if not ids:
            missing.append(result.model)
            continue
        outcome = "success" if result.ok else (FAILURES[result.kind].passive if result.kind else "error")
        for dep_id in ids:
            if outcome is not None:
                passive.record(dep_id, outcome, latency_s=result.latency_s)
        recorded += 1
        seconds = bench_seconds(result, cooldown_s=cooldown_s)
        if seconds:
            reason = AttemptError(result.kind or "server_error", f"{result.model}: turnout probe found it failing",
                                  status=result.status)
            holder.bench(ids, seconds=seconds, reason=reason, status=result.status or 500)
            benched.append(result.model)
    return FeedOutcome(recorded=recorded, benched=tuple(benched), not_in_pool=tuple(missing))
