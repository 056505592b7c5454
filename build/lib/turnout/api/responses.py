"""POST /v1/responses — OpenAI's Responses API, stateless, served as plain ASGI.

A Responses request is translated to a chat-completions request (`turnout.dialects.
openai_responses`) and runs through `turnout.api.chat`'s flow on the same engine (metrics
and logs say `api="responses"`); the answer and the stream are translated back. Hosted tools
the pool cannot run (`web_search`, ...) are left out of what goes upstream and named in the
`X-Turnout-Dropped-Tools` header and the request's log line. Errors leave in OpenAI's shape.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from turnout.api import chat
from turnout.api.asgi import RequestHead
from turnout.api.deps import AppState
from turnout.api.error_shapes import error_body
from turnout.api.surface import EdgeRequest
from turnout.config import Settings
from turnout.dialects import openai_responses as dialect
from turnout.errors import GatewayError
from turnout.routing.engine import Outcome
from turnout.routing.request import parse_chat_request
from turnout.upstream.openai_wire import Frame

RESPONSES_PATH = "/v1/responses"


class ResponsesSurface:
    api = "responses"
    path = RESPONSES_PATH

    def error_body(self, exc: GatewayError) -> bytes:
        return error_body(exc)

    def authorization(self, head: RequestHead) -> str | None:
        return head.get(b"authorization")

    def parse(self, body: Any, settings: Settings) -> EdgeRequest:
        chat_body, dropped = dialect.to_chat(body)
        return EdgeRequest.translated(parse_chat_request(chat_body, max_messages=settings.max_messages),
                                      dropped=dropped, context=body)

    def answer(self, payload: dict[str, Any], outcome: Outcome[Any], request: EdgeRequest) -> dict[str, Any]:
        echo = dialect.Echo.of(request.context, model=payload.get("model") or outcome.deployment.model)
        return dialect.from_chat(payload, echo)

    def events(self, request: EdgeRequest, outcome: Outcome[Any]) -> _ResponsesFrames:
        return _ResponsesFrames(dialect.ResponseEvents(dialect.Echo.of(request.context, model=outcome.deployment.model)))


class _ResponsesFrames:
    """Chat frames into Responses events."""

    __slots__ = ("_events",)

    def __init__(self, events: dialect.ResponseEvents) -> None:
        self._events = events

    def frame(self, frame: Frame) -> bytes:
        return self._events.chunk(frame.data if frame.data is not None else orjson.loads(frame.raw))

    def end(self) -> bytes:
        return self._events.end()

    def fail(self, message: str, *, type_: str, code: str, request_id: str) -> bytes:
        return self._events.fail(f"{message} (request {request_id})", code=code)


SURFACE = ResponsesSurface()


async def serve(state: AppState | None, scope: Scope, receive: Receive, send: Send) -> None:
    await chat.serve(state, scope, receive, send, surface=SURFACE)
