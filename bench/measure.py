"""Load and timing: wrk runs, the streaming client, cold start. All of it runs on core 0."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from procs import cpu_seconds

HERE = Path(__file__).resolve().parent
CHAT_BODY = {"model": "bench", "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
             "max_tokens": 32}
# The same request in each API Turnout serves (Anthropic's needs max_tokens as chat's does here).
API_BODIES = {"chat": CHAT_BODY, "messages": CHAT_BODY,
              "responses": {"model": "bench", "input": "Say hello in one short sentence.", "max_output_tokens": 32}}
# What a complete stream of each API ends with.
STREAM_ENDS = {"chat": b"data: [DONE]", "messages": b"event: message_stop", "responses": b"event: response.completed"}


@dataclass
class LoadRun:
    """One wrk run against one target, with the target's CPU spent during it."""

    concurrency: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    cpu_s: float | None = None
    cpu_per_request_ms: float | None = None

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def wrk(url: str, *, concurrency: int, duration_s: float, model: str = "bench", pid: int | None = None,
        api: str = "chat") -> LoadRun:
    """Run wrk (1 thread) against `url`; when `pid` is given, charge that process tree's CPU to it."""
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration_s:g}s", "--timeout", "10s", "-s", str(HERE / "chat.lua"),
            url]
    before = cpu_seconds(pid) if pid else 0.0
    done = subprocess.run(argv, capture_output=True, text=True, env={"BENCH_MODEL": model, "BENCH_API": api, "PATH": "/usr/bin:/bin"},
                          timeout=duration_s + 30)
    cpu = cpu_seconds(pid) - before if pid else None
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result (rc {done.returncode}): {done.stdout} {done.stderr}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    run = LoadRun(
        concurrency=concurrency, duration_s=round(seconds, 3), requests=raw["requests"],
        rps=raw["requests"] / seconds if seconds else 0.0,
        p50_ms=lat["p50"] / 1000, p90_ms=lat["p90"] / 1000, p99_ms=lat["p99"] / 1000, max_ms=lat["max"] / 1000,
        errors={k: v for k, v in raw["errors"].items() if v},
        cpu_s=cpu,
    )
    if cpu is not None and run.requests:
        run.cpu_per_request_ms = cpu / run.requests * 1000
    return run


def load_run_dict(run: LoadRun) -> dict[str, Any]:
    return {**asdict(run), "failed": run.failed}


# --- streaming -------------------------------------------------------------------------


@dataclass
class StreamStats:
    requests: int
    ttfb_p50_ms: float | None = None
    ttfb_p99_ms: float | None = None
    chunks: int = 0
    chunks_per_stream: float = 0.0
    streams_per_s: float = 0.0
    cpu_s: float | None = None
    cpu_per_chunk_ms: float | None = None
    upstream_chunks: int | None = None  # chunks the upstream sent per stream, when known
    cpu_per_upstream_chunk_ms: float | None = None  # comparable across APIs: their event counts differ
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _stream_body(model: str, api: str = "chat") -> bytes:
    return json.dumps({**API_BODIES[api], "model": model, "stream": True}).encode()


async def _one_stream(session: aiohttp.ClientSession, url: str, body: bytes,
                      end: bytes = STREAM_ENDS["chat"]) -> tuple[float, int]:
    """(seconds to the first body byte, `data:` frames received excluding [DONE])."""
    started = time.perf_counter()
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
        first = await resp.content.readany()
        ttfb = time.perf_counter() - started
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {first[:200]!r}")
        rest = await resp.read()
    text = first + rest
    frames = sum(1 for line in text.split(b"\n") if line.startswith(b"data:"))
    if end not in text:
        raise RuntimeError(f"stream ended without {end.decode()}")
    return ttfb, frames - 1


async def _ttfb(url: str, body: bytes, *, count: int, warmup: int) -> StreamStats:
    samples: list[float] = []
    stats = StreamStats(requests=0)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as session:
        for i in range(warmup + count):
            try:
                ttfb, frames = await _one_stream(session, url, body)
            except Exception as exc:  # count and keep going: a failure is a result here
                stats.failed += 1
                stats.errors = stats.errors[-4:] + [f"{type(exc).__name__}: {exc}"[:200]]
                continue
            if i >= warmup:
                samples.append(ttfb)
                stats.requests += 1
                stats.chunks += frames
    if samples:
        stats.ttfb_p50_ms = statistics.median(samples) * 1000
        stats.ttfb_p99_ms = _percentile(samples, 99) * 1000
        stats.chunks_per_stream = stats.chunks / len(samples)
    return stats


async def _throughput(url: str, body: bytes, *, concurrency: int, duration_s: float, pid: int | None,
                      end: bytes = STREAM_ENDS["chat"]) -> StreamStats:
    stats = StreamStats(requests=0)
    stop_at = time.monotonic() + duration_s

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop_at:
            try:
                _, frames = await _one_stream(session, url, body, end)
            except Exception as exc:
                stats.failed += 1
                stats.errors = stats.errors[-4:] + [f"{type(exc).__name__}: {exc}"[:200]]
                await asyncio.sleep(0.05)
                continue
            stats.requests += 1
            stats.chunks += frames

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await _one_stream(session, url, body, end)  # warm the connection and the target's code paths
        before = cpu_seconds(pid) if pid else 0.0
        started = time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.monotonic() - started
        if pid:
            stats.cpu_s = cpu_seconds(pid) - before
    if stats.requests:
        stats.chunks_per_stream = stats.chunks / stats.requests
        stats.streams_per_s = stats.requests / elapsed
        if stats.cpu_s is not None and stats.chunks:
            stats.cpu_per_chunk_ms = stats.cpu_s / stats.chunks * 1000
    return stats


def stream_ttfb(url: str, *, model: str, count: int = 100, warmup: int = 10) -> StreamStats:
    return asyncio.run(_ttfb(url, _stream_body(model), count=count, warmup=warmup))


def stream_cpu(url: str, *, model: str, concurrency: int, duration_s: float, pid: int | None, api: str = "chat",
               upstream_chunks: int | None = None) -> StreamStats:
    stats = asyncio.run(_throughput(url, _stream_body(model, api), concurrency=concurrency, duration_s=duration_s,
                                    pid=pid, end=STREAM_ENDS[api]))
    if upstream_chunks and stats.requests and stats.cpu_s is not None:
        stats.upstream_chunks = upstream_chunks
        stats.cpu_per_upstream_chunk_ms = stats.cpu_s / (stats.requests * upstream_chunks) * 1000
    return stats


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


# --- readiness -----------------------------------------------------------------------


async def _first_completion(url: str, body: bytes, *, timeout_s: float, alive: Any) -> float:
    """Poll until one chat completion answers 200; return when that happened (monotonic)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if not alive():
                raise RuntimeError(f"the process exited before answering ({last})")
            try:
                async with session.post(url, data=body, headers={"Content-Type": "application/json"},
                                        timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    payload = await resp.read()
                    if resp.status == 200 and b'"choices"' in payload:
                        return time.monotonic()
                    last = f"HTTP {resp.status}: {payload[:160]!r}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = type(exc).__name__
            await asyncio.sleep(0.02)
    raise RuntimeError(f"no successful completion within {timeout_s}s (last: {last})")


def first_completion(url: str, *, model: str = "bench", timeout_s: float = 90.0, alive: Any = lambda: True) -> float:
    body = json.dumps({**CHAT_BODY, "model": model}).encode()
    return asyncio.run(_first_completion(url, body, timeout_s=timeout_s, alive=alive))


# --- rebuild under load --------------------------------------------------------------


async def _refresh_loop(url: str, admin_key: str, *, stop_at: float) -> list[dict[str, Any]]:
    """POST /admin/refresh back to back until `stop_at`; each result with its duration."""
    results = []
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < stop_at:
            started = time.monotonic()
            try:
                async with session.post(url, headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as resp:
                    await resp.read()
                    results.append({"status": resp.status, "seconds": round(time.monotonic() - started, 3)})
            except (aiohttp.ClientError, TimeoutError) as exc:
                results.append({"status": None, "error": type(exc).__name__,
                                "seconds": round(time.monotonic() - started, 3)})
    return results


def wrk_with_refreshes(url: str, refresh_url: str, admin_key: str, *, concurrency: int, duration_s: float,
                       pid: int) -> tuple[LoadRun, list[dict[str, Any]]]:
    """A wrk run while /admin/refresh is called back to back for its whole length (minus the tail)."""
    async def both() -> tuple[LoadRun, list[dict[str, Any]]]:
        run_task = asyncio.create_task(
            asyncio.to_thread(wrk, url, concurrency=concurrency, duration_s=duration_s, pid=pid))
        stop_at = time.monotonic() + duration_s - 0.3
        await asyncio.sleep(0.3)  # let wrk connect first
        refreshes = await _refresh_loop(refresh_url, admin_key, stop_at=stop_at)
        return await run_task, refreshes

    return asyncio.run(both())
