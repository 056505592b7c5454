"""Building the pool from the real 2026-08-19 catalogue: aliases, tiers, weights, hysteresis."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

import turnout
from turnout.config import AliasSpec, RankWeight, Settings, StaticDeployment, default_aliases
from turnout.pool.catalogue import Catalogue, CatalogueModel, parse_catalogue
from turnout.pool.model import OPENROUTER_CREDENTIAL, Pool, deployment_id
from turnout.pool.provider_health import HealthScore, PassiveHealth
from turnout.pool.selection import (
    Candidate,
    build_pool,
    eligible_candidates,
    health_targets,
    hold_seats,
    pool_overlap,
    rank_weight,
)

DATA = Path(turnout.__file__).parent / "data" / "openrouter"
NOW = datetime(2026, 8, 20, tzinfo=UTC).timestamp()
BASE_URL = "https://openrouter.ai/api/v1"


def settings(**overrides: Any) -> Settings:
    return Settings(openrouter_base_url=BASE_URL, **overrides)


def pool_settings(**pool: Any) -> Settings:
    return settings(pool={**pool})


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return parse_catalogue(json.loads((DATA / "models-2026-08-19.json").read_text()), now=NOW)


def build(
    catalogue: Catalogue,
    *,
    config: Settings | None = None,
    previous: Pool | None = None,
    health: dict[str, HealthScore] | None = None,
    passive: dict[str, PassiveHealth] | None = None,
) -> Pool:
    return build_pool(
        catalogue=catalogue,
        health=health or {},
        passive=passive or {},
        settings=config or settings(),
        previous=previous,
        now=NOW,
    )


def member_models(pool: Pool, group: str) -> list[str]:
    return [dep.model for _, dep in pool.members_of(group)]


def without(catalogue: Catalogue, removed: set[str]) -> Catalogue:
    kept = {k: v for k, v in catalogue.models.items() if k not in removed}
    return dataclasses.replace(catalogue, models=MappingProxyType(kept))


# --- aliases on the real catalogue -----------------------------------------------------


def test_auto_is_free_first_then_paid_and_all_tool_capable(catalogue: Catalogue) -> None:
    pool = build(catalogue)
    members = pool.members_of("auto")
    assert [(m.order, d.tier) for m, d in members] == [(1, "free")] * 8 + [(2, "paid")] * 4
    assert all(d.capabilities.tools for _, d in members)
    assert member_models(pool, "auto")[0] == "z-ai/glm-5.2:free"


@pytest.mark.parametrize(
    ("alias", "check"),
    [
        ("vision", lambda d: d.capabilities.vision),
        ("long", lambda d: (d.context_length or 0) >= 200_000 and d.capabilities.tools),
        ("free", lambda d: d.tier == "free"),
        ("paid", lambda d: d.tier == "paid"),
    ],
)
def test_alias_requirements_hold_for_every_member(catalogue: Catalogue, alias: str, check: Any) -> None:
    members = build(catalogue).members_of(alias)
    assert members
    assert all(check(d) for _, d in members)


def test_alias_sizes_follow_the_spec(catalogue: Catalogue) -> None:
    pool = build(catalogue)
    sizes = {name: len(pool.groups[name].members) for name in default_aliases()}
    assert sizes == {"auto": 12, "free": 10, "paid": 6, "vision": 8, "images": 4, "long": 8}


def test_excluded_models_never_reach_the_pool(catalogue: Catalogue) -> None:
    models = {d.model for d in build(catalogue).deployments.values()}
    for model_id in ("openrouter/auto", "openrouter/free", "google/lyria-3-pro-preview",
                     "nvidia/nemotron-3.5-content-safety:free", "~openai/gpt-latest", "anthropic/claude-opus-5:batch"):
        assert model_id not in models


def test_long_is_sorted_by_context_within_each_tier(catalogue: Catalogue) -> None:
    members = build(catalogue).members_of("long")
    for order in (1, 2):
        contexts = [d.context_length or 0 for m, d in members if m.order == order]
        assert contexts == sorted(contexts, reverse=True)


def test_no_paid_member_anywhere_when_paid_is_not_allowed(catalogue: Catalogue) -> None:
    pool = build(catalogue, config=pool_settings(allow_paid=False))
    assert all(d.tier == "free" for d in pool.deployments.values())
    assert pool.groups["paid"].members == ()
    assert {m.order for m in pool.groups["auto"].members} == {1}


@pytest.mark.parametrize(
    ("rank", "weights", "expected"),
    [
        (1, None, 6), (2, None, 6), (3, None, 3), (5, None, 3), (6, None, 1), (10, None, 1), (11, None, 1),
        (1, [RankWeight(max_rank=1, weight=10)], 10),
        (4, [RankWeight(max_rank=1, weight=10), RankWeight(max_rank=2, weight=4)], 4),
        (3, [], 1),
    ],
)
def test_rank_weight_bands(rank: int, weights: list[RankWeight] | None, expected: int) -> None:
    bands = settings().pool.rank_weights if weights is None else weights
    assert rank_weight(rank, bands) == expected


def test_members_carry_rank_weights_per_tier(catalogue: Catalogue) -> None:
    members = build(catalogue).groups["free"].members
    assert [(m.rank, m.weight) for m in members] == [
        (1, 6), (2, 6), (3, 3), (4, 3), (5, 3), (6, 1), (7, 1), (8, 1), (9, 1), (10, 1),
    ]
    paid = [(m.rank, m.weight) for m in build(catalogue).groups["auto"].members if m.order == 2]
    assert paid == [(1, 6), (2, 6), (3, 3), (4, 3)]


def test_deployments_describe_the_openrouter_model(catalogue: Catalogue) -> None:
    pool = build(catalogue)
    dep = pool.deployments[deployment_id("openrouter", "z-ai/glm-5.2:free")]
    assert (dep.model, dep.upstream_model, dep.provider, dep.wire) == (
        "z-ai/glm-5.2:free", "z-ai/glm-5.2:free", "openrouter", "openai",
    )
    assert (dep.api_base, dep.credential, dep.tier) == (BASE_URL, OPENROUTER_CREDENTIAL, "free")
    assert (dep.context_length, dep.max_output_tokens, dep.prompt_price) == (256000, 256000, 0.0)
    assert dep.capabilities.tools and dep.capabilities.reasoning and not dep.capabilities.vision
    assert dep.litellm_model == "openrouter/z-ai/glm-5.2:free"


def test_every_pooled_model_is_callable_by_its_id(catalogue: Catalogue) -> None:
    pool = build(catalogue)
    openrouter = [d for d in pool.deployments.values() if d.provider == "openrouter"]
    for dep in openrouter:
        group = pool.groups[dep.model]
        assert group.kind == "model" and [m.deployment_id for m in group.members] == [dep.id]
    assert {g.name for g in pool.groups.values() if g.kind == "model"} == {d.model for d in openrouter}


def test_alias_groups_carry_fallbacks_and_descriptions(catalogue: Catalogue) -> None:
    pool = build(catalogue, config=settings(fallbacks={"free": ["paid"]}, sandbox="off"))
    auto, free = pool.groups["auto"], pool.groups["free"]
    assert auto.context_window_fallbacks == ("long",) and auto.kind == "alias"
    assert free.fallbacks == ("paid",)
    assert auto.description.startswith("Free tool-capable")
    assert (pool.source, pool.built_at) == ("live", NOW)
    assert build(catalogue, config=settings(sandbox="on")).source == "sandbox"  # said so, never served as live


def test_an_alias_nobody_matches_is_an_empty_group(catalogue: Catalogue) -> None:
    aliases = {**default_aliases(), "huge": AliasSpec(min_context=50_000_000)}
    pool = build(catalogue, config=settings(aliases=aliases))
    assert pool.groups["huge"].members == () and pool.groups["huge"].kind == "alias"


def test_static_deployments_join_the_pool(catalogue: Catalogue) -> None:
    config = settings(deployments=[StaticDeployment(name="local", model="ollama/llama3.1")])
    pool = build(catalogue, config=config)
    assert pool.groups["local"].kind == "static"
    assert [d.tier for _, d in pool.members_of("local")] == ["static"]


# --- health ----------------------------------------------------------------------------


def test_health_gated_models_are_dropped(catalogue: Catalogue) -> None:
    gated = {"z-ai/glm-5.2:free": HealthScore(score=None, gated=True, reason="no endpoint serving (0 of 2)")}
    pool = build(catalogue, health=gated)
    assert "z-ai/glm-5.2:free" not in {d.model for d in pool.deployments.values()}
    assert "z-ai/glm-5.2:free" in member_models(build(catalogue, config=pool_settings(health={"enabled": False}),
                                                       health=gated), "auto")


def test_known_health_is_blended_and_reported(catalogue: Catalogue) -> None:
    pool = build(catalogue, health={"poolside/laguna-xs-2.1:free": HealthScore(score=1.0)})
    member = next(m for m, d in pool.members_of("free") if d.model == "poolside/laguna-xs-2.1:free")
    assert member.health == 1.0
    assert member.rank < 8  # a perfect health lifts it above its unknown-health rank


def test_passive_errors_push_a_model_out(catalogue: Catalogue) -> None:
    failing = PassiveHealth(samples=30, success_rate=0.0, rate_limited_rate=0.0, error_rate=1.0, p50_latency_s=None)
    first = build(catalogue)
    dep = deployment_id("openrouter", "z-ai/glm-5.2:free")
    second = build(catalogue, previous=first, passive={dep: failing})
    assert "z-ai/glm-5.2:free" not in member_models(second, "auto")


# --- stability -------------------------------------------------------------------------


def test_unchanged_inputs_give_the_identical_pool(catalogue: Catalogue) -> None:
    first = build(catalogue)
    assert build(catalogue).to_json() == first.to_json()
    assert build(catalogue, previous=first).to_json() == first.to_json()
    assert pool_overlap(first, build(catalogue, previous=first)) == 1.0


def test_a_persisted_pool_works_as_previous(catalogue: Catalogue) -> None:
    first = build(catalogue)
    restored = Pool.from_json(json.loads(json.dumps(first.to_json())))
    assert build(catalogue, previous=restored).to_json() == first.to_json()


def test_deployment_ids_are_stable_across_rebuilds(catalogue: Catalogue) -> None:
    reparsed = parse_catalogue(json.loads((DATA / "models-2026-08-19.json").read_text()), now=NOW + 3600)
    first, second = build(catalogue), build(reparsed)
    assert set(first.deployments) == set(second.deployments)
    for dep_id, dep in first.deployments.items():
        assert dep_id == deployment_id("openrouter", dep.model)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_removing_a_tenth_of_the_catalogue_keeps_most_of_the_pool(catalogue: Catalogue, seed: int) -> None:
    first = build(catalogue)
    ids = sorted(catalogue.models)
    removed = set(random.Random(seed).sample(ids, k=len(ids) // 10))
    second = build(without(catalogue, removed), previous=first)
    assert pool_overlap(first, second) >= 0.7
    survivors = {m.deployment_id for g in first.groups.values() if g.kind == "alias" for m in g.members} - {
        deployment_id("openrouter", model_id) for model_id in removed
    }
    seated = {m.deployment_id for g in second.groups.values() if g.kind == "alias" for m in g.members}
    assert survivors <= seated  # with unchanged scores no surviving incumbent loses its seat


# --- hysteresis ------------------------------------------------------------------------


def _candidates(catalogue: Catalogue, config: Settings) -> dict[str, Candidate]:
    found = eligible_candidates(catalogue=catalogue, health={}, passive={}, settings=config, now=NOW)
    return {c.id: c for c in found}


@pytest.mark.parametrize(("gap_in_margins", "incumbent_stays"), [(0.5, True), (0.9, True), (1.5, False)])
def test_incumbent_keeps_its_seat_unless_beaten_by_the_margin(
    catalogue: Catalogue, gap_in_margins: float, incumbent_stays: bool
) -> None:
    config = settings()
    margin, weight = config.pool.hysteresis_margin, config.pool.health.weight
    first = build(catalogue, config=config)
    seated = member_models(first, "free")
    weakest = seated[-1]
    scores = _candidates(catalogue, config)
    challenger = max(
        (c for c in scores.values() if c.model.tier == "free" and c.model.tools and c.id not in seated),
        key=lambda c: (c.score, c.id),
    )
    # Health that puts the weakest incumbent `gap` below the best challenger.
    static = scores[weakest].score / 0.98
    target = challenger.score - gap_in_margins * margin
    health = (target - (1 - weight) * static) / weight
    assert 0.0 <= health <= 1.0
    second = build(catalogue, config=config, previous=first, health={weakest: HealthScore(score=health)})
    assert (weakest in member_models(second, "free")) is incumbent_stays
    assert (challenger.id in member_models(second, "free")) is not incumbent_stays
    # Without a previous pool the challenger always wins the seat.
    fresh = build(catalogue, config=config, health={weakest: HealthScore(score=health)})
    assert challenger.id in member_models(fresh, "free")


def _fake(model: CatalogueModel, model_id: str, score: float) -> Candidate:
    return Candidate(model=dataclasses.replace(model, id=model_id), score=score, health=None)


@pytest.mark.parametrize(
    ("scores", "incumbents", "seats", "expected"),
    [
        # no incumbents: the best `seats`
        ({"a": 0.9, "b": 0.8, "c": 0.7}, set(), 2, ["a", "b"]),
        # incumbent within the margin keeps its seat
        ({"a": 0.9, "b": 0.8, "c": 0.75}, {"a", "c"}, 2, ["a", "c"]),
        # incumbent beaten by more than the margin loses it
        ({"a": 0.9, "b": 0.8, "c": 0.65}, {"a", "c"}, 2, ["a", "b"]),
        # exactly the margin is not enough
        ({"a": 0.9, "b": 0.8, "c": 0.7}, {"a", "c"}, 2, ["a", "c"]),
        # empty seats go to the best non-incumbents
        ({"a": 0.9, "b": 0.8, "c": 0.3}, {"c"}, 3, ["a", "b", "c"]),
        # repeated swaps
        ({"a": 0.9, "b": 0.85, "c": 0.2, "d": 0.1}, {"c", "d"}, 2, ["a", "b"]),
        # more incumbents than seats: the best of them stay
        ({"a": 0.9, "b": 0.85, "c": 0.8}, {"a", "b", "c"}, 2, ["a", "b"]),
        # ties break on id
        ({"b": 0.5, "a": 0.5, "c": 0.5}, set(), 2, ["a", "b"]),
        ({"a": 0.9}, {"a"}, 0, []),
        ({}, {"gone"}, 3, []),
    ],
)
def test_hold_seats_table(
    catalogue: Catalogue, scores: dict[str, float], incumbents: set[str], seats: int, expected: list[str]
) -> None:
    base = catalogue.models["z-ai/glm-5.2:free"]
    ranked = sorted((_fake(base, k, v) for k, v in scores.items()), key=lambda c: (-c.score, c.id))
    chosen = hold_seats(ranked=ranked, incumbents=frozenset(incumbents), seats=seats, margin=0.1,
                        merit=lambda c: c.score)
    assert [c.id for c in chosen] == expected


def _free_long(pool: Pool) -> list[str]:
    return [d.model for m, d in pool.members_of("long") if m.order == 1]


def test_context_hysteresis_keeps_an_equal_context_incumbent(catalogue: Catalogue) -> None:
    fresh = _free_long(build(catalogue))
    assert "google/gemma-4-31b-it:free" in fresh and "google/gemma-4-26b-a4b-it:free" not in fresh
    first = build(without(catalogue, {"google/gemma-4-31b-it:free"}))
    assert "google/gemma-4-26b-a4b-it:free" in _free_long(first)
    # Same 262,144 context: the better-scored challenger is not worth a swap.
    second = _free_long(build(catalogue, previous=first))
    assert "google/gemma-4-26b-a4b-it:free" in second and "google/gemma-4-31b-it:free" not in second


def test_context_hysteresis_lets_a_much_longer_context_in(catalogue: Catalogue) -> None:
    million = {"nvidia/nemotron-3-ultra-550b-a55b:free", "nvidia/nemotron-3.5-lightning:free"}
    first = build(without(catalogue, million))
    assert not million & set(_free_long(first))
    # 1M vs 262k is log2(3.8)/8 = 0.24 of merit, more than the 0.10 margin.
    assert _free_long(build(catalogue, previous=first)) == _free_long(build(catalogue))


# --- overlap ---------------------------------------------------------------------------


def test_pool_overlap_is_jaccard_over_alias_members(catalogue: Catalogue) -> None:
    full = build(catalogue)
    free_only = build(catalogue, config=pool_settings(allow_paid=False))
    full_ids = {m.deployment_id for g in full.groups.values() if g.kind == "alias" for m in g.members}
    free_ids = {m.deployment_id for g in free_only.groups.values() if g.kind == "alias" for m in g.members}
    assert pool_overlap(full, free_only) == pytest.approx(len(full_ids & free_ids) / len(full_ids | free_ids))
    empty = build(without(catalogue, set(catalogue.models)))
    assert pool_overlap(empty, empty) == 1.0
    assert pool_overlap(full, empty) == 0.0


# --- health targets --------------------------------------------------------------------


def test_health_targets_cover_every_seat_and_stay_bounded(catalogue: Catalogue) -> None:
    pool = build(catalogue)
    targets = health_targets(catalogue=catalogue, settings=settings(), previous=pool, now=NOW)
    seated = {d.model for d in pool.deployments.values()}
    assert seated <= set(targets)
    assert targets == sorted(targets) and len(targets) <= 2 * 24 + 2 * (12 + 10 + 6 + 8 + 8)
    assert "openrouter/auto" not in targets


def test_health_targets_skip_paid_when_paid_is_not_allowed(catalogue: Catalogue) -> None:
    targets = health_targets(catalogue=catalogue, settings=pool_settings(allow_paid=False), previous=None, now=NOW)
    assert targets and all(catalogue.models[t].tier == "free" for t in targets)
