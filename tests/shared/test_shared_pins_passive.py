"""Sticky pins and passive health reach the other replica (two gateways, one real Redis)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import LiveGateway
from tests.shared.conftest import RedisProcess

HELLO = [{"role": "user", "content": "hello"}]


def chat(gw: LiveGateway, session: str) -> httpx.Response:
    resp = httpx.post(f"{gw.url}/v1/chat/completions", headers={"x-turnout-session": session}, timeout=30,
                      json={"model": "auto", "messages": HELLO})
    assert resp.status_code == 200, resp.text
    return resp


def test_a_pin_made_on_one_replica_holds_on_the_other(start_gateway: Callable[..., LiveGateway],
                                                      redis_server: RedisProcess, tmp_path: Any) -> None:
    shared = {"redis_url": redis_server.url, "op_timeout_s": 0.5, "sync_s": 0.2}
    a = start_gateway(shared_state=shared, data_dir=tmp_path / "a")
    b = start_gateway(shared_state=shared, data_dir=tmp_path / "b")
    for n in range(5):
        first = chat(a, f"conversation-{n}")
        assert first.headers["x-turnout-pin"] == "new"
        time.sleep(0.2)  # the pin's write to Redis does not hold the answer
        second = chat(b, f"conversation-{n}")
        assert second.headers["x-turnout-pin"] == "pinned"
        assert second.headers["x-turnout-deployment"] == first.headers["x-turnout-deployment"]


def test_passive_health_from_one_replica_reaches_the_other(start_gateway: Callable[..., LiveGateway],
                                                           redis_server: RedisProcess, tmp_path: Any) -> None:
    shared = {"redis_url": redis_server.url, "op_timeout_s": 0.5, "sync_s": 0.2}
    a = start_gateway(shared_state=shared, data_dir=tmp_path / "a")
    b = start_gateway(shared_state=shared, data_dir=tmp_path / "b")
    time.sleep(0.5)  # both read the stream from here on
    answered = {chat(a, f"s{n}").headers["x-turnout-deployment"] for n in range(6)}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = b.state.extras["shared"].passive.snapshot()
        if answered <= set(seen):
            break
        time.sleep(0.1)
    assert answered <= set(seen), (answered, set(seen))
    assert all(seen[d].success_rate == 1.0 for d in answered)


def test_the_shared_state_gauges_exist_with_redis(start_gateway: Callable[..., LiveGateway],
                                                  redis_server: RedisProcess) -> None:
    import re
    from pathlib import Path

    gw = start_gateway(shared_state={"redis_url": redis_server.url, "op_timeout_s": 0.5})
    text = httpx.get(f"{gw.url}/metrics", timeout=10).text
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    shared_only = set(re.findall(r"`(turnout_[a-z_]+)` \| gauge \| — \| With `shared_state` only", readme))
    assert len(shared_only) == 3
    for name in shared_only:
        assert re.search(rf"^{name} ", text, re.M), name
    assert re.search(r"^turnout_shared_state_up 1\.0$", text, re.M)
    assert re.search(r"^turnout_shared_state_leader 1\.0$", text, re.M)
