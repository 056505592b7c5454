"""CPU cost of one Router pick as Turnout makes it, by pool size, plus the gen-2 GC pause.

    taskset -c 1 .venv/bin/python bench/router_pick.py [--sizes 20,300] [--picks 3000]

Builds the Router exactly as a pool rebuild does (`build_snapshot` over N static OpenAI-wire
deployments in one group) and times `async_get_available_deployment` with the request
kwargs the engine passes. No network, no server: this isolates the routing decision.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from turnout.config import Settings, StaticDeployment
from turnout.pool.model import make_pool, static_groups
from turnout.routing.snapshot import build_snapshot


def snapshot_of(size: int):  # type: ignore[no-untyped-def]
    settings = Settings(
        sandbox="off", openrouter_api_key="bench",
        deployments=[StaticDeployment(name="bench", model=f"openai/m{i}", api_base="http://127.0.0.1:9/v1",
                                      wire="openai") for i in range(size)],
    )
    deployments, groups = static_groups(settings)
    return build_snapshot(make_pool(deployments=deployments, groups=groups, source="static"), settings)


async def time_picks(snapshot, picks: int) -> float:  # type: ignore[no-untyped-def]
    router = snapshot.router
    for _ in range(200):
        await router.async_get_available_deployment(
            model="bench", request_kwargs={"_excluded_deployment_ids": [], "_target_order": 1})
    started = time.process_time()
    for _ in range(picks):
        await router.async_get_available_deployment(
            model="bench", request_kwargs={"_excluded_deployment_ids": [], "_target_order": 1})
    return (time.process_time() - started) / picks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20,300")
    parser.add_argument("--picks", type=int, default=3000)
    args = parser.parse_args()
    started = time.perf_counter()
    import litellm  # noqa: F401  (timed: it is most of a cold start)

    print(f"import litellm: {time.perf_counter() - started:.2f} s")
    for size in (int(s) for s in args.sizes.split(",")):
        t0 = time.perf_counter()
        snapshot = snapshot_of(size)
        built = time.perf_counter() - t0
        per_pick = asyncio.run(time_picks(snapshot, args.picks))
        print(f"{size:5d} deployments: build_snapshot {built * 1000:6.0f} ms, "
              f"async_get_available_deployment {per_pick * 1000:.3f} ms CPU per pick")
    t0 = time.perf_counter()
    gc.collect(2)
    print(f"full (gen-2) GC pass with {len(gc.get_objects()):,} tracked objects: "
          f"{(time.perf_counter() - t0) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
