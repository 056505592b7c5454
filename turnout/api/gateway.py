"""The ASGI app: FastAPI for every route but the hot one."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from turnout.api import chat, images, messages, responses
from turnout.api.asgi import RequestHead, send_error
from turnout.api.error_shapes import anthropic_error_body, error_body
from turnout.api.hosts import HostCheck
from turnout.api.openapi import CHAT_OPERATION, COUNT_TOKENS_OPERATION, MESSAGES_OPERATION, RESPONSES_OPERATION
from turnout.api.scrape import metrics_of
from turnout.errors import Forbidden, GatewayError
from turnout.observability.redaction import Redactor
from turnout.observability.request_log import RequestLog, log_route


class Gateway(FastAPI):
    """The hot API paths (chat completions, Anthropic messages, OpenAI responses) go straight to
    their plain-ASGI handlers; the rest is FastAPI.

    Those paths are still in the OpenAPI document, declared by hand in `turnout.api.openapi`.
    Without keys, a request naming a non-loopback `Host` is refused first (`turnout.api.hosts`).
    """

    host_check: HostCheck | None = None
    redactor: Redactor = Redactor(())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = self.host_check.refused(scope) if self.host_check is not None else None
            if refused is not None:
                await _refuse_host(scope, send, refused)
                return
            handler = _PLAIN.get(scope["path"].rstrip("/") or "/")
            if handler is not None:
                await handler(getattr(self.state, "turnout", None), scope, receive, send)
                return
            if self.redactor:
                send = RedactingSend(send, self.redactor)
            api = _RECORDED.get(scope["path"].rstrip("/"))
            state = getattr(self.state, "turnout", None)
            if api is not None and state is not None:
                await self._recorded(state, api, scope, receive, send)
                return
            await self._logged(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _recorded(self, state: Any, api: str, scope: Scope, receive: Receive, send: Send) -> None:
        """A FastAPI route of an API surface, with the record a plain-ASGI one keeps (`chat.serve`):
        its meter, and its `RequestLog` line (in `request.state.request_log`), which the route
        finishes with its answer and which is written here when it failed; no `log_route` line."""
        metrics = metrics_of(state)
        meter = metrics.open_request(api=api)
        log_line = RequestLog(request_id=RequestHead(scope).request_id(), settings=state.settings, meter=meter,
                              api=api)
        request_state = scope.setdefault("state", {})
        request_state["request_log"] = log_line

        async def send_metered(message: Message) -> None:
            if message["type"] == "http.response.start":
                meter.replied(message["status"])
            elif message["type"] == "http.response.body" and message.get("body") and meter.first_byte_at is None:
                meter.first_byte_at = time.monotonic()
            await send(message)

        try:
            await super().__call__(scope, receive, send_metered)
        finally:
            if not log_line.done:  # an error, which the route did not answer
                log_line.key = log_line.key or request_state.get("key_name")
                status = meter.status or 500
                error = request_state.get("error")
                log_line.failed(error if isinstance(error, GatewayError) else
                                GatewayError(f"HTTP {status}", status=status,
                                             code=request_state.get("error_code") or f"http_{status}"))
            metrics.close_request(meter)

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


class RedactingSend:
    """Masks configured secrets in a FastAPI response (status page, metrics, admin, readiness, models).

    Those responses are small and sent whole; the body is held until its last part so the
    Content-Length can be set to the masked length."""

    __slots__ = ("_parts", "_redactor", "_send", "_start")

    def __init__(self, send: Send, redactor: Redactor) -> None:
        self._send = send
        self._redactor = redactor
        self._start: Message | None = None
        self._parts: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            return
        if message["type"] != "http.response.body" or self._start is None:
            await self._send(message)
            return
        self._parts.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = self._redactor.data(b"".join(self._parts))
        headers = [(k, v) for k, v in self._start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self._send({**self._start, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})


async def _refuse_host(scope: Scope, send: Send, host: str) -> None:
    shape = anthropic_error_body if scope["path"].startswith(messages.MESSAGES_PATH) else error_body
    error = Forbidden(f"Host {host[:100]!r} is not served: without API keys the gateway answers only loopback "
                      "names (localhost, 127.0.0.1, [::1]) and allowed_hosts; set TURNOUT_API_KEYS to serve "
                      "other names.", code="host_not_allowed")
    await send_error(send, error, RequestHead(scope).request_id(), shape=shape)


# The hot API surfaces, served as plain ASGI (a trailing slash is the same path; the query
# string, e.g. Claude Code's `?beta=true`, is not part of `scope["path"]`).
_PLAIN = {
    chat.CHAT_PATH: chat.serve,
    messages.MESSAGES_PATH: messages.serve,
    messages.COUNT_PATH: messages.serve_count,
    responses.RESPONSES_PATH: responses.serve,
}
# FastAPI routes of API surfaces: metered and logged as the plain ones are, under their `api` label.
_RECORDED = {images.IMAGES_PATH: "images"}
