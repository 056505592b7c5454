"""Summarise py-spy's raw (folded) stacks: where a gateway's CPU goes, as shares of all samples.

    python bench/profile_summary.py bench/out/profile.folded

Three views: self time by component (the leaf frame's package), inclusive time of the
functions that matter on the hot path, and what the Router's deployment pick spends its
time on.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

# Leaf-frame file (py-spy --full-filenames) -> component, first match wins.
COMPONENTS = [
    ("h11 (pure-Python HTTP/1.1 parser)", r"/site-packages/h11/"),
    ("uvicorn", r"/site-packages/uvicorn/"),
    ("anyio (threadpool hops for sync dependencies)", r"/site-packages/anyio/"),
    ("starlette", r"/site-packages/starlette/"),
    ("fastapi", r"/site-packages/fastapi/"),
    ("pydantic", r"/site-packages/pydantic"),
    ("litellm Router (router.py, router_utils, router_strategy)",
     r"/site-packages/litellm/(router\.py|router_utils/|router_strategy/)"),
    ("litellm (caching, proxy helpers, other)", r"/site-packages/litellm/"),
    ("aiohttp", r"/site-packages/aiohttp/"),
    ("yarl/multidict", r"/site-packages/(yarl|multidict)/"),
    ("json (stdlib)", r"/python3\.\d+/json/"),
    ("logging (stdlib)", r"/python3\.\d+/logging/"),
    ("asyncio (event loop, tasks, transports)", r"/python3\.\d+/asyncio/|/selectors\.py$"),
    ("uuid (stdlib)", r"/python3\.\d+/uuid\.py$"),
    ("threading/queue (stdlib)", r"/python3\.\d+/(threading|queue)\.py$"),
    ("turnout turnout/", r"^(?!.*site-packages).*/turnout/"),
    ("other stdlib", r"/python3\.\d+/|^<frozen"),
]
# The event loop's thread starts at the module being run; worker threads at Thread._bootstrap.
MAIN_ROOT = re.compile(r"^(_run_module_as_main|<module>) ")
# Leaves of a worker thread blocked waiting for work, not using CPU.
IDLE_LEAVES = re.compile(r"^(Condition\.wait|Condition\._acquire_restore|_worker|Queue\.get|WorkerThread\.run) ")

# Functions whose inclusive share answers "what does this step cost".
KEY_FUNCTIONS: list[tuple[str, ...]] = [  # (label, frame regex[, unless any frame matches])
    ("the chat handler (turnout.api.chat.serve, plain ASGI)", r"^serve \(.*/turnout/api/chat\.py"),
    ("FastAPI request handling (every other route)",
     r"^(run_endpoint_function|request_response\.<locals>\.app) "),
    ("  FastAPI dependency solving", r"^solve_dependencies "),
    ("    _read_json (body read + json.loads)", r"^_read_json "),
    ("    parse_chat_request", r"^parse_chat_request "),
    ("    Engine.complete / _run", r"^Engine\._run "),
    ("      Engine._pick / _router_pick", r"^Engine\._router_pick "),
    ("        Router.async_get_available_deployment", r"async_get_available_deployment "),
    ("      OpenAIWire.complete (aiohttp POST to the upstream)", r"^OpenAIWire\.complete "),
    ("      Engine._record (passive health)", r"^Engine\._record "),
    ("    _normalise", r"^_normalise "),
    ("    RequestLog (one JSON log line per request)", r"^RequestLog\."),
    ("    json.dumps (anywhere)", r"^dumps \(.*/json/"),
    ("    orjson + stdlib fallback (turnout.encoding.dumps)", r"^dumps \(.*/turnout/encoding\.py"),
    ("    json.loads (anywhere)", r"^loads \(.*/json/"),
    ("h11 parsing and serialising (anywhere)", r"/site-packages/h11/"),
    ("uvicorn work outside the ASGI app (parse, keep-alive, flow control)", r"/site-packages/(uvicorn|h11)/",
     r"^(Starlette\.__call__ |serve \(.*/turnout/api/chat\.py)"),
    ("aiohttp client protocol callbacks outside the request task (response parsing)", r"/site-packages/aiohttp/",
     r"^serve \(.*/turnout/api/chat\.py"),
    ("anyio threadpool hops (sync FastAPI dependencies run in a worker thread)",
     r"run_sync_in_worker_thread |WorkerThread\.run "),
    ("logging module (anywhere)", r"/python3\.\d+/logging/"),
    ("aiohttp client (anywhere)", r"/aiohttp/client"),
    ("copy.deepcopy (anywhere)", r"^deepcopy "),
]

PICK = "async_get_available_deployment "


def load(path: Path) -> tuple[list[tuple[list[str], int]], list[tuple[list[str], int]]]:
    """(event-loop thread stacks, busy worker-thread stacks); idle worker threads are dropped."""
    main, workers = [], []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        if MAIN_ROOT.search(frames[0]):
            main.append((frames, int(count)))
        elif not IDLE_LEAVES.search(frames[-1]):
            workers.append((frames, int(count)))
    return main, workers


def _file(frame: str) -> str:
    found = re.search(r"\(([^()]*)\)$", frame)
    return found.group(1) if found else ""


def _short(frame: str) -> str:
    """`func (/long/path/site-packages/pkg/mod.py)` -> `func (pkg/mod.py)`."""
    return re.sub(r"\((?:.*/site-packages/|.*/python3\.\d+/|.*/(?=turnout/))", "(", frame)


def component(frame: str) -> str:
    path = _file(frame)
    for name, pattern in COMPONENTS:
        if re.search(pattern, path):
            return name
    return "other"


def summarise(stacks: list[tuple[list[str], int]], workers: list[tuple[list[str], int]]) -> str:
    total = sum(c for _, c in stacks)
    if not total:
        return "no samples"
    busy = Counter()
    for frames, count in workers:
        busy[_short(frames[-1])] += count
    out = [f"{total} samples of the event-loop thread (py-spy; C code is charged to its Python caller). "
           f"Busy worker-thread samples on top: {sum(busy.values())} "
           f"({100 * sum(busy.values()) / total:.1f}% of the loop's), mostly: "
           + ", ".join(f"{name} {n}" for name, n in busy.most_common(3)), ""]

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    selfs: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for frames, count in stacks:
        selfs[component(frames[-1])] += count
        leaves[frames[-1]] += count
    out.append("Self time by component (leaf frame)")
    out += [f"  {pct(n)}  {name}" for name, n in selfs.most_common()]
    out.append("")
    out.append("Inclusive time of hot-path steps (a sample counts once per step)")
    for label, pattern, *unless in KEY_FUNCTIONS:
        rx = re.compile(pattern)
        no = re.compile(unless[0]) if unless else None
        n = sum(c for frames, c in stacks
                if any(rx.search(f) for f in frames) and not (no and any(no.search(f) for f in frames)))
        out.append(f"  {pct(n)}  {label}")
    out.append("")
    out.append("Top 25 leaf functions (self time)")
    out += [f"  {pct(n)}  {_short(name)}" for name, n in leaves.most_common(25)]

    inside: Counter[str] = Counter()
    callees: Counter[str] = Counter()
    pick_total = 0
    for frames, count in stacks:
        idx = next((i for i, f in enumerate(frames) if PICK in f), None)
        if idx is None:
            continue
        pick_total += count
        below = frames[idx + 1:]
        if below:
            callees[below[0]] += count
        for f in set(below):
            inside[f] += count
    if pick_total:
        out.append("")
        out.append(f"Inside Router.async_get_available_deployment ({pct(pick_total).strip()} of all samples)")
        out.append("  direct callees:")
        out += [f"    {pct(n)}  {_short(name)}" for name, n in callees.most_common(12)]
        out.append("  anything below it (inclusive):")
        out += [f"    {pct(n)}  {_short(name)}" for name, n in inside.most_common(25)]
    return "\n".join(out)


def main() -> None:
    print(summarise(*load(Path(sys.argv[1]))))


if __name__ == "__main__":
    main()
