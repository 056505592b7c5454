"""POST /v1/messages and /v1/messages/count_tokens driven through the official anthropic SDK, on the sandbox."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.observability.test_metrics import value, wait_for

TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                     "1f15c4890000000d49444154789c6360f8cf000000020001e221bc330000"
                                     "000049454e44ae426082")).decode()


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
def client(gateway_module: Any) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway_module.url, api_key="unused", max_retries=0) as found:
        yield found


def pool_models(gateway: Any) -> set[str]:
    return {d.model for d in gateway.state.holder.current.pool.deployments.values()}


def test_create_answers_in_anthropic_shape(client: anthropic.Anthropic, gateway_module: Any) -> None:
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=200, system="You are terse.", messages=[{"role": "user", "content": "Say hello"}])
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.model in pool_models(gateway_module)
    assert message.content[0].type == "text" and f"Hello from {message.model}" in message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message.id.startswith("msg_")
    assert raw.headers["x-turnout-model"] == message.model
    assert raw.headers["x-request-id"]


def test_stream_follows_anthropics_event_sequence(client: anthropic.Anthropic, gateway_module: Any) -> None:
    with client.messages.stream(model="auto", max_tokens=200,
                                messages=[{"role": "user", "content": "stream please"}]) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start"
    assert "content_block_start" in events and "content_block_stop" in events
    assert events[-2:] == ["message_delta", "message_stop"]
    assert "Hello from" in final.content[0].text and final.model in pool_models(gateway_module)
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_stream_wire_has_event_lines_and_a_ping(gateway_module: Any) -> None:
    body = {"model": "auto", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", f"{gateway_module.url}/v1/messages?beta=true", json=body, timeout=30,
                      headers={"anthropic-version": "2023-06-01", "anthropic-beta": "fine-grained-tool-streaming"}
                      ) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        text = resp.read().decode()
    frames = [f for f in text.split("\n\n") if f]
    names = [f.split("\n")[0].removeprefix("event: ") for f in frames]
    assert names[:2] == ["message_start", "ping"]
    for frame in frames:
        event, data = frame.split("\n")
        assert json.loads(data.removeprefix("data: "))["type"] == event.removeprefix("event: ")


def test_tools_round_trip_with_tool_result(client: anthropic.Anthropic) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.messages.create(model="auto", max_tokens=200, tools=TOOLS, messages=messages)
    assert first.stop_reason == "tool_use"
    call = next(block for block in first.content if block.type == "tool_use")
    assert call.name == "get_weather" and "city" in call.input
    messages += [{"role": "assistant", "content": [block.model_dump() for block in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                               "content": "sunny, 21C"}]}]
    second = client.messages.create(model="auto", max_tokens=200, tools=TOOLS, messages=messages)
    assert second.stop_reason == "end_turn" and "sunny, 21C" in second.content[0].text


def test_streamed_tool_use_arrives_as_input_json(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="auto", max_tokens=200, tools=TOOLS,
                                messages=[{"role": "user", "content": "Weather?"}]) as stream:
        kinds = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert "input_json_delta" in kinds
    block = final.content[-1]
    assert block.type == "tool_use" and block.name == "get_weather" and isinstance(block.input, dict)
    assert final.stop_reason == "tool_use"


def test_image_reaches_a_vision_model(client: anthropic.Anthropic, gateway_module: Any, sandbox: Any) -> None:
    message = client.messages.create(model="vision", max_tokens=100, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "What is this?"}]}])
    answered = next(d for d in gateway_module.state.holder.current.pool.deployments.values()
                    if d.model == message.model)
    assert answered.capabilities.vision
    part = sandbox.server.calls[-1].body["messages"][0]["content"][0]
    assert part == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}


def test_cache_control_reaches_the_upstream(client: anthropic.Anthropic, sandbox: Any) -> None:
    client.messages.create(model="auto", max_tokens=50, messages=[{"role": "user", "content": "hi"}], system=[
        {"type": "text", "text": "long stable prefix", "cache_control": {"type": "ephemeral"}}])
    system = sandbox.server.calls[-1].body["messages"][0]
    assert system == {"role": "system", "content": [
        {"type": "text", "text": "long stable prefix", "cache_control": {"type": "ephemeral"}}]}


def test_count_tokens(client: anthropic.Anthropic) -> None:
    short = client.messages.count_tokens(model="auto", messages=[{"role": "user", "content": "hi"}])
    long = client.messages.count_tokens(model="auto", tools=TOOLS, system="Be brief. " * 50,
                                        messages=[{"role": "user", "content": "hello there " * 100}])
    assert 0 < short.input_tokens < long.input_tokens
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.count_tokens(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["error"]["type"] == "not_found_error"


def test_server_tools_are_dropped_and_named(client: anthropic.Anthropic, sandbox: Any) -> None:
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=50, messages=[{"role": "user", "content": "sandbox:say ok"}],
        tools=[*TOOLS, {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}])  # type: ignore[list-item]
    assert raw.headers["x-turnout-dropped-tools"] == "web_search"
    assert [t["function"]["name"] for t in sandbox.server.calls[-1].body["tools"]] == ["get_weather"]
    assert raw.parse().content[0].text == "ok"


@pytest.mark.parametrize(("body", "status", "kind", "mentions"), [
    ({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}, 400, "invalid_request_error", "max_tokens"),
    ({"model": "auto", "max_tokens": 10, "messages": []}, 400, "invalid_request_error", "messages"),
    ({"model": "auto", "max_tokens": 10, "messages": [{"role": "robot", "content": "x"}]}, 400,
     "invalid_request_error", "role"),
    ({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "video"}]}]}, 400,
     "invalid_request_error", "video"),
    ({"model": "nope", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}, 404, "not_found_error",
     "nope"),
    ({"model": "auto", "max_tokens": 10, "mcp_servers": [{"url": "x"}], "messages": [{"role": "user",
                                                                                       "content": "hi"}]},
     400, "invalid_request_error", "mcp_servers"),
])
def test_bad_input_gets_anthropics_error_shape(gateway_module: Any, body: dict[str, Any], status: int, kind: str,
                                                mentions: str) -> None:
    resp = httpx.post(f"{gateway_module.url}/v1/messages", json=body, timeout=30)
    assert resp.status_code == status
    payload = resp.json()
    assert payload["type"] == "error" and payload["error"]["type"] == kind
    assert mentions in payload["error"]["message"]


def test_malformed_body_method_and_sdk_errors(gateway_module: Any, client: anthropic.Anthropic) -> None:
    url = f"{gateway_module.url}/v1/messages"
    for resp in (httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}),
                 httpx.post(url, content=b"[1, 2]", headers={"content-type": "application/json"}),
                 httpx.post(f"{url}/count_tokens", content=b"{}", headers={"content-type": "application/json"})):
        assert resp.status_code == 400 and resp.json()["type"] == "error", resp.text
    wrong = httpx.get(url)
    assert wrong.status_code == 405 and wrong.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="auto", max_tokens=0, messages=[{"role": "user", "content": "hi"}])
    assert "max_tokens" in info.value.message


def test_key_by_x_api_key_or_bearer(start_gateway: Any) -> None:
    gateway = start_gateway(api_keys="k-good-key")
    with anthropic.Anthropic(base_url=gateway.url, api_key="k-good-key", max_retries=0) as good, \
            anthropic.Anthropic(base_url=gateway.url, auth_token="k-good-key", max_retries=0) as bearer, \
            anthropic.Anthropic(base_url=gateway.url, api_key="k-bad", max_retries=0) as bad:
        assert good.messages.create(model="auto", max_tokens=20,
                                    messages=[{"role": "user", "content": "hi"}]).content
        assert bearer.messages.count_tokens(model="auto",
                                            messages=[{"role": "user", "content": "hi"}]).input_tokens
        with pytest.raises(anthropic.AuthenticationError) as info:
            bad.messages.create(model="auto", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        assert info.value.body["error"]["type"] == "authentication_error"
        assert "auto" in {m.id for m in good.models.list()}  # the listing takes x-api-key too


def test_metrics_and_logs_say_messages(client: anthropic.Anthropic, gateway_module: Any) -> None:
    before = value(gateway_module, "turnout_requests_total", api="messages", alias="auto", status_class="2xx",
                   stream="false")
    client.messages.create(model="auto", max_tokens=20, messages=[{"role": "user", "content": "count me"}])
    wait_for(gateway_module, before + 1, "turnout_requests_total", api="messages", alias="auto",
             status_class="2xx", stream="false")


def test_model_listing_satisfies_anthropic_clients(client: anthropic.Anthropic) -> None:
    models = list(client.models.list())
    ids = {m.id for m in models}
    assert {"auto", "free", "paid"} <= ids
    auto = next(m for m in models if m.id == "auto")
    assert auto.type == "model" and auto.display_name and auto.created_at
    assert client.models.retrieve("auto").id == "auto"


def test_status_page_counts_requests_by_api(client: anthropic.Anthropic, gateway_module: Any) -> None:
    client.messages.create(model="auto", max_tokens=20, messages=[{"role": "user", "content": "status"}])
    httpx.post(f"{gateway_module.url}/v1/chat/completions", timeout=30,
               json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    page = httpx.get(f"{gateway_module.url}/status", timeout=10).text
    assert " chat · " in page and " messages" in page
