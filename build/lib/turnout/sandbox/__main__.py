"""`python -m turnout.sandbox`: run the fake OpenRouter until SIGINT/SIGTERM.

`--plan` takes a JSON file holding a `FaultPlan`, or the word `realistic`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from turnout.sandbox.control import describe
from turnout.sandbox.faults import FaultPlan
from turnout.sandbox.model_list import ModelListError
from turnout.sandbox.server import SandboxServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m turnout.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--catalogue", type=Path, default=None, help="saved GET /models JSON")
    parser.add_argument("--plan", default=None, help="fault plan JSON file, or 'realistic'")
    parser.add_argument("--require-key", default=None, help="only accept this bearer token")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load_plan(value: str | None, seed: int) -> FaultPlan | None:
    if value is None:
        return None
    if value == "realistic":
        return FaultPlan.realistic(seed)
    return FaultPlan.model_validate_json(Path(value).read_bytes())


async def serve(args: argparse.Namespace, plan: FaultPlan | None) -> None:
    server = SandboxServer(
        catalogue_path=args.catalogue, plan=plan, require_key=args.require_key, seed=args.seed
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await server.start(host=args.host, port=args.port)
    try:
        print(server.base_url, flush=True)
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        plan = load_plan(args.plan, args.seed)
        asyncio.run(serve(args, plan))
    except ValidationError as exc:
        print(f"invalid fault plan: {describe(exc)}", file=sys.stderr)
        return 2
    except (OSError, ModelListError) as exc:
        print(f"sandbox failed to start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
