"""`turnout probe` with a running gateway: through it (`--gateway`), and feeding it (`--feed`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import LiveGateway
from tests.probe.conftest import ProbeRun
from turnout.pool.selection import openrouter_deployment_id
from turnout.upstream import litellm_internals

ADMIN_KEY = "admin-key-for-probe"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _auto_members(gw: LiveGateway) -> list[str]:
    pool = gw.state.holder.current.pool
    return [pool.deployments[m.deployment_id].model for m in pool.groups["auto"].members]


def _cooling(gw: LiveGateway, model: str) -> list[Any]:
    snapshot = gw.state.holder.current
    ids = [eid for dep in snapshot.pool.deployments.values() if dep.model == model
           for eid in snapshot.entries.get(dep.id, ())]
    return litellm_internals.active_cooldowns(snapshot.router, ids)


def test_probe_through_a_gateway_reports_its_models(run_probe: Callable[..., ProbeRun], sandbox: Any,
                                                    start_gateway: Callable[..., LiveGateway]) -> None:
    gw = start_gateway(api_keys=["client-key"], pool={"health": {"enabled": False}})
    broken, *fine = _auto_members(gw)[:3]
    sandbox.server.set_plan({"models": {broken: {"error_rate": 1.0, "error_codes": [402]}}})
    run = run_probe("--gateway", gw.url, "--api-key", "client-key", "--ids", broken, *fine)
    assert run.code == 0, run.stderr
    results = run.by_model()
    assert results[broken]["kind"] == "payment"  # the gateway's code upstream_payment names the kind
    assert all(results[m]["ok"] and results[m]["served_by"] == m for m in fine)
    assert run.report["via"] == "gateway"


def test_feed_takes_broken_models_out_of_rotation_at_once(run_probe: Callable[..., ProbeRun], sandbox: Any,
                                                          start_gateway: Callable[..., LiveGateway]) -> None:
    gw = start_gateway(admin_key=ADMIN_KEY, pool={"health": {"enabled": False}})
    members = _auto_members(gw)
    broken, gone = members[0], members[1]
    assert not _cooling(gw, broken)
    sandbox.server.set_plan({"models": {broken: {"error_rate": 1.0, "error_codes": [500]},
                                        gone: {"error_rate": 1.0, "error_codes": [404]}}})
    # straight to the sandbox OpenRouter: the gateway has seen none of these failures itself
    run = run_probe("--source", "catalogue", "--ids", *members, "--feed", gw.url, "--admin-key", ADMIN_KEY)
    assert run.code == 0, run.stderr
    assert f"fed {len(members)} results" in run.stdout
    assert _cooling(gw, broken) and _cooling(gw, gone)
    assert not any(_cooling(gw, m) for m in members[2:])
    stats = gw.state.passive.snapshot()
    assert stats[openrouter_deployment_id(broken)].error_rate == 1.0
    assert stats[openrouter_deployment_id(members[2])].success_rate == 1.0
    sandbox.server.set_plan({})  # the gateway would now succeed on them: it does not try
    served = {httpx.post(f"{gw.url}/v1/chat/completions", timeout=30,
                         json={"model": "auto", "messages": [{"role": "user", "content": f"hi {i}"}]}
                         ).headers["x-turnout-model"] for i in range(12)}
    assert served and not served & {broken, gone}


def test_the_feed_endpoint_wants_the_admin_key_and_a_valid_body(start_gateway: Callable[..., LiveGateway]) -> None:
    gw = start_gateway(admin_key=ADMIN_KEY, api_keys=["client-key"], pool={"health": {"enabled": False}})
    body = {"results": [{"model": "x/y", "ok": False, "kind": "timeout"}]}
    assert httpx.post(f"{gw.url}/admin/probe", json=body, timeout=10).status_code == 401
    assert httpx.post(f"{gw.url}/admin/probe", json=body, timeout=10,
                      headers={"Authorization": "Bearer client-key"}).status_code == 401
    bad = httpx.post(f"{gw.url}/admin/probe", json={"results": [{"model": "x/y", "ok": False, "kind": "gremlins"}]},
                     headers=ADMIN, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["param"].startswith("results.0.kind")
    answer = httpx.post(f"{gw.url}/admin/probe", json=body, headers=ADMIN, timeout=10).json()
    assert answer == {"recorded": 0, "benched": [], "not_in_pool": ["x/y"]}
