"""Three real `turnout serve` processes, one real redis-server, one sandbox: the issue's tests.

The processes share the module (starting three gateways costs ~10 s of CPU each); tests that
break something (Redis, the leader) run last, in file order.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CHAIN_BACKUP, CHAIN_PRIMARY
from tests.shared.conftest import RedisProcess
from tests.shared.replicas import Replica, chat
from turnout.sandbox import FaultPlan, ModelFaults
from turnout.sandbox.faults import FreeTier

pytestmark = pytest.mark.slow
LIMITED = "liquid/lfm-2.5-2.6b:free"
LOCK_TTL_S = 2.0


def write_config(directory: Path, sandbox: Any, redis_url: str | None) -> Path:
    common = {"api_base": sandbox.base_url, "wire": "openai", "api_key_env": "SANDBOX_UPSTREAM_KEY"}
    config: dict[str, Any] = {
        "deployments": [
            {"name": "primary", "model": f"openai/{CHAIN_PRIMARY}", **common},
            {"name": "limited", "model": f"openai/{LIMITED}", "rpm": 2, **common},
            {"name": "backup", "model": f"openai/{CHAIN_BACKUP}", **common},
        ],
        "fallbacks": {"primary": ["backup"], "limited": ["backup"]},
        "retries": {"backoff_base_s": 0.01, "cooldown_s": 30},
        "pool": {"free_tier": {"requests_per_minute": 20, "headroom": 2}},
    }
    if redis_url is not None:
        # 0.25 s, not the default 0.05: three gateways and the tests share two busy cores
        config["shared_state"] = {"redis_url": redis_url, "lock_ttl_s": LOCK_TTL_S, "sync_s": 0.2,
                                  "op_timeout_s": 0.25, "reconnect_max_s": 0.5}
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_replicas(directory: Path, config: Path, n: int, sandbox: Any) -> list[Replica]:
    replicas = [Replica(name=f"r{i}", directory=directory, env={
        "TURNOUT_CONFIG": str(config), "OPENROUTER_BASE_URL": sandbox.base_url, "TURNOUT_DATA_DIR": str(directory / f"data{i}"),
        "SANDBOX_UPSTREAM_KEY": "sk-static-test-key"}).start() for i in range(n)]
    try:
        for replica in replicas:
            replica.wait_ready()
    except BaseException:
        for replica in replicas:
            replica.kill()
        raise
    return replicas


@pytest.fixture(scope="module")
def redis_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory, sandbox: Any, redis_module: RedisProcess) -> Iterator[list[Replica]]:
    directory = tmp_path_factory.mktemp("trio")
    replicas = start_replicas(directory, write_config(directory, sandbox, redis_module.url), 3, sandbox)
    yield replicas
    for replica in replicas:
        replica.stop()


def wait_for(check: Any, timeout_s: float, step_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(step_s)


def free_calls(sandbox: Any) -> list[Any]:
    return [c for c in sandbox.server.calls if c.model.endswith(":free")]


def test_three_replicas_spend_one_account_free_budget(trio: list[Replica], sandbox: Any) -> None:
    sandbox.server.set_plan(FaultPlan(free_tier=FreeTier(enforce=True, per_minute=20, per_day=1000,
                                                         is_free_tier=False)))
    sandbox.server.reset_calls()
    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda i: chat(trio[i % 3], "auto"), range(120)))
    elapsed = time.monotonic() - started
    assert [r.status_code for r in answers].count(200) == 120, [r.text for r in answers if r.status_code != 200][:3]
    calls = free_calls(sandbox)
    assert elapsed < 60, "all 120 inside one minute window"
    assert 0 < len(calls) <= 20
    assert not [c for c in calls if c.outcome.startswith("429_free")]
    models = [r.headers["x-turnout-model"] for r in answers]
    assert sum(not m.endswith(":free") for m in models) >= 100  # the rest spilled to paid models


def test_a_cooldown_on_one_replica_is_honoured_by_the_others_within_a_second(trio: list[Replica],
                                                                             sandbox: Any) -> None:
    a, b, c = trio
    sandbox.server.set_plan(FaultPlan(models={CHAIN_PRIMARY: ModelFaults(rate_limit_rate=1.0, retry_after_s=30)}))
    first = chat(a, "primary")
    assert first.status_code == 200 and first.headers["x-turnout-model"] == "backup"
    sandbox.server.set_plan(FaultPlan())  # the primary is healthy again: only the bench keeps it out
    sandbox.server.reset_calls()
    time.sleep(1.0)
    for replica in (b, c, b, c):
        resp = chat(replica, "primary")
        assert resp.status_code == 200 and resp.headers["x-turnout-model"] == "backup", replica.name
    assert sandbox.server.calls_for(CHAIN_PRIMARY) == []


def test_rpm_holds_across_three_replicas(trio: list[Replica], sandbox: Any) -> None:
    sandbox.server.set_plan(FaultPlan())
    sandbox.server.reset_calls()
    answers = [chat(trio[i % 3], "limited") for i in range(12)]
    assert [r.status_code for r in answers] == [200] * 12
    assert len(sandbox.server.calls_for(LIMITED)) == 2
    assert [r.headers["x-turnout-model"] for r in answers].count("backup") == 10


def test_redis_stopped_then_killed_under_load_fails_no_request(trio: list[Replica], sandbox: Any,
                                                               redis_module: RedisProcess) -> None:
    sandbox.server.set_plan(FaultPlan())
    failures: list[str] = []
    done = threading.Event()
    sent = [0]

    def load() -> None:
        i = 0
        while not done.is_set():
            resp = chat(trio[i % 3], "primary" if i % 2 else "auto")
            sent[0] += 1
            if resp.status_code != 200:
                failures.append(f"{resp.status_code} {resp.text[:200]}")
            i += 1

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        redis_module.pause()
        degraded = wait_for(lambda: all(r.ready()["status"] == "degraded" for r in trio), timeout_s=15)
        assert degraded, [r.ready() for r in trio]
        assert all(r.ready()["shared_state"]["up"] is False for r in trio)
        time.sleep(1.0)
        redis_module.kill()
        time.sleep(1.0)
        redis_module.start()  # the same port: the replicas reconnect and resync
        recovered = wait_for(lambda: all(r.ready()["shared_state"]["up"] for r in trio), timeout_s=30)
        assert recovered, [r.ready() for r in trio]
        time.sleep(0.5)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=60)
    assert sent[0] > 20
    assert failures == []
    for replica in trio:
        assert replica.ready()["status"] == "ready"
        log = replica.log.read_text(errors="replace")
        assert log.count("shared state down") == 1, replica.tail()


def test_the_leader_killed_another_takes_over_and_versions_move(trio: list[Replica]) -> None:
    leaders = wait_for(lambda: [r for r in trio if r.ready()["shared_state"].get("leader")], timeout_s=10)
    assert len(leaders) == 1, [r.ready() for r in trio]
    leader = leaders[0]
    others = [r for r in trio if r is not leader]
    before = {r.name: r.ready()["shared_state"]["pool_version"] for r in others}
    leader.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    new = wait_for(lambda: [r for r in others if r.ready()["shared_state"].get("leader")], timeout_s=30)
    took_over_s = time.monotonic() - killed_at
    assert len(new) == 1
    assert took_over_s <= 2 * LOCK_TTL_S + 1.0, took_over_s  # + one sync step and the readyz polling
    moved = wait_for(lambda: all(r.ready()["shared_state"]["pool_version"] > before[r.name] for r in others),
                     timeout_s=90, step_s=0.5)
    assert moved, ([r.ready() for r in others], before)
