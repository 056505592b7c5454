"""The sandbox's scorecard faults and its prefill-taking models, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from turnout.sandbox import FaultPlan, ModelFaults, SandboxServer
from turnout.sandbox.completions import scripted_answer
from turnout.sandbox.scenarios import ROWS, scorecard_plan

from .helpers import FREE_MODEL, PAID_MODEL, read_sse

ASK = [{"role": "user", "content": "Name some rivers."}]


def body(model: str, messages: list[dict[str, Any]] = ASK, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": messages, **extra}


def text_of(payloads: list[Any]) -> str:
    return "".join(p["choices"][0]["delta"].get("content") or "" for p in payloads
                   if isinstance(p, dict) and p.get("choices"))


@pytest.mark.asyncio
async def test_scripted_answers_depend_on_the_conversation_not_the_model(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(FaultPlan(answer_words=30))
    one = (await sb_client.post("/chat/completions", json=body(PAID_MODEL))).json()
    two = (await sb_client.post("/chat/completions", json=body(FREE_MODEL))).json()
    expected = scripted_answer(ASK, 30)
    assert one["choices"][0]["message"]["content"] == two["choices"][0]["message"]["content"] == expected
    assert len(expected.split()) == 30 and one["usage"]["completion_tokens"] == 30
    other = scripted_answer([{"role": "user", "content": "Name some lakes."}], 30)
    assert other != expected
    _, payloads = await read_sse(sb_client, body(FREE_MODEL))
    assert text_of(payloads) == expected


@pytest.mark.asyncio
async def test_a_prefilled_request_gets_only_the_rest_of_the_answer(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(FaultPlan(answer_words=30))
    full = scripted_answer(ASK, 30)
    cut = len(" ".join(full.split()[:12]))
    prefilled = [*ASK, {"role": "assistant", "content": full[:cut]}]
    resp = (await sb_client.post("/chat/completions", json=body(PAID_MODEL, prefilled))).json()
    assert full[:cut] + resp["choices"][0]["message"]["content"] == full
    assert resp["usage"]["completion_tokens"] == 18  # the rest only
    _, payloads = await read_sse(sb_client, body(PAID_MODEL, prefilled))
    assert full[:cut] + text_of(payloads) == full
    # a prefill that is not how the answer begins: the whole answer
    other = [*ASK, {"role": "assistant", "content": "Something else"}]
    resp = (await sb_client.post("/chat/completions", json=body(PAID_MODEL, other))).json()
    assert resp["choices"][0]["message"]["content"] == full


@pytest.mark.asyncio
async def test_a_model_without_prefill_refuses_it_like_real_providers(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(FaultPlan(models={PAID_MODEL: ModelFaults(prefill="refuse")}))
    prefilled = [*ASK, {"role": "assistant", "content": "The"}]
    resp = await sb_client.post("/chat/completions", json=body(PAID_MODEL, prefilled))
    assert resp.status_code == 400
    assert "does not support assistant message prefill" in resp.json()["error"]["metadata"]["raw"]
    assert sandbox_server.calls[-1].outcome == "400_prefill"
    assert (await sb_client.post("/chat/completions", json=body(PAID_MODEL))).status_code == 200


@pytest.mark.asyncio
async def test_one_malformed_event_then_the_stream_goes_on(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(FaultPlan(answer_words=20, models={PAID_MODEL: ModelFaults(malformed_event_at=11)}))
    _, payloads = await read_sse(sb_client, body(PAID_MODEL))
    assert "malformed" in payloads[11] and payloads[-1] == "[DONE]"
    assert text_of(payloads) == scripted_answer(ASK, 20)


@pytest.mark.asyncio
async def test_outage_window_then_recovery(sb_client: httpx.AsyncClient, sandbox_server: SandboxServer) -> None:
    sandbox_server.set_plan(FaultPlan(models={PAID_MODEL: ModelFaults(fail_for_s=60, fail_next_code=503)}))
    assert (await sb_client.post("/chat/completions", json=body(PAID_MODEL))).status_code == 503
    sandbox_server.set_plan(FaultPlan(models={PAID_MODEL: ModelFaults(fail_for_s=0.001, fail_next_code=503)}))
    sandbox_server._plan_at -= 1  # the window has passed, without sleeping through it
    assert (await sb_client.post("/chat/completions", json=body(PAID_MODEL))).status_code == 200


@pytest.mark.asyncio
async def test_json_body_cut_short(sandbox_server: SandboxServer) -> None:
    import aiohttp

    sandbox_server.set_plan(FaultPlan(models={PAID_MODEL: ModelFaults(truncate_json=True)}))
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer k"}) as session:
        async with session.post(f"{sandbox_server.base_url}/chat/completions", json=body(PAID_MODEL)) as resp:
            assert resp.status == 200 and resp.content_length
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()


@pytest.mark.asyncio
async def test_content_policy_400(sb_client: httpx.AsyncClient, sandbox_server: SandboxServer) -> None:
    sandbox_server.set_plan(FaultPlan(models={PAID_MODEL: ModelFaults(content_policy_error=True)}))
    resp = await sb_client.post("/chat/completions", json=body(PAID_MODEL))
    assert resp.status_code == 400 and "content management policy" in resp.json()["error"]["metadata"]["raw"]


def test_every_scorecard_row_has_a_plan() -> None:
    for row in ROWS:
        plan = scorecard_plan(row, primary=PAID_MODEL, fallback=FREE_MODEL)
        assert plan.answer_words and plan.models[PAID_MODEL] != ModelFaults()
    with pytest.raises(KeyError):
        scorecard_plan("S17", primary=PAID_MODEL, fallback=FREE_MODEL)
