"""POST /v1/chat/completions — JSON and SSE, served as plain ASGI.

The hot path does not go through FastAPI: routing, dependency solving, the exception
middleware and Starlette's Response classes were a third of a request's CPU
(bench/RESULTS.md). `Gateway.__call__` hands this path to `serve`, which does by hand what
a route would get: the client key, the request id, metering, OpenAI-shaped errors (built
by `turnout.api.error_shapes`, the edge), and cancelling the upstream call when the client leaves.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from turnout.api.asgi import (
    JSON_TYPE,
    DisconnectWatch,
    Headers,
    Reply,
    RequestHead,
    header_value,
    read_json,
    send_error,
)
from turnout.api.deps import AppState, identify
from turnout.api.error_shapes import INTERNAL_ERROR, error_body
from turnout.api.scrape import metrics_of
from turnout.api.surface import EdgeRequest, StreamEvents, Surface
from turnout.config import Settings
from turnout.encoding import dumps
from turnout.errors import ClientClosedRequest, GatewayError, MethodNotAllowed, NotReady
from turnout.observability.request_log import RequestLog
from turnout.observability.usage import Cost
from turnout.routing.engine import Outcome
from turnout.routing.request import ChatRequest, parse_chat_request
from turnout.routing.snapshot import Snapshot
from turnout.routing.sticky import session_key
from turnout.routing.tenants import Caller
from turnout.upstream.failures import AttemptError
from turnout.upstream.openai_wire import Frame

CHAT_PATH = "/v1/chat/completions"
log = logging.getLogger("turnout.api")
_NON_NULL_OPTIONAL = ("system_fingerprint", "service_tier")
_FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
_SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no")]
_DONE = b"data: [DONE]\n\n"


class ChatSurface:
    """Chat completions as they came: the body goes to the engine as is, frames leave as they arrived."""

    api = "chat"
    path = CHAT_PATH

    def error_body(self, exc: GatewayError) -> bytes:
        return error_body(exc)

    def authorization(self, head: RequestHead) -> str | None:
        return head.get(b"authorization")

    def parse(self, body: Any, settings: Settings) -> EdgeRequest:
        return EdgeRequest(chat=parse_chat_request(body, max_messages=settings.max_messages,
                                                   allowed_plugins=settings.pool.allowed_plugins))

    def answer(self, payload: dict[str, Any], outcome: Outcome[Any], request: EdgeRequest) -> dict[str, Any]:
        return payload

    def events(self, request: EdgeRequest, outcome: Outcome[Any]) -> StreamEvents:
        return _ChatFrames(include_usage=request.chat.include_usage)


class _ChatFrames:
    __slots__ = ("_include_usage",)

    def __init__(self, *, include_usage: bool) -> None:
        self._include_usage = include_usage

    def frame(self, frame: Frame) -> bytes:
        data = frame.data
        if data is None:
            return b"data: " + frame.raw + b"\n\n"
        if self._include_usage or data.get("choices"):
            return b"data: " + _clean_frame(frame) + b"\n\n"
        return b""

    def end(self) -> bytes:
        return _DONE

    def fail(self, message: str, *, type_: str, code: str, request_id: str) -> bytes:
        return _error_frame(message, type_=type_, code=code, request_id=request_id) + _DONE


CHAT = ChatSurface()


async def serve(state: AppState | None, scope: Scope, receive: Receive, send: Send, *,
                surface: Surface = CHAT) -> None:
    """One request of `surface`'s API, from the first header to the last byte; never raises."""
    head = RequestHead(scope)
    request_id = head.request_id()
    if state is None:  # the lifespan has not built the app state yet
        await send_error(send, NotReady("The gateway is starting; see GET /readyz."), request_id,
                         shape=surface.error_body)
        return
    metrics = metrics_of(state)
    meter = metrics.open_request(api=surface.api)
    reply = Reply(send, meter, shape=surface.error_body, redact=state.redactor.data)
    log_line = RequestLog(request_id=request_id, settings=state.settings, meter=meter, api=surface.api)
    try:
        await _chat(state, head, receive, reply, log_line, surface)
    except GatewayError as exc:
        if not reply.started:
            log_line.failed(exc)
        await reply.error(exc, request_id)
    except Exception as exc:
        log.exception("unhandled error on POST %s", surface.path)
        if not reply.started:
            log_line.failed(exc)
        await reply.error(INTERNAL_ERROR, request_id)
    finally:
        metrics.close_request(meter)


async def _chat(state: AppState, head: RequestHead, receive: Receive, reply: Reply, log_line: RequestLog,
                surface: Surface) -> None:
    if head.method != "POST":
        raise MethodNotAllowed(f"Use POST for {surface.path}.", headers={"Allow": "POST"})
    settings = state.settings
    caller = identify(state, surface.authorization(head))
    log_line.key = caller.key
    body = await read_json(receive, head, settings.max_body_bytes)
    request = surface.parse(body, settings)
    chat = request.chat
    log_line.begin(requested=chat.model, stream=chat.stream, messages=chat.body.get("messages"),
                   notes=request.notes)
    snapshot = state.holder.current
    if snapshot is None:
        raise NotReady("No routable pool yet; see GET /readyz.")
    request_id = log_line.request_id
    account = _Account(state, caller, caller.tenant_for(_tenant_id(body)))
    watch = DisconnectWatch(receive)
    session = _session_source(head, chat)
    try:
        await state.tenancy.admit(caller, snapshot.resolve(chat.model))  # refused: logged like any failure
        if chat.stream:
            await _stream(state, snapshot, request, log_line, reply, watch, surface, session, account)
        else:
            outcome = await state.engine.complete(chat, snapshot, session=session, attempts=log_line.attempts)
            watch.stop()
            payload = _normalise(outcome.value, outcome)
            cost = log_line.finished(outcome, status=200, usage=payload.get("usage"),
                                     completion=payload.get("choices"))
            await account.record(outcome, payload.get("usage"), cost)
            data = dumps(surface.answer(payload, outcome, request))
            headers = _outcome_headers(request_id, outcome, cost)
            headers += request.headers
            headers += ((b"content-type", JSON_TYPE), (b"content-length", str(len(data)).encode()))
            await reply.start(200, headers)
            await reply.body(data, more=False)
    except asyncio.CancelledError:
        if not watch.gone:
            raise
        watch.absorb()
        if not reply.started:
            log_line.failed(ClientClosedRequest(""))
        raise ClientClosedRequest("The client closed the connection.") from None
    finally:
        watch.stop()


class _Account:
    """What one request is counted under (key, tenant) once it was answered."""

    __slots__ = ("_caller", "_state", "_tenant")

    def __init__(self, state: AppState, caller: Caller, tenant: str) -> None:
        self._state, self._caller, self._tenant = state, caller, tenant

    async def record(self, outcome: Outcome[Any], usage: Any, cost: Cost | None) -> None:
        await self._state.tenancy.record(self._caller, self._tenant, model=outcome.deployment.model,
                                         usage=usage if isinstance(usage, dict) else None,
                                         cost_usd=None if cost is None else cost.usd)


def _tenant_id(body: Any) -> Any:
    """`metadata.tenant_id` as the client sent it (chat, Messages and Responses bodies alike)."""
    metadata = body.get("metadata") if isinstance(body, dict) else None
    return metadata.get("tenant_id") if isinstance(metadata, dict) else None


def _session_source(head: RequestHead, chat: ChatRequest) -> Callable[[], str | None]:
    """The sticky-session key, worked out only when the request's group pins."""
    return lambda: session_key(head.get, chat.body)


async def _stream(state: AppState, snapshot: Snapshot, request: EdgeRequest, log_line: RequestLog, reply: Reply,
                  watch: DisconnectWatch, surface: Surface, session: Callable[[], str | None],
                  account: _Account) -> None:
    engine = state.engine
    outcome = await engine.open_stream(request.chat, snapshot, session=session, attempts=log_line.attempts)
    source, frame = outcome.value
    events = surface.events(request, outcome)
    # Frames that arrived together leave together: one write instead of one per frame. The
    # first frame leaves alone, at once: the client's time to first token does not wait for
    # the rest of a burst (an upstream that sends the whole answer in one read, say).
    ready: Callable[[], bool] = getattr(source, "ready", _never)
    sent = False
    idle_s = state.settings.timeouts.stream_idle_s
    usage: Any = None
    out: list[bytes] = []
    try:
        # The cost is known only at the end of a stream; the headers go first.
        await reply.start(200, [*_outcome_headers(log_line.request_id, outcome, None), *request.headers,
                                *_SSE_HEADERS])
        while frame is not None:
            if frame.data is not None and frame.data.get("usage"):
                usage = frame.data["usage"]
            encoded = events.frame(frame)
            if encoded:
                out.append(encoded)
            if out and (not sent or not ready()):
                await reply.body(b"".join(out), more=True)
                out.clear()
                sent = True
            frame = await source.next(idle_s)
        out += (source.trailer(), events.end())
        await account.record(outcome, usage, log_line.finished(outcome, status=200, usage=usage, stream=source))
    except AttemptError as error:  # the stream broke and could not be continued (already recorded)
        message = state.redactor.text(f"The upstream stream failed after it started: {error.message}")
        out += (source.trailer(), events.fail(message, type_="upstream_error", code=error.kind,
                                               request_id=log_line.request_id))
        await account.record(outcome, usage, log_line.finished(outcome, status=200, usage=usage,
                                                               stream_error=error.kind, stream=source))
    except asyncio.CancelledError:
        if watch.gone:
            cost = log_line.finished(outcome, status=200, usage=usage, stream_error="client_closed")
            await account.record(outcome, usage, cost)
        raise
    except Exception as exc:
        log.exception("stream from %s failed inside the gateway", outcome.deployment.model)
        out.append(events.fail(f"The gateway failed while relaying the stream ({type(exc).__name__}); it has been "
                               "logged.", type_="api_error", code="internal_error", request_id=log_line.request_id))
        log_line.finished(outcome, status=200, usage=usage, stream_error="internal_error")
    finally:
        source.close()
    watch.stop()  # before the last write: a finished response reads as a disconnect
    await reply.body(b"".join(out), more=False)


def _never() -> bool:
    return False


def _outcome_headers(request_id: str, outcome: Outcome[Any], cost: Cost | None) -> Headers:
    dep = outcome.deployment
    headers = [
        (b"x-request-id", header_value(request_id)),
        (b"x-turnout-model", header_value(dep.model)),
        (b"x-turnout-deployment", header_value(dep.id)),
        (b"x-turnout-group", header_value(outcome.group)),
        (b"x-turnout-attempts", str(len(outcome.attempts)).encode()),
        (b"x-turnout-fallback", b"true" if outcome.fallback else b"false"),
    ]
    if outcome.pin is not None:
        headers.append((b"x-turnout-pin", header_value(outcome.pin)))
    if cost is not None:
        headers.append((b"x-turnout-cost-usd", f"{cost.usd:.8f}".encode()))
    return headers


def _clean_frame(frame: Frame) -> bytes:
    """Drop nulls OpenAI's schema does not allow, without re-encoding the frame when there are none."""
    parsed = frame.data or {}
    if parsed.get("system_fingerprint", "") is None or parsed.get("service_tier", "") is None:
        data = {k: v for k, v in parsed.items() if not (k in _NON_NULL_OPTIONAL and v is None)}
        return dumps(data)
    return frame.raw


def _error_frame(message: str, *, type_: str, code: str, request_id: str) -> bytes:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}, "request_id": request_id}
    return b"data: " + dumps(body) + b"\n\n"


def _normalise(payload: dict[str, Any], outcome: Outcome[Any]) -> dict[str, Any]:
    """Fill what OpenAI's schema requires and some upstreams omit; leave everything else."""
    if "id" not in payload:
        payload["id"] = f"chatcmpl-{random.getrandbits(128):032x}"
    payload["object"] = "chat.completion"
    for key in _NON_NULL_OPTIONAL:
        if key in payload and payload[key] is None:
            del payload[key]
    if not isinstance(payload.get("created"), int):
        payload["created"] = int(time.time())
    if not isinstance(payload.get("model"), str) or not payload["model"]:
        payload["model"] = outcome.deployment.model
    for index, choice in enumerate(payload.get("choices") or []):
        if not isinstance(choice, dict):
            continue
        choice.setdefault("index", index)
        choice.setdefault("logprobs", None)
        if choice.get("finish_reason") not in _FINISH_REASONS:
            choice["finish_reason"] = "stop"
        message = choice.get("message")
        if isinstance(message, dict):
            message.setdefault("role", "assistant")
            message.setdefault("content", None)
            message.setdefault("refusal", None)
            if not message.get("content") and message.get("reasoning") and not message.get("tool_calls"):
                # Free models sometimes answer only in `reasoning`; keep the answer visible.
                message["content"] = message["reasoning"]
    return payload
