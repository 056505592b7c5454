"""CPU per request of each routing strategy a static group may name (issue 15).

    taskset -c 1 .venv/bin/python bench/strategies.py [--sizes 2,8,20] [--requests 3000]

Builds the snapshot exactly as a pool rebuild does (`build_snapshot` over N static
OpenAI-wire deployments in one group `bench`, the group under each strategy in turn) and
times what the routing decision costs one request: the engine's pick
(`snapshot.picker.pick`) and, for a strategy other than simple-shuffle, what the gateway
tells the strategy about the attempt (`StrategyFeed`: its start, then its answer with
latency and usage). No network, no server: the upstream call itself is a finished future.
CPU is `time.process_time()` over the whole loop, divided by the requests.

A second table times what named gateway keys add to a request (issue 15, part 3): the key
check, its limits (rpm, daily budget) and the accounting with its metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from turnout.config import Settings, StaticDeployment
from turnout.pool.model import make_pool, static_groups
from turnout.routing.snapshot import SnapshotHolder, build_snapshot_paced
from turnout.routing.strategies import StrategyFeed
from turnout.routing.tenants import InProcessSpend, KeyRing, Tenancy

STRATEGIES = ("simple-shuffle", "latency-based-routing", "usage-based-routing-v2", "least-busy")
ANSWER = {"choices": [{"message": {"content": "hi"}}],
          "usage": {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32}}


async def _no_pause() -> None:
    return None


async def per_request(strategy: str, size: int, requests: int) -> float:
    settings = Settings(
        sandbox="off", openrouter_api_key="bench", strategies={"bench": strategy},
        deployments=[StaticDeployment(name="bench", model=f"openai/m{i}", api_base="http://127.0.0.1:9/v1",
                                      wire="openai") for i in range(size)],
    )
    deployments, groups = static_groups(settings)
    pool = make_pool(deployments=deployments, groups=groups, source="static")
    holder = SnapshotHolder()
    holder.publish(await build_snapshot_paced(pool, settings, pause=_no_pause))
    snapshot = holder.current
    assert snapshot is not None
    feed = StrategyFeed(holder)
    fed = snapshot.strategies.get("bench")

    async def answer() -> dict[str, Any]:
        return ANSWER

    async def one() -> None:
        entry = await snapshot.picker.pick("bench", 1, ())
        assert entry is not None
        if fed is not None:
            dep = snapshot.deployment(entry["model_info"]["deployment"])
            await feed.fed("bench", fed, dep, answer(), stream=False)

    for _ in range(200):
        await one()
    started = time.process_time()
    for _ in range(requests):
        await one()
    cpu = (time.process_time() - started) / requests
    holder.close()
    return cpu


async def tenancy_per_request(settings: Settings, token: str, requests: int) -> float:
    from prometheus_client import CollectorRegistry

    from turnout.observability.tenant_metrics import TenantMetrics

    keys = KeyRing(settings)
    counters = TenantMetrics(CollectorRegistry(), keys)
    tenancy = Tenancy(keys=keys, store=InProcessSpend(), on_usage=counters.usage, on_reject=counters.reject)
    usage = {"prompt_tokens": 12, "completion_tokens": 20}
    started = time.process_time()
    for _ in range(requests):
        caller = keys.identify(token)
        await tenancy.admit(caller, "bench")
        await tenancy.record(caller, caller.tenant_for("t1"), model="m", usage=usage, cost_usd=1e-6)
    return (time.process_time() - started) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2,8,20")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    import litellm  # noqa: F401  (not timed)

    sizes = [int(s) for s in args.sizes.split(",")]
    rows = [(strategy, [asyncio.run(per_request(strategy, n, args.requests)) for n in sizes])
            for strategy in STRATEGIES]
    header = f"{'strategy':24}" + "".join(f"  {f'{n} deployments':>15}" for n in sizes)
    print("CPU per request: pick + strategy feed (ms)")
    print(header)
    print("-" * len(header))
    for strategy, values in rows:
        print(f"{strategy:24}" + "".join(f"  {v * 1000:15.3f}" for v in values))
    named = [{"name": f"k{i}", "key": f"sk-bench-{i:02d}-0123456789", "tenants": ["t1"], "rpm": 10**9,
              "daily_budget_usd": 1e9} for i in range(10)]
    cases = (("api_keys (1 plain key)", Settings(api_keys="sk-plain-0123456789"), "sk-plain-0123456789"),
             ("10 named keys, rpm + budget", Settings(keys=named), "sk-bench-05-0123456789"))
    print("\nCPU per request: gateway key check + limits + usage accounting (ms)")
    for label, settings, token in cases:
        print(f"{label:30}  {asyncio.run(tenancy_per_request(settings, token, args.requests * 5)) * 1000:.4f}")


if __name__ == "__main__":
    main()
