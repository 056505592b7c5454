"""Whether one upstream attempt may go: the account's free quota, the deployment's rpm/tpm.

The engine asks `admit` once per attempt it is about to start, for deployments that are free
or carry a limit (others pass without a word). The answer is final for that attempt: a
refused free deployment makes the walk drop every free one, a deployment at its limit is
skipped like a cooled-down one. `LocalAdmission` decides in this process; the shared one
(`turnout.shared.account_limits.SharedAdmission`) decides across replicas in one Redis round trip
and falls back to the local one while Redis is away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from turnout.pool.model import Deployment
from turnout.routing.free_tier import FreeTierBudget
from turnout.routing.limits import DeploymentLimits


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an attempt may not go, and in how many seconds it might."""

    reason: Literal["free_quota", "deployment_limit"]
    retry_after_s: float


class Admission(Protocol):
    budget: FreeTierBudget

    def needs(self, dep: Deployment) -> bool: ...

    async def admit(self, dep: Deployment) -> Refusal | None: ...

    def spend_tokens(self, dep: Deployment, tokens: int) -> None: ...

    def exhaust(self, until: float) -> None: ...


class LocalAdmission:
    def __init__(self, budget: FreeTierBudget, limits: DeploymentLimits | None = None) -> None:
        self.budget = budget
        self.limits = limits or DeploymentLimits()

    def needs(self, dep: Deployment) -> bool:
        return dep.tier == "free" or dep.rpm is not None or dep.tpm is not None

    async def admit(self, dep: Deployment) -> Refusal | None:
        return self.admit_now(dep)

    def admit_now(self, dep: Deployment) -> Refusal | None:
        if dep.tier == "free" and not self.budget.available():
            return Refusal("free_quota", self.budget.retry_after())
        wait = self.limits.admit(dep)
        if wait is not None:
            return Refusal("deployment_limit", wait)
        if dep.tier == "free":
            self.budget.record()
        return None

    def spend_tokens(self, dep: Deployment, tokens: int) -> None:
        self.limits.spend_tokens(dep, tokens)

    def exhaust(self, until: float) -> None:
        self.budget.exhaust(until)
