"""The benchmark driver: `bash bench/run.sh` installs what it needs and runs this on core 0.

    bench.py            the full run: nginx, raw pass-through, Turnout (300 and 20
                        deployments), the LiteLLM proxy; tables on stdout, out/results.json
    bench.py --smoke    one short wrk run against Turnout only; exit 1 on any failure
    bench.py --profile  py-spy on Turnout (300 deployments) under load: out/profile.svg,
                        out/profile.folded, out/profile-top.txt
    bench.py --soak     10 minutes of mixed load, RSS over time (bench/soak.py): out/soak.json

Each target runs alone on core 1 (`taskset -c 1`); wrk, nginx, the streaming client and
this driver share core 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import measure
import report
import soak
import targets
import upstream
from procs import Procs, free_port, rss_bytes, tree, wait_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="one short run against Turnout only")
    parser.add_argument("--profile", action="store_true", help="py-spy profile of Turnout under load")
    parser.add_argument("--stream", action="store_true", help="with --profile: load with 500-chunk streams, not wrk")
    parser.add_argument("--profile-conc", type=int, default=16, help="with --profile: wrk concurrency (default 16)")
    parser.add_argument("--soak", action="store_true", help="RSS over 10 minutes of mixed load (about 11 min)")
    parser.add_argument("--minutes", type=float, default=10.0, help="with --soak: minutes of load (default 10)")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run (default 6)")
    parser.add_argument("--deployments", type=int, default=300, help="the large pool size (default 300)")
    parser.add_argument("--small", type=int, default=20, help="the small pool size (default 20)")
    parser.add_argument("--ref", help="benchmark Turnout as of this git ref (exported to out/src-<ref>) "
                                      "instead of the working tree")
    parser.add_argument("--src", type=Path, help="benchmark Turnout from this source tree (e.g. a scratch copy)")
    parser.add_argument("--only", help="comma-separated target keys to run (raw-aiohttp, turnout-300, "
                                       "turnout-20, litellm-proxy); default all")
    parser.add_argument("--apis-only", action="store_true",
                        help="Turnout targets: only the chat / Messages / Responses comparison (short)")
    parser.add_argument("--quick", action="store_true",
                        help="non-streaming runs only (no streams, no rebuild): for before/after comparisons")
    parser.add_argument("--conc", default="1,16,64", help="wrk concurrencies (default 1,16,64)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for Turnout (repeatable), e.g. TURNOUT_LOG_LEVEL=WARNING")
    args = parser.parse_args(argv)
    if args.apis_only:
        args.quick = True  # no rebuild, no chat-only stream tables: the API rows carry their own streams

    OUT.mkdir(exist_ok=True)
    procs = Procs(OUT)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        src = export_ref(args.ref) if args.ref else args.src
        nginx = start_nginx(procs)
        if args.smoke:
            return smoke(procs, nginx, src=src)
        if args.profile:
            return profile(procs, nginx, deployments=args.deployments, src=src, stream=args.stream,
                           conc=args.profile_conc)
        if args.soak:
            result = soak.soak(procs, nginx, minutes=args.minutes, out=OUT, src=src)
            result.update({"machine": machine(), "versions": versions(), "turnout_source": source_info(src)})
            (OUT / "soak.json").write_text(json.dumps(result, indent=2))
            print(soak.render(result))
            return 0
        return full(procs, nginx, args, src=src)
    finally:
        procs.stop_all()


def export_ref(ref: str) -> Path:
    """`git archive` of `ref` into out/src-<sha>, so edits in the working tree cannot move the numbers."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref], capture_output=True, text=True,
                         check=True).stdout.strip()
    dest = OUT / f"src-{sha}"
    if not (dest / "turnout").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", sha, "turnout"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def source_info(src: Path | None) -> dict[str, Any]:
    tree = src or REPO
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    # The turnout/ tree's hash names the code measured, whatever documentation commits come after.
    app_tree = subprocess.run([*git, "rev-parse", "--short", "HEAD:app"], capture_output=True, text=True).stdout.strip()
    if src is None:
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "turnout"], capture_output=True, text=True).stdout
        return {"tree": str(tree), "head": head, "app_tree": app_tree, "app_dirty": bool(dirty.strip())}
    return {"tree": str(tree), "head": head, "exported": src.name.removeprefix("src-") if src.parent == OUT else None}


def start_nginx(procs: Procs) -> str:
    port = free_port()
    conf = upstream.write_site(OUT / "nginx", port=port, stream_chunks=targets.STREAMS)
    proc = procs.start("nginx", ["nginx", "-c", str(conf), "-e", str(OUT / "nginx" / "logs" / "error.log")], core=0)
    wait_port(port, timeout_s=10, proc=proc)
    return f"http://127.0.0.1:{port}"


# --- the full run ----------------------------------------------------------------------


def full(procs: Procs, nginx: str, args: argparse.Namespace, *, src: Path | None) -> int:
    started = time.monotonic()
    duration = args.duration
    concs = [int(c) for c in args.conc.split(",")]
    results: dict[str, Any] = {
        "machine": machine(), "versions": versions(), "turnout_source": source_info(src),
        "config": {"wrk_duration_s": duration, "concurrency": concs, "quick": args.quick,
                   "short_stream": targets.SHORT_STREAM,
                   "long_stream": targets.LONG_STREAM, "stream_concurrency": 8, "stream_duration_s": 5.0,
                   "deployments": [args.deployments, args.small], "turnout_env": args.env},
        "targets": {},
    }
    say(f"nginx at {nginx}; measuring it directly")
    results["direct"] = {
        "runs": [measure.load_run_dict(measure.wrk(f"{nginx}/v1/chat/completions", concurrency=c, duration_s=3))
                 for c in concs],
        "stream_ttfb": asdict(measure.stream_ttfb(f"{nginx}/s{targets.SHORT_STREAM}/v1/chat/completions",
                                                  model="direct")),
    }
    plan = [
        targets.passthrough(port=free_port(), nginx=nginx),
        targets.turnout(port=free_port(), nginx=nginx, deployments=args.deployments, out=OUT, src=src),
        targets.turnout(port=free_port(), nginx=nginx, deployments=args.small, out=OUT, src=src),
        targets.litellm_proxy(port=free_port(), nginx=nginx, deployments=args.deployments, out=OUT,
                              skip_reason=os.environ.get("BENCH_PROXY_SKIP") or None),
    ]
    only = set(args.only.split(",")) if args.only else None
    for target in plan:
        if only is not None and target.key not in only:
            continue
        if target.key.startswith("turnout"):
            target.env.update(dict(item.split("=", 1) for item in args.env))
        results["targets"][target.key] = run_target(
            procs, target, duration=duration, concs=concs, quick=args.quick, apis_only=args.apis_only,
            rebuild=target.key == f"turnout-{args.deployments}" and not args.quick, results=results)
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    results["soak"] = _soak_of_this_source(results["turnout_source"])
    results["checks"] = report.target_checks(results)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    print()
    print(report.render(results))
    print(f"\nraw numbers: {OUT / 'results.json'}; wall time {results['elapsed_s']}s")
    return 0


def _soak_of_this_source(source: dict[str, Any]) -> dict[str, Any] | None:
    """The last `--soak` result, when it measured the same Turnout source as this run."""
    path = OUT / "soak.json"
    if not path.exists() or source.get("app_dirty"):
        return None
    found: dict[str, Any] = json.loads(path.read_text())
    theirs = found.get("turnout_source", {})
    same = theirs.get("app_tree") == source.get("app_tree") and not theirs.get("app_dirty") and \
        theirs.get("exported") == source.get("exported") and source.get("app_tree")
    return found if same else None


def run_target(procs: Procs, target: targets.Target, *, duration: float, concs: list[int], quick: bool,
               rebuild: bool, results: dict[str, Any], apis_only: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"label": target.label, "deployments": target.deployments}
    if target.skip_reason:
        say(f"{target.label}: skipped ({target.skip_reason})")
        entry["skipped"] = target.skip_reason
        return entry
    say(f"{target.label}: starting on core 1")
    spawned = time.monotonic()
    proc = procs.start(target.key, target.argv, core=1, env=target.env, cwd=target.cwd)
    try:
        ready = measure.first_completion(target.chat_url(), alive=lambda: proc.popen.poll() is None)
    except RuntimeError as exc:
        procs.stop(proc)
        tail = proc.log.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"{target.label} never answered: {exc}\n--- {proc.log} ---\n{tail}") from None
    entry["cold_start_s"] = round(ready - spawned, 3)
    time.sleep(1.0)
    entry["rss_idle_bytes"] = rss_bytes(proc.pid)
    entry["processes"] = len(tree(proc.pid))
    if target.key.startswith("turnout"):
        entry["pool_deployments"] = pool_size(target)
    say(f"  cold start {entry['cold_start_s']:.2f}s, idle RSS {entry['rss_idle_bytes'] / 2**20:.0f} MB; warming up")
    measure.wrk(target.chat_url(), concurrency=16, duration_s=2, pid=proc.pid)
    cfg = results["config"]
    if apis_only and target.key.startswith("turnout"):
        entry["apis"] = api_rows(target, pid=proc.pid, duration=duration, concs=concs,
                                 stream_s=cfg["stream_duration_s"], stream_conc=cfg["stream_concurrency"])
        entry["runs"] = entry["apis"]["chat"]["runs"]
        entry["rss_after_bytes"] = rss_bytes(proc.pid)
        procs.stop(proc)
        return entry
    entry["runs"] = []
    for conc in concs:
        run = measure.wrk(target.chat_url(), concurrency=conc, duration_s=duration, pid=proc.pid)
        say(f"  conc {conc:>2}: {run.rps:8.0f} req/s  p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms  "
            f"CPU/req {run.cpu_per_request_ms or 0:.3f} ms  failed {run.failed}")
        entry["runs"].append(measure.load_run_dict(run))
    if quick:
        entry["rss_after_bytes"] = rss_bytes(proc.pid)
        procs.stop(proc)
        return entry
    entry["stream_ttfb"] = asdict(measure.stream_ttfb(target.stream_url(targets.SHORT_STREAM),
                                                      model=target.stream_model(targets.SHORT_STREAM)))
    entry["stream_cpu"] = asdict(measure.stream_cpu(
        target.stream_url(targets.LONG_STREAM), model=target.stream_model(targets.LONG_STREAM),
        concurrency=cfg["stream_concurrency"], duration_s=cfg["stream_duration_s"], pid=proc.pid))
    say(f"  streams: TTFB p50 {entry['stream_ttfb']['ttfb_p50_ms'] or 0:.2f} ms, "
        f"CPU/chunk {entry['stream_cpu']['cpu_per_chunk_ms'] or 0:.4f} ms, "
        f"failed {entry['stream_ttfb']['failed'] + entry['stream_cpu']['failed']}")
    if target.key.startswith("turnout"):
        entry["apis"] = api_rows(target, pid=proc.pid, duration=duration, concs=concs,
                                 stream_s=cfg["stream_duration_s"], stream_conc=cfg["stream_concurrency"])
    if rebuild:
        results["rebuild"] = rebuild_under_load(target, pid=proc.pid, duration=duration + 2)
    entry["rss_after_bytes"] = rss_bytes(proc.pid)
    procs.stop(proc)
    return entry


def api_rows(target: targets.Target, *, pid: int, duration: float, concs: list[int], stream_s: float,
             stream_conc: int) -> dict[str, Any]:
    """The same request and stream through chat, Messages and Responses, back to back on one process.

    Measured together (chat again too) so the added CPU of each translation is read off one run."""
    rows: dict[str, Any] = {}
    for api in ("chat", "messages", "responses"):
        url = target.api_url(api)
        measure.wrk(url, concurrency=16, duration_s=1, api=api)  # warm
        runs = [measure.wrk(url, concurrency=c, duration_s=duration, pid=pid, api=api) for c in concs]
        stream = measure.stream_cpu(url, model=target.stream_model(targets.LONG_STREAM), concurrency=stream_conc,
                                    duration_s=stream_s, pid=pid, api=api, upstream_chunks=targets.LONG_STREAM)
        rows[api] = {"runs": [measure.load_run_dict(r) for r in runs], "stream_cpu": asdict(stream)}
        cpu = [r.cpu_per_request_ms or 0 for r in runs]
        say(f"  {api:>9}: CPU/req {min(cpu):.3f}-{max(cpu):.3f} ms, CPU/upstream chunk "
            f"{stream.cpu_per_upstream_chunk_ms or 0:.4f} ms, failed {sum(r.failed for r in runs) + stream.failed}")
    return rows


def rebuild_under_load(target: targets.Target, *, pid: int, duration: float) -> dict[str, Any]:
    conc = 16
    steady = measure.wrk(target.chat_url(), concurrency=conc, duration_s=duration, pid=pid)
    refresh_url = f"http://127.0.0.1:{target.port}/admin/refresh"
    during, refreshes = measure.wrk_with_refreshes(target.chat_url(), refresh_url, targets.ADMIN_KEY,
                                                   concurrency=conc, duration_s=duration, pid=pid)
    say(f"  rebuild: p99 steady {steady.p99_ms:.2f} ms, rebuilding {during.p99_ms:.2f} ms, "
        f"{len(refreshes)} refreshes, failed {during.failed}")
    return {"label": target.label, "concurrency": conc, "steady": measure.load_run_dict(steady),
            "rebuilding": measure.load_run_dict(during), "refreshes": refreshes}


def pool_size(target: targets.Target) -> int | None:
    """Deployments in Turnout's live pool (static + catalogue), from GET /admin/pool."""
    import asyncio

    async def get() -> Any:
        async with aiohttp.ClientSession() as s, s.get(
            f"http://127.0.0.1:{target.port}/admin/pool", headers={"Authorization": f"Bearer {targets.ADMIN_KEY}"}
        ) as resp:
            return await resp.json()

    try:
        return int(asyncio.run(get())["refresh"]["last_attempt"]["deployments"])
    except (KeyError, TypeError, ValueError, aiohttp.ClientError):
        return None


# --- smoke and profile -----------------------------------------------------------------


def smoke(procs: Procs, nginx: str, *, src: Path | None) -> int:
    target = targets.turnout(port=free_port(), nginx=nginx, deployments=20, out=OUT, src=src)
    spawned = time.monotonic()
    proc = procs.start(target.key, target.argv, core=1, env=target.env, cwd=target.cwd)
    ready = measure.first_completion(target.chat_url(), alive=lambda: proc.popen.poll() is None, timeout_s=20)
    run = measure.wrk(target.chat_url(), concurrency=8, duration_s=3, pid=proc.pid)
    ok = run.requests > 0 and run.failed == 0
    print(f"bench smoke: {'ok' if ok else 'FAILED'}: Turnout (20 deployments) cold start "
          f"{ready - spawned:.2f}s, {run.rps:.0f} req/s at conc 8, p50 {run.p50_ms:.2f} ms, "
          f"p99 {run.p99_ms:.2f} ms, {run.requests} requests, failed {run.failed} {run.errors or ''}")
    return 0 if ok else 1


def profile(procs: Procs, nginx: str, *, deployments: int, src: Path | None, stream: bool, conc: int = 16) -> int:
    pyspy = HERE / ".venv-tools" / "bin" / "py-spy"
    target = targets.turnout(port=free_port(), nginx=nginx, deployments=deployments, out=OUT, src=src)
    proc = procs.start(target.key, target.argv, core=1, env=target.env, cwd=target.cwd)
    measure.first_completion(target.chat_url(), alive=lambda: proc.popen.poll() is None)
    measure.wrk(target.chat_url(), concurrency=16, duration_s=2)
    if stream:
        say(f"profiling {target.label} (pid {proc.pid}) under 8 concurrent {targets.LONG_STREAM}-chunk streams")
        load = threading.Thread(target=measure.stream_cpu, args=(target.stream_url(targets.LONG_STREAM),),
                                kwargs={"model": target.stream_model(targets.LONG_STREAM), "concurrency": 8,
                                        "duration_s": 26, "pid": None}, daemon=True)
    else:
        say(f"profiling {target.label} (pid {proc.pid}) under wrk conc {conc}")
        load = threading.Thread(target=measure.wrk, args=(target.chat_url(),),
                                kwargs={"concurrency": conc, "duration_s": 26}, daemon=True)
    load.start()
    time.sleep(1)
    pid = str(proc.pid)
    subprocess.run([str(pyspy), "record", "-o", str(OUT / "profile.svg"), "--pid", pid, "--duration", "10",
                    "--rate", "250"], check=True, capture_output=True)
    subprocess.run([str(pyspy), "record", "-o", str(OUT / "profile.folded"), "--format", "raw", "--pid", pid,
                    "--duration", "10", "--rate", "250", "--full-filenames"], check=True,
                   capture_output=True)
    dump = subprocess.run([str(pyspy), "dump", "--pid", pid], capture_output=True, text=True)
    (OUT / "profile-dump.txt").write_text(dump.stdout + dump.stderr)
    load.join()
    summary = subprocess.run([sys.executable, str(HERE / "profile_summary.py"), str(OUT / "profile.folded")],
                             capture_output=True, text=True, check=True).stdout
    (OUT / "profile-top.txt").write_text(summary)
    print(summary)
    print(f"flame graph: {OUT / 'profile.svg'}; folded stacks: {OUT / 'profile.folded'}")
    return 0


# --- machine and versions --------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return {"nproc": os.cpu_count(), "cpu_model": model.group(1) if model else platform.processor(),
            "mem_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None, "kernel": platform.release(),
            "os": _os_release()}


def _os_release() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return platform.platform()
    found = re.search(r'^PRETTY_NAME="?([^"\n]+)', text, re.M)
    return found.group(1) if found else platform.platform()


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("litellm", "fastapi", "starlette", "uvicorn", "aiohttp", "pydantic", "uvloop", "httptools"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    proxy_python = targets.PROXY_VENV / "bin" / "python"
    if proxy_python.exists():
        probe = ("from importlib import metadata as m\n"
                 "for n in ('litellm','fastapi','uvicorn','uvloop','httptools'):\n"
                 "  try: print(n, m.version(n))\n  except Exception: print(n, '-')")
        out = subprocess.run([str(proxy_python), "-c", probe], capture_output=True, text=True).stdout
        found["litellm_proxy_venv"] = ", ".join(out.splitlines())
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
    found["nginx"] = (nginx.stderr or nginx.stdout).strip().removeprefix("nginx version: ")
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    found["wrk"] = (wrk.stdout or wrk.stderr).strip().splitlines()[0] if (wrk.stdout or wrk.stderr) else None
    return found


def say(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
