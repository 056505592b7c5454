"""The sandbox's JSON replies and the app key its handlers find the server under."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from turnout.sandbox.error_bodies import error_body

if TYPE_CHECKING:
    from turnout.sandbox.server import SandboxServer

SERVER_KEY: web.AppKey[SandboxServer] = web.AppKey("sandbox_server")


def json_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


def error_response(code: int, message: str) -> web.Response:
    return json_response(error_body(code, message), status=code)
