"""Named keys' rpm limits, daily budgets and usage hold across replicas (two gateways, one Redis)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveGateway
from tests.shared.conftest import RedisProcess

HELLO = [{"role": "user", "content": "hello"}]
ADMIN = "admin-key-shared-keys"
KEYS = {"capped": "sk-capped-shared-0123", "broke": "sk-broke-shared-0123"}


def chat(gw: LiveGateway, key: str) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "qwen", "messages": HELLO},
                      headers={"Authorization": f"Bearer {KEYS[key]}"}, timeout=30)


@pytest.fixture
def replicas(start_gateway: Callable[..., LiveGateway], sandbox: Any, redis_server: RedisProcess,
             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[LiveGateway, LiveGateway]:
    for name, secret in KEYS.items():
        monkeypatch.setenv(f"KEY_{name.upper()}", secret)
    monkeypatch.setenv("SANDBOX_UPSTREAM_KEY", "sk-static-test-key")
    settings: dict[str, Any] = {
        "admin_key": ADMIN,
        "keys": [{"name": "capped", "key_env": "KEY_CAPPED", "rpm": 2},
                 {"name": "broke", "key_env": "KEY_BROKE", "daily_budget_usd": 0.000001}],
        # a paid sandbox model: every answer has a real cost
        "deployments": [{"name": "qwen", "model": "openai/qwen/qwen3.8-27b", "api_base": sandbox.base_url,
                         "wire": "openai", "api_key_env": "SANDBOX_UPSTREAM_KEY"}],
        "pool": {"health": {"enabled": False}},
        "shared_state": {"redis_url": redis_server.url, "op_timeout_s": 0.5, "sync_s": 0.2},
    }
    return (start_gateway(**settings, data_dir=tmp_path / "a"), start_gateway(**settings, data_dir=tmp_path / "b"))


def test_an_rpm_limit_counts_the_requests_of_every_replica(replicas: tuple[LiveGateway, LiveGateway]) -> None:
    a, b = replicas
    assert chat(a, "capped").status_code == 200
    assert chat(b, "capped").status_code == 200
    # each replica saw one request of the two a minute allows; together they saw two
    over = chat(a, "capped")
    assert over.status_code == 429, over.text
    assert over.json()["error"]["code"] == "rate_limit_exceeded" and int(over.headers["retry-after"]) >= 1


def test_a_daily_budget_spent_on_one_replica_stops_the_key_on_the_other(
        replicas: tuple[LiveGateway, LiveGateway]) -> None:
    a, b = replicas
    assert chat(a, "broke").status_code == 200  # the spend lands after the answer
    deadline = time.monotonic() + 10
    refused = chat(b, "broke")
    while refused.status_code == 200 and time.monotonic() < deadline:  # the write to Redis does not hold A's answer
        time.sleep(0.2)
        refused = chat(b, "broke")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "budget_exceeded", refused.text
    usage = httpx.get(f"{b.url}/admin/usage", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10).json()
    assert usage["today"]["keys"]["broke"]["requests"] >= 1  # B's report counts what A answered


def test_with_redis_down_the_limits_fall_back_to_this_replica(replicas: tuple[LiveGateway, LiveGateway],
                                                              redis_server: RedisProcess) -> None:
    a, _ = replicas
    redis_server.stop()
    answers = [chat(a, "capped").status_code for _ in range(3)]
    assert answers == [200, 200, 429]  # counted locally, never an error from Redis
