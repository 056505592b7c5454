"""The cached pick: the Router's weights, cooldowns and tiers, without its per-request passes."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from turnout.routing.picker import Picker, cumulative_weights, draw
from turnout.upstream import litellm_internals


def _router(members: list[tuple[str, int, int]], **extra: Any) -> Any:
    """A Router over group `g`: (deployment id, weight, order) per member, ids `<dep>@g`."""
    import litellm

    model_list = []
    for dep, weight, order in members:
        params: dict[str, Any] = {"model": f"openai/{dep}", "api_base": "http://127.0.0.1:9/v1", "api_key": "x",
                                  "weight": weight, "order": order}
        params.update(extra.pop(dep, {}))
        model_list.append({"model_name": "g", "litellm_params": params,
                           "model_info": {"id": f"{dep}@g", "deployment": dep}})
    return litellm.Router(model_list=model_list, routing_strategy=extra.pop("strategy", "simple-shuffle"),
                          num_retries=0, ignore_invalid_deployments=True, **extra)


def _picks(picker: Picker, n: int, *, order: int = 1, exclude: frozenset[str] = frozenset()) -> Counter[str | None]:
    async def run() -> Counter[str | None]:
        found: Counter[str | None] = Counter()
        for _ in range(n):
            chosen = await picker.pick("g", order, exclude)
            found[chosen["model_info"]["deployment"] if chosen else None] += 1
        return found

    return asyncio.run(run())


def _cool(router: Any, dep: str, seconds: float = 60) -> None:
    litellm_internals.bench(router, [f"{dep}@g"], seconds=seconds, reason=RuntimeError("down"), status=503)


def test_weights_are_the_routers() -> None:
    picker = Picker(_router([("a", 3, 1), ("b", 1, 1)]))
    counts = _picks(picker, 4000)
    assert set(counts) == {"a", "b"}
    assert 0.70 < counts["a"] / 4000 < 0.80


def test_cooling_deployments_are_skipped_and_weights_hold_among_the_rest() -> None:
    router = _router([("a", 6, 1), ("b", 3, 1), ("c", 1, 1)])
    picker = Picker(router)
    _cool(router, "a")
    counts = _picks(picker, 4000)
    assert "a" not in counts
    assert 0.70 < counts["b"] / 4000 < 0.80


def test_every_member_cooling_picks_nothing() -> None:
    router = _router([("a", 1, 1), ("b", 1, 1)])
    picker = Picker(router)
    _cool(router, "a")
    _cool(router, "b")
    assert _picks(picker, 20) == Counter({None: 20})


def test_cooldowns_are_read_from_the_routers_cooldown_store_as_it_is_now() -> None:
    """A cooldown set after the Picker was built (a bench, or one carried over on publish) counts."""
    router = _router([("a", 1, 1), ("b", 1, 1)])
    picker = Picker(router)
    assert set(_picks(picker, 100)) == {"a", "b"}
    _cool(router, "a")
    assert _picks(picker, 200) == Counter({"b": 200})


def test_excluded_deployments_are_not_picked() -> None:
    picker = Picker(_router([("a", 5, 1), ("b", 1, 1), ("c", 1, 1)]))
    assert set(_picks(picker, 300, exclude=frozenset({"a"}))) == {"b", "c"}
    assert _picks(picker, 10, exclude=frozenset({"a", "b", "c"})) == Counter({None: 10})


def test_only_the_requested_order_is_picked() -> None:
    router = _router([("a", 1, 1), ("b", 1, 2), ("c", 1, 2)])
    picker = Picker(router)
    assert set(_picks(picker, 200, order=1)) == {"a"}
    assert set(_picks(picker, 200, order=2)) == {"b", "c"}
    assert _picks(picker, 5, order=3) == Counter({None: 5})
    _cool(router, "a")
    assert _picks(picker, 5, order=1) == Counter({None: 5})


@pytest.mark.parametrize("limit", [{"rpm": 100}, {"tpm": 10_000}])
def test_rpm_or_tpm_limits_delegate_to_the_router(limit: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    router = _router([("a", 1, 1), ("b", 1, 1)], a=limit)
    picker = Picker(router)
    assert picker.delegates("g")
    calls: list[dict[str, Any]] = []
    original = router.select

    async def spy(model: str, request_kwargs: dict[str, Any], **kwargs: Any) -> Any:
        calls.append({k: list(v) if isinstance(v, list) else v for k, v in request_kwargs.items()})
        return await original(model, request_kwargs, **kwargs)

    monkeypatch.setattr(router, "select", spy)
    assert set(_picks(picker, 50, exclude=frozenset({"a"}))) == {"b"}
    assert calls[0] == {"_excluded_deployment_ids": ["a@g"], "_target_order": 1}
    _cool(router, "b")
    assert _picks(picker, 5, exclude=frozenset({"a"})) == Counter({None: 5})


def test_another_strategy_delegates_to_the_router() -> None:
    router = _router([("a", 1, 1), ("b", 1, 1)], strategy="least-busy")
    picker = Picker(router)
    assert picker.delegates("g")
    assert set(_picks(picker, 50)) <= {"a", "b"}
    _cool(router, "a")
    assert set(_picks(picker, 50)) == {"b"}


def test_a_plain_group_does_not_call_the_routers_full_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    router = _router([("a", 1, 1), ("b", 1, 1)])
    picker = Picker(router)

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the full Router pick ran")

    monkeypatch.setattr(router, "select", refuse)
    assert not picker.delegates("g")
    assert set(_picks(picker, 50)) == {"a", "b"}


@pytest.mark.parametrize("weights", [[5, 3, 1, 1, 0, 7], [1] * 40, [0, 0, 0]])
def test_the_draw_is_simple_shuffles_for_the_same_random_state(weights: list[int]) -> None:
    """Precomputed weights pick what LiteLLM's `simple_shuffle` picks, draw for draw."""
    import random

    from litellm.router_strategy.simple_shuffle import simple_shuffle

    router = _router([(f"d{i}", w, 1) for i, w in enumerate(weights)])
    entries = [e for e in litellm_internals.router_entries(router) if e["litellm_params"]["order"] == 1]
    cumulative = cumulative_weights(entries)
    random.seed(7)
    theirs = [simple_shuffle(lambda name: None, entries, "g", None)["model_info"]["id"] for _ in range(3000)]
    random.seed(7)
    ours = [draw(entries, cumulative)["model_info"]["id"] for _ in range(3000)]
    same = sum(a == b for a, b in zip(theirs, ours, strict=True))
    assert same >= 2997, f"{3000 - same} of 3000 draws differ"  # float rounding at a boundary, at most
    if sum(weights) == 0:
        assert cumulative is None  # all-zero weights: a uniform pick, as simple_shuffle falls back to
