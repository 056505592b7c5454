"""The paced Router build gives the Router, picks and snapshot the one-go build gives."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import turnout
from turnout.config import Settings, StaticDeployment
from turnout.pool.catalogue import parse_catalogue
from turnout.pool.pacing import Pacer
from turnout.pool.selection import build_pool
from turnout.routing.snapshot import Snapshot, build_snapshot, build_snapshot_paced

DATA = Path(turnout.__file__).parent / "data" / "openrouter"
NOW = datetime(2026, 8, 20, tzinfo=UTC).timestamp()


def pool_and_settings() -> tuple[Any, Settings]:
    static = [StaticDeployment(name="local", model="ollama/llama3.1", api_base="http://127.0.0.1:9", rpm=60),
              StaticDeployment(name="backup", model="openai/gpt-x", api_base="http://127.0.0.1:9/v1", weight=3)]
    settings = Settings(openrouter_base_url="https://openrouter.ai/api/v1", openrouter_api_key="k",
                        deployments=static, fallbacks={"local": ["backup"]})
    catalogue = parse_catalogue(json.loads((DATA / "models-2026-08-19.json").read_text()), now=NOW)
    pool = build_pool(catalogue=catalogue, health={}, passive={}, settings=settings, previous=None, now=NOW)
    return pool, settings


def router_view(snapshot: Snapshot) -> dict[str, Any]:
    router = snapshot.router
    registry, settings = router.registry(), router.settings()
    return {
        "model_list": [(e["model_name"], e["litellm_params"], e["model_info"]) for e in registry.all()],
        "model_names": registry.names(kind="groups"),
        "fallbacks": settings.fallbacks,
        "context_window_fallbacks": settings.context_window_fallbacks,
        "by_name": registry.index("model_name"),
        "entries": dict(snapshot.entries),
        "orders": dict(snapshot.orders),
        "delegated": sorted(g for g in snapshot.pool.groups if snapshot.picker.delegates(g)),
    }


def test_a_paced_build_equals_a_build_in_one_go() -> None:
    pool, settings = pool_and_settings()
    whole = build_snapshot(pool, settings)
    paced = asyncio.run(build_snapshot_paced(pool, settings, pause=Pacer()))
    assert len(whole.router.registry().all()) > 50
    assert router_view(paced) == router_view(whole)
    # rpm: 60 on `local` is enforced by the engine (routing.limits), so its group stays on the lean pick
    assert not paced.picker.delegates("local") and not paced.picker.delegates("auto")


def test_a_paced_build_lets_other_tasks_run_between_slices() -> None:
    pool, settings = pool_and_settings()

    async def run() -> tuple[int, int]:
        ticks = 0
        pauses = 0
        pacer = Pacer(slice_s=0.0005, ratio=1.0)

        async def pause() -> None:
            nonlocal pauses
            pauses += 1
            await pacer()

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        snapshot = await build_snapshot_paced(pool, settings, pause=pause)
        task.cancel()
        assert pauses == len(snapshot.router.registry().all())
        return ticks, pauses

    ticks, pauses = asyncio.run(run())
    assert ticks > 10, "the build never let the event loop run anything else"


@pytest.mark.parametrize("busy", [True, False])
def test_rebuild_work_pauses_only_while_requests_are_in_flight(busy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import turnout.pool.pacing

    slept: list[float] = []
    monkeypatch.setattr(turnout.pool.pacing.time, "sleep", slept.append)
    pacer = Pacer(slice_s=0.0, ratio=4.0, busy=lambda: busy)
    for _ in range(3):
        pacer.in_thread()
    assert (len(slept) == 3) is busy and all(s >= 0 for s in slept)

    waits: list[float] = []

    async def run() -> None:
        real_sleep = asyncio.sleep

        async def record(seconds: float) -> None:
            waits.append(seconds)
            await real_sleep(0)

        monkeypatch.setattr(turnout.pool.pacing.asyncio, "sleep", record)
        for _ in range(3):
            await pacer()

    asyncio.run(run())
    assert len(waits) == 3  # it always yields to the event loop between slices
    assert all(w > 0 for w in waits) if busy else all(w == 0 for w in waits)


_IMPORT_CHECK = """
import gc, json, sys
from turnout.routing.snapshot import load_router_library
seen = []
gc.callbacks.append(lambda phase, info: seen.append(info["generation"]) if phase == "start" else None)
first = load_router_library()
during = list(seen)
second = load_router_library()
print(json.dumps({"first": first, "second": second, "enabled": gc.isenabled(), "collections": len(during),
                  "loaded": "litellm.router" in sys.modules}))
"""


def test_load_router_library_imports_litellm_once_without_collecting() -> None:
    """The import runs with the cyclic GC off (with it on, the import ran ~940 collections, six of
    them full, rescanning LiteLLM's ~375k objects: ~0.6 s) and leaves the GC on; a second call
    imports nothing. (LiteLLM itself calls gc.collect() once on the way.)"""
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _IMPORT_CHECK], capture_output=True, text=True, check=True,
                         env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert found["collections"] <= 2, found
    assert {k: v for k, v in found.items() if k != "collections"} == {"first": True, "second": False,
                                                                        "enabled": True, "loaded": True}
