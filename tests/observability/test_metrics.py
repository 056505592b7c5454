"""Prometheus metrics against the sandbox: counters move with real traffic and fault plans,
pool gauges equal GET /admin/pool, the exposition passes promtool, logs carry no secret.

Request-level metrics are recorded when the response has been sent, so a client can read
its answer a moment before they move: `wait_for` polls for that moment. Samples are read
from the app's own registry (restricted to one name, so the scrape-time collector stays on
the server's event loop); scrape-time gauges are read over HTTP.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CHAIN_BACKUP, CHAIN_PRIMARY, OPENROUTER_TEST_KEY
from turnout.observability.usage import Cost, usage_cost, usage_tokens
from turnout.pool.model import Deployment
from turnout.sandbox import FaultPlan, ModelFaults

ROOT = Path(__file__).resolve().parents[2]
HELLO = [{"role": "user", "content": "hello"}]
ADMIN = {"Authorization": "Bearer admin-key"}


def value(gw: Any, name: str, **labels: str) -> float:
    """One sample from the gateway's registry; 0 when the series does not exist."""
    registry = gw.state.extras["metrics"].registry
    for family in registry.restricted_registry([name]).collect():
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def exists(gw: Any, name: str, **labels: str) -> bool:
    registry = gw.state.extras["metrics"].registry
    return any(s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
               for family in registry.restricted_registry([name]).collect() for s in family.samples)


def wait_for(gw: Any, expected: float, name: str, **labels: str) -> None:
    deadline = time.monotonic() + 5
    while (found := value(gw, name, **labels)) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert found == expected, f"{name}{labels} = {found}, expected {expected}"


def scrape(gw: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{gw.url}/metrics", timeout=10).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def chat(gw: Any, model: str, **extra: Any) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"model": model, "messages": HELLO, **extra}, timeout=30)


def stream_usage(gw: Any, model: str) -> tuple[str, dict[str, Any]]:
    """(the model that answered, the usage of the stream's final usage chunk)."""
    body = {"model": model, "messages": HELLO, "stream": True, "stream_options": {"include_usage": True}}
    usage: dict[str, Any] = {}
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=30) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line.startswith("data: {") and '"usage"' in line:
                usage = json.loads(line[6:]).get("usage") or usage
    return resp.headers["x-turnout-model"], usage


def test_a_fallback_after_a_429_is_counted_for_the_right_deployment(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain()
    sandbox.server.set_plan(FaultPlan(models={CHAIN_PRIMARY: ModelFaults(rate_limit_rate=1.0, retry_after_s=30)}))
    resp = chat(gw, "primary")
    assert resp.status_code == 200 and resp.headers["x-turnout-fallback"] == "true"
    wait_for(gw, 1, "turnout_requests_total", api="chat", alias="primary", status_class="2xx", stream="false")
    assert value(gw, "turnout_upstream_attempts_total", model="primary", tier="static", outcome="rate_limited") == 1
    assert value(gw, "turnout_upstream_attempts_total", model="backup", tier="static", outcome="ok") == 1
    assert value(gw, "turnout_upstream_attempts_total", model="backup", tier="static", outcome="rate_limited") == 0
    assert value(gw, "turnout_fallbacks_total", from_group="primary", to_group="backup") == 1
    assert value(gw, "turnout_retries_total", alias="primary") == 1
    assert value(gw, "turnout_cooldowns_total", model="primary", tier="static", reason="rate_limited") == 1
    assert value(gw, "turnout_gateway_overhead_seconds_count") == 1
    assert value(gw, "turnout_request_duration_seconds_count", api="chat", alias="primary", stream="false") == 1
    assert value(gw, "turnout_requests_in_flight") == 0
    usage = resp.json()["usage"]
    assert value(gw, "turnout_tokens_total", model="backup", tier="static", kind="prompt") == usage["prompt_tokens"]
    assert value(gw, "turnout_tokens_total", model="backup", tier="static",
                 kind="completion") == usage["completion_tokens"]

    # Benched now: the next request goes straight to the backup — a fallback, but no retry.
    assert chat(gw, "primary").status_code == 200
    wait_for(gw, 2, "turnout_requests_total", api="chat", alias="primary", status_class="2xx", stream="false")
    assert value(gw, "turnout_upstream_attempts_total", model="primary", tier="static", outcome="rate_limited") == 1
    assert value(gw, "turnout_fallbacks_total", from_group="primary", to_group="backup") == 2
    assert value(gw, "turnout_retries_total", alias="primary") == 1
    scraped = scrape(gw)
    assert scraped[("turnout_deployment_cooling_down", frozenset({("model", "primary"), ("tier", "static")}))] == 1
    assert scraped[("turnout_deployment_cooling_down", frozenset({("model", "backup"), ("tier", "static")}))] == 0


def test_server_errors_and_resets_are_counted_by_outcome(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain(retries={"cooldown_s": 30, "allowed_fails": 5})
    sandbox.server.set_plan(FaultPlan(models={CHAIN_PRIMARY: ModelFaults(fail_next=1, fail_next_code=503),
                                              CHAIN_BACKUP: ModelFaults(reset_rate=1.0)}))
    assert chat(gw, "primary").status_code == 200  # 503, then the same deployment again
    assert chat(gw, "backup").status_code == 502  # reset, and reset again
    wait_for(gw, 1, "turnout_requests_total", api="chat", alias="backup", status_class="5xx", stream="false")
    assert value(gw, "turnout_upstream_attempts_total", model="primary", tier="static", outcome="server_error") == 1
    assert value(gw, "turnout_upstream_attempts_total", model="primary", tier="static", outcome="ok") == 1
    assert value(gw, "turnout_upstream_attempts_total", model="backup", tier="static",
                 outcome="connection_error") >= 1
    assert value(gw, "turnout_fallbacks_total", from_group="primary", to_group="backup") == 0


def test_paid_usage_adds_cost_tokens_and_reasoning(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}})
    sandbox.server.set_plan(FaultPlan(default=ModelFaults(reasoning_only=True)))
    spent: dict[str, float] = {}
    tokens: dict[tuple[str, str], int] = {}

    def add(model: str, usage: dict[str, Any], cost: float) -> None:
        spent[model] = spent.get(model, 0.0) + cost
        for kind, count in zip(("prompt", "completion", "reasoning"), usage_tokens(usage), strict=True):
            tokens[(model, kind)] = tokens.get((model, kind), 0) + count

    for _ in range(3):
        resp = chat(gw, "paid")
        assert resp.status_code == 200
        usage = resp.json()["usage"]
        assert float(resp.headers["x-turnout-cost-usd"]) == pytest.approx(usage["cost"], abs=1e-8)
        add(resp.headers["x-turnout-model"], usage, usage["cost"])
    streamed, usage = stream_usage(gw, "paid")
    assert usage["cost"] > 0 and usage["completion_tokens_details"]["reasoning_tokens"] > 0
    add(streamed, usage, usage["cost"])
    wait_for(gw, 1, "turnout_requests_total", api="chat", alias="paid", status_class="2xx", stream="true")

    models = {d.model for d in gw.state.holder.current.pool.deployments.values() if d.tier == "paid"}
    assert sum(spent.values()) > 0 and set(spent) <= models
    for model in models:
        assert value(gw, "turnout_cost_usd_total", model=model, tier="paid") == pytest.approx(spent.get(model, 0.0))
        for kind in ("prompt", "completion", "reasoning"):
            assert value(gw, "turnout_tokens_total", model=model, tier="paid",
                         kind=kind) == tokens.get((model, kind), 0), (model, kind)
    assert value(gw, "turnout_time_to_first_token_seconds_count", api="chat", alias="paid") == 1


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.25}, Cost(0.25, "upstream")),
        ({"prompt_tokens": 10, "completion_tokens": 5, "cost": 0}, Cost(0.0, "upstream")),
        ({"prompt_tokens": 10, "completion_tokens": 5}, Cost(10 * 2e-6 + 5 * 8e-6, "catalogue")),
        ({"prompt_tokens": 10, "completion_tokens": 5, "cost": None}, Cost(10 * 2e-6 + 5 * 8e-6, "catalogue")),
        ({"prompt_tokens": 10}, None),
        (None, None),
    ],
)
def test_cost_comes_from_usage_else_catalogue_prices(usage: Any, expected: Cost | None) -> None:
    dep = Deployment(id="d", model="m", provider="openrouter", upstream_model="m", wire="openai", api_base="",
                     credential=None, tier="paid", prompt_price=2e-6, completion_price=8e-6)
    found = usage_cost(usage, dep)
    assert found == (None if expected is None else pytest.approx(expected))


def test_reasoning_tokens_come_from_completion_details() -> None:
    usage = {"prompt_tokens": 7, "completion_tokens": 30, "completion_tokens_details": {"reasoning_tokens": 20}}
    assert usage_tokens(usage) == (7, 30, 20)
    assert usage_tokens({"prompt_tokens": "7"}) == (0, 0, 0)


def test_pool_gauges_equal_the_admin_pool(start_gateway: Callable[..., Any]) -> None:
    gw = start_gateway(admin_key="admin-key")
    admin = httpx.get(f"{gw.url}/admin/pool", headers=ADMIN, timeout=10).json()
    found = scrape(gw)

    def gauge(name: str, **labels: str) -> float | None:
        return found.get((name, frozenset(labels.items())))

    health_seen = 0
    for alias, members in admin["groups"].items():
        for tier in ("free", "paid", "static"):
            expected = sum(1 for m in members if m["tier"] == tier)
            assert (gauge("turnout_pool_deployments", alias=alias, tier=tier) or 0) == expected, (alias, tier)
        for member in members:
            if member["health"] is not None:
                health_seen += 1
                got = gauge("turnout_deployment_health", model=member["model"], tier=member["tier"])
                assert got == pytest.approx(member["health"], abs=1e-4), member["model"]
            got = gauge("turnout_deployment_score", model=member["model"], tier=member["tier"])
            assert got is not None and got >= member["score"] - 1e-4
    assert health_seen > 0
    pool = gw.state.holder.current.pool
    for tier in ("free", "paid"):
        count = sum(1 for d in pool.deployments.values() if d.tier == tier)
        assert gauge("turnout_pool_models", tier=tier) == count
    budget, refresh = admin["free_tier"], admin["refresh"]
    assert gauge("turnout_free_tier_remaining_requests", window="minute") == budget["remaining_minute"]
    assert gauge("turnout_free_tier_remaining_requests", window="day") == budget["remaining_day"]
    assert gauge("turnout_free_tier_exhausted") == 0
    assert gauge("turnout_catalogue_models") == refresh["catalogue_models"] > 0
    assert gauge("turnout_pool_last_success_timestamp_seconds") == pytest.approx(refresh["last_success_at"])
    assert gauge("turnout_pool_refreshes_total", kind="catalogue", outcome="ok") == refresh["refreshes"]["ok"]
    assert gauge("turnout_pool_built_timestamp_seconds") == pytest.approx(admin["built_at"])
    assert gauge("turnout_pool_degraded") == 0
    assert gauge("turnout_health_gated_models") == len(gw.state.manager.gated())
    cycle = gw.state.manager.health_cycle
    assert gauge("turnout_health_reads_failed") == len(cycle.failed)
    assert gauge("turnout_health_stale") == (1 if cycle.stale else 0)


def test_a_model_that_leaves_the_pool_loses_its_series(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(admin_key="admin-key", pool={"health": {"enabled": False}})
    pool = gw.state.holder.current.pool
    leaving, staying = [pool.deployments[m.deployment_id].model for m in pool.groups["free"].members[:2]]
    for model in (leaving, staying):
        assert chat(gw, model).status_code == 200
    wait_for(gw, 2, "turnout_requests_total", api="chat", alias="model", status_class="2xx", stream="false")
    assert value(gw, "turnout_upstream_attempts_total", model=leaving, tier="free", outcome="ok") == 1
    catalogue = sandbox.server.catalogue
    sandbox.server.remove_model(leaving)
    try:
        assert httpx.post(f"{gw.url}/admin/refresh", headers=ADMIN, timeout=30).status_code == 200
    finally:
        sandbox.server.catalogue = catalogue
    assert leaving not in {d.model for d in gw.state.holder.current.pool.deployments.values()}
    for name in ("turnout_upstream_attempts_total", "turnout_tokens_total", "turnout_deployment_score"):
        assert not exists(gw, name, model=leaving), name
        assert exists(gw, name, model=staying), name
    assert value(gw, "turnout_upstream_attempts_total", model=staying, tier="free", outcome="ok") == 1


def test_request_labels_stay_bounded(start_gateway: Callable[..., Any]) -> None:
    gw = start_gateway(api_keys=["client-key"], pool={"health": {"enabled": False}})
    key = {"Authorization": "Bearer client-key"}
    assert httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "auto", "messages": HELLO}).status_code == 401
    for name in ("no-such-model-1", "no-such-model-2"):
        resp = httpx.post(f"{gw.url}/v1/chat/completions", headers=key, json={"model": name, "messages": HELLO})
        assert resp.status_code == 404
    assert httpx.post(f"{gw.url}/v1/chat/completions", headers=key, json={"model": "AUTO", "messages": HELLO}
                      ).status_code == 200
    wait_for(gw, 3, "turnout_requests_total", api="chat", alias="other", status_class="4xx", stream="false")
    wait_for(gw, 1, "turnout_requests_total", api="chat", alias="auto", status_class="2xx", stream="false")
    metrics = httpx.get(f"{gw.url}/metrics")  # operators scrape without a client key
    assert metrics.status_code == 200 and "no-such-model" not in metrics.text


def test_exposition_passes_promtool(chain: Callable[..., Any], sandbox: Any) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (.ci/run installs Debian's prometheus)")
    gw = chain()
    sandbox.server.set_plan(FaultPlan(models={CHAIN_PRIMARY: ModelFaults(rate_limit_rate=1.0, retry_after_s=30)}))
    chat(gw, "primary")
    chat(gw, "no-such-model")
    stream_usage(gw, "paid")
    resp = httpx.get(f"{gw.url}/metrics")
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "turnout_upstream_attempts_total" in resp.text and "process_cpu_seconds_total" in resp.text
    result = subprocess.run([promtool, "check", "metrics"], input=resp.text, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    openmetrics = httpx.get(f"{gw.url}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")


def test_request_logs_carry_attempts_tokens_cost_and_no_secret(
    chain: Callable[..., Any], sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gw = chain(admin_key="admin-key")
    sandbox.server.set_plan(FaultPlan(models={CHAIN_PRIMARY: ModelFaults(rate_limit_rate=1.0, retry_after_s=30)},
                                      free_models=ModelFaults(),
                                      default=ModelFaults(fail_next=1, fail_next_code=401)))
    assert chat(gw, "primary").status_code == 200
    assert chat(gw, "paid").status_code == 502  # the OpenRouter credential is refused: logged, never shown
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "turnout.requests"]
    fallback = next(line for line in lines if line["requested"] == "primary")
    assert [(a["model"], a["outcome"]) for a in fallback["attempts"]] == [("primary", "rate_limited"),
                                                                        ("backup", "ok")]
    assert fallback["fallback"] is True and fallback["status"] == 200
    assert fallback["prompt_tokens"] > 0 and fallback["completion_tokens"] > 0
    assert fallback["cost_usd"] == 0 and fallback["cost_source"] == "upstream"
    refused = next(line for line in lines if line["requested"] == "paid")
    assert refused["status"] == 502 and refused["error"] == "upstream_auth"
    pages = [httpx.get(f"{gw.url}{path}", headers=ADMIN).text for path in ("/metrics", "/status", "/admin/pool")]
    for text in (caplog.text, *pages):
        assert OPENROUTER_TEST_KEY not in text
        assert "sk-static-test-key" not in text


def test_every_metric_is_documented_and_the_dashboard_uses_only_real_metrics(
    chain: Callable[..., Any], tmp_path: Path
) -> None:
    gw = chain()
    families = list(text_string_to_metric_families(httpx.get(f"{gw.url}/metrics").text))
    ours = {f.name for f in families if f.name.startswith("turnout_") and not f.name.endswith("_created")}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(turnout_[a-z_]+)`", readme))
    exposed = {f"{n}_total" if f.type == "counter" else n for f in families if (n := f.name) in ours}
    assert exposed - documented == set(), "metrics missing from the README's Metrics reference"
    # gauges of the state replicas share exist only with shared_state (tests/shared checks them there)
    shared_only = set(re.findall(r"`(turnout_[a-z_]+)` \| gauge \| — \| With `shared_state` only", readme))
    assert documented - exposed == shared_only, "the README documents metrics that do not exist"

    samples = set()
    for family in families:
        samples |= {family.name, f"{family.name}_total", f"{family.name}_bucket", f"{family.name}_sum",
                    f"{family.name}_count"}
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/turnout.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    used = {name for expr in exprs for name in re.findall(r"\b(turnout_[a-z_]+)", expr)}
    assert used - samples == set(), "the dashboard queries metrics Turnout does not export"
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed: dashboard PromQL not parsed")
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": re.sub(r"\$__rate_interval|\$__range", "5m", expr)
         .replace("$alias", ".*")} for i, expr in enumerate(exprs)]}]}
    path = tmp_path / "dashboard_rules.json"  # promtool reads YAML; JSON is YAML
    path.write_text(json.dumps(rules))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
