"""POST /v1/chat/completions — JSON and SSE."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect

from app.api.deps import AppState, ClientAuth, State
from app.api.metrics import request_meter
from app.api.openapi import CHAT_REQUEST_SCHEMA
from app.api.telemetry import RequestLog
from app.errors import ClientClosedRequest, InvalidRequest, NotReady, PayloadTooLarge, UnsupportedMediaType
from app.usage import usage_cost
from app.routing.attempt import AttemptError
from app.routing.engine import Outcome
from app.routing.request import ChatRequest, parse_chat_request
from app.routing.snapshot import Snapshot
from app.routing.wire import Frame

router = APIRouter()
T = TypeVar("T")
_NON_NULL_OPTIONAL = ("system_fingerprint", "service_tier")
_FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})


@router.post(
    "/v1/chat/completions",
    dependencies=[ClientAuth],
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": CHAT_REQUEST_SCHEMA}}}},
    summary="Create a chat completion (OpenAI-compatible)",
)
async def chat_completions(request: Request, state: State) -> Response:
    request_id = _request_id(request)
    request.state.request_id = request_id
    body = await _read_json(request, state.settings.max_body_bytes)
    chat = parse_chat_request(body, max_messages=state.settings.max_messages)
    snapshot = state.holder.current
    if snapshot is None:
        raise NotReady("No routable pool yet; see GET /readyz.")
    log = RequestLog(request_id=request_id, requested=chat.model, stream=chat.stream, settings=state.settings,
                     messages=chat.body.get("messages"), meter=request_meter(request))
    try:
        if chat.stream:
            return await _stream(state, snapshot, chat, log, request)
        outcome = await _until_disconnect(request, state.engine.complete(chat, snapshot))
    except Exception as exc:
        log.failed(exc)
        raise
    payload = _normalise(outcome.value, outcome)
    log.finished(outcome, status=200, usage=payload.get("usage"), completion=payload.get("choices"))
    headers = _headers(request_id, outcome, payload.get("usage"))
    return Response(json.dumps(payload).encode(), media_type="application/json", headers=headers)


async def _until_disconnect(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Run `work`, cancelling it if the client goes away: no upstream call continues for nobody."""
    task = asyncio.ensure_future(work)
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await task
    except asyncio.CancelledError:
        if gone:
            raise ClientClosedRequest("The client closed the connection.") from None
        raise
    finally:
        watcher.cancel()


async def _stream(
    state: AppState, snapshot: Snapshot, chat: ChatRequest, log: RequestLog, request: Request
) -> Response:
    outcome = await _until_disconnect(request, state.engine.open_stream(chat, snapshot))
    source, first = outcome.value
    headers = _headers(log.request_id, outcome, None)
    headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def frames() -> AsyncIterator[bytes]:
        # Frames that arrived together leave together: one write instead of one per frame.
        ready: Callable[[], bool] = getattr(source, "ready", _never)
        idle_s = state.settings.timeouts.stream_idle_s
        usage: Any = None
        frame: Frame | None = first
        out: list[bytes] = []
        try:
            while frame is not None:
                data = frame.data
                if data is None:
                    out.append(b"data: " + frame.raw + b"\n\n")
                else:
                    if data.get("usage"):
                        usage = data["usage"]
                    if chat.include_usage or data.get("choices"):
                        out.append(b"data: " + _clean_frame(frame) + b"\n\n")
                if out and not ready():
                    yield b"".join(out)
                    out.clear()
                frame = await source.next(idle_s)
            out.append(b"data: [DONE]\n\n")
            yield b"".join(out)
            log.finished(outcome, status=200, usage=usage)
        except AttemptError as error:
            state.engine.report_stream_failure(snapshot, outcome, error)
            out += (_error_frame(error, log.request_id), b"data: [DONE]\n\n")
            yield b"".join(out)
            log.finished(outcome, status=200, usage=usage, stream_error=error.kind)
        finally:
            source.close()

    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)


def _never() -> bool:
    return False


def _clean_frame(frame: Frame) -> bytes:
    """Drop nulls OpenAI's schema does not allow, without re-encoding the frame when there are none."""
    parsed = frame.data or {}
    if parsed.get("system_fingerprint", "") is None or parsed.get("service_tier", "") is None:
        data = {k: v for k, v in parsed.items() if not (k in _NON_NULL_OPTIONAL and v is None)}
        return json.dumps(data).encode()
    return frame.raw


def _error_frame(error: AttemptError, request_id: str) -> bytes:
    body = {"error": {"message": f"The upstream stream failed after it started: {error.message}",
                      "type": "upstream_error", "param": None, "code": error.kind}, "request_id": request_id}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def _read_json(request: Request, limit: int) -> Any:
    content_type = request.headers.get("content-type", "application/json").lower()
    if "json" not in content_type:
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {content_type!r}.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is {declared} bytes; the limit is {limit}.")
    chunks = bytearray()
    try:
        async for chunk in request.stream():
            chunks += chunk
            if len(chunks) > limit:
                raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
    except ClientDisconnect:
        raise ClientClosedRequest("The client closed the connection while sending the body.") from None
    if not chunks:
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        # Strict UTF-8 first: json.loads on bytes would let encoded surrogates through.
        return json.loads(chunks.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply.", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}", code="invalid_json") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    if 0 < len(given) <= 128 and given.isprintable():
        return given
    return f"req_{uuid.uuid4().hex}"


def _headers(request_id: str, outcome: Outcome[Any], usage: Any) -> dict[str, str]:
    headers = {
        "X-Request-ID": request_id,
        "X-Switchyard-Model": outcome.deployment.model,
        "X-Switchyard-Deployment": outcome.deployment.id,
        "X-Switchyard-Group": outcome.group,
        "X-Switchyard-Attempts": str(len(outcome.attempts)),
        "X-Switchyard-Fallback": "true" if outcome.fallback else "false",
    }
    cost = _cost(usage, outcome)
    if cost is not None:
        headers["X-Switchyard-Cost-USD"] = f"{cost:.8f}"
    return headers


def _cost(usage: Any, outcome: Outcome[Any]) -> float | None:
    cost = usage_cost(usage, outcome.deployment)
    return None if cost is None else cost.usd


def _normalise(payload: dict[str, Any], outcome: Outcome[Any]) -> dict[str, Any]:
    """Fill what OpenAI's schema requires and some upstreams omit; leave everything else."""
    payload.setdefault("id", f"chatcmpl-{uuid.uuid4().hex}")
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
