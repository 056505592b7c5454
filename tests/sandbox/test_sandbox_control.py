"""Free tier, catalogue churn, the control API, SandboxThread and the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from turnout.sandbox import FaultPlan, FreeTier, ModelFaults, SandboxServer, SandboxThread
from turnout.sandbox.quota import next_utc_midnight_ms

from .helpers import FREE_MODEL, PAID_MODEL, post_chat

ROOT = Path(__file__).resolve().parents[2]
NEW_MODEL = {
    "id": "sandbox/brand-new",
    "name": "Sandbox: Brand New",
    "created": 1790000000,
    "context_length": 8192,
    "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
    "pricing": {"prompt": "0.000001", "completion": "0.000002"},
    "supported_parameters": ["max_tokens"],
}


def control_url(sandbox: SandboxServer) -> str:
    return sandbox.base_url.removesuffix("/api/v1") + "/__sandbox"


@pytest.mark.asyncio
async def test_free_tier_per_minute(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(FaultPlan(free_tier=FreeTier(enforce=True, per_minute=3)))
    codes = [(await post_chat(sb_client, FREE_MODEL)).status_code for _ in range(3)]
    refused = await post_chat(sb_client, FREE_MODEL)
    assert codes == [200, 200, 200]
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["message"] == "Rate limit exceeded: free-models-per-min. "
    assert error["metadata"]["headers"]["X-RateLimit-Limit"] == "3"
    assert error["metadata"]["headers"]["X-RateLimit-Remaining"] == "0"
    assert int(error["metadata"]["headers"]["X-RateLimit-Reset"]) > time.time() * 1000
    assert (await post_chat(sb_client, PAID_MODEL)).status_code == 200  # paid models exempt
    assert sandbox_server.calls_for(FREE_MODEL)[-1].outcome == "429_free_per_min"


@pytest.mark.asyncio
async def test_free_tier_daily_limit_counts_failures_and_resets(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    reset_at = int(time.time() * 1000) + 400
    tier = FreeTier(enforce=True, per_day=2, day_reset_at_ms=reset_at)
    plan = FaultPlan(models={FREE_MODEL: ModelFaults(error_rate=1.0)}, free_tier=tier)
    sandbox_server.set_plan(plan)
    failures = [(await post_chat(sb_client, FREE_MODEL)).status_code for _ in range(2)]
    assert failures == [500, 500]  # failed attempts still count
    refused = await post_chat(sb_client, FREE_MODEL)
    assert refused.status_code == 429
    assert refused.json() == {
        "error": {
            "code": 429,
            "message": "Rate limit exceeded: free-models-per-day. "
            "Add 10 credits to unlock 1000 free model requests per day",
            "metadata": {
                "headers": {
                    "X-RateLimit-Limit": "2",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(reset_at),
                },
                "limit_source": "openrouter_free_tier_daily",
            },
        },
        "user_id": "user_sandbox",
    }
    key = (await sb_client.get("/key")).json()["data"]["sandbox_free_tier"]
    assert key["remaining_today"] == 0
    await asyncio.sleep(0.45)
    assert (await post_chat(sb_client, FREE_MODEL)).status_code == 500  # new day, admitted


def test_daily_reset_defaults_to_next_utc_midnight() -> None:
    assert next_utc_midnight_ms(0) == 86_400_000
    assert next_utc_midnight_ms(86_400 * 3 + 5) == 86_400_000 * 4


@pytest.mark.asyncio
async def test_catalogue_error_and_churn(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(FaultPlan(catalogue_error=502))
    failed = await sb_client.get("/models")
    assert failed.status_code == 502 and failed.json()["error"]["code"] == 502
    sandbox_server.set_plan(FaultPlan())

    sandbox_server.add_model(NEW_MODEL)
    models = (await sb_client.get("/models")).json()
    assert models["data"][0]["id"] == "sandbox/brand-new"
    assert models["total_count"] == 415
    answer = await post_chat(sb_client, "sandbox/brand-new")
    assert answer.json()["choices"][0]["message"]["content"].startswith("Hello from sandbox/brand")

    sandbox_server.remove_model(PAID_MODEL)
    ids = {m["id"] for m in (await sb_client.get("/models")).json()["data"]}
    assert PAID_MODEL not in ids and len(ids) == 414
    assert (await post_chat(sb_client, PAID_MODEL)).status_code == 400
    assert (await sb_client.get("/models/openai/gpt-4o/endpoints")).status_code == 404


@pytest.mark.asyncio
async def test_catalogue_hang(sandbox_server: SandboxServer) -> None:
    sandbox_server.set_plan(FaultPlan(catalogue_hang=True))
    async with httpx.AsyncClient(base_url=sandbox_server.base_url, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/models")


@pytest.mark.asyncio
async def test_control_api(sb_client: httpx.AsyncClient, sandbox_server: SandboxServer) -> None:
    async with httpx.AsyncClient(base_url=control_url(sandbox_server)) as control:
        bad = await control.put("/plan", json={"models": {PAID_MODEL: {"error_ratez": 1}}})
        assert bad.status_code == 400
        message = bad.json()["error"]["message"]
        assert f"models.{PAID_MODEL}.error_ratez" in message and "Extra inputs" in message
        assert (await control.put("/plan", content=b"{oops")).status_code == 400

        plan = {"models": {PAID_MODEL: {"fail_next": 1, "fail_next_code": 503}}}
        assert (await control.put("/plan", json=plan)).status_code == 200
        current = (await control.get("/plan")).json()
        assert current["models"][PAID_MODEL]["fail_next_code"] == 503
        assert sandbox_server.plan.models[PAID_MODEL].fail_next == 1

        assert (await post_chat(sb_client, PAID_MODEL)).status_code == 503
        assert (await post_chat(sb_client, PAID_MODEL)).status_code == 200
        calls = (await control.get("/calls")).json()
        assert calls["counts"][PAID_MODEL] == {"503": 1, "ok": 1}
        assert calls["total"] == 2 and len(calls["calls"]) == 2
        assert calls["calls"][0]["headers"]["Authorization"] == "Bearer ***"

        assert (await control.post("/models", json=NEW_MODEL)).status_code == 201
        assert (await control.post("/models", json={"name": "no id"})).status_code == 400
        assert (await sb_client.get("/models/sandbox/brand-new/endpoints")).status_code == 200
        assert (await control.delete("/models/sandbox/brand-new")).status_code == 200
        assert (await control.delete("/models/sandbox/brand-new")).status_code == 404

        assert (await control.post("/reset")).json() == {"ok": True}
        assert (await control.get("/calls")).json()["total"] == 0
        assert sandbox_server.calls == []


def test_sandbox_thread_from_sync_code() -> None:
    plan = FaultPlan(models={PAID_MODEL: ModelFaults(fail_next=1, fail_next_code=502)})
    with SandboxThread(plan=plan) as sb:
        with httpx.Client(base_url=sb.base_url, headers={"Authorization": "Bearer x"}) as http:
            body = {"model": PAID_MODEL, "messages": [{"role": "user", "content": "hi"}]}
            first = http.post("/chat/completions", json=body)
            second = http.post("/chat/completions", json=body)
            sb.server.set_plan(FaultPlan(default=ModelFaults(error_rate=1.0, error_codes=[418])))
            third = http.post("/chat/completions", json=body)
        assert [first.status_code, second.status_code, third.status_code] == [502, 200, 418]
        assert [c.outcome for c in sb.server.calls_for(PAID_MODEL)] == ["502", "ok", "418"]
        sb.server.reset_calls()
        assert sb.server.calls == []


def test_cli_starts_answers_and_stops(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"default": {"error_rate": 1.0, "error_codes": [503]}}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "turnout.sandbox", "--port", "0", "--plan", str(plan_file),
         "--require-key", "sk-cli"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/api/v1")
        with httpx.Client(base_url=base_url, headers={"Authorization": "Bearer sk-cli"}) as http:
            assert len(http.get("/models").json()["data"]) == 414
            body = {"model": PAID_MODEL, "messages": [{"role": "user", "content": "hi"}]}
            assert http.post("/chat/completions", json=body).status_code == 503
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=5)
    assert proc.returncode == 0, stderr


def test_cli_rejects_an_invalid_plan(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"defualt": {}}))
    result = subprocess.run(
        [sys.executable, "-m", "turnout.sandbox", "--port", "0", "--plan", str(plan_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2
    assert "defualt" in result.stderr
