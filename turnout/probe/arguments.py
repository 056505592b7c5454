"""`turnout probe`'s flags: argparse only, so `turnout --help` stays light."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to probe")
    what.add_argument("--source", choices=["pool", "catalogue"], default="pool",
                      help="the pool the gateway would build now (default), or every model passing the pool filters")
    what.add_argument("--catalogue", help="read the catalogue from this JSON file instead of OpenRouter")
    what.add_argument("--no-health", action="store_true", help="--source pool: skip the /endpoints health reads")
    what.add_argument("--tier", choices=["free", "paid"])
    what.add_argument("--match", action="append", default=[], help="keep models whose id contains this (repeatable)")
    what.add_argument("--ids", nargs="+", default=[], help="exactly these model ids")
    what.add_argument("--gateway", help="probe through a running Turnout at this URL (its /v1/models are the source)")
    what.add_argument("--api-key", help="--gateway: the client key (default: the first of TURNOUT_API_KEYS)")
    how = parser.add_argument_group("how")
    how.add_argument("--concurrency", type=int, help="calls in flight at once (default: probe.concurrency)")
    how.add_argument("--timeout", type=float, help="seconds per call (default: probe.timeout_s)")
    how.add_argument("--max-tokens", type=int, help="default: probe.max_tokens")
    how.add_argument("--prompt", help="default: probe.prompt")
    how.add_argument("--stream", action="store_true", help="stream the answers and measure time to first token")
    how.add_argument("--max-requests", type=int, help="call at most this many models")
    how.add_argument("--dry-run", action="store_true", help="print the plan and its estimated duration, call nothing")
    out = parser.add_argument_group("report")
    out.add_argument("--report", default="probe-report.json", help="where the JSON report goes")
    out.add_argument("--resume", help="skip the models this earlier report probed within --resume-ttl")
    out.add_argument("--resume-ttl", type=float, help="seconds (default: probe.resume_ttl_s)")
    out.add_argument("--feed", help="POST the results to this gateway's /admin/probe (passive health, cooldowns)")
    out.add_argument("--admin-key", help="--feed: the admin key (default: TURNOUT_ADMIN_KEY)")
