"""What one answer used and cost, read from the upstream's `usage` block.

OpenRouter reports `usage.cost` (USD) on every answer; other upstreams report only tokens,
so the cost falls back to the deployment's catalogue prices (USD per token).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from turnout.pool.model import Deployment


class Cost(NamedTuple):
    usd: float
    source: str  # "upstream" (usage.cost) or "catalogue" (tokens x prices)


def usage_cost(usage: Any, deployment: Deployment) -> Cost | None:
    """USD cost of one answer: the upstream's `usage.cost` when it has one, else catalogue prices."""
    if not isinstance(usage, Mapping):
        return None
    cost = usage.get("cost")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        return Cost(float(cost), "upstream")
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return Cost(prompt * deployment.prompt_price + completion * deployment.completion_price, "catalogue")
    return None


def usage_tokens(usage: Any) -> tuple[int, int, int]:
    """(prompt, completion, reasoning) tokens; reasoning tokens are part of completion tokens."""
    if not isinstance(usage, Mapping):
        return 0, 0, 0
    details = usage.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, Mapping) else None
    return _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")), _int(reasoning)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
