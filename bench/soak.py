"""The memory soak: Turnout (300 deployments) under a mixed load for 10 minutes, RSS over time.

    bash bench/run.sh --soak                 10 minutes of load (about 11 in all)
    bash bench/run.sh --soak --minutes 2     a shorter look

The mix, all at once: wrk with JSON requests at concurrency 8 (every sixth 10-second segment
asks for an unknown model instead, so 404s are part of it), two clients reading 500-chunk
streams back to back, and `POST /admin/refresh` every minute (a full catalogue + health +
Router rebuild). RSS of the process tree is read after every segment. Issue 6's bound: RSS
at the end within 10% of RSS after the first minute.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import measure
import targets
from procs import Procs, free_port, rss_bytes

SEGMENT_S = 10.0


def soak(procs: Procs, nginx: str, *, minutes: float, out: Path, src: Path | None) -> dict[str, Any]:
    target = targets.turnout(port=free_port(), nginx=nginx, deployments=300, out=out, src=src)
    spawned = time.monotonic()
    proc = procs.start(target.key, target.argv, core=1, env=target.env, cwd=target.cwd)
    measure.first_completion(target.chat_url(), alive=lambda: proc.popen.poll() is None)
    cold = time.monotonic() - spawned
    duration = minutes * 60
    stop = threading.Event()
    streams: dict[str, Any] = {}
    refreshes: list[int | None] = []
    stream_thread = threading.Thread(target=lambda: streams.update(vars(measure.stream_cpu(
        target.stream_url(targets.LONG_STREAM), model=target.stream_model(targets.LONG_STREAM), concurrency=2,
        duration_s=duration, pid=None))), daemon=True)
    refresh_thread = threading.Thread(target=_refresh_every_minute, args=(target, stop, refreshes), daemon=True)
    stream_thread.start()
    refresh_thread.start()
    samples: list[dict[str, Any]] = [{"t_s": 0.0, "rss_bytes": rss_bytes(proc.pid), "requests": 0, "failed": 0}]
    started = time.monotonic()
    requests = failed = segment = 0
    while time.monotonic() - started < duration:
        segment += 1
        model = "no-such-model" if segment % 6 == 0 else "bench"
        run = measure.wrk(target.chat_url(), concurrency=8, duration_s=SEGMENT_S, model=model)
        requests += run.requests
        # 404s are the point of the unknown-model segments; anything else failing is a failure.
        failed += 0 if model != "bench" else run.failed
        samples.append({"t_s": round(time.monotonic() - started, 1), "rss_bytes": rss_bytes(proc.pid),
                        "requests": requests, "failed": failed})
    stop.set()
    stream_thread.join(timeout=60)
    refresh_thread.join(timeout=90)
    procs.stop(proc)
    return {"label": target.label, "minutes": minutes, "cold_start_s": round(cold, 3), "samples": samples,
            "streams": {k: streams.get(k) for k in ("requests", "chunks", "failed", "errors")},
            "refreshes": refreshes, "rss_first_minute": _rss_at(samples, 60.0), "rss_end": samples[-1]["rss_bytes"]}


def _rss_at(samples: list[dict[str, Any]], t_s: float) -> int:
    """RSS at the first sample taken at or after `t_s` (the last one if the soak was shorter)."""
    return next((s["rss_bytes"] for s in samples if s["t_s"] >= t_s), samples[-1]["rss_bytes"])


def _refresh_every_minute(target: targets.Target, stop: threading.Event, statuses: list[int | None]) -> None:
    async def loop() -> None:
        headers = {"Authorization": f"Bearer {targets.ADMIN_KEY}"}
        url = f"http://127.0.0.1:{target.port}/admin/refresh"
        async with aiohttp.ClientSession() as session:
            while not stop.wait(60):
                try:
                    async with session.post(url, headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as resp:
                        await resp.read()
                        statuses.append(resp.status)
                except (aiohttp.ClientError, TimeoutError):
                    statuses.append(None)

    asyncio.run(loop())


def render(result: dict[str, Any]) -> str:
    lines = [f"Memory soak ({result['label']}, {result['minutes']:g} min of mixed load: JSON at conc 8 with a 404 "
             f"segment in six, 2 clients on 500-chunk streams, a full refresh every minute)",
             "minute  RSS MB  requests  failed", "------  ------  --------  ------"]
    shown = set()
    for sample in result["samples"]:
        minute = int(sample["t_s"] // 60)
        if minute in shown and sample is not result["samples"][-1]:
            continue
        shown.add(minute)
        lines.append(f"{sample['t_s'] / 60:6.1f}  {sample['rss_bytes'] / 2**20:6.1f}  {sample['requests']:8,}  "
                     f"{sample['failed']:6}")
    first, end = result["rss_first_minute"], result["rss_end"]
    streams = result["streams"]
    ok = [s for s in result["refreshes"] if s == 200]
    lines.append(f"streams: {streams['requests'] or 0:,} ({streams['chunks'] or 0:,} chunks), failed "
                 f"{streams['failed'] or 0}; refreshes: {len(ok)}/{len(result['refreshes'])} answered 200")
    lines.append(f"RSS end / RSS after 1 min: {end / first:.3f}x (bound <= 1.10x: "
                 f"{'met' if end / first <= 1.10 else 'NOT met'})")
    return "\n".join(lines)
