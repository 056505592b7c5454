"""POST /v1/messages and /v1/messages/count_tokens — Anthropic's Messages API, served as plain ASGI.

A Messages request is translated to a chat-completions request (`turnout.dialects.
anthropic_messages`) and runs through `turnout.api.chat`'s flow on the same engine: aliases,
request-aware routing, tiers, failover, sticky sessions, metrics (`api="messages"`), logs.
The answer and the stream are translated back; errors leave in Anthropic's shape. Claude
Code sends `?beta=true`, `anthropic-version` and `anthropic-beta`: the query string and both
headers are accepted and change nothing. The key comes as `x-api-key` or as
`Authorization: Bearer`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from turnout.api import chat
from turnout.api.asgi import JSON_TYPE, RequestHead, header_value, read_json, send_error
from turnout.api.deps import AppState, identify
from turnout.api.error_shapes import INTERNAL_ERROR, anthropic_error_body
from turnout.api.surface import EdgeRequest
from turnout.config import Settings
from turnout.dialects import anthropic_messages as dialect
from turnout.encoding import dumps
from turnout.errors import GatewayError, MethodNotAllowed, NotReady
from turnout.observability.request_log import log_route
from turnout.routing.engine import Outcome
from turnout.routing.request import parse_chat_request
from turnout.upstream.openai_wire import Frame

MESSAGES_PATH = "/v1/messages"
COUNT_PATH = "/v1/messages/count_tokens"
log = logging.getLogger("turnout.api")


class MessagesSurface:
    api = "messages"
    path = MESSAGES_PATH

    def error_body(self, exc: GatewayError) -> bytes:
        return anthropic_error_body(exc)

    def authorization(self, head: RequestHead) -> str | None:
        return bearer_or_api_key(head)

    def parse(self, body: Any, settings: Settings) -> EdgeRequest:
        chat_body, dropped = dialect.to_chat(body)
        return EdgeRequest.translated(parse_chat_request(chat_body, max_messages=settings.max_messages,
                                                      allowed_plugins=settings.pool.allowed_plugins),
                                      dropped=dropped)

    def answer(self, payload: dict[str, Any], outcome: Outcome[Any], request: EdgeRequest) -> dict[str, Any]:
        return dialect.from_chat(payload, model=payload.get("model") or outcome.deployment.model,
                                 message_id=dialect.message_id())

    def events(self, request: EdgeRequest, outcome: Outcome[Any]) -> _MessagesFrames:
        return _MessagesFrames(dialect.MessageEvents(model=outcome.deployment.model, message_id=dialect.message_id()))


class _MessagesFrames:
    """Chat frames into Messages events."""

    __slots__ = ("_events",)

    def __init__(self, events: dialect.MessageEvents) -> None:
        self._events = events

    def frame(self, frame: Frame) -> bytes:
        return self._events.chunk(frame.data if frame.data is not None else orjson.loads(frame.raw))

    def end(self) -> bytes:
        return self._events.end()

    def fail(self, message: str, *, type_: str, code: str, request_id: str) -> bytes:
        return self._events.fail(f"{message} (request {request_id})", type_="api_error")


SURFACE = MessagesSurface()


def bearer_or_api_key(head: RequestHead) -> str | None:
    """Claude Code and the Anthropic SDK send `x-api-key`; with an auth token, `Authorization: Bearer`."""
    key = head.get(b"x-api-key")
    return f"Bearer {key}" if key else head.get(b"authorization")


async def serve(state: AppState | None, scope: Scope, receive: Receive, send: Send) -> None:
    await chat.serve(state, scope, receive, send, surface=SURFACE)


async def serve_count(state: AppState | None, scope: Scope, receive: Receive, send: Send) -> None:
    """POST /v1/messages/count_tokens: `{"input_tokens": N}`, counted with LiteLLM's tokenizer."""
    head = RequestHead(scope)
    request_id = head.request_id()
    started = time.monotonic()
    caller: list[str | None] = [None]  # the key's name, once checked
    try:
        if state is None:
            raise NotReady("The gateway is starting; see GET /readyz.")
        data = await _count(state, head, receive, caller)
    except GatewayError as exc:
        _log_count(head, exc.status, exc.code, request_id, started, caller[0])
        await send_error(send, exc, request_id, shape=anthropic_error_body)
        return
    except Exception:
        log.exception("unhandled error on POST %s", COUNT_PATH)
        _log_count(head, INTERNAL_ERROR.status, INTERNAL_ERROR.code, request_id, started, caller[0])
        await send_error(send, INTERNAL_ERROR, request_id, shape=anthropic_error_body)
        return
    _log_count(head, 200, "ok", request_id, started, caller[0])
    headers = [(b"x-request-id", header_value(request_id)), (b"content-type", JSON_TYPE),
               (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})


def _log_count(head: RequestHead, status: int, reason: str | None, request_id: str, started: float,
               key: str | None) -> None:
    log_route(method=head.method, path=COUNT_PATH, status=status, reason=reason, request_id=request_id,
              latency_s=time.monotonic() - started, key=key)


async def _count(state: AppState, head: RequestHead, receive: Receive, caller: list[str | None]) -> bytes:
    if head.method != "POST":
        raise MethodNotAllowed(f"Use POST for {COUNT_PATH}.", headers={"Allow": "POST"})
    settings = state.settings
    caller[0] = identify(state, bearer_or_api_key(head)).key
    body = await read_json(receive, head, settings.max_body_bytes)
    messages, tools = dialect.count_request(body)
    snapshot = state.holder.current
    if snapshot is None:
        raise NotReady("No routable pool yet; see GET /readyz.")
    snapshot.resolve(body["model"])  # an unknown model is a 404, as on /v1/messages
    tokens = await asyncio.to_thread(_token_count, messages, tools)
    return dumps({"input_tokens": tokens})


def _token_count(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    import litellm

    return int(litellm.token_counter(model="gpt-4o", messages=messages, tools=tools or None))  # type: ignore[arg-type]
