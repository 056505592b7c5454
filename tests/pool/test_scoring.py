"""The static score formula and its blend with health, on real catalogue entries."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import turnout
from turnout.pool.catalogue import Benchmarks, Catalogue, parse_catalogue
from turnout.pool.scoring import (
    WEIGHTS,
    benchmark_score,
    blend,
    context_norm,
    parameter_billions,
    penalty_names,
    price_band,
    recency,
    score_breakdown,
    static_score,
)

DATA = Path(turnout.__file__).parent / "data" / "openrouter"
NOW_AUG = datetime(2026, 8, 20, tzinfo=UTC).timestamp()
NOW_JAN = datetime(2026, 1, 30, tzinfo=UTC).timestamp()
DAY = 86_400.0


@pytest.fixture(scope="module")
def aug() -> Catalogue:
    return parse_catalogue(json.loads((DATA / "models-2026-08-19.json").read_text()), now=NOW_AUG)


@pytest.fixture(scope="module")
def jan() -> Catalogue:
    return parse_catalogue(json.loads((DATA / "models-2026-01-29.json").read_text()), now=NOW_JAN)


def test_every_real_model_scores_inside_the_unit_interval(aug: Catalogue, jan: Catalogue) -> None:
    for catalogue, now in ((aug, NOW_AUG), (jan, NOW_JAN)):
        for model in catalogue.models.values():
            assert 0.0 <= static_score(model, now=now) <= 1.0, model.id


def test_breakdown_adds_up_to_the_total(aug: Catalogue) -> None:
    parts = score_breakdown(aug.models["nvidia/nemotron-nano-9b-v2:free"], now=NOW_AUG)
    weighted = sum(WEIGHTS[name] * parts[name] for name in WEIGHTS)
    assert parts["penalty_small"] == -0.12
    assert parts["total"] == pytest.approx(weighted - 0.12, abs=1e-6)
    assert set(WEIGHTS) <= set(parts)


@pytest.mark.parametrize(
    ("context", "expected"),
    [(None, 0.0), (0, 0.0), (2048, 0.0), (4096, 0.0), (32_768, 0.375), (131_072, 0.625),
     (262_144, 0.75), (1_048_576, 1.0), (2_000_000, 1.0)],
)
def test_context_is_log_scaled_and_saturates_at_1m(context: int | None, expected: float) -> None:
    assert context_norm(context) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("age_days", "expected"),
    [(-3, 1.0), (0, 1.0), (274, 0.5), (548, 0.0), (2000, 0.0)],
)
def test_recency_decays_to_zero_over_18_months(age_days: float, expected: float) -> None:
    assert recency(NOW_AUG - age_days * DAY, now=NOW_AUG) == pytest.approx(expected)


def test_unknown_creation_date_is_a_weak_prior() -> None:
    assert recency(None, now=NOW_AUG) == 0.3


@pytest.mark.parametrize(
    ("benchmarks", "expected"),
    [
        (Benchmarks(), 0.4),
        (Benchmarks(intelligence=35.0), 0.5),
        (Benchmarks(intelligence=70.0, coding=70.0, agentic=70.0), 1.0),
        (Benchmarks(intelligence=140.0, coding=0.0, agentic=None), (0.5 * 1.0 + 0.25 * 0.0) / 0.75),
    ],
)
def test_benchmarks_are_normalised_with_a_neutral_prior(benchmarks: Benchmarks, expected: float) -> None:
    assert benchmark_score(benchmarks) == pytest.approx(expected)


def test_cheaper_paid_models_get_a_slightly_better_price_band(aug: Catalogue) -> None:
    cheap = price_band(aug.models["deepseek/deepseek-v4-flash"])
    pricey = price_band(aug.models["anthropic/claude-opus-5"])
    assert 1.0 >= cheap > pricey >= 0.0
    assert price_band(aug.models["z-ai/glm-5.2:free"]) == 0.5
    assert price_band(aug.models["openrouter/auto"]) == 0.0


@pytest.mark.parametrize(
    ("model_id", "size"),
    [
        ("liquid/lfm-2.5-2.6b:free", 2.6),
        ("nvidia/nemotron-3-nano-30b-a3b:free", 30.0),  # a3b is active parameters
        ("google/gemma-3n-e4b-it", 4.0),
        ("meta-llama/llama-3.1-8b-instruct", 8.0),
        ("qwen/qwen3.8-2.4t-a95b", None),  # trillions
        ("mistralai/mixtral-8x7b-instruct", None),
        ("openai/gpt-5-nano", None),
        ("qwen/qwen3.8-27b", 27.0),
    ],
)
def test_parameter_counts_come_from_the_id(model_id: str, size: float | None) -> None:
    assert parameter_billions(model_id) == size


@pytest.mark.parametrize(
    ("snapshot", "model_id", "expected"),
    [
        ("aug", "liquid/lfm-2.5-2.6b:free", ["tiny"]),
        ("aug", "nvidia/nemotron-nano-9b-v2:free", ["small"]),
        ("aug", "openai/gpt-5-nano", ["small"]),
        ("aug", "amazon/nova-micro-v1", ["small"]),
        ("aug", "nvidia/nemotron-3-nano-30b-a3b:free", []),
        ("aug", "openai/gpt-5.4-mini", []),
        ("aug", "minimax/minimax-m3", []),
        ("aug", "z-ai/glm-5.2:free", []),
        ("aug", "deepseek/deepseek-r1-distill-llama-70b", ["distilled"]),
        ("aug", "google/gemini-3.1-pro-preview", ["preview"]),
        ("aug", "deepseek/deepseek-v3.2-exp", ["preview"]),
        ("jan", "x-ai/grok-3-beta", ["preview"]),
        ("jan", "meta-llama/llama-3.1-405b", ["base"]),
        ("jan", "meta-llama/llama-3.1-405b-instruct", []),
        ("jan", "mistralai/mistral-tiny", ["small"]),
    ],
)
def test_penalties_name_only_real_weaknesses(
    request: pytest.FixtureRequest, snapshot: str, model_id: str, expected: list[str]
) -> None:
    catalogue: Catalogue = request.getfixturevalue(snapshot)
    assert penalty_names(catalogue.models[model_id]) == expected


def test_base_model_scores_below_its_instruct_sibling(jan: Catalogue) -> None:
    base = static_score(jan.models["meta-llama/llama-3.1-405b"], now=NOW_JAN)
    instruct = static_score(jan.models["meta-llama/llama-3.1-405b-instruct"], now=NOW_JAN)
    assert instruct - base > 0.2


def test_a_strong_free_model_beats_a_tiny_one(aug: Catalogue) -> None:
    assert static_score(aug.models["z-ai/glm-5.2:free"], now=NOW_AUG) > static_score(
        aug.models["liquid/lfm-2.5-2.6b:free"], now=NOW_AUG
    ) + 0.3


def test_benchmarks_lift_a_model(aug: Catalogue) -> None:
    model = aug.models["z-ai/glm-5.2:free"]
    without = dataclasses.replace(model, benchmarks=Benchmarks())
    assert static_score(model, now=NOW_AUG) > static_score(without, now=NOW_AUG)


@pytest.mark.parametrize(
    ("static", "health", "weight", "expected"),
    [
        (0.6, None, 0.35, 0.588),
        (0.6, 1.0, 0.35, 0.74),
        (0.6, 0.0, 0.35, 0.39),
        (0.6, 0.2, 0.0, 0.6),
        (0.6, 0.2, 1.0, 0.2),
        (1.0, 1.0, 0.5, 1.0),
        (0.0, None, 0.35, 0.0),
    ],
)
def test_blend(static: float, health: float | None, weight: float, expected: float) -> None:
    assert blend(static, health, health_weight=weight) == pytest.approx(expected)
