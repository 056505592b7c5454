"""One test per reach into LiteLLM (turnout/upstream/litellm_internals.py), named after it.

When a LiteLLM upgrade moves or changes one of these, the test of the same name fails and
says which reach broke, instead of the gateway failing somewhere downstream. Warnings are
errors in this suite, so a reach that starts going through a deprecated member fails too.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from turnout.upstream import litellm_internals


def _router(**args: Any) -> Any:
    entries = [{"model_name": "g", "litellm_params": {"model": f"openai/m{i}", "api_base": "http://127.0.0.1:9/v1",
                                                      "weight": i + 1, "order": 1 + i % 2},
                "model_info": {"id": f"d{i}@g", "deployment": f"d{i}"}} for i in range(3)]
    return litellm_internals.new_router(model_list=entries, args={"routing_strategy": "simple-shuffle",
                                                                  "num_retries": 0, **args})


def test_new_router() -> None:
    router = _router(cooldown_time=7, allowed_fails=2, fallbacks=[{"g": ["h"]}])
    settings = router.settings()
    assert settings.cooldown_time == 7 and settings.allowed_fails == 2
    assert settings.fallbacks == [{"g": ["h"]}]


def test_router_entries() -> None:
    entries = litellm_internals.router_entries(_router())
    assert [e["model_info"]["id"] for e in entries] == ["d0@g", "d1@g", "d2@g"]
    assert entries[1]["model_name"] == "g"
    assert entries[1]["litellm_params"]["weight"] == 2 and entries[1]["litellm_params"]["order"] == 2
    assert entries[1]["model_info"]["deployment"] == "d1"


def test_add_deployment() -> None:
    router = litellm_internals.new_router(model_list=[], args={"num_retries": 0})
    litellm_internals.add_deployment(router, {"model_name": "g", "litellm_params": {"model": "openai/x", "weight": 3,
                                                                                   "order": 2},
                                              "model_info": {"id": "x@g", "deployment": "x"}})
    [entry] = litellm_internals.router_entries(router)
    assert entry["model_info"] == {**entry["model_info"], "id": "x@g", "deployment": "x"}
    assert entry["litellm_params"]["weight"] == 3 and entry["litellm_params"]["order"] == 2
    with pytest.raises(Exception):  # noqa: B017  # LiteLLM refuses with several exception types
        litellm_internals.add_deployment(router, {"model_name": "g", "litellm_params": {"weight": 1},
                                                  "model_info": {"id": "bad@g"}})


def test_routing_settings() -> None:
    assert litellm_internals.routing_settings(_router()) == litellm_internals.RoutingSettings(
        strategy="simple-shuffle", pre_call_checks=False, health_check_routing=False, tag_filtering=False)
    assert litellm_internals.routing_settings(_router(routing_strategy="least-busy")).strategy == "least-busy"
    assert litellm_internals.routing_settings(_router(enable_pre_call_checks=True)).pre_call_checks


def test_bench() -> None:
    router = _router()
    litellm_internals.bench(router, ["d0@g", "d2@g"], seconds=30, reason=RuntimeError("down"), status=503)
    active = dict(litellm_internals.active_cooldowns(router, ["d0@g", "d1@g", "d2@g"]))
    assert set(active) == {"d0@g", "d2@g"}
    assert active["d0@g"]["cooldown_time"] == 30 and str(active["d0@g"]["status_code"]) == "503"


def test_may_be_cooling() -> None:
    router, other = _router(), _router()
    assert not litellm_internals.may_be_cooling(router)
    litellm_internals.bench(router, ["d1@g"], seconds=30, reason=RuntimeError("x"), status=429)
    litellm_internals.bench(router, ["d0@g"], seconds=5, reason=RuntimeError("x"), status=429)  # a shorter one
    assert litellm_internals.may_be_cooling(router) and not litellm_internals.may_be_cooling(other)
    assert litellm_internals.may_be_cooling(router, now=time.time() + 29)  # the longest cooldown counts
    assert not litellm_internals.may_be_cooling(router, now=time.time() + 31)
    # every cooldown the Router holds came through `bench`: it has no other writer in the gateway
    assert {eid for eid, _ in litellm_internals.active_cooldowns(other, ["d0@g", "d1@g", "d2@g"])} == set()


def test_may_be_cooling_holds_when_litellm_calls_fail() -> None:
    """The gateway's own LiteLLM calls (translated deployments) carry no deployment metadata, so
    their failures cool no Router entry down behind `bench`'s back."""
    import litellm

    from turnout.upstream.litellm_call import _call_args

    router = _router(allowed_fails=0)
    params = {"model": "openai/m0", "api_base": "http://127.0.0.1:9/v1", "api_key": "sk-test-key"}

    async def fail_a_few() -> None:
        for _ in range(3):
            with pytest.raises(Exception):  # noqa: B017  # connection refused, in LiteLLM's types
                await litellm.acompletion(**_call_args(params, {"messages": [{"role": "user", "content": "hi"}]},
                                                       5.0, stream=False))

    asyncio.run(fail_a_few())
    assert litellm_internals.active_cooldowns(router, ["d0@g", "d1@g", "d2@g"]) == []
    assert not litellm_internals.may_be_cooling(router)


def test_active_cooldowns() -> None:
    router = _router()
    assert litellm_internals.active_cooldowns(router, ["d0@g"]) == []
    litellm_internals.bench(router, ["d1@g"], seconds=0.2, reason=RuntimeError("x"), status=429)
    assert [eid for eid, _ in litellm_internals.active_cooldowns(router, ["d0@g", "d1@g"])] == ["d1@g"]


def test_active_cooldowns_async() -> None:
    router = _router()
    litellm_internals.bench(router, ["d2@g"], seconds=30, reason=RuntimeError("x"), status=500)
    found = asyncio.run(litellm_internals.active_cooldowns_async(router, ["d1@g", "d2@g"]))
    assert [eid for eid, _ in found] == ["d2@g"]


def test_cooldown_ends() -> None:
    router = _router()
    before = time.time()
    litellm_internals.bench(router, ["d0@g"], seconds=40, reason=RuntimeError("x"), status=500)
    ends = litellm_internals.cooldown_ends(litellm_internals.active_cooldowns(router, ["d0@g"]))
    assert before + 39 < ends["d0@g"] < time.time() + 41


def test_full_pick() -> None:
    router = _router()

    async def run() -> tuple[Any, Any, Any]:
        order1 = await litellm_internals.full_pick(router, "g", order=1, excluded=[])
        excluded = await litellm_internals.full_pick(router, "g", order=1, excluded=["d0@g", "d2@g"])
        missing = await litellm_internals.full_pick(router, "nope", order=1, excluded=[])
        return order1, excluded, missing

    order1, excluded, missing = asyncio.run(run())
    assert order1["model_info"]["id"] in {"d0@g", "d2@g"}  # order 1 holds d0 and d2
    assert excluded is None and missing is None


def test_retire() -> None:
    router = _router()
    litellm_internals.retire(router)  # must not raise; a retired Router serves no request


def test_litellm_import_loads_no_tokenizer() -> None:
    """LiteLLM 1.102 loaded cl100k_base (~30 MB) at import and Turnout released it by hand; 1.110 loads it
    on first use. If an upgrade loads it at import again, idle memory grows by that much: this fails."""
    import subprocess
    import sys

    code = "import litellm, tiktoken.registry as r; print('cl100k_base' in r.ENCODINGS)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": ""}).stdout
    assert out.strip() == "False"
    import litellm

    assert litellm.token_counter(text="hello world, hello tokens") == 5  # and counting still works


_LEAN_CHECK = """
import json, litellm
from litellm.router_rust.surface import registry
from turnout.upstream import litellm_internals as li
original = registry._round_trips
entries = [{"model_name": "g", "litellm_params": {"model": f"openai/m{i}", "api_base": "http://127.0.0.1:9/v1",
            "weight": 1, "order": 1}, "model_info": {"id": f"d{i}@g", "deployment": f"d{i}"}} for i in range(4)]
def build(suffix):
    listed = [{**e, "model_info": {**e["model_info"], "id": e["model_info"]["id"] + suffix}} for e in entries]
    router = litellm.Router(model_list=listed, routing_strategy="simple-shuffle", num_retries=0)
    return [{**r, "model_info": {k: v for k, v in r["model_info"].items() if k != "id"}}
            for r in li.router_entries(router)], "d0@g" + suffix in litellm.model_cost
before, priced_before = build("-a")
li.lean_router_build()
li.lean_router_build()  # idempotent
after, priced_after = build("-b")
values = [None, "", "x", "\\u00e9", 0, -3, 2**70, True, False, 1.5, float("nan"), float("inf"), [1, "a"], (1, 2),
          {"a": 1}, {1: "a"}, {1, 2}, b"x", object()]
print(json.dumps({"same": before == after, "priced_before": priced_before, "priced_after": priced_after,
                  "agree": [registry._round_trips(v) == original(v) for v in values]}))
"""


def test_lean_router_build() -> None:
    """The two Router-build steps it replaces exist under their names; the Router built without
    them holds the same entries; the cost-map write is the one skipped; `_round_trips` answers
    as LiteLLM's own for every kind of value. (In a fresh process: this one is lean already.)"""
    import json
    import os
    import subprocess
    import sys

    from litellm.router_rust.surface import registry

    assert callable(registry.register_deployment_pricing) and callable(registry._round_trips)
    out = subprocess.run([sys.executable, "-c", _LEAN_CHECK], capture_output=True, text=True, check=True,
                         env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert found["same"], "a lean build changed the Router's entries"
    assert found["priced_before"] and not found["priced_after"]
    assert all(found["agree"]), found["agree"]
    router = _router()  # and a lean Router still picks
    assert asyncio.run(litellm_internals.full_pick(router, "g", order=1, excluded=[])) is not None


def test_per_call_kwargs() -> None:
    kwargs = litellm_internals.per_call_kwargs()
    # the routing and credential kwargs a client must never set are among them
    assert {"api_base", "api_key", "custom_llm_provider", "mock_response", "api_version",
            "provider_specific_header"} <= kwargs
    assert len(kwargs) > 100


def _strategy_router(strategy: str) -> Any:
    """Group `g` (d0, d2 in order 1) under its own strategy, the Router's default left as simple-shuffle."""
    return _router(routing_groups=litellm_internals.strategy_groups({"g": strategy}))


def _event(kind: str, entry: str, **extra: Any) -> litellm_internals.StrategyEvent:
    now = time.time()
    return litellm_internals.StrategyEvent(kind=kind, group="g", entry_id=entry, model=f"openai/m{entry[1]}",
                                           **{"started": now, "ended": now, **extra})


def _picks(router: Any, n: int = 8) -> set[str]:
    async def run() -> set[str]:
        return {(await litellm_internals.full_pick(router, "g", order=1, excluded=[]))["model_info"]["id"]
                for _ in range(n)}

    return asyncio.run(run())


def test_full_pick_holds_no_least_busy_reservation() -> None:
    router = _strategy_router("least-busy")
    # A reserved pick would count for 30 s: d0 and d2 would then take turns.
    assert len(_picks(router, 6)) == 1


def test_strategy_group_name() -> None:
    assert litellm_internals.strategy_group_name("fast") == "turnout:fast"


def test_strategy_groups() -> None:
    groups = litellm_internals.strategy_groups({"g": "least-busy", "h": "simple-shuffle"})
    assert groups == [{"group_name": "turnout:g", "models": ["g"], "routing_strategy": "least-busy"}]
    router = _router(routing_groups=groups)
    assert router.settings().routing_strategy == "simple-shuffle"  # the group has its own, the Router keeps its


def test_strategy_pick() -> None:
    async def run() -> None:
        router = _strategy_router("least-busy")
        healthy = [e for e in litellm_internals.router_entries(router) if e["litellm_params"]["order"] == 1]
        await litellm_internals.feed_strategy(router, "least-busy", _event("start", "d0@g"))
        for _ in range(3):  # d0 has one in flight; no pick reserves, so d2 keeps winning
            chosen = await litellm_internals.strategy_pick(router, "least-busy", "g", healthy, stream=False)
            assert chosen is not None and chosen["model_info"]["id"] == "d2@g"
        latency = _strategy_router("latency-based-routing")
        # d0: slow answers, fast first tokens; d2 the other way round.
        for entry, total, first in (("d0@g", 3.0, 0.1), ("d2@g", 0.5, 0.4)):
            now = time.time()
            await litellm_internals.feed_strategy(latency, "latency-based-routing", _event(
                "success", entry, started=now, ended=now + total, first_token=now + first, stream=True))
        pick = litellm_internals.strategy_pick
        assert (await pick(latency, "latency-based-routing", "g", healthy, stream=True))["model_info"]["id"] == "d0@g"
        assert (await pick(latency, "latency-based-routing", "g", healthy, stream=False))["model_info"]["id"] == "d2@g"
        assert await pick(_router(), "least-busy", "g", healthy, stream=False) is None  # no such routing group
        litellm_internals.retire(router)
        litellm_internals.retire(latency)

    asyncio.run(run())


def test_feed_strategy() -> None:
    async def run() -> None:
        latency = _strategy_router("latency-based-routing")
        slow = _event("success", "d0@g", ended=time.time() + 2, completion_tokens=2, total_tokens=5)
        await litellm_internals.feed_strategy(latency, "latency-based-routing", slow)
        await litellm_internals.feed_strategy(latency, "latency-based-routing", _event("success", "d2@g"))
        samples = latency.health().store.get_cache(key="g_map", local_only=True)
        assert 0.9 < samples["d0@g"]["latency_normalized"][0] < 1.1  # 2 s / 2 completion tokens
        assert (await litellm_internals.full_pick(latency, "g", order=1, excluded=[]))["model_info"]["id"] == "d2@g"
        await litellm_internals.feed_strategy(latency, "latency-based-routing",
                                              _event("failure", "d2@g", timeout=True))
        samples = latency.health().store.get_cache(key="g_map", local_only=True)
        assert samples["d2@g"]["latency_normalized"][-1] == 1000.0  # LiteLLM's timeout penalty
        samples["d0@g"]["2020-01-01-00-00"] = {"tpm": 1, "rpm": 1}  # a past minute: dropped on the next answer
        await litellm_internals.feed_strategy(latency, "latency-based-routing", _event("success", "d0@g"))
        minutes = [k for k in latency.health().store.get_cache(key="g_map", local_only=True)["d0@g"] if k[0] == "2"]
        assert len(minutes) == 1 and minutes[0] != "2020-01-01-00-00"

        busy = _strategy_router("least-busy")
        for _ in range(2):
            await litellm_internals.feed_strategy(busy, "least-busy", _event("start", "d0@g"))
        assert busy.health().store.get_cache(key="g_request_count:d0@g", local_only=True) == 2
        assert (await litellm_internals.full_pick(busy, "g", order=1, excluded=[]))["model_info"]["id"] == "d2@g"
        await litellm_internals.feed_strategy(busy, "least-busy", _event("success", "d0@g"))
        await litellm_internals.feed_strategy(busy, "least-busy", _event("failure", "d0@g"))
        assert busy.health().store.get_cache(key="g_request_count:d0@g", local_only=True) == 0

        usage = _strategy_router("usage-based-routing-v2")
        await litellm_internals.feed_strategy(usage, "usage-based-routing-v2", _event("start", "d0@g"))
        await litellm_internals.feed_strategy(usage, "usage-based-routing-v2",
                                              _event("success", "d0@g", total_tokens=900))
        assert (await litellm_internals.full_pick(usage, "g", order=1, excluded=[]))["model_info"]["id"] == "d2@g"
        for router in (latency, busy, usage):
            litellm_internals.retire(router)

    asyncio.run(run())


def test_carry_strategy_state() -> None:
    async def run() -> None:
        for strategy, kind, key in (("latency-based-routing", "success", "g_map"),
                                    ("least-busy", "start", "g_request_count:d0@g")):
            old, new = _strategy_router(strategy), _strategy_router(strategy)
            await litellm_internals.feed_strategy(old, strategy, _event(kind, "d0@g", ended=time.time() + 1))
            litellm_internals.carry_strategy_state(old, new, strategies={"g": strategy},
                                                   entries={"g": [("d0@g", "openai/m0"), ("d2@g", "openai/m2")]})
            carried = new.health().store.get_cache(key=key, local_only=True)
            assert carried is not None and carried == old.health().store.get_cache(key=key, local_only=True)
            litellm_internals.retire(old)
            litellm_internals.retire(new)

    asyncio.run(run())
