"""A static group's own routing strategy, run by the LiteLLM Router and fed by the gateway's attempts.

Two deployments of one group on a real loopback upstream that answers `slow` late and `fast`
at once: under latency-based routing the slow one stops getting traffic after its first
answer; under least-busy, with requests overlapping, the one still holding requests gets few
new ones. Under simple-shuffle (the old behaviour for every group) each would get about half.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.conftest import LiveGateway

HELLO = [{"role": "user", "content": "hello"}]

ADMIN_KEY = "admin-key-strategies"


class DelayedUpstream:
    """An OpenAI-wire upstream in its own thread; each model answers after its own delay."""

    def __init__(self, delays: dict[str, float]) -> None:
        self.delays = delays
        self.served: Counter[str] = Counter()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = body["model"]
        self.served[model] += 1
        await asyncio.sleep(self.delays[model])
        message = {"role": "assistant", "content": f"hi from {model}"}
        usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
        if not body.get("stream"):
            return web.json_response({"id": "c1", "object": "chat.completion", "created": 1, "model": model,
                                      "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                                      "usage": usage})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunks = [{"choices": [{"index": 0, "delta": message, "finish_reason": None}]},
                  {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                  {"choices": [], "usage": usage}]
        for chunk in chunks:
            await resp.write(b"data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                                                     "model": model, **chunk}).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> DelayedUpstream:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture
def upstream() -> Iterator[DelayedUpstream]:
    with DelayedUpstream({"slow": 0.6, "fast": 0.01}) as server:
        yield server


@pytest.fixture
def pair(start_gateway: Callable[..., LiveGateway], upstream: DelayedUpstream) -> Callable[[str], LiveGateway]:
    """A gateway whose static group `pair` is `slow` + `fast` under the given strategy."""

    def start(strategy: str) -> LiveGateway:
        common = {"api_base": upstream.base_url, "wire": "openai"}
        return start_gateway(
            deployments=[{"name": "pair", "model": "openai/slow", **common},
                         {"name": "pair", "model": "openai/fast", **common}],
            strategies={"pair": strategy},
            pool={"health": {"enabled": False}},
            streams={"hedge_after_s": None},
            admin_key=ADMIN_KEY,
        )

    return start


def ask(gw: LiveGateway, *, stream: bool = False) -> None:
    body = {"model": "pair", "messages": HELLO, "stream": stream}
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=30) as resp:
        assert resp.status_code == 200, resp.read()
        resp.read()


def test_latency_based_routing_stops_sending_to_the_slow_deployment(
        pair: Callable[[str], LiveGateway], upstream: DelayedUpstream) -> None:
    gw = pair("latency-based-routing")
    for _ in range(16):
        ask(gw)
    # Each deployment is new (latency 0) until it answered once; after that `fast` always wins.
    assert upstream.served["slow"] <= 2, upstream.served
    assert upstream.served["fast"] >= 14
    # A rebuild makes a new Router; what the strategy learnt moves with the pool.
    router = gw.state.holder.current.router
    refreshed = httpx.post(f"{gw.url}/admin/refresh", timeout=60, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert refreshed.status_code == 200
    assert gw.state.holder.current.router is not router
    slow = upstream.served["slow"]
    for _ in range(6):
        ask(gw)
    assert upstream.served["slow"] == slow, upstream.served


def test_latency_based_routing_ranks_streams_by_time_to_first_token(
        pair: Callable[[str], LiveGateway], upstream: DelayedUpstream) -> None:
    gw = pair("latency-based-routing")
    for _ in range(14):
        ask(gw, stream=True)
    assert upstream.served["slow"] <= 2, upstream.served


def test_least_busy_sends_little_to_the_deployment_holding_requests(
        pair: Callable[[str], LiveGateway], upstream: DelayedUpstream) -> None:
    gw = pair("least-busy")

    def worker(_: int) -> None:
        for _ in range(6):
            ask(gw)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(worker, range(4)))
    # `slow` takes a request only while it holds none: about one per 0.6 s of the run.
    allowed = 2 + int((time.monotonic() - started) / 0.6)
    assert upstream.served["slow"] <= min(allowed, 8), upstream.served
    assert upstream.served["fast"] + upstream.served["slow"] == 24
    assert in_flight(gw) == {"fast": 0, "slow": 0}


def test_least_busy_counts_a_stream_until_it_ends(pair: Callable[[str], LiveGateway]) -> None:
    gw = pair("least-busy")
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda _: ask(gw, stream=True), range(9)))
    assert in_flight(gw) == {"fast": 0, "slow": 0}  # every stream's end was told, none leaked


def in_flight(gw: LiveGateway) -> dict[str, int]:
    """least-busy's in-flight count per member, read from the Router's routing cache (its own keys)."""
    snapshot = gw.state.holder.current
    store = snapshot.router.health().store
    return {dep.upstream_model: int(store.get_cache(key=f"pair_request_count:{eid}", local_only=True) or 0)
            for eid, dep in ((f"{d.id}@pair", d) for _, d in snapshot.pool.members_of("pair"))}


def test_simple_shuffle_is_the_default_and_shares_traffic(
        pair: Callable[[str], LiveGateway], upstream: DelayedUpstream) -> None:
    gw = pair("simple-shuffle")
    assert not gw.state.holder.current.strategies
    for _ in range(12):
        ask(gw)
    assert upstream.served["slow"] >= 1 and upstream.served["fast"] >= 1


def test_a_strategy_for_an_unknown_group_is_refused(make_settings: Callable[..., Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="strategies.nope: not a deployment name"):
        make_settings(strategies={"nope": "least-busy"})


def test_usage_based_routing_serves_and_counts_tokens(
        pair: Callable[[str], LiveGateway], upstream: DelayedUpstream) -> None:
    gw = pair("usage-based-routing-v2")
    for _ in range(6):
        ask(gw)
    # Both answer 7 tokens: the one with fewer tokens this minute is picked, so they take turns
    # (exactly 3 each, unless the minute's counters roll over during the test).
    assert upstream.served["slow"] >= 2 and upstream.served["fast"] >= 2, upstream.served
