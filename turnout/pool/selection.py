"""Build the live `Pool` from the catalogue, health and the previous pool (pure).

For each alias and each of its tiers, in order: the eligible models of that tier that meet
the alias's requirements are ranked (by blended score, or by context then score), and
`size[tier]` seats are filled with hysteresis against the previous pool:

1. eligible incumbents (members of the same alias and tier last time) keep their seats;
2. empty seats go to the best non-incumbents;
3. while the best challenger's merit exceeds the weakest incumbent's by more than
   `pool.hysteresis_margin`, they swap.

Merit is the blended score, or for `sort_by: context` the log-scaled context
(`scoring.context_norm`, 4k -> 0, 1M -> 1). Ties break on model id, so equal inputs give
an equal pool. The blended score is `scoring.blend(static, health)` times
`health.passive_factor` of our own traffic to that deployment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from turnout.config import AliasSpec, RankWeight, Settings, Tier
from turnout.pool.catalogue import Catalogue, CatalogueModel, filter_reasons
from turnout.pool.model import (
    OPENROUTER_CREDENTIAL,
    Capabilities,
    Deployment,
    Group,
    Member,
    Pool,
    alias_fallbacks,
    deployment_id,
    make_pool,
    static_groups,
)
from turnout.pool.pacing import no_pause
from turnout.pool.provider_health import HealthScore, PassiveHealth, passive_factor
from turnout.pool.scoring import blend, context_norm, static_score

# Float noise must not turn "exactly the margin" into a swap.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Candidate:
    """An eligible model with the numbers selection ranks it by."""

    model: CatalogueModel
    score: float
    health: float | None

    @property
    def id(self) -> str:
        return self.model.id


def build_pool(
    *,
    catalogue: Catalogue,
    health: Mapping[str, HealthScore],
    passive: Mapping[str, PassiveHealth],
    settings: Settings,
    previous: Pool | None,
    now: float,
    allow: frozenset[str] = frozenset(),
    block: frozenset[str] = frozenset(),
    pause: Callable[[], None] = no_pause,
) -> Pool:
    """The pool for this catalogue and health, holding seats from `previous` (see module doc).

    `pause` is called once per model (see `turnout.pool.pacing`)."""
    candidates = eligible_candidates(
        catalogue=catalogue, health=health, passive=passive, settings=settings, now=now, allow=allow, block=block,
        pause=pause,
    )
    alias_groups: list[Group] = []
    chosen: dict[str, Candidate] = {}
    for name, spec in settings.aliases.items():
        members, picked = _alias_members(
            name=name, spec=spec, candidates=candidates, settings=settings, previous=previous
        )
        fallbacks, context_fallbacks = alias_fallbacks(name, spec, settings)
        alias_groups.append(
            Group(
                name=name,
                kind="alias",
                members=members,
                fallbacks=fallbacks,
                context_window_fallbacks=context_fallbacks,
                content_policy_fallbacks=tuple(spec.content_policy_fallbacks),
                description=spec.description,
            )
        )
        chosen.update((c.id, c) for c in picked)
    static_deps, static_grps = static_groups(settings)
    ordered = [chosen[model_id] for model_id in sorted(chosen)]
    taken = {g.name for g in alias_groups} | {g.name for g in static_grps}
    model_groups = [_model_group(c) for c in ordered if c.id not in taken]
    return make_pool(
        deployments=[*(_deployment(c.model, settings=settings) for c in ordered), *static_deps],
        groups=[*alias_groups, *static_grps, *model_groups],
        source="sandbox" if settings.use_sandbox else "live",
        built_at=now,
    )


def eligible_candidates(
    *,
    catalogue: Catalogue,
    health: Mapping[str, HealthScore],
    passive: Mapping[str, PassiveHealth],
    settings: Settings,
    now: float,
    allow: frozenset[str] = frozenset(),
    block: frozenset[str] = frozenset(),
    pause: Callable[[], None] = no_pause,
) -> list[Candidate]:
    """Models that pass the global filters and are not health-gated, with their scores."""
    use_health = settings.pool.health.enabled
    weight = settings.pool.health.weight
    result = []
    for model in catalogue.models.values():
        pause()
        if filter_reasons(model, settings=settings.pool, now=now, allow=allow, block=block):
            continue
        reading = health.get(model.id) if use_health else None
        if reading is not None and reading.gated:
            continue
        active = reading.score if reading is not None else None
        factor = passive_factor(passive.get(openrouter_deployment_id(model.id)))
        score = blend(static_score(model, now=now), active, health_weight=weight) * factor
        result.append(Candidate(model=model, score=round(score, 6), health=active))
    return result


def health_targets(
    *,
    catalogue: Catalogue,
    settings: Settings,
    previous: Pool | None,
    now: float,
    allow: frozenset[str] = frozenset(),
    block: frozenset[str] = frozenset(),
    pause: Callable[[], None] = no_pause,
) -> list[str]:
    """Model ids worth an active health read, sorted: per tier the best
    `health.candidates_per_tier` by static score, per alias and tier twice its size by the
    alias's own ranking, and every model seated in `previous`. `pause`: once per model."""
    static = []
    for m in catalogue.models.values():
        pause()
        if not filter_reasons(m, settings=settings.pool, now=now, allow=allow, block=block):
            static.append(Candidate(model=m, score=static_score(m, now=now), health=None))
    tiers: tuple[Tier, ...] = ("free", "paid") if settings.pool.allow_paid else ("free",)
    wanted: set[str] = set()
    for tier in tiers:
        of_tier = [c for c in static if c.model.tier == tier]
        text = [c for c in of_tier if not c.model.image_output]  # image models: through their aliases only
        wanted.update(c.id for c in sorted(text, key=sort_key("score"))[: settings.pool.health.candidates_per_tier])
        for spec in settings.aliases.values():
            fitting = sorted((c for c in of_tier if matches(c.model, spec)), key=sort_key(spec.sort_by))
            wanted.update(c.id for c in fitting[: 2 * spec.size.get(tier, 0)])
    if previous is not None:
        seated = {d.model for d in previous.deployments.values() if d.provider == "openrouter"}
        wanted.update(seated & set(catalogue.models))
    return sorted(wanted)


def openrouter_deployment_id(model_id: str) -> str:
    return deployment_id("openrouter", model_id)


def matches(model: CatalogueModel, spec: AliasSpec) -> bool:
    """Does `model` meet the alias's requirements (tools, vision, json, reasoning, context)?"""
    return (
        (model.tools or not spec.require_tools)
        and (model.vision or not spec.require_vision)
        and (model.json_mode or not spec.require_json)
        and (model.reasoning or not spec.require_reasoning)
        and model.image_output == spec.require_image_output
        and (model.context_length or 0) >= spec.min_context
    )


def _alias_members(
    *,
    name: str,
    spec: AliasSpec,
    candidates: Sequence[Candidate],
    settings: Settings,
    previous: Pool | None,
) -> tuple[tuple[Member, ...], list[Candidate]]:
    members: list[Member] = []
    picked: list[Candidate] = []
    for index, tier in enumerate(spec.tiers):
        if tier == "paid" and not settings.pool.allow_paid:
            continue
        pool_of_tier = [c for c in candidates if c.model.tier == tier and matches(c.model, spec)]
        ranked = sorted(pool_of_tier, key=sort_key(spec.sort_by))
        seats = hold_seats(
            ranked=ranked,
            incumbents=incumbent_ids(previous, alias=name, tier=tier),
            seats=spec.size.get(tier, 0),
            margin=settings.pool.hysteresis_margin,
            merit=merit_fn(spec.sort_by),
        )
        for rank, candidate in enumerate(seats, start=1):
            members.append(
                Member(
                    deployment_id=openrouter_deployment_id(candidate.id),
                    rank=rank,
                    weight=rank_weight(rank, settings.pool.rank_weights),
                    order=index + 1,
                    score=candidate.score,
                    health=candidate.health,
                )
            )
        picked.extend(seats)
    return tuple(members), picked


def sort_key(sort_by: str) -> Callable[[Candidate], tuple[float | str, ...]]:
    if sort_by == "context":
        return lambda c: (-(c.model.context_length or 0), -c.score, c.id)
    return lambda c: (-c.score, c.id)


def merit_fn(sort_by: str) -> Callable[[Candidate], float]:
    if sort_by == "context":
        return lambda c: context_norm(c.model.context_length)
    return lambda c: c.score


def incumbent_ids(previous: Pool | None, *, alias: str, tier: str) -> frozenset[str]:
    """Model ids that held a seat in `alias` for `tier` in the previous pool."""
    if previous is None or alias not in previous.groups:
        return frozenset()
    ids = set()
    for member in previous.groups[alias].members:
        dep = previous.deployments.get(member.deployment_id)
        if dep is not None and dep.provider == "openrouter" and dep.tier == tier:
            ids.add(dep.model)
    return frozenset(ids)


def hold_seats(
    *,
    ranked: Sequence[Candidate],
    incumbents: frozenset[str],
    seats: int,
    margin: float,
    merit: Callable[[Candidate], float],
) -> list[Candidate]:
    """Fill `seats` from `ranked` (best first), keeping incumbents unless beaten by > margin.

    Returns the seated candidates in `ranked` order.
    """
    if seats <= 0:
        return []
    position = {c.id: i for i, c in enumerate(ranked)}
    kept = [c for c in ranked if c.id in incumbents][:seats]
    newcomers = [c for c in ranked if c.id not in incumbents][: seats - len(kept)]
    challengers = [c for c in ranked if c.id not in incumbents][len(newcomers) :]
    while kept and challengers:
        weakest, best = kept[-1], challengers[0]
        if merit(best) <= merit(weakest) + margin + _EPSILON:
            break
        kept.pop()
        newcomers.append(challengers.pop(0))
    return sorted([*kept, *newcomers], key=lambda c: position[c.id])


def rank_weight(rank: int, weights: Sequence[RankWeight]) -> int:
    """The weight of the first band whose `max_rank` covers `rank`; past the last, the last."""
    for band in weights:
        if rank <= band.max_rank:
            return band.weight
    return weights[-1].weight if weights else 1


def _deployment(model: CatalogueModel, *, settings: Settings) -> Deployment:
    return Deployment(
        id=openrouter_deployment_id(model.id),
        model=model.id,
        provider="openrouter",
        upstream_model=model.id,
        wire="openai",
        api_base=settings.openrouter_base_url,
        credential=OPENROUTER_CREDENTIAL,
        tier=model.tier,
        context_length=model.context_length,
        max_output_tokens=model.max_completion_tokens,
        prompt_price=model.prompt_price or 0.0,
        completion_price=model.completion_price or 0.0,
        capabilities=Capabilities(
            tools=model.tools, vision=model.vision, json_mode=model.json_mode, reasoning=model.reasoning,
            image_output=model.image_output,
        ),
    )


def _model_group(candidate: Candidate) -> Group:
    member = Member(
        deployment_id=openrouter_deployment_id(candidate.id),
        rank=1,
        weight=1,
        order=1,
        score=candidate.score,
        health=candidate.health,
    )
    return Group(name=candidate.id, kind="model", members=(member,), description=candidate.model.name)


def pool_overlap(a: Pool, b: Pool) -> float:
    """Jaccard overlap |A ∩ B| / |A ∪ B| of the deployment ids seated in alias groups.

    1.0 when both pools seat nobody.
    """
    left, right = _alias_member_ids(a), _alias_member_ids(b)
    union = left | right
    return len(left & right) / len(union) if union else 1.0


def _alias_member_ids(pool: Pool) -> set[str]:
    return {m.deployment_id for g in pool.groups.values() if g.kind == "alias" for m in g.members}
