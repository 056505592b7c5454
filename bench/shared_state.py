"""What the Redis-backed shared state costs per request (issue 13's speed target).

    .venv/bin/python bench/shared_state.py [--requests 3000]

Starts its own redis-server and sandbox on free loopback ports, then the same Turnout twice
(`turnout serve`, one process): without shared state, and with `shared_state.redis_url`. The
route is a static deployment with an `rpm` limit (so every attempt is admitted: in process,
or by the one Lua call in Redis), driven by sequential keep-alive requests. It reports the
gateway's CPU per request (utime + stime from /proc, over the measured requests only), the
difference, and Redis commands per request (INFO commandstats), then the same admission
decision alone in this process (`LocalAdmission` vs `SharedAdmission`). Targets: at most
+0.1 ms CPU per request, at most one Redis round trip per upstream attempt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
MODEL = "poolside/laguna-s-2.1:free"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_http(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


# Commands the Lua scripts run inside Redis: counted by commandstats, but not round trips.
_INSIDE_SCRIPTS = {"zremrangebyscore", "zcard", "zadd", "pexpire", "zrange", "incr", "expire", "get", "set"}


def redis_calls(port: int) -> int:
    """Round trips so far: every command a client sent (scripts count once, as EVALSHA)."""
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "commandstats"], capture_output=True, text=True,
                         check=True).stdout
    total = 0
    for line in out.splitlines():
        name = line.split(":", 1)[0].removeprefix("cmdstat_")
        if line.startswith("cmdstat_") and name not in _INSIDE_SCRIPTS | {"info", "ping"}:
            total += int(line.split("calls=")[1].split(",")[0])
    return total


def gateway(tmp: Path, sandbox_url: str, redis_url: str | None) -> subprocess.Popen[bytes]:
    config = tmp / ("with-redis.yaml" if redis_url else "local.yaml")
    lines = ["deployments:",
             f"  - {{name: limited, model: 'openai/{MODEL}', api_base: '{sandbox_url}', wire: openai, "
             "api_key_env: BENCH_KEY, rpm: 100000000}",
             "pool: {health: {enabled: false}}"]
    if redis_url:
        lines.append(f"shared_state: {{redis_url: '{redis_url}'}}")
    config.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURNOUT_", "OPENROUTER_"))}
    env.update(TURNOUT_CONFIG=str(config), TURNOUT_PORT=str(free_port()), TURNOUT_SANDBOX="off",
               OPENROUTER_API_KEY="sk-bench", OPENROUTER_BASE_URL=sandbox_url, BENCH_KEY="k",
               TURNOUT_DATA_DIR=str(tmp / ("data-r" if redis_url else "data-l")), TURNOUT_LOG_LEVEL="WARNING",
               LITELLM_LOCAL_MODEL_COST_MAP="True")
    proc = subprocess.Popen([sys.executable, "-m", "turnout.cli", "serve"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.port = int(env["TURNOUT_PORT"])  # type: ignore[attr-defined]
    return proc


def drive(port: int, n: int) -> None:
    body = {"model": "limited", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for _ in range(n):
            resp = client.post("/v1/chat/completions", json=body)
            if resp.status_code != 200:
                raise RuntimeError(resp.text)


def measure_gateway(proc: subprocess.Popen[bytes], n: int, redis_port: int) -> dict[str, float]:
    port = proc.port  # type: ignore[attr-defined]
    wait_http(f"http://127.0.0.1:{port}/readyz")
    drive(port, 300)  # warm: connections, caches, the Lua script loaded
    calls, cpu, wall = redis_calls(redis_port), cpu_s(proc.pid), time.monotonic()
    drive(port, n)
    cpu, wall = cpu_s(proc.pid) - cpu, time.monotonic() - wall
    return {"cpu_ms_per_request": 1000 * cpu / n, "redis_commands_per_request": (redis_calls(redis_port) - calls) / n,
            "wall_ms_per_request": 1000 * wall / n}


async def micro(redis_url: str, n: int) -> dict[str, float]:
    from turnout.config import FreeTierSettings, SharedStateSettings
    from turnout.pool.model import Deployment
    from turnout.routing.admission import LocalAdmission
    from turnout.routing.free_tier import FreeTierBudget
    from turnout.shared.account_limits import SharedAdmission
    from turnout.shared.link import RedisLink

    dep = Deployment(id="d", model="m", provider="openai", upstream_model="m", wire="openai",
                     api_base="http://127.0.0.1:9", credential=None, tier="static", rpm=10**9)
    local = LocalAdmission(FreeTierBudget(FreeTierSettings()))
    link = RedisLink(SharedStateSettings(redis_url=redis_url, op_timeout_s=1.0))
    await link.start()
    shared = SharedAdmission(link, LocalAdmission(FreeTierBudget(FreeTierSettings())))
    results = {}
    for name, admission in (("local", local), ("redis", shared)):
        for _ in range(200):
            await admission.admit(dep)
        started = time.process_time()
        for _ in range(n):
            await admission.admit(dep)
        results[name] = 1000 * (time.process_time() - started) / n
    await link.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="turnout-bench-shared-"))
    redis_port, sandbox_port = free_port(), free_port()
    redis = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(redis_port), "--bind",
                              "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sandbox = subprocess.Popen([sys.executable, "-m", "turnout.sandbox", "--port", str(sandbox_port)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started: list[subprocess.Popen[bytes]] = [redis, sandbox]
    sandbox_url = f"http://127.0.0.1:{sandbox_port}/api/v1"
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    try:
        wait_http(f"{sandbox_url}/models")
        rows: dict[str, list[dict[str, float]]] = {"local": [], "redis": []}
        for _ in range(args.rounds):  # alternate, so machine noise falls on both
            for name, url in (("local", None), ("redis", redis_url)):
                proc = gateway(tmp, sandbox_url, url)
                started.append(proc)
                try:
                    rows[name].append(measure_gateway(proc, args.requests, redis_port))
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=30)
        best = {name: min(r["cpu_ms_per_request"] for r in runs) for name, runs in rows.items()}
        try:  # the event loop `turnout serve` runs on (uvicorn[standard])
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        alone = asyncio.run(micro(redis_url, 5000))
        result = {"requests": args.requests, "rounds": rows, "best_cpu_ms_per_request": best,
                  "added_cpu_ms_per_request": best["redis"] - best["local"],
                  "redis_commands_per_request": rows["redis"][-1]["redis_commands_per_request"],
                  "admission_alone_cpu_ms": alone}
        print(f"{'gateway CPU per request, ms':<46} local {best['local']:.3f}   redis {best['redis']:.3f}   "
              f"added {result['added_cpu_ms_per_request']:+.3f}")
        print(f"{'Redis commands per request (one attempt each)':<46} {result['redis_commands_per_request']:.2f}")
        print(f"{'the admission call alone, CPU ms':<46} local {alone['local']:.4f}   redis {alone['redis']:.4f}")
        out = HERE / "out"
        out.mkdir(exist_ok=True)
        (out / "shared_state.json").write_text(json.dumps(result, indent=2))
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
