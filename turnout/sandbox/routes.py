"""OpenRouter's HTTP API, as served by the sandbox (everything under /api/v1)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from turnout.sandbox.calls import redact_headers
from turnout.sandbox.completions import (
    BadRequest,
    CompletionRequest,
    ResponseMeta,
    build_answer,
    check_capabilities,
    completion_body,
    error_chunk,
    parse_chat,
    stream_chunks,
    usage_body,
)
from turnout.sandbox.control import add_control_routes
from turnout.sandbox.decide import CallContext, Fate
from turnout.sandbox.directives import directed
from turnout.sandbox.endpoints import endpoints_body, primary_provider
from turnout.sandbox.error_bodies import http_error
from turnout.sandbox.replies import SERVER_KEY, error_response, json_response
from turnout.sandbox.streaming import (
    StreamFault,
    StreamPlan,
    close_connection,
    stream_fault,
    write_stream,
)

if TYPE_CHECKING:
    from turnout.sandbox.server import SandboxServer

_log = logging.getLogger(__name__)
_INVALID = object()


def build_app(server: SandboxServer, *, client_max_size: int) -> web.Application:
    app = web.Application(middlewares=[_error_shape], client_max_size=client_max_size)
    app[SERVER_KEY] = server
    app.router.add_get("/api/v1/models", models_list)
    app.router.add_get("/api/v1/models/{author}/{slug}/endpoints", model_endpoints)
    app.router.add_get("/api/v1/key", key_info)
    app.router.add_get("/api/v1/credits", credits_info)
    app.router.add_post("/api/v1/chat/completions", chat_completions)
    add_control_routes(app)
    return app


@web.middleware
async def _error_shape(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error leaves in OpenRouter's shape, even aiohttp's own 404/405/413."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason)
    except ConnectionError:
        raise
    except Exception:
        _log.exception("sandbox handler failed")
        return error_response(500, "Internal Server Error")


def _bearer(request: web.BaseRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _check_key(request: web.BaseRequest, require_key: str | None) -> None:
    token = _bearer(request)
    if token is None:
        raise BadRequest(401, "No auth credentials found")
    if require_key is not None and token != require_key:
        raise BadRequest(401, "User not found.")


async def _hang(request: web.Request, server: SandboxServer) -> web.StreamResponse:
    await server.wait_stopped()
    close_connection(request, reset=True)
    return web.Response()


# -- catalogue ------------------------------------------------------------


async def models_list(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER_KEY]
    plan = server.plan
    if plan.catalogue_hang:
        return await _hang(request, server)
    if plan.catalogue_error is not None:
        code = plan.catalogue_error
        return json_response(http_error(code, model_id="", provider=""), status=code)
    return web.Response(body=server.catalogue.models_body(), content_type="application/json")


async def model_endpoints(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER_KEY]
    if server.require_key is not None:
        try:
            _check_key(request, server.require_key)
        except BadRequest as exc:
            return error_response(exc.code, exc.message)
    slug = f"{request.match_info['author']}/{request.match_info['slug']}"
    model = server.catalogue.lookup_slug(slug)
    if model is None:
        return error_response(404, f"No endpoints found for {slug}.")
    faults = server.faults_for(model)
    if faults.endpoints_error is not None:
        code = faults.endpoints_error
        return json_response(http_error(code, model_id=model.id, provider=""), status=code)
    authenticated = "Authorization" in request.headers
    return json_response(endpoints_body(model, faults, authenticated=authenticated))


async def key_info(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER_KEY]
    try:
        _check_key(request, server.require_key)
    except BadRequest as exc:
        return error_response(exc.code, exc.message)
    spent = server.spent
    free = server.free_tier.status()
    data = {
        "label": "sandbox",
        "limit": None,
        "limit_remaining": None,
        "limit_reset": None,
        "include_byok_in_limit": False,
        "usage": spent,
        "usage_daily": spent,
        "usage_weekly": spent,
        "usage_monthly": spent,
        "byok_usage": 0,
        "is_free_tier": server.plan.free_tier.is_free_tier,
        "is_provisioning_key": False,
        "rate_limit": {"requests": 20, "interval": "10s"},
        "expires_at": None,
        "sandbox_free_tier": free,
        # OpenRouter's account-wide daily counter of free-model requests (UTC day).
        "free_model_daily_requests": {"limit": free["per_day"], "remaining": free["remaining_today"],
                                      "used": free["used_today"]},
    }
    return json_response({"data": data})


async def credits_info(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER_KEY]
    try:
        _check_key(request, server.require_key)
    except BadRequest as exc:
        return error_response(exc.code, exc.message)
    credits = 0 if server.plan.free_tier.is_free_tier else 10
    return json_response({"data": {"total_credits": credits, "total_usage": server.spent}})


# -- chat -----------------------------------------------------------------


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return _INVALID


async def chat_completions(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER_KEY]
    body = await _read_json(request)
    recorded = body if isinstance(body, dict) else {}
    model_id = recorded.get("model")
    headers = redact_headers(request.headers)

    def record(outcome: str) -> None:
        server.log.record(
            model=model_id if isinstance(model_id, str) else "",
            body=recorded,
            headers=headers,
            outcome=outcome,
            stream=recorded.get("stream") is True,
        )

    try:
        _check_key(request, server.require_key)
        if body is _INVALID:
            raise BadRequest(400, "Invalid JSON in request body")
        chat = parse_chat(body)
        model = server.catalogue.get(chat.model_id)
        if model is None:
            raise BadRequest(400, f"{chat.model_id} is not a valid model ID")
        check_capabilities(chat, model)
    except BadRequest as exc:
        record(str(exc.code))
        return error_response(exc.code, exc.message)

    faults = server.faults_for(model)
    ctx = CallContext(request=chat, model=model, provider=primary_provider(model.id), faults=faults)
    fate = server.decide(ctx)
    if fate.kind == "hang":
        record(fate.outcome)
        return await _hang(request, server)
    if fate.kind in ("reset", "error"):
        record(fate.outcome)
        await server.pause(faults.latency_ms)
        return _fail(request, fate)
    meta = ResponseMeta(model_id=model.id, provider=ctx.provider, created=int(time.time()))
    if fate.kind == "error_200":
        record(fate.outcome)
        await server.pause(faults.latency_ms)
        return await _error_200(request, server, ctx, meta, fate)
    return await _answer(request, server, ctx, meta, fate, record)


async def _truncated(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """A JSON answer that stops halfway: the Content-Length promises the whole body."""
    data = json.dumps(body).encode()
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(data)
    await response.prepare(request)
    await response.write(data[: len(data) // 2])
    close_connection(request)
    return response


def _fail(request: web.Request, fate: Fate) -> web.StreamResponse:
    if fate.kind == "reset":
        close_connection(request, reset=True)
        return web.Response()
    return json_response(fate.body, status=fate.status, headers=dict(fate.headers))


async def _error_200(
    request: web.Request,
    server: SandboxServer,
    ctx: CallContext,
    meta: ResponseMeta,
    fate: Fate,
) -> web.StreamResponse:
    assert fate.body is not None
    if not ctx.request.stream:
        return json_response(fate.body)
    chunk = error_chunk(meta, fate.body["error"])
    tail = StreamFault("no_done" if ctx.faults.no_done else "ok", 1)
    plan = StreamPlan(chunks=[chunk], fault=tail, faults=ctx.faults, error_chunk=chunk)
    return await write_stream(request, plan, pause=server.pause, wait_stopped=server.wait_stopped)


async def _answer(
    request: web.Request,
    server: SandboxServer,
    ctx: CallContext,
    meta: ResponseMeta,
    fate: Fate,
    record: Callable[[str], None],
) -> web.StreamResponse:
    chat: CompletionRequest = ctx.request
    content_filter = fate.outcome == "content_filter"
    answer = None if content_filter else directed(chat)
    if answer is None:
        answer = build_answer(
            chat,
            reasoning_only=ctx.faults.reasoning_only,
            content_filter=content_filter,
            words=server.plan.answer_words,
        )
    usage = usage_body(chat, answer, ctx.model)
    if not chat.stream:
        await server.pause(ctx.faults.latency_ms)
        if ctx.faults.truncate_json:
            record("truncated_json")
            return await _truncated(request, completion_body(meta, answer, usage))
        record(fate.outcome)
        server.charge(usage["cost"])
        return json_response(completion_body(meta, answer, usage))
    chunks = stream_chunks(meta, answer, usage)
    fault = stream_fault(ctx.faults, len(chunks))
    record(fate.outcome if fault.kind == "ok" else fault.kind)
    if fault.kind in ("ok", "no_done"):
        server.charge(usage["cost"])
    failure = http_error(502, model_id=ctx.model.id, provider=ctx.provider)["error"]
    plan = StreamPlan(
        chunks=chunks, fault=fault, faults=ctx.faults, error_chunk=error_chunk(meta, failure)
    )
    await server.pause(ctx.faults.latency_ms)
    return await write_stream(request, plan, pause=server.pause, wait_stopped=server.wait_stopped)
