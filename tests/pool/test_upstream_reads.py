"""`read_health` and `fetch_catalogue` against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

import turnout
from turnout.config import HealthSettings
from turnout.pool.catalogue import CatalogueError, fetch_catalogue, parse_catalogue
from turnout.pool.provider_health import HealthScore, read_health

DATA = Path(turnout.__file__).parent / "data" / "openrouter"
KEY = "sk-or-v1-secret-test-key"
KIMI = json.loads((DATA / "endpoints" / "kimi-k3_endpoints_20260825.json").read_text())
DEEPSEEK = json.loads((DATA / "endpoints" / "deepseek-chat-v3.1_endpoints_rust_test.json").read_text())
PREVIOUS_SCORE = HealthScore(score=0.42)


@dataclass
class Upstream:
    """A fake OpenRouter: `behaviour[model_id]` is a JSON body, an int status, "slow" or "garbage"."""

    base_url: str = ""
    behaviour: dict[str, Any] = field(default_factory=dict)
    catalogue: Any = None
    seen_paths: list[str] = field(default_factory=list)
    seen_auth: list[str | None] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoints(self, request: web.Request) -> web.StreamResponse:
        self.seen_paths.append(request.raw_path)
        self.seen_auth.append(request.headers.get("Authorization"))
        model_id = f"{request.match_info['author']}/{request.match_info['slug']}"
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.02)
            return await self._respond(self.behaviour.get(model_id, 404))
        finally:
            self.in_flight -= 1

    async def models(self, request: web.Request) -> web.StreamResponse:
        self.seen_auth.append(request.headers.get("Authorization"))
        return await self._respond(self.catalogue)

    async def _respond(self, behaviour: Any) -> web.StreamResponse:
        if behaviour == "slow":
            await asyncio.wait_for(self.release.wait(), timeout=5)
            return web.json_response({})
        if behaviour == "garbage":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if isinstance(behaviour, int):
            return web.json_response({"error": {"code": behaviour, "message": "nope"}}, status=behaviour)
        return web.json_response(behaviour)


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[Upstream]:
    fake = Upstream()
    server = web.Application()
    server.router.add_get("/api/v1/models/{author}/{slug}/endpoints", fake.endpoints)
    server.router.add_get("/api/v1/models", fake.models)
    runner = web.AppRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.base_url = f"http://127.0.0.1:{port}/api/v1"
    try:
        yield fake
    finally:
        fake.release.set()
        await runner.cleanup()


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


async def read(
    client: httpx.AsyncClient, upstream: Upstream, ids: list[str], *, api_key: str | None = KEY,
    previous: dict[str, HealthScore] | None = None, **settings: Any,
) -> Any:
    return await read_health(
        client,
        base_url=upstream.base_url,
        api_key=api_key,
        model_ids=ids,
        settings=HealthSettings(**{"timeout_s": 0.3, **settings}),
        previous=previous or {},
    )


@pytest.mark.asyncio
async def test_reads_score_every_model_and_send_the_key(client: httpx.AsyncClient, upstream: Upstream) -> None:
    upstream.behaviour = {"moonshotai/kimi-k3": KIMI, "z-ai/glm-5.2:free": DEEPSEEK}
    cycle = await read(client, upstream, ["moonshotai/kimi-k3", "z-ai/glm-5.2:free"])
    assert (cycle.stale, dict(cycle.failed)) == (False, {})
    kimi = cycle.scores["moonshotai/kimi-k3"]
    assert kimi.reading is not None and kimi.reading.best_latency_ms == 814.5 and kimi.score is not None
    assert kimi.read_at is not None
    assert cycle.scores["z-ai/glm-5.2:free"].score is not None
    assert upstream.seen_auth == [f"Bearer {KEY}"] * 2
    assert sorted(upstream.seen_paths) == [
        "/api/v1/models/moonshotai/kimi-k3/endpoints",
        "/api/v1/models/z-ai/glm-5.2:free/endpoints",
    ]


@pytest.mark.asyncio
async def test_no_key_sends_no_authorization(client: httpx.AsyncClient, upstream: Upstream) -> None:
    upstream.behaviour = {"moonshotai/kimi-k3": KIMI}
    await read(client, upstream, ["moonshotai/kimi-k3"], api_key=None)
    assert upstream.seen_auth == [None]


@pytest.mark.asyncio
async def test_gated_model_comes_back_gated(client: httpx.AsyncClient, upstream: Upstream) -> None:
    down = json.loads(json.dumps(KIMI))
    for endpoint in down["data"]["endpoints"]:
        endpoint["status"] = -1
    upstream.behaviour = {"moonshotai/kimi-k3": down}
    cycle = await read(client, upstream, ["moonshotai/kimi-k3"])
    assert cycle.scores["moonshotai/kimi-k3"].gated


@pytest.mark.asyncio
async def test_failed_reads_keep_the_previous_result(client: httpx.AsyncClient, upstream: Upstream) -> None:
    upstream.behaviour = {"a/ok": KIMI, "b/ok": DEEPSEEK, "c/broken": 500, "d/slow": "slow"}
    previous = {"c/broken": PREVIOUS_SCORE, "a/ok": PREVIOUS_SCORE}
    cycle = await read(client, upstream, ["a/ok", "b/ok", "c/broken", "d/slow"], previous=previous)
    assert cycle.stale is False  # 2 of 4 failed: not more than the 0.5 share
    assert dict(cycle.failed) == {"c/broken": "HTTP 500", "d/slow": "timeout"}
    assert cycle.scores["c/broken"] is PREVIOUS_SCORE
    assert cycle.scores["a/ok"] is not PREVIOUS_SCORE
    assert "d/slow" not in cycle.scores  # failed and never read before: unknown


@pytest.mark.asyncio
async def test_mostly_failed_cycle_returns_the_previous_mapping(
    client: httpx.AsyncClient, upstream: Upstream
) -> None:
    upstream.behaviour = {"a/ok": KIMI, "b/down": 503, "c/garbage": "garbage", "d/missing": 404}
    previous = {"a/ok": PREVIOUS_SCORE, "z/elsewhere": PREVIOUS_SCORE}
    cycle = await read(client, upstream, ["a/ok", "b/down", "c/garbage", "d/missing"], previous=previous)
    assert cycle.stale is True
    assert dict(cycle.scores) == previous
    assert set(cycle.failed) == {"b/down", "c/garbage", "d/missing"}
    assert all(KEY not in reason for reason in cycle.failed.values())


@pytest.mark.asyncio
async def test_concurrency_is_bounded(client: httpx.AsyncClient, upstream: Upstream) -> None:
    ids = [f"author/model-{i}" for i in range(8)]
    upstream.behaviour = {model_id: DEEPSEEK for model_id in ids}
    cycle = await read(client, upstream, ids, concurrency=2)
    assert len(cycle.scores) == 8
    assert upstream.max_in_flight == 2


@pytest.mark.asyncio
async def test_an_id_without_a_slug_fails_without_a_request(client: httpx.AsyncClient, upstream: Upstream) -> None:
    upstream.behaviour = {"a/ok": KIMI}
    cycle = await read(client, upstream, ["a/ok", "weird"], keep_previous_when_failed_share=1.0)
    assert set(cycle.scores) == {"a/ok"} and "weird" in cycle.failed
    assert len(upstream.seen_paths) == 1


# --- fetch_catalogue -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fetch_catalogue_returns_the_payload(client: httpx.AsyncClient, upstream: Upstream) -> None:
    upstream.catalogue = json.loads((DATA / "models-2026-01-29.json").read_text())
    payload = await fetch_catalogue(client, base_url=upstream.base_url, api_key=KEY, timeout_s=5)
    assert len(parse_catalogue(payload).models) == 347
    assert upstream.seen_auth == [f"Bearer {KEY}"]


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [
        (500, "HTTP 500"),
        (401, "HTTP 401"),
        ("garbage", "not JSON"),
        ({"error": {"code": 502}}, "no 'data' list"),
        ([1, 2, 3], "no 'data' list"),
        ("slow", "timed out"),
    ],
)
@pytest.mark.asyncio
async def test_fetch_catalogue_failures_raise_catalogue_error(
    client: httpx.AsyncClient, upstream: Upstream, behaviour: Any, message: str
) -> None:
    upstream.catalogue = behaviour
    with pytest.raises(CatalogueError, match=message) as caught:
        await fetch_catalogue(client, base_url=upstream.base_url, api_key=KEY, timeout_s=0.3)
    assert KEY not in str(caught.value)


@pytest.mark.asyncio
async def test_fetch_catalogue_connection_refused(client: httpx.AsyncClient) -> None:
    with pytest.raises(CatalogueError, match="ConnectError"):
        await fetch_catalogue(client, base_url="http://127.0.0.1:9/api/v1", api_key=KEY, timeout_s=1)
