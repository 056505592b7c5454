"""The ASGI app: FastAPI for every route but the hot one."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from turnout.api import chat
from turnout.api.openapi import CHAT_OPERATION


class Gateway(FastAPI):
    """`POST /v1/chat/completions` goes straight to `turnout.api.chat.serve`; the rest is FastAPI.

    The chat path is still in the OpenAPI document, declared by hand in `turnout.api.openapi`.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in _CHAT_PATHS:
            await chat.serve(getattr(self.state, "turnout", None), scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = super().openapi()
            schema["paths"] = {chat.CHAT_PATH: {"post": CHAT_OPERATION}, **schema.get("paths", {})}
        return self.openapi_schema  # type: ignore[return-value]


_CHAT_PATHS = frozenset({chat.CHAT_PATH, chat.CHAT_PATH + "/"})
