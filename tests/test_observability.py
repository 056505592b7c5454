"""Metrics move with traffic, the exposition passes promtool, logs hold no secret, the status page renders."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.sandbox import FaultPlan, ModelFaults
from tests.conftest import OPENROUTER_TEST_KEY

from tests.conftest import CHAIN_PRIMARY as A
HELLO = [{"role": "user", "content": "hello"}]


def samples(gw: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{gw.url}/metrics").text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= ls)


@pytest.fixture
def gw(chain: Callable[..., Any]) -> Any:
    return chain(admin_key="admin")


def test_metrics_follow_fallbacks_429s_and_cost(gw: Any, sandbox: Any) -> None:
    sandbox.server.set_plan(FaultPlan(models={A: ModelFaults(rate_limit_rate=1.0, retry_after_s=30)}))
    assert httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "primary", "messages": HELLO}).status_code == 200
    paid = next(d.model for d in gw.state.holder.current.pool.deployments.values() if d.tier == "paid")
    assert httpx.post(f"{gw.url}/v1/chat/completions", json={"model": paid, "messages": HELLO}).status_code == 200
    found = samples(gw)
    assert value(found, "switchyard_fallbacks_total", from_group="primary", to_group="backup") == 1
    assert value(found, "switchyard_upstream_attempts_total", model="primary", outcome="rate_limited") == 1
    assert value(found, "switchyard_upstream_attempts_total", model="backup", outcome="ok") == 1
    assert value(found, "switchyard_cost_usd_total", model=paid, tier="paid") > 0
    assert value(found, "switchyard_tokens_total", model=paid, kind="completion") > 0
    assert value(found, "switchyard_requests_total", alias="primary", status_class="2xx") == 1


def test_pool_gauges_equal_the_admin_pool(gw: Any) -> None:
    pool = httpx.get(f"{gw.url}/admin/pool", headers={"Authorization": "Bearer admin"}).json()
    found = samples(gw)
    for alias, members in pool["groups"].items():
        for tier in ("free", "paid"):
            expected = sum(1 for m in members if m["tier"] == tier)
            assert value(found, "switchyard_pool_deployments", alias=alias, tier=tier) == expected, (alias, tier)


def test_exposition_passes_promtool(gw: Any) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (.ci/run installs Debian's prometheus)")
    httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "primary", "messages": HELLO})
    text = httpx.get(f"{gw.url}/metrics").text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_logs_and_metrics_hold_no_secret(start_gateway: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gw = start_gateway(pool={"health": {"enabled": False}})
    httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "auto", "messages": HELLO})
    httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "nope", "messages": HELLO})
    assert any('"event": "request"' in r.getMessage() for r in caplog.records)
    for text in (caplog.text, httpx.get(f"{gw.url}/metrics").text, httpx.get(f"{gw.url}/status").text):
        assert OPENROUTER_TEST_KEY not in text


def test_status_page_renders_in_chromium(start_gateway: Callable[..., Any], tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium not installed (.ci/run installs Debian's chromium)")
    gw = start_gateway(pool={"health": {"enabled": False}})
    httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "auto", "messages": HELLO})
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"]
    shot = tmp_path / "status.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", f"{gw.url}/status"], capture_output=True, timeout=90)
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    dom = subprocess.run([chromium, *flags, "--dump-dom", f"{gw.url}/status"], capture_output=True, text=True,
                         timeout=90).stdout
    pool = gw.state.holder.current.pool
    for alias in ("auto", "free", "paid", "vision", "long"):
        assert alias in dom
    first = pool.deployments[pool.groups["auto"].members[0].deployment_id].model
    assert first in dom
