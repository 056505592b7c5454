"""Plain-text tables and the issue-6 target check, from the results dict the driver builds."""

from __future__ import annotations

from typing import Any

MB = 1024 * 1024


def table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    """Left-align the first column, right-align the rest."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                         for i, (v, w) in enumerate(zip(values, widths, strict=True)))

    return "\n".join([title, line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in cells)])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _mb(value: int | None) -> float | None:
    return None if value is None else value / MB


def non_streaming(results: dict[str, Any]) -> str:
    direct_p50 = _direct_c1_p50(results)
    rows = [["nginx direct (harness floor)", "-", r["concurrency"], r["rps"], r["p50_ms"], r["p99_ms"], None, None,
             None, r["failed"]] for r in results["direct"]["runs"]]
    for t in results["targets"].values():
        if t.get("skipped"):
            rows.append([t["label"], t.get("deployments"), "-", f"skipped: {t['skipped']}", "", "", "", "", "", ""])
            continue
        for r in t["runs"]:
            added = r["p50_ms"] - direct_p50 if r["concurrency"] == 1 and direct_p50 is not None else None
            share = r["cpu_s"] / r["duration_s"] if r.get("cpu_s") is not None and r["duration_s"] else None
            rows.append([t["label"], t.get("pool_deployments") or t.get("deployments") or "-", r["concurrency"],
                         r["rps"], r["p50_ms"], r["p99_ms"], added, r["cpu_per_request_ms"], share, r["failed"]])
    return table("Non-streaming (wrk, 1 thread on core 0; target on core 1; core use = target CPU s / wall s)",
                 ["target", "deployments", "conc", "req/s", "p50 ms", "p99 ms", "added p50 ms", "CPU/req ms",
                  "core use", "failed"], rows)


def _direct_c1_p50(results: dict[str, Any]) -> float | None:
    return next((r["p50_ms"] for r in results["direct"]["runs"] if r["concurrency"] == 1), None)


def _c1(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in runs if r["concurrency"] == 1), None)


def process(results: dict[str, Any]) -> str:
    rows = []
    for t in results["targets"].values():
        if t.get("skipped"):
            rows.append([t["label"], f"skipped: {t['skipped']}", "", ""])
            continue
        rows.append([t["label"], t["cold_start_s"], _mb(t["rss_idle_bytes"]), _mb(t["rss_after_bytes"])])
    return table("Process (cold start = spawn to first successful completion)",
                 ["target", "cold start s", "RSS idle MB", "RSS after load MB"], rows)


def streaming(results: dict[str, Any]) -> str:
    if results["config"].get("quick"):
        return ""
    direct = results["direct"]["stream_ttfb"]
    rows = [["nginx direct", direct["ttfb_p50_ms"], direct["ttfb_p99_ms"], None, direct["chunks_per_stream"], None,
             None, None, direct["failed"]]]
    for t in results["targets"].values():
        if t.get("skipped"):
            continue
        s, c = t["stream_ttfb"], t["stream_cpu"]
        added = None if s["ttfb_p50_ms"] is None else s["ttfb_p50_ms"] - direct["ttfb_p50_ms"]
        rows.append([t["label"], s["ttfb_p50_ms"], s["ttfb_p99_ms"], added, c["chunks_per_stream"], c["streams_per_s"],
                     c["streams_per_s"] * c["chunks_per_stream"], c["cpu_per_chunk_ms"], s["failed"] + c["failed"]])
    cfg = results["config"]
    return table(
        f"Streaming (TTFB: {cfg['short_stream']}-chunk streams, 1 client; CPU: {cfg['long_stream']}-chunk streams, "
        f"{cfg['stream_concurrency']} clients for {cfg['stream_duration_s']:g}s)",
        ["target", "TTFB p50 ms", "TTFB p99 ms", "added TTFB ms", "chunks/stream", "streams/s", "chunks/s",
         "CPU/chunk ms", "failed"], rows)


def apis(results: dict[str, Any]) -> str:
    """chat, Messages and Responses on one Turnout process: what each translation adds."""
    out = []
    for t in results["targets"].values():
        rows_in = t.get("apis")
        if not rows_in:
            continue
        chat = rows_in["chat"]
        chat_cpu = min(r["cpu_per_request_ms"] for r in chat["runs"])
        chat_chunk = chat["stream_cpu"]["cpu_per_upstream_chunk_ms"]
        rows = []
        for api, row in rows_in.items():
            cpu = min(r["cpu_per_request_ms"] for r in row["runs"])
            chunk = row["stream_cpu"]["cpu_per_upstream_chunk_ms"]
            rows.append([api, max(r["rps"] for r in row["runs"]), cpu, cpu - chat_cpu, chunk,
                         None if chunk is None or chat_chunk is None else chunk - chat_chunk,
                         sum(r["failed"] for r in row["runs"]) + row["stream_cpu"]["failed"]])
        out.append(table(f"API surfaces ({t['label']}; CPU/request: best of the concurrencies; streams: "
                         f"{results['config']['long_stream']} upstream chunks each)",
                         ["api", "best req/s", "CPU/request ms", "added ms", "CPU/upstream chunk ms", "added ms",
                          "failed"], rows))
    return "\n\n".join(out)


def api_checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 12's targets: added CPU per request and per streamed event over chat, on one core."""
    checks: list[dict[str, Any]] = []
    for key in ("turnout-300", "turnout-20"):
        rows = (results["targets"].get(key) or {}).get("apis")
        if not rows:
            continue
        chat_cpu = min(r["cpu_per_request_ms"] for r in rows["chat"]["runs"])
        chat_chunk = rows["chat"]["stream_cpu"]["cpu_per_upstream_chunk_ms"]
        for api in ("messages", "responses"):
            added = min(r["cpu_per_request_ms"] for r in rows[api]["runs"]) - chat_cpu
            checks.append({"target": f"{api}: added CPU per request over chat ({key})", "measured": added,
                           "unit": "ms", "bound": "<= 0.15 ms", "met": added <= 0.15})
            chunk = rows[api]["stream_cpu"]["cpu_per_upstream_chunk_ms"]
            if chunk is not None and chat_chunk is not None:
                checks.append({"target": f"{api}: added CPU per streamed event over chat ({key})",
                               "measured": chunk - chat_chunk, "unit": "ms", "bound": "<= 0.01 ms",
                               "met": chunk - chat_chunk <= 0.01})
        break
    return checks


def rebuild(results: dict[str, Any]) -> str:
    rb = results.get("rebuild")
    if not rb:
        return ""
    rows = []
    for phase in ("steady", "rebuilding"):
        r = rb[phase]
        rows.append([phase, r["rps"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["failed"],
                     len(rb["refreshes"]) if phase == "rebuilding" else None])
    ok = sum(1 for x in rb["refreshes"] if x.get("status") == 200)
    durations = [x["seconds"] for x in rb["refreshes"]]
    note = (f"{ok}/{len(durations)} refreshes answered 200; each took "
            f"{min(durations):.2f}-{max(durations):.2f}s" if durations else "no refresh completed")
    return table(f"Rebuild under load ({rb['label']}, conc {rb['concurrency']}; POST /admin/refresh back to back: "
                 f"{note})", ["phase", "req/s", "p50 ms", "p99 ms", "max ms", "failed", "refreshes"], rows)


def target_checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 6's targets against this run: what was measured, the bound, met or not."""
    t = results["targets"]
    big, small = t.get("turnout-300"), t.get("turnout-20")
    checks: list[dict[str, Any]] = []

    def add(name: str, measured: float | None, bound: str, met: bool | None, unit: str = "") -> None:
        checks.append({"target": name, "measured": measured, "unit": unit, "bound": bound,
                       "met": None if measured is None else met})

    if not big or big.get("skipped"):
        return checks + api_checks(results)
    direct_p50 = _direct_c1_p50(results)
    peak = max(r["rps"] for r in big["runs"])
    add("req/s on one core, 300 deployments (best of the concurrencies)", peak, ">= 1,500", peak >= 1500)
    c1 = _c1(big["runs"])
    if c1 is not None and direct_p50 is not None:
        added = c1["p50_ms"] - direct_p50
        add("added p50 latency at 1 client", added, "<= 0.8 ms", added <= 0.8, "ms")
    s = big.get("stream_ttfb")
    if s and s["ttfb_p50_ms"] is not None:
        added_ttfb = s["ttfb_p50_ms"] - results["direct"]["stream_ttfb"]["ttfb_p50_ms"]
        add("streaming: added TTFB", added_ttfb, "<= 1 ms", added_ttfb <= 1.0, "ms")
    if big.get("stream_cpu"):
        per_chunk = big["stream_cpu"]["cpu_per_chunk_ms"]
        add("streaming: CPU per chunk", per_chunk, "<= 0.05 ms", per_chunk is not None and per_chunk <= 0.05, "ms")
    if small and not small.get("skipped"):
        ratio = max(r["rps"] for r in small["runs"]) / peak
        add("20 vs 300 deployments: peak req/s ratio (20/300)", ratio, "<= 1.20", ratio <= 1.2, "x")
        cpu_small = min(r["cpu_per_request_ms"] for r in small["runs"])
        cpu_big = min(r["cpu_per_request_ms"] for r in big["runs"])
        add("20 vs 300 deployments: CPU/request ratio (300/20)", cpu_big / cpu_small, "<= 1.20",
            cpu_big / cpu_small <= 1.2, "x")
    rb = results.get("rebuild")
    if rb:
        ratio = rb["rebuilding"]["p99_ms"] / rb["steady"]["p99_ms"]
        add("rebuild under load: p99 rebuilding / steady", ratio, "<= 2.0", ratio <= 2.0, "x")
        add("rebuild under load: failed requests", rb["rebuilding"]["failed"], "0", rb["rebuilding"]["failed"] == 0)
    add("cold start (spawn to first completion)", big["cold_start_s"], "< 4 s", big["cold_start_s"] < 4, "s")
    add("idle RSS", _mb(big["rss_idle_bytes"]), "< 200 MB", big["rss_idle_bytes"] < 200 * MB, "MB")
    soak = results.get("soak")
    if soak:
        drift = soak["rss_end"] / soak["rss_first_minute"]
        add(f"RSS after {soak['minutes']:g} min mixed load / after 1 min (bench/run.sh --soak)", drift, "<= 1.10x",
            drift <= 1.10, "x")
    else:
        checks.append({"target": "RSS after 10 min mixed load within 10% of after 1 min", "measured": None,
                       "unit": "", "bound": "<= 1.10x", "met": None,
                       "note": "a separate run: bash bench/run.sh --soak (about 11 minutes)"})
    proxy = t.get("litellm-proxy")
    if proxy and not proxy.get("skipped"):
        ratio = peak / max(r["rps"] for r in proxy["runs"])
        add("req/s vs LiteLLM proxy (info: the issue expects ~15x)", ratio, ">= 15", ratio >= 15, "x")
    raw = t.get("raw-aiohttp")
    if raw:
        ratio = peak / max(r["rps"] for r in raw["runs"])
        add("req/s vs raw aiohttp pass-through (info: over half)", ratio, ">= 0.5", ratio >= 0.5, "x")
    return checks + api_checks(results)


def checks_table(checks: list[dict[str, Any]]) -> str:
    rows = []
    for c in checks:
        met = {True: "met", False: "NOT met", None: "not measured"}[c["met"]]
        measured = "-" if c["measured"] is None else f"{_cell(c['measured'])} {c['unit']}".strip()
        rows.append([c["target"], measured, c["bound"], met])
    return table("Issue 6 targets (Turnout, 300 deployments)", ["target", "measured", "bound", "status"], rows)


def render(results: dict[str, Any]) -> str:
    parts = [non_streaming(results), process(results), streaming(results), apis(results), rebuild(results),
             checks_table(results["checks"])]
    return "\n\n".join(p for p in parts if p)
