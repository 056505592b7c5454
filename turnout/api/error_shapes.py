"""The edge: every error leaves in its API's shape.

OpenAI's `{"error": {message, type, param, code}}` for chat completions, the Responses API
and every FastAPI route; Anthropic's `{"type": "error", "error": {type, message}}` for the
Messages API, with Anthropic's error types for each status.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from turnout.encoding import dumps
from turnout.errors import AllAttemptsFailed, GatewayError, InvalidRequest

log = logging.getLogger("turnout.api")
INTERNAL_ERROR = GatewayError("The gateway hit an internal error; it has been logged.", code="internal_error")

_HTTP_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
    415: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error",
}


def error_response(
    status: int, message: str, *, type_: str | None = None, code: str | None = None, param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"message": message, "type": type_ or _HTTP_TYPES.get(status, "api_error"),
                      "param": param, "code": code}}
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


_ANTHROPIC_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    405: "invalid_request_error", 413: "request_too_large", 415: "invalid_request_error",
    429: "rate_limit_error", 499: "invalid_request_error", 503: "overloaded_error", 529: "overloaded_error",
}


def error_body(exc: GatewayError) -> bytes:
    return dumps(exc.body())


def anthropic_error_body(exc: GatewayError) -> bytes:
    """Anthropic's error shape; the param (when known) is named in the message, as Anthropic does."""
    message = exc.message if not exc.param or exc.param in exc.message else f"{exc.param}: {exc.message}"
    return dumps({"type": "error", "error": {"type": anthropic_error_type(exc.status), "message": message}})


def anthropic_error_type(status: int) -> str:
    return _ANTHROPIC_TYPES.get(status, "api_error")


def error_headers(exc: GatewayError, request_id: str | None) -> dict[str, str]:
    """The error's own headers (Retry-After, Allow, ...) and the request id."""
    headers = dict(exc.headers)
    if request_id:
        headers["X-Request-ID"] = request_id
    if isinstance(exc, AllAttemptsFailed):
        headers["X-Turnout-Attempts"] = str(len(exc.attempts))
    return headers


def gateway_error_response(exc: GatewayError, request_id: str | None = None) -> Response:
    return Response(error_body(exc), status_code=exc.status, media_type="application/json",
                    headers=error_headers(exc, request_id))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway(request: Request, exc: GatewayError) -> Response:
        request.state.error_code = exc.code
        request.state.error = exc  # for the request's log line (turnout.api.gateway)
        return gateway_error_response(exc, getattr(request.state, "request_id", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"Invalid request: {where or 'body'}: {first.get('msg', 'invalid')}"
        request.state.error_code = "invalid_request"
        request.state.error = InvalidRequest(message, param=where or None, code="invalid_request")
        return error_response(400, message, param=where or None, code="invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        if exc.status_code == 404:
            message = f"No route for {request.method} {request.url.path}."
        request.state.error_code = {404: "no_route", 405: "method_not_allowed"}.get(exc.status_code)
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        request.state.error_code = INTERNAL_ERROR.code
        return gateway_error_response(INTERNAL_ERROR)
