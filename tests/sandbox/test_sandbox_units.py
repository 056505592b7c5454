"""Pure parts of the sandbox: schema filling, fault bands, stream faults, providers."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from turnout.sandbox import FaultPlan, ModelFaults
from turnout.sandbox.model_list import load_model_list, model_info
from turnout.sandbox.completions import parse_chat
from turnout.sandbox.decide import CallContext, decide
from turnout.sandbox.endpoints import providers_for
from turnout.sandbox.schemas import fill, fill_object
from turnout.sandbox.streaming import stream_fault


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "sandbox"),
        ({"type": "integer"}, 1),
        ({"type": "number"}, 1),
        ({"type": "boolean"}, True),
        ({"type": "string", "enum": ["b", "a"]}, "b"),
        ({"type": ["null", "integer"]}, 1),
        ({"type": "array", "items": {"type": "string"}}, []),
        ({"type": "array", "minItems": 2, "items": {"type": "integer"}}, [1, 1]),
        ({"type": "object", "properties": {"a": {"type": "string"}}}, {}),
        ({"anyOf": [{"type": "boolean"}, {"type": "string"}]}, True),
        ({"const": 7}, 7),
    ],
)
def test_fill_schema(schema: dict[str, Any], expected: Any) -> None:
    assert fill(schema) == expected


def test_fill_object_is_always_an_object() -> None:
    assert fill_object(None) == {}
    assert fill_object({"type": "string"}) == {}
    nested = {"properties": {"a": {"required": ["b"], "properties": {"b": {}}}}, "required": ["a"]}
    assert fill_object(nested) == {"a": {"b": "sandbox"}}


def test_plan_rejects_typos_and_bad_rates() -> None:
    with pytest.raises(ValidationError):
        FaultPlan.model_validate({"default": {"eror_rate": 0.5}})
    with pytest.raises(ValidationError):
        ModelFaults(error_rate=1.5)
    with pytest.raises(ValidationError):
        FaultPlan.model_validate({"free_tier": {"per_hour": 1}})


def test_explicit_null_differs_from_unset() -> None:
    unset = ModelFaults()
    null = ModelFaults.model_validate({"uptime": None, "endpoint_status": None})
    assert not unset.explicit("uptime") and null.explicit("uptime")
    assert unset.endpoint_status == 0 and null.endpoint_status is None


def _ctx(faults: ModelFaults, model_id: str = "openai/gpt-4o") -> CallContext:
    entry = {"id": model_id, "pricing": {"prompt": "0", "completion": "0"}, "context_length": 100}
    request = parse_chat({"model": model_id, "messages": [{"role": "user", "content": "hi"}]})
    return CallContext(request=request, model=model_info(entry), provider="P", faults=faults)


def test_random_faults_follow_their_rates() -> None:
    faults = ModelFaults(
        hang_rate=0.05, reset_rate=0.05, rate_limit_rate=0.2, error_rate=0.1,
        error_codes=[500, 503], error_200_rate=0.1,
    )
    rng = random.Random(1)
    outcomes = Counter(
        decide(_ctx(faults), u=rng.random(), fail_next=False, free_tier_refusal=None).outcome
        for _ in range(4000)
    )
    shares = {name: count / 4000 for name, count in outcomes.items()}
    expected = {"hang": 0.05, "reset": 0.05, "429": 0.2, "500": 0.05, "503": 0.05,
                "error_200": 0.1, "ok": 0.5}
    for name, share in expected.items():
        assert shares[name] == pytest.approx(share, abs=0.03), name


def test_fail_next_wins_and_zero_means_reset() -> None:
    fate = decide(_ctx(ModelFaults(fail_next_code=0)), u=0.9, fail_next=True,
                  free_tier_refusal=None)
    assert fate.kind == "reset"
    limited = decide(_ctx(ModelFaults(fail_next_code=429, retry_after_s=2.5)), u=0.9,
                     fail_next=True, free_tier_refusal=None)
    assert limited.status == 429 and limited.headers == {"Retry-After": "2.5"}


def test_stream_fault_picks_the_earliest() -> None:
    faults = ModelFaults(stream_cut_after=5, stream_error_after=2, no_done=True)
    assert stream_fault(faults, 10).kind == "stream_error"
    assert stream_fault(ModelFaults(stream_cut_after=99), 6).after == 6
    assert stream_fault(ModelFaults(no_done=True), 6).kind == "no_done"
    assert stream_fault(ModelFaults(), 6).kind == "ok"


def test_providers_are_deterministic_and_bounded() -> None:
    catalogue = load_model_list()
    for model_id in list(catalogue.by_id)[:100]:
        providers = providers_for(model_id)
        assert providers == providers_for(model_id)
        assert 1 <= len(providers) <= 3
        assert len({tag for _, tag in providers}) == len(providers)


def test_catalogue_facts() -> None:
    catalogue = load_model_list()
    free = [m for m in catalogue.by_id.values() if m.is_free]
    assert sum(m.id.endswith(":free") for m in free) == 17
    router, gpt4o = catalogue.by_id["openrouter/auto"], catalogue.by_id["openai/gpt-4o"]
    assert router.prompt_price == 0  # "-1" never charges
    assert gpt4o.supports_tools and not gpt4o.is_free


def test_realistic_plan_is_valid_and_seeded() -> None:
    plan = FaultPlan.realistic(seed=3)
    assert plan == FaultPlan.realistic(seed=3)
    assert plan.seed == 3
    assert plan.free_models is not None and plan.free_models.rate_limit_rate == pytest.approx(0.1)
    assert FaultPlan.model_validate_json(plan.model_dump_json()) == plan
