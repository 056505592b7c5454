"""Failover and broken streams behind /v1/messages and /v1/responses: the engine's behaviour, in each API's words."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai

from tests.conftest import CHAIN_BACKUP, CHAIN_PRIMARY


def sse(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def test_failover_before_the_first_byte_is_invisible(chain: Callable[..., Any], sandbox: Any) -> None:
    from turnout.sandbox import FaultPlan, ModelFaults

    gw = chain()
    sandbox.server.set_plan(FaultPlan(models={CHAIN_PRIMARY: ModelFaults(error_rate=1.0, error_codes=[503])}))
    with anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0) as client, client.messages.stream(
            model="primary", max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_message()
    assert final.model == CHAIN_BACKUP and "Hello from" in final.content[0].text
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0) as responses:
        raw = responses.responses.with_raw_response.create(model="primary", input="hi")
    assert raw.parse().model == CHAIN_BACKUP and raw.headers["x-turnout-fallback"] == "true"


def test_every_deployment_failing_is_an_error_in_each_shape(chain: Callable[..., Any], sandbox: Any) -> None:
    from turnout.sandbox import FaultPlan, ModelFaults

    gw = chain()
    down = ModelFaults(error_rate=1.0, error_codes=[503])
    sandbox.server.set_plan(FaultPlan(models={CHAIN_PRIMARY: down, CHAIN_BACKUP: down}))
    messages = httpx.post(f"{gw.url}/v1/messages", timeout=30, json={
        "model": "primary", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
    assert messages.status_code == 502
    assert messages.json()["type"] == "error" and messages.json()["error"]["type"] == "api_error"
    responses = httpx.post(f"{gw.url}/v1/responses", timeout=30, json={"model": "primary", "input": "hi"})
    assert responses.status_code in {429, 502} and responses.json()["error"]["type"] == "upstream_error"


def test_a_stream_cut_after_it_started_ends_in_the_apis_own_terms(chain: Callable[..., Any], sandbox: Any) -> None:
    from turnout.sandbox import FaultPlan, ModelFaults

    gw = chain()
    cut = ModelFaults(stream_cut_after=3)
    sandbox.server.set_plan(FaultPlan(models={CHAIN_PRIMARY: cut, CHAIN_BACKUP: cut}))
    body = {"model": "primary", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "a fairly long answer please"}]}
    with httpx.stream("POST", f"{gw.url}/v1/messages", json=body, timeout=30) as resp:
        events = sse(resp.read().decode())
    assert events[0]["type"] == "message_start"
    # Cut mid-stream: one error event closes it (a continuation would end it with message_stop instead).
    assert events[-1]["type"] in {"error", "message_stop"}
    if events[-1]["type"] == "error":
        assert events[-1]["error"]["type"] == "api_error" and "stream" in events[-1]["error"]["message"]
    with httpx.stream("POST", f"{gw.url}/v1/responses", timeout=30,
                      json={"model": "primary", "input": "a fairly long answer please", "stream": True}) as resp:
        events = sse(resp.read().decode())
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] in {"response.failed", "response.completed"}
    if events[-1]["type"] == "response.failed":
        assert events[-1]["response"]["status"] == "failed" and events[-1]["response"]["error"]["code"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
