"""The ASGI app: FastAPI for every route but the hot one."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from turnout.api import chat, messages, responses
from turnout.api.asgi import RequestHead
from turnout.api.openapi import CHAT_OPERATION, COUNT_TOKENS_OPERATION, MESSAGES_OPERATION, RESPONSES_OPERATION
from turnout.observability.request_log import log_route


class Gateway(FastAPI):
    """The hot API paths (chat completions, Anthropic messages, OpenAI responses) go straight to
    their plain-ASGI handlers; the rest is FastAPI.

    Those paths are still in the OpenAPI document, declared by hand in `turnout.api.openapi`.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = _PLAIN.get(scope["path"].rstrip("/") or "/")
            if handler is not None:
                await handler(getattr(self.state, "turnout", None), scope, receive, send)
                return
            await self._logged(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _logged(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A FastAPI route, with its request line: every /v1 and /admin request, and every error
        (probes and scrapes that succeed write none)."""
        started = time.monotonic()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await super().__call__(scope, receive, send_status)
        finally:
            path: str = scope["path"]
            if status[0] >= 400 or path.startswith(("/v1/", "/admin/")):
                state = scope.get("state") or {}
                log_route(method=scope["method"], path=path, status=status[0], latency_s=time.monotonic() - started,
                          request_id=RequestHead(scope).get(b"x-request-id"), reason=state.get("error_code"),
                          key=state.get("key_name"))

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = super().openapi()
            schema["paths"] = {chat.CHAT_PATH: {"post": CHAT_OPERATION},
                               messages.MESSAGES_PATH: {"post": MESSAGES_OPERATION},
                               messages.COUNT_PATH: {"post": COUNT_TOKENS_OPERATION},
                               responses.RESPONSES_PATH: {"post": RESPONSES_OPERATION},
                               **schema.get("paths", {})}
        return self.openapi_schema  # type: ignore[return-value]


# The hot API surfaces, served as plain ASGI (a trailing slash is the same path; the query
# string, e.g. Claude Code's `?beta=true`, is not part of `scope["path"]`).
_PLAIN = {
    chat.CHAT_PATH: chat.serve,
    messages.MESSAGES_PATH: messages.serve,
    messages.COUNT_PATH: messages.serve_count,
    responses.RESPONSES_PATH: responses.serve,
}
