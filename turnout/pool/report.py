"""`turnout pool`: the pool the current catalogue gives, as a table, JSON, or a LiteLLM proxy config."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from turnout.config import Settings
from turnout.pool.catalogue import Catalogue, fetch_catalogue, parse_catalogue
from turnout.pool.model import OPENROUTER_CREDENTIAL, Pool
from turnout.pool.pipeline import pool_from_catalogue
from turnout.pool.provider_health import PassiveStats

BUNDLED_CATALOGUE = Path(__file__).resolve().parent.parent / "data" / "openrouter" / "models-2026-08-19.json"


async def read_catalogue(settings: Settings, client: httpx.AsyncClient, *,
                         catalogue_file: str | None) -> tuple[Catalogue, bool]:
    """The catalogue `turnout pool` and `turnout probe` work from, and whether it is OpenRouter's
    live one (a file, or the bundled snapshot without a key, is not: no /endpoints to read)."""
    key = settings.openrouter_api_key.get_secret_value() if settings.openrouter_api_key else None
    if catalogue_file or key is None:
        path = Path(catalogue_file) if catalogue_file else BUNDLED_CATALOGUE
        if key is None and not catalogue_file:
            print(f"no OPENROUTER_API_KEY: using the bundled catalogue snapshot {path.name}", file=sys.stderr)
        return parse_catalogue(read_catalogue_file(path), now=time.time()), False
    payload = await fetch_catalogue(client, base_url=settings.openrouter_base_url, api_key=key,
                                    timeout_s=settings.pool.health.timeout_s * 4)
    return parse_catalogue(payload, now=time.time()), True


async def live_pool(settings: Settings, *, catalogue_file: str | None, health: bool) -> Pool:
    """The pool the gateway would build now: the refresh's own pipeline (`pool_from_catalogue`),
    with no previous pool to hold seats and no passive health of its own traffic."""
    now = time.time()
    key = settings.openrouter_api_key.get_secret_value() if settings.openrouter_api_key else None
    async with httpx.AsyncClient(timeout=settings.pool.health.timeout_s * 4) as client:
        catalogue, live = await read_catalogue(settings, client, catalogue_file=catalogue_file)
        if not (health and live):
            pool_settings = settings.pool.model_copy(
                update={"health": settings.pool.health.model_copy(update={"enabled": False})})
            settings = settings.model_copy(update={"pool": pool_settings})
        assembled = await pool_from_catalogue(
            catalogue=catalogue, settings=settings, http=client,
            base_url=settings.openrouter_base_url, api_key=key, previous=None, previous_health={},
            passive=PassiveStats().snapshot(), now=now)
    return assembled.pool


class CatalogueFileError(Exception):
    """The `--catalogue` file cannot be used; the message names it (one line, no traceback)."""


def read_catalogue_file(path: Path) -> dict[str, Any]:
    """An OpenRouter `GET /models` body: `{"data": [{"id": ...}, ...]}`."""
    try:
        payload: Any = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CatalogueFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise CatalogueFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CatalogueFileError(f"{path}: not JSON ({exc})") from None
    entries = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        raise CatalogueFileError(f"{path}: not an OpenRouter catalogue (expected an object with a 'data' list of "
                                 "models, as GET /api/v1/models returns)")
    if entries and not any(isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries):
        raise CatalogueFileError(f"{path}: its 'data' list holds no model with an 'id'")
    catalogue: dict[str, Any] = payload
    return catalogue


def print_pool(settings: Settings, *, fmt: str, catalogue_file: str | None, health: bool) -> int:
    pool = asyncio.run(live_pool(settings, catalogue_file=catalogue_file, health=health))
    if fmt == "json":
        text = json.dumps(pool.to_json(), indent=2)
    elif fmt == "litellm":
        text = litellm_yaml(pool)
    else:
        text = table(pool)
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `turnout pool | head`: the reader has what it wanted
        # Point stdout at /dev/null so the interpreter's last flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def table(pool: Pool) -> str:
    rows = [("alias", "rank", "model", "tier", "context", "score", "health", "weight")]
    for group in pool.groups.values():
        if group.kind == "model":
            continue
        for member in group.members:
            dep = pool.deployments[member.deployment_id]
            rows.append((group.name, str(member.rank), dep.model, dep.tier, str(dep.context_length or "-"),
                         f"{member.score:.3f}", "-" if member.health is None else f"{member.health:.2f}",
                         str(member.weight)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def litellm_yaml(pool: Pool) -> str:
    """A LiteLLM proxy config for people who run the proxy instead of Turnout."""
    import yaml

    model_list = []
    for group in pool.groups.values():
        for member in group.members:
            dep = pool.deployments[member.deployment_id]
            params: dict[str, Any] = {"model": dep.litellm_model, "weight": member.weight, "order": member.order}
            if dep.credential == OPENROUTER_CREDENTIAL:
                params["api_key"] = "os.environ/OPENROUTER_API_KEY"
            elif dep.credential and dep.credential.startswith("env:"):
                params["api_key"] = f"os.environ/{dep.credential[4:]}"
            if dep.api_base and dep.credential != OPENROUTER_CREDENTIAL:
                params["api_base"] = dep.api_base
            model_list.append({"model_name": group.name, "litellm_params": params,
                               "model_info": {"id": f"{dep.id}@{group.name}"}})
    router_settings: dict[str, Any] = {"routing_strategy": "simple-shuffle"}
    fallbacks = [{g.name: list(g.fallbacks)} for g in pool.groups.values() if g.fallbacks]
    context = [{g.name: list(g.context_window_fallbacks)} for g in pool.groups.values() if g.context_window_fallbacks]
    if fallbacks:
        router_settings["fallbacks"] = fallbacks
    if context:
        router_settings["context_window_fallbacks"] = context
    header = f"# Generated by `turnout pool --format litellm` at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}\n"
    return header + yaml.safe_dump({"model_list": model_list, "router_settings": router_settings}, sort_keys=False)
