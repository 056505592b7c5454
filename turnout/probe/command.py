"""`turnout probe`: the plan, the run, the report, the summary, and `--feed`.

Exit status: 0 when the run finished (whatever the models answered), 130 when interrupted
(the partial report is written first), 2 on bad arguments or an unreachable source.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path

import httpx
from rich.console import Console

from turnout.config import Settings
from turnout.probe.call import Ask, Endpoint, probe_model
from turnout.probe.free_pacing import FreePacing, day_allowance, free_budget
from turnout.probe.results import ProbeResult, Report, fresh_results
from turnout.probe.runner import run_plan
from turnout.probe.targets import Plan, Target, from_catalogue, from_gateway, from_pool, make_plan, narrow

INTERRUPTED = 130


class ProbeError(Exception):
    """The probe cannot start; the message says why."""


def run(settings: Settings, args: argparse.Namespace) -> int:
    console = Console(emoji=False)  # model ids are not emoji codes
    for name in ("httpx", "httpcore"):  # one INFO line per call would bury the progress bar
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return asyncio.run(_probe(settings, args, console=console))
    except ProbeError as exc:
        console.print(f"[red]turnout probe: {exc}[/red]", highlight=False)
        return 2


async def _probe(settings: Settings, args: argparse.Namespace, *, console: Console) -> int:
    probe = settings.probe
    concurrency = args.concurrency or probe.concurrency
    if concurrency < 1 or (args.max_requests is not None and args.max_requests < 0):
        raise ProbeError("--concurrency must be >= 1 and --max-requests >= 0")
    ask = Ask(prompt=args.prompt or probe.prompt, max_tokens=args.max_tokens or probe.max_tokens,
              timeout_s=args.timeout or probe.timeout_s, stream=args.stream)
    endpoint = _endpoint(settings, args)
    async with httpx.AsyncClient(timeout=ask.timeout_s, limits=httpx.Limits(max_connections=concurrency + 4)) as client:
        targets = narrow(await _targets(settings, args, client), tier=args.tier, match=args.match, ids=args.ids)
        resumed: dict[str, ProbeResult] = {}
        if args.resume and Path(args.resume).is_file():
            try:
                resumed = fresh_results(Path(args.resume), ttl_s=args.resume_ttl or probe.resume_ttl_s,
                                        now=time.time())
            except ValueError as exc:
                raise ProbeError(str(exc)) from None
        per_day = None
        if endpoint.via == "openrouter":
            per_day, _ = await day_allowance(client, base_url=settings.openrouter_base_url, api_key=endpoint.api_key,
                                             settings=settings.pool.free_tier, timeout_s=settings.pool.health.timeout_s)
        elif settings.pool.free_tier.requests_per_day is not None:
            per_day = settings.pool.free_tier.requests_per_day
        budget = free_budget(settings.pool.free_tier, per_day=per_day, clock=time.time)
        free = settings.pool.free_tier
        plan = make_plan(targets, resumed=[t.model for t in targets if t.model in resumed],
                         max_requests=args.max_requests,
                         free_day_left=None if per_day is None else max(0, per_day - free.headroom),
                         per_minute=max(1, free.requests_per_minute - free.headroom), concurrency=concurrency)
        print_plan(console, plan, endpoint=endpoint, ask=ask)
        if args.dry_run:
            return 0
        report = Report(via=endpoint.via, base_url=endpoint.url, stream=ask.stream, started_at=time.time(),
                        results=[resumed[m] for m in plan.resumed])
        pacing = FreePacing(budget, max_wait_s=probe.max_free_wait_s)
        from turnout.probe.display import ProgressView, summary_table

        with ProgressView(len(plan.targets) + len(plan.capped)) as view:
            def on_result(result: ProbeResult) -> None:
                report.results.append(result)
                view.add(result)

            try:
                await run_plan(plan, client=client, endpoint=endpoint, ask=ask, pacing=pacing, on_result=on_result,
                               call=probe_model)
            except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels us; keep what finished
                report.interrupted = True
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
        report.finished_at = time.time()
        report.write(Path(args.report))
        console.print(summary_table(report.summary(), interrupted=report.interrupted))
        console.print(f"report: {args.report}", highlight=False)
        if args.feed:
            await _feed(client, settings=settings, args=args, report=report, console=console)
    return INTERRUPTED if report.interrupted else 0


def _endpoint(settings: Settings, args: argparse.Namespace) -> Endpoint:
    if args.gateway:
        key = args.api_key or (settings.api_keys[0].get_secret_value() if settings.api_keys else None)
        return Endpoint(url=f"{args.gateway.rstrip('/')}/v1/chat/completions", api_key=key, via="gateway")
    if settings.openrouter_api_key is None and not args.dry_run:
        raise ProbeError("no OPENROUTER_API_KEY: set it to probe OpenRouter, or probe a gateway with --gateway URL")
    key = settings.openrouter_api_key.get_secret_value() if settings.openrouter_api_key else None
    return Endpoint(url=f"{settings.openrouter_base_url}/chat/completions", api_key=key, via="openrouter")


async def _targets(settings: Settings, args: argparse.Namespace, client: httpx.AsyncClient) -> list[Target]:
    try:
        if args.gateway:
            key = args.api_key or (settings.api_keys[0].get_secret_value() if settings.api_keys else None)
            response = await client.get(f"{args.gateway.rstrip('/')}/v1/models",
                                        headers={"Authorization": f"Bearer {key}"} if key else {})
            if response.status_code != 200:
                raise ProbeError(f"{args.gateway}/v1/models answered HTTP {response.status_code}")
            return from_gateway(response.json())
        from turnout.pool.pipeline import id_lists
        from turnout.pool.report import live_pool, read_catalogue

        if args.source == "catalogue":
            catalogue, _ = await read_catalogue(settings, client, catalogue_file=args.catalogue)
            allow, block = id_lists(settings)
            return from_catalogue(catalogue, settings, now=time.time(), allow=allow, block=block)
        return from_pool(await live_pool(settings, catalogue_file=args.catalogue, health=not args.no_health))
    except (httpx.HTTPError, ValueError, OSError) as exc:
        raise ProbeError(f"could not read the models to probe: {type(exc).__name__}: {exc}") from None


def print_plan(console: Console, plan: Plan, *, endpoint: Endpoint, ask: Ask) -> None:
    typical = min(ask.timeout_s, 5.0)
    lines = [
        f"probe plan: {len(plan.targets)} models via {endpoint.via} ({endpoint.url})",
        f"  free {plan.free}, paid {plan.paid}; {plan.concurrency} at a time; "
        f"free paced at {plan.per_minute}/min"
        + ("" if plan.free_day_left is None else f", {plan.free_day_left} free calls left today"),
    ]
    if plan.free_day_left is not None and plan.free > plan.free_day_left:
        lines.append(f"  {plan.free - plan.free_day_left} free models will be skipped: the day's free quota")
    if plan.resumed:
        lines.append(f"  {len(plan.resumed)} models skipped: probed within the resume TTL")
    if plan.capped:
        lines.append(f"  {len(plan.capped)} models left out by --max-requests")
    lines.append(f"  estimated duration: ~{_duration(plan.estimate_s(typical))} "
                 f"(at {typical:g} s a call; at most ~{_duration(plan.estimate_s(ask.timeout_s))})")
    for line in lines:
        console.print(line, highlight=False)


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


async def _feed(client: httpx.AsyncClient, *, settings: Settings, args: argparse.Namespace, report: Report,
                console: Console) -> None:
    key = args.admin_key or (settings.admin_key.get_secret_value() if settings.admin_key else None)
    body = {"results": [{"model": r.model, "ok": r.ok, "kind": r.kind, "status": r.status,
                         "latency_s": r.latency_s or 0.0, "retry_after_s": r.retry_after_s}
                        for r in report.results if r.tested]}
    try:
        response = await client.post(f"{args.feed.rstrip('/')}/admin/probe", json=body,
                                     headers={"Authorization": f"Bearer {key}"} if key else {})
    except httpx.HTTPError as exc:
        console.print(f"[red]feed failed: {type(exc).__name__}[/red]", highlight=False)
        return
    if response.status_code != 200:
        console.print(f"[red]feed failed: HTTP {response.status_code}: {response.text[:200]}[/red]", highlight=False)
        return
    answer = response.json()
    console.print(f"fed {answer.get('recorded', 0)} results to {args.feed}; benched: "
                  f"{', '.join(answer.get('benched', [])) or 'none'}", highlight=False)
