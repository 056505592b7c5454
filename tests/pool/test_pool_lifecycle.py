"""The self-healing pool in a running gateway: rotation, the free quota, outages, churn."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

import turnout
from turnout.sandbox import FaultPlan, FreeTier, ModelFaults

HELLO = [{"role": "user", "content": "hello"}]
# Tests that push many requests at free models switch the account-wide budget off.
NO_FREE_LIMIT = {"health": {"enabled": False}, "free_tier": {"requests_per_minute": 0, "requests_per_day": 1_000_000}}


def chat(gw: Any, model: str = "auto") -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"model": model, "messages": HELLO}, timeout=30)


def members(gw: Any, alias: str) -> list[Any]:
    pool = gw.state.holder.current.pool
    return [pool.deployments[m.deployment_id] for m in pool.groups[alias].members]


def test_failing_model_leaves_rotation_and_comes_back(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(retries={"cooldown_s": 1.0, "allowed_fails": 1}, pool=NO_FREE_LIMIT)
    bad = members(gw, "free")[0].model
    sandbox.server.set_plan(FaultPlan(models={bad: ModelFaults(error_rate=1.0, error_codes=[503])}))
    answers = [chat(gw, "free") for _ in range(30)]
    assert all(r.status_code == 200 for r in answers)
    assert len(sandbox.server.calls_for(bad)) <= 2 + 2  # benched within a couple of failures
    sandbox.server.set_plan(FaultPlan())
    time.sleep(1.2)
    recovered = [chat(gw, "free").headers["x-turnout-model"] for _ in range(60)]
    assert bad in recovered


def test_daily_free_quota_moves_all_traffic_to_paid_until_reset(start_gateway: Callable[..., Any],
                                                                sandbox: Any) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}})
    reset_at_ms = int((time.time() + 3.0) * 1000)
    sandbox.server.set_plan(FaultPlan(free_tier=FreeTier(enforce=True, per_day=3, day_reset_at_ms=reset_at_ms)))
    tiers = []
    for _ in range(8):
        resp = chat(gw)
        assert resp.status_code == 200
        tiers.append(gw.state.holder.current.pool.deployments[resp.headers["x-turnout-deployment"]].tier)
    assert tiers[:3] == ["free"] * 3 and set(tiers[3:]) == {"paid"}
    daily = [c for c in sandbox.server.calls if c.outcome == "429_free_per_day"]
    assert len(daily) == 1  # learned once, then no free call until the reset
    assert gw.state.budget.exhausted_until is not None
    time.sleep(max(0.0, reset_at_ms / 1000 - time.time()) + 0.3)
    resp = chat(gw)
    assert gw.state.holder.current.pool.deployments[resp.headers["x-turnout-deployment"]].tier == "free"


def test_free_budget_spills_to_paid_before_earning_429s(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}, "free_tier": {"requests_per_minute": 6, "headroom": 1}})
    sandbox.server.set_plan(FaultPlan(free_tier=FreeTier(enforce=True, per_minute=6)))
    for _ in range(12):
        assert chat(gw).status_code == 200
    outcomes = [c.outcome for c in sandbox.server.calls]
    assert outcomes.count("429_free_per_min") == 0
    free_ok = [c for c in sandbox.server.calls if c.model.endswith(":free") and c.outcome == "ok"]
    assert len(free_ok) == 5


def test_catalogue_outage_at_start_serves_the_persisted_pool(start_gateway: Callable[..., Any], sandbox: Any,
                                                             tmp_path: Any) -> None:
    first = start_gateway(data_dir=tmp_path / "state", pool={"health": {"enabled": False}})
    expected = {d.model for d in members(first, "auto")}
    first.stop()
    sandbox.server.set_plan(FaultPlan(catalogue_error=503))
    second = start_gateway(data_dir=tmp_path / "state", pool={"health": {"enabled": False}})
    ready = httpx.get(f"{second.url}/readyz").json()
    assert ready["status"] == "degraded" and "persisted" in ready["reason"]
    assert {d.model for d in members(second, "auto")} == expected
    assert chat(second).status_code == 200


def test_catalogue_outage_with_nothing_persisted_serves_static_only(start_gateway: Callable[..., Any],
                                                                    sandbox: Any, tmp_path: Any) -> None:
    sandbox.server.set_plan(FaultPlan(catalogue_error=500))
    gw = start_gateway(data_dir=tmp_path / "empty", pool={"health": {"enabled": False}},
                       deployments=[{"name": "local", "model": "openai/z-ai/glm-5.2:free", "api_base": sandbox.base_url,
                                     "wire": "openai"}])
    ready = httpx.get(f"{gw.url}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert "static deployments only" in ready.json()["reason"]
    assert "auto" not in gw.state.holder.current.pool.groups
    assert chat(gw, "auto").status_code == 404


def test_failed_refresh_keeps_the_current_pool(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(admin_key="admin-key", pool={"health": {"enabled": False}})
    before = gw.state.holder.current
    sandbox.server.set_plan(FaultPlan(catalogue_error=500))
    resp = httpx.post(f"{gw.url}/admin/refresh", headers={"Authorization": "Bearer admin-key"}, timeout=30)
    assert resp.status_code == 502 and resp.json()["error"]["code"] == "refresh_failed"
    assert gw.state.holder.current is before
    assert chat(gw).status_code == 200


def test_unchanged_catalogue_refreshes_to_the_same_pool(start_gateway: Callable[..., Any]) -> None:
    gw = start_gateway(admin_key="admin-key")
    before = {name: [m.deployment_id for m in g.members] for name, g in gw.state.holder.current.pool.groups.items()}
    for _ in range(2):
        httpx.post(f"{gw.url}/admin/refresh", headers={"Authorization": "Bearer admin-key"}, timeout=30).raise_for_status()
    after = {name: [m.deployment_id for m in g.members] for name, g in gw.state.holder.current.pool.groups.items()}
    assert after == before


def test_models_vanishing_and_appearing_fail_no_request(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(admin_key="admin-key", pool=NO_FREE_LIMIT)
    leaving = members(gw, "free")[0].model
    snapshot = json.loads((Path(turnout.__file__).parent / "data/openrouter/models-2026-08-19.json").read_text())["data"]
    template = next(m for m in snapshot if m["id"] == members(gw, "free")[1].model)
    newcomer = {**template, "id": "turnout-test/brand-new-model:free",
                "canonical_slug": "turnout-test/brand-new-model", "created": int(time.time())}
    failures: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            resp = chat(gw, "free")
            if resp.status_code != 200:
                failures.append(resp.status_code)

    workers = [threading.Thread(target=traffic) for _ in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)
    sandbox.server.remove_model(leaving)  # gone upstream before the gateway knows
    sandbox.server.add_model(newcomer)
    time.sleep(0.5)
    httpx.post(f"{gw.url}/admin/refresh", headers={"Authorization": "Bearer admin-key"}, timeout=30).raise_for_status()
    time.sleep(0.5)
    stop.set()
    for worker in workers:
        worker.join(timeout=30)
    assert failures == []
    assert leaving not in gw.state.holder.current.pool.groups
    assert leaving not in {d.model for d in members(gw, "free")}
    assert gw.state.manager.status()["catalogue_models"] == len(snapshot)  # one gone, one new
    listed = {m["id"] for m in httpx.get(f"{gw.url}/v1/models").json()["data"]}
    assert leaving not in listed
