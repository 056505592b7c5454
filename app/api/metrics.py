"""GET /metrics, and the ASGI middleware that meters every client chat request.

`/metrics` takes no key: Prometheus scrapes it. It carries no secret (model ids, counts,
budgets, timings); where the gateway is reachable beyond a trusted network, restrict the
path at the reverse proxy.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.exposition import choose_encoder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.deps import AppState, State
from app.metrics import Metrics, RequestMeter

router = APIRouter()
CHAT_PATH = "/v1/chat/completions"
_METER = "switchyard.meter"


def metrics_of(state: AppState) -> Metrics:
    metrics = state.extras["metrics"]
    assert isinstance(metrics, Metrics)
    return metrics


def request_meter(request: Request) -> RequestMeter | None:
    """The meter the middleware opened for this request (None outside it)."""
    meter = request.scope.get(_METER)
    return meter if isinstance(meter, RequestMeter) else None


@router.get("/metrics", summary="Prometheus metrics (text exposition; no key needed)", include_in_schema=False)
async def metrics_endpoint(request: Request, state: State) -> Response:
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(metrics_of(state).registry), headers={"Content-Type": content_type})


class MetricsMiddleware:
    """Opens a RequestMeter for each chat request and records it when the response ends.

    Pure ASGI (no BaseHTTPMiddleware): the route runs in this coroutine's context, so the
    engine's attempt observer finds the request's meter in a context variable.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics = _metrics(scope) if scope["type"] == "http" and scope["path"] == CHAT_PATH else None
        if metrics is None:
            await self.app(scope, receive, send)
            return
        meter = metrics.open_request()
        scope[_METER] = meter
        token = metrics.current_meter.set(meter)

        async def send_metered(message: Message) -> None:
            if message["type"] == "http.response.start":
                meter.status = message["status"]
            elif meter.first_byte_at is None and message.get("body"):
                meter.first_byte_at = time.monotonic()
            await send(message)

        try:
            await self.app(scope, receive, send_metered)
        finally:
            metrics.current_meter.reset(token)
            metrics.close_request(meter)


def _metrics(scope: Scope) -> Metrics | None:
    state: Any = getattr(scope["app"].state, "switchyard", None)
    found = state.extras.get("metrics") if state is not None else None
    return found if isinstance(found, Metrics) else None
