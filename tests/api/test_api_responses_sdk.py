"""POST /v1/responses driven through the openai SDK's `responses` client, on the sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.observability.test_metrics import value, wait_for

TOOLS: list[Any] = [{"type": "function", "name": "get_weather", "description": "Weather for a city",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                    "required": ["city"]}}]


@pytest.fixture(scope="module")
def gateway_module(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.conftest import OPENROUTER_TEST_KEY, LiveGateway
    from turnout.config import Settings

    settings = Settings(sandbox="off", openrouter_base_url=sandbox.base_url, openrouter_api_key=OPENROUTER_TEST_KEY,
                        data_dir=tmp_path_factory.mktemp("data"))
    gateway = LiveGateway(settings).start()
    yield gateway
    gateway.stop()


@pytest.fixture
def client(gateway_module: Any) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_module.url}/v1", api_key="unused", max_retries=0) as found:
        yield found


def pool_models(gateway: Any) -> set[str]:
    return {d.model for d in gateway.state.holder.current.pool.deployments.values()}


def test_create_with_string_input(client: openai.OpenAI, gateway_module: Any, sandbox: Any) -> None:
    raw = client.responses.with_raw_response.create(model="auto", input="Say hello", instructions="Be terse.",
                                                    max_output_tokens=100, store=False)
    response = raw.parse()
    assert response.object == "response" and response.status == "completed"
    assert response.model in pool_models(gateway_module)
    assert f"Hello from {response.model}" in response.output_text
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert raw.headers["x-turnout-model"] == response.model
    sent = sandbox.server.calls[-1].body
    assert sent["messages"][0] == {"role": "system", "content": "Be terse."}
    assert sent["max_tokens"] == 100


def test_stream_follows_the_responses_event_sequence(client: openai.OpenAI, gateway_module: Any) -> None:
    events = list(client.responses.create(model="auto", input="stream please", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    for kind in ("response.output_item.added", "response.content_part.added", "response.output_text.delta",
                 "response.output_text.done", "response.content_part.done", "response.output_item.done"):
        assert kind in kinds
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = events[-1].response
    assert "Hello from" in done.output_text and done.model in pool_models(gateway_module)
    assert done.usage is not None and done.usage.output_tokens > 0
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == done.output_text


def test_stream_helper_accumulates(client: openai.OpenAI) -> None:
    with client.responses.stream(model="auto", input="hi there", tools=TOOLS) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    call = next(item for item in final.output if item.type == "function_call")
    assert call.name == "get_weather" and "city" in json.loads(call.arguments)


def test_function_tool_round_trip(client: openai.OpenAI) -> None:
    first = client.responses.create(model="auto", input="Weather in Paris?", tools=TOOLS)
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and call.call_id
    second = client.responses.create(model="auto", tools=TOOLS, input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"},
    ])
    assert "sunny, 21C" in second.output_text


def test_json_schema_format(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "integer"}},
              "required": ["city", "temp"], "additionalProperties": False}
    response = client.responses.create(model="auto", input="give json", text={"format": {
        "type": "json_schema", "name": "weather", "schema": schema, "strict": True}})
    parsed = json.loads(response.output_text)
    assert set(parsed) == {"city", "temp"}
    loose = client.responses.create(model="auto", input="give json", text={"format": {"type": "json_object"}})
    assert isinstance(json.loads(loose.output_text), dict)


def test_a_dropped_tool_with_an_unprintable_type_still_gets_an_answer(client: openai.OpenAI) -> None:
    """Found by the fuzzer: the header naming dropped tools carried a client's control character,
    and uvicorn refused the whole response (500)."""
    raw = client.responses.with_raw_response.create(model="auto", input="hi",
                                                    tools=[{"type": "web\nsearch"}, {"type": "поиск"}])  # type: ignore[list-item]
    assert raw.status_code == 200
    # header values leave as printable ASCII: the rest percent-encoded (turnout.api.asgi.header_value)
    assert raw.headers["x-turnout-dropped-tools"] == "web%0Asearch,%D0%BF%D0%BE%D0%B8%D1%81%D0%BA"


def test_hosted_tools_are_dropped_and_named(client: openai.OpenAI, sandbox: Any) -> None:
    raw = client.responses.with_raw_response.create(
        model="auto", input="sandbox:say fine", tools=[*TOOLS, {"type": "web_search"}], tool_choice="auto",
        reasoning={"effort": "low"}, parallel_tool_calls=True, prompt_cache_key="conv-1", include=[
            "reasoning.encrypted_content"], store=False)
    assert raw.headers["x-turnout-dropped-tools"] == "web_search"
    sent = sandbox.server.calls[-1].body
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    assert sent["reasoning"] == {"effort": "low"} and sent["prompt_cache_key"] == "conv-1"
    assert raw.parse().output_text == "fine"


def test_previous_response_id_is_refused_by_name(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="auto", input="hi", previous_response_id="resp_123")
    assert info.value.status_code == 400
    assert info.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert "previous_response_id" in info.value.message


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "auto"}, "input"),
    ({"model": "auto", "input": []}, "input"),
    ({"input": "hi"}, "model"),
    ({"model": "auto", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ({"model": "auto", "input": [{"type": "mystery"}]}, "input[0].type"),
    ({"model": "auto", "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "auto", "input": "hi", "text": {"format": {"type": "json_schema"}}}, "text.format"),
    ({"model": "auto", "input": "hi", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "auto", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
])
def test_bad_input_gets_openais_error_shape(gateway_module: Any, body: dict[str, Any], param: str) -> None:
    resp = httpx.post(f"{gateway_module.url}/v1/responses", json=body, timeout=30)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_unknown_model_and_malformed_body(gateway_module: Any) -> None:
    url = f"{gateway_module.url}/v1/responses"
    missing = httpx.post(url, json={"model": "nope", "input": "hi"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    broken = httpx.post(url, content=b"{oops", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"
    assert httpx.get(url).status_code == 405


def test_metrics_say_responses(client: openai.OpenAI, gateway_module: Any) -> None:
    labels = {"api": "responses", "alias": "auto", "status_class": "2xx", "stream": "true"}
    before = value(gateway_module, "turnout_requests_total", **labels)
    list(client.responses.create(model="auto", input="count me", stream=True))
    wait_for(gateway_module, before + 1, "turnout_requests_total", **labels)
