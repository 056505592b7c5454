"""GET /metrics (client chat requests are metered by `turnout.api.chat` itself).

`/metrics` takes no key: Prometheus scrapes it. It carries no secret (model ids, counts,
budgets, timings); where the gateway is reachable beyond a trusted network, restrict the
path at the reverse proxy.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.exposition import choose_encoder

from turnout.api.deps import AppState, State
from turnout.observability.metrics import Metrics

router = APIRouter()


def metrics_of(state: AppState) -> Metrics:
    metrics = state.extras["metrics"]
    assert isinstance(metrics, Metrics)
    return metrics


@router.get("/metrics", summary="Prometheus metrics (text exposition; no key needed)", include_in_schema=False)
async def metrics_endpoint(request: Request, state: State) -> Response:
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(metrics_of(state).registry), headers={"Content-Type": content_type})
