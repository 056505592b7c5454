"""Free share under failing free models: how much of `auto` stays on free models.

Every free model in the sandbox fails half of its calls (25% provider 429, 25% 503).
Sends N requests to `auto` through a real Turnout (uvicorn, lifespan on) and prints
the success rate and the share answered by free models.

    .venv/bin/python bench/free_share.py [--requests 500] [--concurrency 8]

The account-wide free budget is switched off here: the question is how failover treats
degraded free models, not how many free requests OpenRouter allows a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass
class Figures:
    requests: int
    succeeded: int
    free_answers: int
    statuses: Counter[int]
    seconds: float

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.requests

    @property
    def free_share(self) -> float:
        return self.free_answers / self.requests


def half_failing_plan() -> Any:
    from turnout.sandbox import FaultPlan, ModelFaults

    return FaultPlan(free_models=ModelFaults(rate_limit_rate=0.25, error_rate=0.25, error_codes=[503]), seed=7)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _drive(url: str, *, requests: int, concurrency: int, rate: float, free_ids: set[str]) -> Figures:
    import aiohttp

    statuses: Counter[int] = Counter()
    free_answers = 0
    queue = iter(range(requests))
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}

    loop = asyncio.get_running_loop()
    origin = loop.time()

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal free_answers
        for index in queue:
            if rate > 0:  # open-loop arrivals: request i leaves at i / rate
                await asyncio.sleep(max(0.0, origin + index / rate - loop.time()))
            async with session.post(f"{url}/v1/chat/completions", json=body) as resp:
                await resp.read()
                statuses[resp.status] += 1
                if resp.status == 200 and resp.headers.get("X-Turnout-Deployment") in free_ids:
                    free_answers += 1

    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return Figures(requests=requests, succeeded=statuses[200], free_answers=free_answers, statuses=statuses,
                   seconds=time.monotonic() - started)


def measure(*, requests: int = 500, concurrency: int = 8, rate: float = 20.0, sandbox: Any = None,
            data_dir: Path | None = None) -> Figures:
    """Run the scenario; reuses a running sandbox (tests pass theirs) or starts one."""
    import uvicorn

    from turnout.config import Settings
    from turnout.main import create_app
    from turnout.sandbox import SandboxThread

    owned = None
    if sandbox is None:
        owned = SandboxThread()
        sandbox = owned.__enter__()
    try:
        sandbox.server.set_plan(half_failing_plan())
        settings = Settings(
            sandbox="off", openrouter_base_url=sandbox.base_url, openrouter_api_key="sk-or-bench",
            data_dir=data_dir or Path(tempfile.mkdtemp(prefix="turnout-bench-")),
            pool={"health": {"enabled": False},
                  "free_tier": {"requests_per_minute": 0, "requests_per_day": 10_000_000}},
        )
        app = create_app(settings)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
        thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        try:
            pool = app.state.turnout.holder.current.pool
            free_ids = {d.id for d in pool.deployments.values() if d.tier == "free"}
            return asyncio.run(_drive(f"http://127.0.0.1:{port}", requests=requests, concurrency=concurrency,
                                      rate=rate, free_ids=free_ids))
        finally:
            server.should_exit = True
            thread.join(timeout=15)
    finally:
        if owned is not None:
            owned.__exit__(None, None, None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=20.0, help="arrivals per second; 0 = as fast as possible")
    args = parser.parse_args()
    figures = measure(requests=args.requests, concurrency=args.concurrency, rate=args.rate)
    print(f"{'arrival rate':<22}{args.rate or 'unpaced'} req/s, concurrency {args.concurrency}")
    print(f"{'requests':<22}{figures.requests}")
    print(f"{'succeeded':<22}{figures.succeeded} ({figures.success_rate:.1%})   target >= 99%")
    print(f"{'answered by free':<22}{figures.free_answers} ({figures.free_share:.1%})   target > 40%")
    print(f"{'statuses':<22}{dict(figures.statuses)}")
    print(f"{'wall time':<22}{figures.seconds:.1f} s")
    return 0 if figures.success_rate >= 0.99 and figures.free_share > 0.40 else 1


if __name__ == "__main__":
    raise SystemExit(main())
