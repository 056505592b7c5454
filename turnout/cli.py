"""`turnout` command line: serve (default), pool, probe, sandbox.

Imports stay lazy so `turnout --help` answers without loading LiteLLM.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from types import FrameType
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="turnout", description="A self-healing OpenAI-compatible gateway.")
    sub = parser.add_subparsers(dest="command")
    serve_cmd = sub.add_parser("serve", help="run the gateway (default)")
    serve_cmd.add_argument("--workers", type=int, default=None,
                           help="processes on this host (default: TURNOUT_WORKERS or 1); more than 1 needs "
                                "shared_state (Redis) or shared_state.accept_per_process_state")
    pool = sub.add_parser("pool", help="print the pool the current catalogue gives")
    pool.add_argument("--format", choices=["table", "json", "litellm"], default="table")
    pool.add_argument("--catalogue", help="read the catalogue from this JSON file instead of OpenRouter")
    pool.add_argument("--no-health", action="store_true", help="skip the /endpoints health reads")
    probe = sub.add_parser("probe", help="call every model once and report what answered")
    from turnout.probe.arguments import add_arguments

    add_arguments(probe)
    sandbox = sub.add_parser("sandbox", help="run the sandbox OpenRouter on its own")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)

    if args.command == "sandbox":
        from turnout.sandbox.__main__ import main as sandbox_main

        return int(sandbox_main(["--host", args.host, "--port", str(args.port)]) or 0)

    from turnout.config import ConfigError, load_settings

    overrides = {"workers": args.workers} if getattr(args, "workers", None) is not None else {}
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"turnout: {exc}", file=sys.stderr)
        return 2
    from turnout.observability.logs import configure_logging

    configure_logging(settings.log_level)
    if args.command == "pool":
        return _pool(settings, args)
    if args.command == "probe":
        from turnout.probe import command

        return command.run(settings, args)
    return serve(settings)


def _pool(settings: Any, args: argparse.Namespace) -> int:
    import httpx

    from turnout.pool.catalogue import CatalogueError
    from turnout.pool.report import CatalogueFileError, print_pool

    try:
        return print_pool(settings, fmt=args.format, catalogue_file=args.catalogue, health=not args.no_health)
    except CatalogueFileError as exc:
        print(f"turnout pool: --catalogue {exc}", file=sys.stderr)
        return 2
    except (CatalogueError, httpx.HTTPError) as exc:
        print(f"turnout pool: the catalogue could not be read from {settings.openrouter_base_url}: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def serve(settings: Any) -> int:
    import uvicorn

    from turnout.api.http_limits import uvicorn_options
    from turnout.main import create_app
    from turnout.observability.logs import flush_logs

    # uvicorn re-raises SIGTERM once it has shut down gracefully; with the default action the
    # process would die holding its last batched log lines ("Application shutdown complete").
    signal.signal(signal.SIGTERM, _flush_logs_then_die)
    if settings.workers > 1:
        # Each worker process builds its own app (and Settings) from the same environment and file.
        os.environ["TURNOUT_WORKERS"] = str(settings.workers)
        app: Any = "turnout.main:app_from_env"
    else:
        app = create_app(settings)
    try:
        uvicorn.run(
            app,
            factory=settings.workers > 1,
            workers=settings.workers if settings.workers > 1 else None,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s) or None,
            **uvicorn_options(settings),
        )
    finally:
        flush_logs()
    return 0


def _flush_logs_then_die(signum: int, frame: FrameType | None) -> None:
    from turnout.observability.logs import flush_logs

    flush_logs()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


if __name__ == "__main__":
    raise SystemExit(main())
