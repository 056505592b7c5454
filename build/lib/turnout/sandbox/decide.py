"""What happens to one chat call: a pure function of the faults and one draw.

Checks run in a fixed order: fail_next (and the `fail_for_s` window), free
tier, the random band (hang, reset, rate limit, error, error_200), a refused
prefill, a content-policy 400, context length, content filter.  The
random faults share one uniform draw `u` per call, so a plan + seed + call
order always gives the same outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from turnout.sandbox.completions import CompletionRequest
from turnout.sandbox.error_bodies import (
    content_policy_refused,
    context_too_long,
    http_error,
    prefill_refused,
    provider_rate_limited,
)
from turnout.sandbox.faults import ModelFaults
from turnout.sandbox.model_list import ModelInfo

Kind = Literal["ok", "error", "error_200", "reset", "hang"]


@dataclass(frozen=True, slots=True)
class Fate:
    kind: Kind
    outcome: str
    status: int = 200
    body: dict[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallContext:
    request: CompletionRequest
    model: ModelInfo
    provider: str
    faults: ModelFaults


def decide(
    ctx: CallContext,
    *,
    u: float,
    fail_next: bool,
    free_tier_refusal: dict[str, Any] | None,
) -> Fate:
    faults = ctx.faults
    if fail_next:
        return injected(ctx, faults.fail_next_code)
    if free_tier_refusal is not None:
        minute = "per-min" in free_tier_refusal["error"]["message"]
        outcome = "429_free_per_min" if minute else "429_free_per_day"
        return Fate("error", outcome, status=429, body=free_tier_refusal)
    band, position = _band(faults, u)
    if band == "hang":
        return Fate("hang", "hang")
    if band == "reset":
        return Fate("reset", "reset")
    if band == "rate_limit":
        return injected(ctx, 429)
    if band in ("error", "error_200"):
        codes = faults.error_codes
        code = codes[min(int(position * len(codes)), len(codes) - 1)]
        fate = injected(ctx, code)
        if band == "error" or fate.kind != "error":
            return fate
        return Fate("error_200", "error_200", body=fate.body)
    return _after_random(ctx)


def injected(ctx: CallContext, code: int) -> Fate:
    """A failure with an HTTP code; 0 means a connection reset."""
    if code == 0:
        return Fate("reset", "reset")
    if code == 429:
        body = provider_rate_limited(model_id=ctx.model.id, provider=ctx.provider)
        return Fate("error", "429", status=429, body=body, headers=_retry_after(ctx.faults))
    body = http_error(code, model_id=ctx.model.id, provider=ctx.provider)
    return Fate("error", str(code), status=code, body=body)


def _after_random(ctx: CallContext) -> Fate:
    request = ctx.request
    if request.prefill is not None and ctx.faults.prefill == "refuse":
        return Fate("error", "400_prefill", status=400, body=prefill_refused(provider=ctx.provider))
    if ctx.faults.content_policy_error:
        return Fate("error", "400_content_policy", status=400, body=content_policy_refused(provider=ctx.provider))
    limit = ctx.faults.context_length or ctx.model.context_length
    if limit is not None and request.prompt_tokens > limit:
        body = context_too_long(
            limit=limit, prompt_tokens=request.prompt_tokens, max_tokens=request.max_tokens
        )
        return Fate("error", "400_context", status=400, body=body)
    if ctx.faults.content_filter:
        return Fate("ok", "content_filter")
    return Fate("ok", "ok")


def _band(faults: ModelFaults, u: float) -> tuple[str | None, float]:
    """Which random fault `u` falls in, and where inside that band (0..1)."""
    low = 0.0
    bands = (
        ("hang", faults.hang_rate),
        ("reset", faults.reset_rate),
        ("rate_limit", faults.rate_limit_rate),
        ("error", faults.error_rate),
        ("error_200", faults.error_200_rate),
    )
    for name, width in bands:
        if width > 0 and u < low + width:
            return name, (u - low) / width
        low += width
    return None, 0.0


def _retry_after(faults: ModelFaults) -> dict[str, str]:
    seconds = faults.retry_after_s
    if seconds is None:
        return {}
    text = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
    return {"Retry-After": text}
