"""Per-deployment `rpm` / `tpm` limits, counted in this process over a sliding 60 s window.

A deployment at its limit is skipped like a cooled-down one; `retry_after` says when the
oldest request (or token) in its window leaves it. Requests count when they are admitted;
tokens when an answer reports them (an answer without usage counts its prompt estimate).
With shared state the same decision is made across replicas (`turnout.shared.account_limits`);
this class is the default and the fallback while Redis is away. Pure: time comes from `clock`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from turnout.pool.model import Deployment

WINDOW_S = 60.0


@dataclass(slots=True)
class _Window:
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    token_sum: int = 0

    def roll(self, now: float) -> None:
        cutoff = now - WINDOW_S
        while self.requests and self.requests[0] <= cutoff:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= cutoff:
            self.token_sum -= self.tokens.popleft()[1]


class DeploymentLimits:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def admit(self, dep: Deployment) -> float | None:
        """Count one request against `dep`; None when admitted, else seconds until it would be."""
        if dep.rpm is None and dep.tpm is None:
            return None
        now = self._clock()
        window = self._windows.setdefault(dep.id, _Window())
        window.roll(now)
        if dep.rpm is not None and len(window.requests) >= dep.rpm:
            return max(0.0, window.requests[0] + WINDOW_S - now)
        if dep.tpm is not None and window.token_sum >= dep.tpm:
            return max(0.0, window.tokens[0][0] + WINDOW_S - now) if window.tokens else 1.0
        window.requests.append(now)
        return None

    def spend_tokens(self, dep: Deployment, tokens: int) -> None:
        if dep.tpm is None or tokens <= 0:
            return
        now = self._clock()
        window = self._windows.setdefault(dep.id, _Window())
        window.roll(now)
        window.tokens.append((now, tokens))
        window.token_sum += tokens
