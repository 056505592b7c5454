"""The static score of a catalogue model and its blend with health.

Static score, in [0, 1]::

    static = clip(0.20*C + 0.15*R + 0.15*K + 0.40*B + 0.10*P - penalties, 0, 1)

    C  context      clip(log2(context_length / 4096) / 8, 0, 1)
                    4k -> 0, 32k -> 0.375, 128k -> 0.625, 256k -> 0.75, >= 1M -> 1; unknown -> 0
    R  recency      clip(1 - age_days / 548, 0, 1), age from `created` (18 months to zero);
                    unknown -> 0.3
    K  capabilities 0.4*tools + 0.2*json_mode + 0.2*reasoning + 0.2*vision
    B  benchmarks   weighted mean of the Artificial Analysis indices present, each
                    clip(index / 70, 0, 1), weights intelligence 0.5, coding 0.25,
                    agentic 0.25 (renormalised over those present); none -> 0.4 (prior a
                    little under the catalogue median, so unbenchmarked models are not sunk)
    P  price band   paid: 1 - clip(log10(1 + m) / 2, 0, 1), m = USD per million tokens at
                    3 prompt : 1 completion (m=1 -> 0.85, m=10 -> 0.48, m>=99 -> 0);
                    free -> 0.5 (neutral); unknown -> 0

    penalties (summed): tiny model (<= 4B parameters) 0.25, small model (<= 9B, or a
    nano/micro/tiny marker without a size) 0.12, base (non-instruct) model 0.25,
    distilled 0.08, preview/beta/exp/experimental/alpha 0.05.

Sizes come from the id: `-8b`, `-2.6b`, `-e4b` count; active-parameter marks (`-a3b`),
`8x7b` and trillions (`2.4t`) do not.

Blend with health (both in [0, 1])::

    blend = (1 - w) * static + w * health          when health is known
    blend = static * (1 - 0.02)                    when health is unknown

w is `pool.health.weight`. A health-gated model is never blended: selection drops it.
"""

from __future__ import annotations

import math
import re

from turnout.pool.catalogue import Benchmarks, CatalogueModel, slug_tokens

WEIGHTS = {"context": 0.20, "recency": 0.15, "capabilities": 0.15, "benchmarks": 0.40, "price": 0.10}
CONTEXT_FLOOR = 4096
CONTEXT_OCTAVES = 8  # 4096 * 2**8 = 1,048,576
RECENCY_DAYS = 548.0
UNKNOWN_RECENCY = 0.3
BENCHMARK_SCALE = 70.0
BENCHMARK_WEIGHTS = {"intelligence": 0.5, "coding": 0.25, "agentic": 0.25}
BENCHMARK_PRIOR = 0.4
FREE_PRICE_BAND = 0.5
UNKNOWN_HEALTH_DISCOUNT = 0.02

PENALTIES = {
    "tiny": 0.25,
    "small": 0.12,
    "base": 0.25,
    "distilled": 0.08,
    "preview": 0.05,
}
PREVIEW_TOKENS = frozenset({"preview", "beta", "exp", "experimental", "alpha"})
SMALL_TOKENS = frozenset({"nano", "micro", "tiny"})
_SIZE = re.compile(r"(?:^|[-_/])e?(\d+(?:\.\d+)?)b(?=$|[-_:./])")


def static_score(model: CatalogueModel, *, now: float) -> float:
    """The documented weighted sum, clipped to [0, 1]."""
    return score_breakdown(model, now=now)["total"]


def score_breakdown(model: CatalogueModel, *, now: float) -> dict[str, float]:
    """Each component in [0, 1], each penalty as a negative number, and the total."""
    parts = {
        "context": context_norm(model.context_length),
        "recency": recency(model.created, now=now),
        "capabilities": capabilities(model),
        "benchmarks": benchmark_score(model.benchmarks),
        "price": price_band(model),
    }
    penalties = {f"penalty_{name}": -PENALTIES[name] for name in penalty_names(model)}
    total = sum(WEIGHTS[name] * value for name, value in parts.items()) + sum(penalties.values())
    return {**parts, **penalties, "total": round(_clip(total), 6)}


def context_norm(context_length: int | None) -> float:
    """Log-scaled context: 4k -> 0, each doubling +1/8, 1M and above -> 1."""
    if not context_length or context_length <= 0:
        return 0.0
    return _clip(math.log2(context_length / CONTEXT_FLOOR) / CONTEXT_OCTAVES)


def recency(created: float | None, *, now: float) -> float:
    if created is None:
        return UNKNOWN_RECENCY
    age_days = (now - created) / 86_400
    return _clip(1.0 - age_days / RECENCY_DAYS)


def capabilities(model: CatalogueModel) -> float:
    return 0.4 * model.tools + 0.2 * model.json_mode + 0.2 * model.reasoning + 0.2 * model.vision


def benchmark_score(benchmarks: Benchmarks) -> float:
    present = {
        name: value
        for name, value in (
            ("intelligence", benchmarks.intelligence),
            ("coding", benchmarks.coding),
            ("agentic", benchmarks.agentic),
        )
        if value is not None
    }
    if not present:
        return BENCHMARK_PRIOR
    total_weight = sum(BENCHMARK_WEIGHTS[name] for name in present)
    weighted = sum(BENCHMARK_WEIGHTS[name] * _clip(value / BENCHMARK_SCALE) for name, value in present.items())
    return weighted / total_weight


def price_band(model: CatalogueModel) -> float:
    if model.prompt_price is None or model.completion_price is None:
        return 0.0
    if model.tier == "free":
        return FREE_PRICE_BAND
    per_million = (3 * model.prompt_price + model.completion_price) / 4 * 1_000_000
    return 1.0 - _clip(math.log10(1 + per_million) / 2)


def parameter_billions(model_id: str) -> float | None:
    """The largest `<n>b` size mark in the id's slug, in billions of parameters."""
    slug = model_id.partition("/")[2].partition(":")[0].lower()
    sizes = [float(match) for match in _SIZE.findall(slug)]
    return max(sizes) if sizes else None


def penalty_names(model: CatalogueModel) -> list[str]:
    tokens = set(slug_tokens(model.id))
    size = parameter_billions(model.id)
    names = []
    if size is not None and size <= 4:
        names.append("tiny")
    elif (size is not None and size <= 9) or (size is None and tokens & SMALL_TOKENS):
        names.append("small")
    if "base" in tokens or "(base)" in model.name.lower():
        names.append("base")
    if "distill" in tokens or "distilled" in tokens:
        names.append("distilled")
    if tokens & PREVIEW_TOKENS:
        names.append("preview")
    return names


def blend(static: float, health: float | None, *, health_weight: float) -> float:
    """Static score and health as one number in [0, 1] (see the module docstring)."""
    if health is None:
        return _clip(static * (1.0 - UNKNOWN_HEALTH_DISCOUNT))
    return _clip((1.0 - health_weight) * static + health_weight * health)


def _clip(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(high, max(low, value))
