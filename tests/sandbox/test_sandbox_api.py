"""The sandbox answers like OpenRouter: catalogue, endpoints, key, chat."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from turnout.sandbox import SandboxServer

from .helpers import (
    FREE_MODEL,
    NO_TOOLS_MODEL,
    PAID_MODEL,
    TEXT_ONLY_MODEL,
    chat_body,
    post_chat,
    read_sse,
)

DATA = Path(__file__).resolve().parents[2] / "turnout" / "data" / "openrouter"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "verbose": {"type": "boolean"},
                "optional": {"type": "string"},
            },
            "required": ["city", "days", "unit", "verbose"],
        },
    },
}


@pytest.mark.asyncio
async def test_catalogue_serves_the_whole_snapshot(sb_client: httpx.AsyncClient) -> None:
    resp = await sb_client.get("/models")
    body = resp.json()
    assert resp.status_code == 200
    assert len(body["data"]) == 414
    assert body["total_count"] == 414
    assert body["links"] == {"next": None}
    assert body["data"][0]["id"] == "qwen/qwen3.8-27b"


@pytest.mark.asyncio
async def test_catalogue_path_selects_another_snapshot() -> None:
    server = SandboxServer(catalogue_path=DATA / "models-2026-01-29.json")
    async with server, httpx.AsyncClient(base_url=server.base_url) as http:
        body = (await http.get("/models")).json()
        endpoints = await http.get("/models/meta-llama/llama-3.3-70b-instruct:free/endpoints")
    assert len(body["data"]) == 347
    assert "total_count" not in body
    assert endpoints.status_code == 200
    assert endpoints.json()["data"]["id"] == "meta-llama/llama-3.3-70b-instruct:free"


@pytest.mark.asyncio
async def test_endpoints_shape_matches_the_real_sample(sb_client: httpx.AsyncClient) -> None:
    real = json.loads((DATA / "endpoints" / "kimi-k3_endpoints_20260825.json").read_text())
    body = (await sb_client.get("/models/moonshotai/kimi-k3/endpoints")).json()
    assert set(body["data"]) == set(real["data"])
    endpoints = body["data"]["endpoints"]
    assert 1 <= len(endpoints) <= 3
    for endpoint in endpoints:
        assert set(endpoint) == set(real["data"]["endpoints"][0])
        assert endpoint["model_id"] == "moonshotai/kimi-k3"
        assert endpoint["status"] == 0
        assert 95 <= endpoint["uptime_last_30m"] <= 100
        assert set(endpoint["latency_last_30m"]) == {"p50", "p75", "p90", "p99"}
        assert endpoint["throughput_last_30m"]["p50"] > 0
    again = (await sb_client.get("/models/moonshotai/kimi-k3/endpoints")).json()
    assert again == body  # deterministic


@pytest.mark.asyncio
async def test_endpoints_latency_needs_authentication(sandbox_server: SandboxServer) -> None:
    async with httpx.AsyncClient(base_url=sandbox_server.base_url) as anonymous:
        resp = await anonymous.get("/models/openai/gpt-4o/endpoints")
        canonical = await anonymous.get("/models/qwen/qwen3.8-27b-20260814/endpoints")
        missing = await anonymous.get("/models/nobody/nothing/endpoints")
    for endpoint in resp.json()["data"]["endpoints"]:
        assert endpoint["latency_last_30m"] is None
        assert endpoint["throughput_last_30m"] is None
    assert canonical.json()["data"]["id"] == "qwen/qwen3.8-27b"
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == 404


@pytest.mark.asyncio
async def test_key_reports_usage_and_free_tier(sb_client: httpx.AsyncClient) -> None:
    await post_chat(sb_client, PAID_MODEL)
    data = (await sb_client.get("/key")).json()["data"]
    assert data["label"] == "sandbox"
    assert data["limit"] is None and data["limit_remaining"] is None
    assert data["usage"] > 0
    assert data["is_free_tier"] is True
    assert data["rate_limit"] == {"requests": 20, "interval": "10s"}
    assert (await sb_client.get("/key", headers={"Authorization": ""})).status_code == 401


@pytest.mark.asyncio
async def test_chat_json_answer_names_model_and_costs_tokens(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    resp = await post_chat(sb_client, PAID_MODEL, text="What is the capital of France, please?")
    body = resp.json()
    assert resp.status_code == 200
    assert body["id"].startswith("gen-")
    assert body["object"] == "chat.completion"
    assert body["model"] == PAID_MODEL
    assert isinstance(body["provider"], str) and body["provider"]
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["native_finish_reason"] == "stop"
    message = choice["message"]
    assert message["content"] == (
        f"Hello from {PAID_MODEL}. You said: What is the capital of France, please?"
    )
    assert message["refusal"] is None and message["reasoning"] is None
    usage = body["usage"]
    assert usage["prompt_tokens"] == len("What is the capital of France, please?") // 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    expected = usage["prompt_tokens"] * 2.5e-6 + usage["completion_tokens"] * 1e-5
    assert usage["cost"] == pytest.approx(expected)
    assert usage["is_byok"] is False
    assert usage["cost_details"]["upstream_inference_cost"] == pytest.approx(expected)
    assert sandbox_server.calls[-1].outcome == "ok"
    assert sandbox_server.calls[-1].headers["Authorization"] == "Bearer ***"


@pytest.mark.asyncio
async def test_free_model_costs_nothing(sb_client: httpx.AsyncClient) -> None:
    body = (await post_chat(sb_client, FREE_MODEL)).json()
    assert body["usage"]["cost"] == 0


@pytest.mark.asyncio
async def test_max_tokens_truncates_with_finish_length(sb_client: httpx.AsyncClient) -> None:
    body = (await post_chat(sb_client, PAID_MODEL, max_tokens=3)).json()
    assert body["choices"][0]["message"]["content"] == "Hello from openai/gpt-4o."
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


@pytest.mark.asyncio
async def test_stream_framing(sb_client: httpx.AsyncClient) -> None:
    lines, payloads = await read_sse(
        sb_client, chat_body(PAID_MODEL, stream_options={"include_usage": True})
    )
    assert lines[0] == ": OPENROUTER PROCESSING"
    assert payloads[-1] == "[DONE]"
    chunks = payloads[:-1]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == f"Hello from {PAID_MODEL}. You said: Hi there"
    finish, usage = chunks[-2], chunks[-1]
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert finish["choices"][0]["native_finish_reason"] == "stop"
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0


@pytest.mark.asyncio
async def test_stream_sends_usage_chunk_even_without_include_usage(
    sb_client: httpx.AsyncClient,
) -> None:
    _, payloads = await read_sse(sb_client, chat_body(FREE_MODEL))
    assert payloads[-2]["choices"] == []
    assert payloads[-2]["usage"]["cost"] == 0


@pytest.mark.asyncio
async def test_tool_call_then_tool_result(sb_client: httpx.AsyncClient) -> None:
    body = (await post_chat(sb_client, PAID_MODEL, tools=[WEATHER_TOOL])).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    arguments = json.loads(call["function"]["arguments"])
    assert arguments == {"city": "sandbox", "days": 1, "unit": "celsius", "verbose": True}

    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21C"},
    ]
    follow_up = {"model": PAID_MODEL, "messages": messages, "tools": [WEATHER_TOOL]}
    answer = (await sb_client.post("/chat/completions", json=follow_up)).json()
    assert answer["choices"][0]["message"]["content"] == "The tool returned: sunny, 21C"
    assert answer["choices"][0]["finish_reason"] == "stop"


@pytest.mark.asyncio
async def test_tool_choice_names_the_tool_and_none_disables(sb_client: httpx.AsyncClient) -> None:
    other = {"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}}
    named = {"type": "function", "function": {"name": "get_weather"}}
    picked = await post_chat(sb_client, PAID_MODEL, tools=[other, WEATHER_TOOL], tool_choice=named)
    call = picked.json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    plain = await post_chat(sb_client, PAID_MODEL, tools=[WEATHER_TOOL], tool_choice="none")
    assert plain.json()["choices"][0]["finish_reason"] == "stop"


@pytest.mark.asyncio
async def test_tool_call_streams_as_deltas(sb_client: httpx.AsyncClient) -> None:
    _, payloads = await read_sse(sb_client, chat_body(PAID_MODEL, tools=[WEATHER_TOOL]))
    parts = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in payloads[:-1]
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert parts[0]["function"]["name"] == "get_weather" and parts[0]["index"] == 0
    arguments = "".join(p["function"]["arguments"] for p in parts)
    assert json.loads(arguments)["city"] == "sandbox"
    assert payloads[-3]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.asyncio
async def test_tools_rejected_for_model_without_tool_support(sb_client: httpx.AsyncClient) -> None:
    resp = await post_chat(sb_client, NO_TOOLS_MODEL, tools=[WEATHER_TOOL])
    assert resp.status_code == 404
    assert resp.json() == {
        "error": {"code": 404, "message": "No endpoints found that support tool use"}
    }


@pytest.mark.asyncio
async def test_json_modes(sb_client: httpx.AsyncClient) -> None:
    obj = await post_chat(sb_client, PAID_MODEL, response_format={"type": "json_object"})
    content = json.loads(obj.json()["choices"][0]["message"]["content"])
    assert content["model"] == PAID_MODEL and "Hi there" in content["answer"]
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {
                "type": "object",
                "properties": {"zip": {"type": "integer"}},
                "required": ["zip"],
            },
        },
        "required": ["name", "tags", "address"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    structured = await post_chat(sb_client, PAID_MODEL, response_format=fmt)
    value = json.loads(structured.json()["choices"][0]["message"]["content"])
    assert value == {"name": "sandbox", "tags": [], "address": {"zip": 1}}


@pytest.mark.asyncio
async def test_images_need_an_image_model(sb_client: httpx.AsyncClient) -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    messages = [{"role": "user", "content": content}]
    rejected = await sb_client.post(
        "/chat/completions", json={"model": TEXT_ONLY_MODEL, "messages": messages}
    )
    assert rejected.status_code == 404
    assert rejected.json()["error"]["message"] == "No endpoints found that support image input"
    accepted = await sb_client.post(
        "/chat/completions", json={"model": PAID_MODEL, "messages": messages}
    )
    assert accepted.json()["choices"][0]["message"]["content"].endswith("what is this?")


@pytest.mark.asyncio
async def test_bad_requests_get_openrouter_errors(sb_client: httpx.AsyncClient) -> None:
    unknown = await post_chat(sb_client, "nobody/nothing")
    assert unknown.status_code == 400
    assert unknown.json() == {
        "error": {"code": 400, "message": "nobody/nothing is not a valid model ID"}
    }
    for content in (b"{not json", b"[]", b'{"model": "openai/gpt-4o"}', b'{"messages": 3}'):
        resp = await sb_client.post("/chat/completions", content=content)
        assert resp.status_code == 400
        assert resp.json()["error"]["code"] == 400
    weird = chat_body(PAID_MODEL, tools="nope", max_tokens="many", stream="yes")
    assert (await sb_client.post("/chat/completions", json=weird)).status_code == 400
    assert (await sb_client.get("/nowhere")).json()["error"]["code"] == 404


@pytest.mark.asyncio
async def test_auth_required_and_require_key() -> None:
    server = SandboxServer(require_key="sk-right")
    async with server, httpx.AsyncClient(base_url=server.base_url) as http:
        missing = await http.post("/chat/completions", json=chat_body(PAID_MODEL))
        wrong = await http.post(
            "/chat/completions",
            json=chat_body(PAID_MODEL),
            headers={"Authorization": "Bearer sk-wrong"},
        )
        right = await http.post(
            "/chat/completions",
            json=chat_body(PAID_MODEL),
            headers={"Authorization": "Bearer sk-right"},
        )
        endpoints = await http.get("/models/openai/gpt-4o/endpoints")
        models = await http.get("/models")
    assert missing.status_code == 401
    assert missing.json() == {"error": {"code": 401, "message": "No auth credentials found"}}
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert endpoints.status_code == 401
    assert models.status_code == 200
    assert [c.outcome for c in server.calls] == ["401", "401", "ok"]


@pytest.mark.asyncio
async def test_unknown_fields_are_accepted_and_recorded(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    extra = {"provider": {"order": ["x"]}, "transforms": ["middle-out"], "user": "u1"}
    resp = await post_chat(sb_client, PAID_MODEL, **extra)
    assert resp.status_code == 200
    (call,) = sandbox_server.calls_for(PAID_MODEL)
    assert call.body["transforms"] == ["middle-out"] and call.stream is False
