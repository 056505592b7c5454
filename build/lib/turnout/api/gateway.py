"""The ASGI app: FastAPI for every route but the hot one."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from turnout.api import chat, messages, responses
from turnout.api.openapi import CHAT_OPERATION, COUNT_TOKENS_OPERATION, MESSAGES_OPERATION, RESPONSES_OPERATION


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
        await super().__call__(scope, receive, send)

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
