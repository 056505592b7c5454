"""The app factory and the lifespan that owns every resource and background task."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import aiohttp
import httpx
from fastapi import FastAPI

from turnout.api import (
    admin,
    images,
    models,
    readiness,
    scrape,
    status,
)
from turnout.api.deps import AppState
from turnout.api.error_shapes import install_error_handlers
from turnout.api.gateway import Gateway
from turnout.api.hosts import HostCheck
from turnout.config import Settings
from turnout.observability.logs import FLUSH_INTERVAL_S, flush_logs
from turnout.observability.metrics import Metrics, MetricsObserver, RefreshMetrics
from turnout.observability.redaction import LogRedaction, Redactor
from turnout.observability.tenant_metrics import TenantMetrics
from turnout.pool.provider_health import PassiveStats
from turnout.pool.refresh import PoolManager
from turnout.routing.admission import LocalAdmission
from turnout.routing.credits import PaidCredits
from turnout.routing.engine import Engine
from turnout.routing.feedback import PassiveFeedback
from turnout.routing.free_tier import FreeTierBudget
from turnout.routing.publisher import SnapshotPublisher
from turnout.routing.snapshot import SnapshotHolder, load_router_library
from turnout.routing.sticky import InProcessPins, PinStore, StickySessions
from turnout.routing.tenants import InProcessSpend, KeyRing, SpendStore, Tenancy, day_of
from turnout.shared.files import BudgetFile
from turnout.upstream.openai_wire import OpenAIWire

if TYPE_CHECKING:
    from turnout.shared.state import SharedState

log = logging.getLogger("turnout")
USAGE_SAVE_S = 5.0
SANDBOX_NOTICE = "no OPENROUTER_API_KEY: serving the sandbox catalogue with simulated answers"


def create_app(settings: Settings) -> FastAPI:
    app = Gateway(
        title="Turnout",
        version="0.1.0",
        description="A self-healing OpenAI-compatible gateway.",
        lifespan=_lifespan,
        # Swagger UI and ReDoc load their scripts from a CDN: not served. /openapi.json is.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.host_check = HostCheck.for_settings(settings)
    app.redactor = Redactor.for_settings(settings)
    install_error_handlers(app)
    for module in (models, images, readiness, admin, scrape, status):
        app.include_router(module.router)
    return app


def app_from_env() -> FastAPI:
    """`turnout serve --workers N`: each worker process builds its app from the environment."""
    from turnout.api.http_limits import WorkerHttpToolsProtocol
    from turnout.config import load_settings
    from turnout.observability.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    WorkerHttpToolsProtocol.limits = settings.server
    return create_app(settings)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    redactor: Redactor = app.redactor  # type: ignore[attr-defined]
    _quiet_libraries()
    async with contextlib.AsyncExitStack() as stack:
        if redactor:
            log_filter = LogRedaction(redactor)
            for handler in logging.getLogger().handlers:
                handler.addFilter(log_filter)
                stack.callback(handler.removeFilter, log_filter)
        # Worker threads (the refresh's pure steps, persistence) give the GIL back to the event
        # loop after 1 ms instead of 5: a refresh under load delays requests by at most that.
        stack.callback(sys.setswitchinterval, sys.getswitchinterval())
        sys.setswitchinterval(0.001)
        if settings.use_sandbox:
            from turnout.sandbox import SandboxServer

            sandbox = SandboxServer()
            await sandbox.start(host="127.0.0.1", port=0)
            stack.push_async_callback(sandbox.stop)
            log.warning("%s (sandbox at %s)", SANDBOX_NOTICE, sandbox.base_url)
            # The sandbox's pool and catalogue are persisted apart from the live ones: a later start
            # with a key and OpenRouter down must not serve the sandbox's pool as the last good one.
            settings = settings.model_copy(update={"openrouter_base_url": sandbox.base_url,
                                                   "data_dir": settings.data_dir / "sandbox"})
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1024, ttl_dns_cache=300, enable_cleanup_closed=True),
            auto_decompress=True,
        )
        stack.push_async_callback(session.close)
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=settings.pool.health.timeout_s))
        holder = SnapshotHolder()
        stack.callback(holder.close)
        budget = FreeTierBudget(settings.pool.free_tier)
        budget_file = BudgetFile(settings.data_dir, budget)
        budget_file.load()  # a restart remembers what the account spent today
        stack.callback(budget_file.save)
        local = LocalAdmission(budget)
        shared = await _shared_state(settings, holder=holder, local=local, stack=stack)
        passive = shared.passive if shared is not None else PassiveStats()
        metrics = Metrics(version=app.version)
        api_key = settings.openrouter_api_key.get_secret_value() if settings.openrouter_api_key else None
        credits = PaidCredits()
        manager = PoolManager(settings=settings, outlet=SnapshotPublisher(holder, settings=settings, busy=metrics.busy),
                              credits=credits, http=http, base_url=settings.openrouter_base_url,
                              api_key=api_key or ("sandbox" if settings.use_sandbox else None), passive=passive,
                              budget=budget, observer=RefreshMetrics(metrics), busy=metrics.busy,
                              after_key=shared.push_budget if shared is not None else None)
        leader = shared.lead(manager) if shared is not None else None
        if leader is not None:
            manager.set_leader(may_refresh=leader.may_refresh, on_published=leader.published)
        pins: PinStore = shared.pins if shared is not None else InProcessPins(max_entries=settings.sessions.max_entries)
        sessions = StickySessions(settings=settings, store=pins, on_result=metrics.pinned)
        engine = Engine(settings=settings, wire=OpenAIWire(session, connect_s=settings.timeouts.connect_s),
                        budget=budget, holder=holder, observer=PassiveFeedback(passive, then=MetricsObserver(metrics)),
                        sessions=sessions, admission=shared.admission if shared is not None else local,
                        on_bench=shared.cooldowns.benched if shared is not None else None, credits=credits)
        metrics.watch(budget=budget, manager=manager, holder=holder, engine=engine,
                      shared=shared.status if shared is not None else None)
        tenancy, spend = await _tenancy(settings, metrics, stack, shared)
        app.state.turnout = AppState(settings=settings, holder=holder, engine=engine, budget=budget,
                                     manager=manager, tenancy=tenancy, passive=passive,
                                     extras={"metrics": metrics, "shared": shared}, redactor=redactor)
        if await asyncio.to_thread(load_router_library):
            # LiteLLM's import leaves ~300k objects that live as long as the process. Frozen, the
            # cyclic GC never scans them again: a full collection takes ~8 ms instead of ~130 ms
            # (the request latency tail); Routers built later stay collectable when retired.
            gc.collect()
            gc.freeze()
            stack.callback(gc.unfreeze)
        if leader is not None:
            await leader.start()
        else:
            await manager.start()
        tasks = [asyncio.create_task(manager.run(), name="turnout-refresh"),
                 asyncio.create_task(budget_file.run(), name="turnout-budget-file"),
                 asyncio.create_task(_flush_logs_every(FLUSH_INTERVAL_S), name="turnout-log-flush"),
                 asyncio.create_task(_save_usage_every(tenancy, spend, USAGE_SAVE_S), name="turnout-usage-save")]
        if shared is not None:
            tasks.append(asyncio.create_task(shared.run(), name="turnout-shared-sync"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            flush_logs()


async def _shared_state(settings: Settings, *, holder: SnapshotHolder, local: LocalAdmission,
                        stack: contextlib.AsyncExitStack) -> SharedState | None:
    """Redis-backed state when `shared_state` names a server; None keeps everything in process."""
    if not settings.shared_state.enabled:
        return None
    from turnout.shared.state import SharedState

    shared = SharedState(settings, holder=holder, local=local)
    await shared.start()
    stack.push_async_callback(shared.close)
    return shared


async def _tenancy(settings: Settings, metrics: Metrics, stack: contextlib.AsyncExitStack,
                   shared: SharedState | None) -> tuple[Tenancy, InProcessSpend]:
    """Named keys and their usage; the spend is read from and saved to `data_dir/usage.json`,
    and shared by every replica through Redis when `shared_state` is configured."""
    keys = KeyRing(settings)
    local = InProcessSpend(settings.data_dir / "usage.json")
    await asyncio.to_thread(local.load)
    store: SpendStore = local
    if shared is not None:
        from turnout.shared.spend import RedisSpend

        store = RedisSpend(shared.link, local)
    counters = TenantMetrics(metrics.registry, keys)
    tenancy = Tenancy(keys=keys, store=store, on_usage=counters.usage, on_reject=counters.reject)
    stack.push_async_callback(_save_usage, tenancy, local)  # on shutdown, after the requests in flight
    return tenancy, local


async def _save_usage(tenancy: Tenancy, local: InProcessSpend) -> None:
    if local.dirty:
        await asyncio.to_thread(local.write, local.rows_to_save(today=day_of(tenancy.clock())))


async def _save_usage_every(tenancy: Tenancy, local: InProcessSpend, seconds: float) -> None:
    """A crash loses at most `seconds` of spend."""
    while True:
        await asyncio.sleep(seconds)
        await _save_usage(tenancy, local)


async def _flush_logs_every(seconds: float) -> None:
    """Batched log lines (turnout.observability.logs) reach stderr at most `seconds` late, traffic or not."""
    while True:
        await asyncio.sleep(seconds)
        flush_logs()


def _quiet_libraries() -> None:
    """LiteLLM logs every routing decision and httpx every request at INFO; keep our logs readable."""
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
