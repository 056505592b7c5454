"""The gateway driven through the official openai SDK (sync, async, streaming, tools, JSON, models)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest

SCHEMAS = json.loads((Path(__file__).parents[2] / "turnout/data/openai/openai_response_schemas.json").read_text())


def assert_schema(instance: Any, root: str) -> None:
    schema = {"$ref": f"#/$defs/{root}", "$defs": SCHEMAS["$defs"]}
    jsonschema.validate(instance, schema)


@pytest.fixture(scope="module")
def gateway_module(request: pytest.FixtureRequest, sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.conftest import OPENROUTER_TEST_KEY, LiveGateway
    from turnout.config import Settings

    settings = Settings(sandbox="off", openrouter_base_url=sandbox.base_url, openrouter_api_key=OPENROUTER_TEST_KEY,
                        data_dir=tmp_path_factory.mktemp("data"))
    gateway = LiveGateway(settings).start()
    yield gateway
    gateway.stop()


@pytest.fixture
def client(gateway_module: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_module.url}/v1", api_key="unused", max_retries=0)


def test_sync_completion_names_the_model_that_answered(client: openai.OpenAI, gateway_module: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Say hello"}]
    )
    completion = raw.parse()
    pool = gateway_module.state.holder.current.pool
    assert completion.model in {d.model for d in pool.deployments.values()}
    assert completion.model != "auto"
    assert f"Hello from {completion.model}" in completion.choices[0].message.content
    assert raw.headers["x-turnout-model"] == completion.model
    assert raw.headers["x-turnout-attempts"] == "1"
    assert raw.headers["x-request-id"]
    assert_schema(json.loads(raw.text), "CreateChatCompletionResponse")


def test_concrete_model_id_is_callable(client: openai.OpenAI, gateway_module: Any) -> None:
    pool = gateway_module.state.holder.current.pool
    model_id = next(m.model for m in pool.deployments.values() if m.tier == "free")
    completion = client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "hi"}])
    assert completion.model == model_id


def test_async_client_runs_concurrent_requests(gateway_module: Any) -> None:
    async def main() -> list[str]:
        async with openai.AsyncOpenAI(base_url=f"{gateway_module.url}/v1", api_key="x", max_retries=0) as aclient:
            results = await asyncio.gather(*[
                aclient.chat.completions.create(model="auto", messages=[{"role": "user", "content": f"n{i}"}])
                for i in range(8)
            ])
        return [r.choices[0].message.content or "" for r in results]

    contents = asyncio.run(main())
    assert len(contents) == 8 and all("Hello from" in c for c in contents)


def test_stream_with_usage_ends_cleanly(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "stream please"}], stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Hello from" in text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert chunks[-1].choices == []
    assert {c.model for c in chunks} == {chunks[0].model}


def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert chunks and all(c.choices for c in chunks)
    assert any(c.choices[0].finish_reason == "stop" for c in chunks)


def test_stream_wire_format(gateway_module: Any) -> None:
    import httpx

    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{gateway_module.url}/v1/chat/completions", json=body, timeout=30) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["x-turnout-model"]
        lines = [line for line in resp.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    for line in lines[:-1]:
        assert_schema(json.loads(line[6:]), "CreateChatCompletionStreamResponse")


def test_tools_round_trip(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="auto", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}]
    second = client.chat.completions.create(model="auto", messages=messages, tools=tools)
    assert "sunny, 21C" in second.choices[0].message.content


def test_json_mode_returns_json(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "give json"}], response_format={"type": "json_object"})
    assert isinstance(json.loads(completion.choices[0].message.content), dict)


def test_image_parts_reach_a_vision_model(client: openai.OpenAI, gateway_module: Any) -> None:
    completion = client.chat.completions.create(model="vision", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}])
    pool = gateway_module.state.holder.current.pool
    answered = next(d for d in pool.deployments.values() if d.model == completion.model)
    assert answered.capabilities.vision


def test_extra_fields_pass_through_untouched(client: openai.OpenAI, sandbox: Any) -> None:
    extra = {"reasoning": {"effort": "low"}, "provider": {"sort": "throughput"}, "transforms": ["middle-out"]}
    client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "pass"}], seed=7,
                                   logprobs=True, extra_body=extra)
    call = sandbox.server.calls[-1]
    for key, value in {**extra, "seed": 7, "logprobs": True}.items():
        assert call.body[key] == value
    assert call.headers["Authorization"] == "Bearer ***"


def test_model_listing_carries_choice_data(client: openai.OpenAI, gateway_module: Any) -> None:
    raw = client.models.with_raw_response.list()
    assert_schema(json.loads(raw.text), "ListModelsResponse")
    entries = {m["id"]: m for m in json.loads(raw.text)["data"]}
    for alias in ("auto", "free", "paid", "vision", "long"):
        assert alias in entries
    pool = gateway_module.state.holder.current.pool
    concrete = next(d for d in pool.deployments.values() if d.tier == "paid")
    entry = entries[concrete.model]
    assert entry["tier"] == "paid" and entry["context_length"] == concrete.context_length
    assert entry["pricing"]["prompt"] == concrete.prompt_price
    assert set(entry["capabilities"]) == {"tools", "vision", "json", "reasoning", "image_output"}
    one = client.models.retrieve(concrete.model)
    assert one.id == concrete.model


def test_langchain_chat_openai_works(gateway_module: Any) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=f"{gateway_module.url}/v1", api_key="unused", model="auto", max_retries=0)
    assert "Hello from" in llm.invoke("hello there").content


def test_health_and_readiness(gateway_module: Any) -> None:
    import httpx

    assert httpx.get(f"{gateway_module.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{gateway_module.url}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
