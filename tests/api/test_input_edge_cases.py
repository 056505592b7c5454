"""Hostile and odd input, by hand: every answer is prompt, never a 5xx from bad input, and
every 4xx is OpenAI-shaped. Connections that misbehave (stall, vanish mid-stream) leave the
gateway healthy, with no upstream connection or task left behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import OPENROUTER_TEST_KEY, LiveGateway, free_port
from turnout.sandbox import FaultPlan, ModelFaults

LIMIT = 512 * 1024
STALLING = "poolside/laguna-s-2.1:free"
HI = [{"role": "user", "content": "hi"}]
GOOD: dict[str, Any] = {"model": "auto", "messages": HI}


@pytest.fixture(scope="module")
def gateway(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    from turnout.config import Settings

    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = Settings(
        sandbox="off", openrouter_base_url=sandbox.base_url, openrouter_api_key=OPENROUTER_TEST_KEY,
        data_dir=tmp_path_factory.mktemp("data"), max_body_bytes=LIMIT,
        deployments=[{"name": "dead-litellm", "model": "ollama/llama3.1", "api_base": dead, "wire": "litellm"},
                     {"name": "dead-openai", "model": "openai/gpt-4o", "api_base": f"{dead}/v1", "wire": "openai"}],
        timeouts={"connect_s": 1, "first_byte_s": 3, "stream_first_token_s": 3, "stream_idle_s": 30,
                  "request_deadline_s": 8},
        retries={"backoff_base_s": 0.01},
        pool={"health": {"enabled": False},
              "free_tier": {"requests_per_minute": 1_000_000, "requests_per_day": 1_000_000}},
    )
    gw = LiveGateway(settings).start()
    yield gw
    gw.stop()


def post(gateway: LiveGateway, body: Any = None, *, raw: bytes | None = None, timeout: float = 15,
         headers: dict[str, str] | None = None) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return httpx.post(f"{gateway.url}/v1/chat/completions", content=content, headers=all_headers, timeout=timeout)


def assert_openai_error(resp: httpx.Response, status: int | tuple[int, ...], *, param: str | None = None) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert resp.status_code in statuses, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    if param is not None:
        assert error["param"] == param
    return error


def assert_handled(resp: httpx.Response) -> None:
    """Anything but a server error; a 4xx must be OpenAI-shaped."""
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        assert_openai_error(resp, resp.status_code)


def assert_completed(resp: httpx.Response) -> None:
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"]


def assert_healthy(gateway: LiveGateway) -> None:
    assert httpx.get(f"{gateway.url}/healthz", timeout=5).status_code == 200
    assert_completed(post(gateway, GOOD))


def gateway_tasks(gateway: LiveGateway) -> int:
    """asyncio tasks alive on the gateway's own event loop (not counting this probe)."""

    async def count() -> int:
        return len(asyncio.all_tasks()) - 1

    loop = gateway.server.servers[0].get_loop()
    return asyncio.run_coroutine_threadsafe(count(), loop).result(timeout=5)


def wait_for(predicate: Callable[[], bool], *, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def tcp_states(port: int) -> tuple[int, int]:
    """(ESTABLISHED connections to `port`, CLOSE_WAIT connections on `port`), IPv4 loopback."""
    established = close_wait = 0
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            state = fields[3]
            established += remote_port == port and state == "01"
            close_wait += local_port == port and state == "08"
    return established, close_wait


def sandbox_port(sandbox: Any) -> int:
    return int(httpx.URL(sandbox.base_url).port or 0)


# -- size ---------------------------------------------------------------------------


def padded(size: int) -> bytes:
    """A valid request of exactly `size` bytes (padding in `user`, which upstreams accept)."""
    base = json.dumps({**GOOD, "user": ""}).encode()
    return json.dumps({**GOOD, "user": "x" * (size - len(base))}).encode()


def test_body_at_the_limit_is_served(gateway: LiveGateway) -> None:
    body = padded(LIMIT)
    assert len(body) == LIMIT
    assert_completed(post(gateway, raw=body))


def test_body_one_byte_over_the_limit_gets_413(gateway: LiveGateway) -> None:
    body = padded(LIMIT + 1)
    assert_openai_error(post(gateway, raw=body), 413)


def test_chunked_body_over_the_limit_gets_413(gateway: LiveGateway) -> None:
    body = padded(LIMIT + 1)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
        for start in range(0, len(body), 16 * 1024):
            yield body[start:start + 16 * 1024]

    resp = httpx.post(f"{gateway.url}/v1/chat/completions", content=chunks(), timeout=15,
                      headers={"Content-Type": "application/json"})
    assert_openai_error(resp, 413)


def test_chunked_body_at_the_limit_is_served(gateway: LiveGateway) -> None:
    body = padded(LIMIT)
    resp = httpx.post(f"{gateway.url}/v1/chat/completions", content=iter([body[:1000], body[1000:]]), timeout=15,
                      headers={"Content-Type": "application/json"})
    assert_completed(resp)


def test_huge_body_is_refused_promptly(gateway: LiveGateway) -> None:
    started = time.monotonic()
    try:
        resp = post(gateway, raw=padded(8 * LIMIT))
    except httpx.TransportError:
        pass  # the server may answer 413 and close before the client has sent it all
    else:
        assert_openai_error(resp, 413)
    assert time.monotonic() - started < 5
    assert_healthy(gateway)


def test_ten_thousand_messages_stream(gateway: LiveGateway) -> None:
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "m"}] * 10_000}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=30) as resp:
        lines = [line for line in resp.iter_lines() if line]
    assert resp.status_code == 200
    assert lines[-1] == "data: [DONE]"


def test_ten_thousand_and_one_messages_get_400(gateway: LiveGateway) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "m"}] * 10_001}
    assert_openai_error(post(gateway, body), 400, param="messages")


# -- shape of the bytes ---------------------------------------------------------------


@pytest.mark.parametrize("depth", [5_000, 200_000])
@pytest.mark.parametrize("where", ["top", "content", "extra_field", "tool_calls"])
def test_deep_json_gets_400(gateway: LiveGateway, depth: int, where: str) -> None:
    deep = "[" * depth + "]" * depth
    raw = {
        "top": deep,
        "content": '{"model": "auto", "messages": [{"role": "user", "content": %s}]}' % deep,
        "extra_field": '{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "metadata": %s}' % deep,
        "tool_calls": '{"model": "auto", "messages": [{"role": "user", "content": "hi"}, '
                      '{"role": "assistant", "content": null, "tool_calls": [%s]}]}' % deep,
    }[where]
    assert_openai_error(post(gateway, raw=raw.encode()), 400)


@pytest.mark.parametrize("depth", [100, 900, 990])
def test_deep_but_parseable_json_is_handled(gateway: LiveGateway, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    raw = '{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "metadata": {"x": %s}}' % deep
    for stream in (False, True):
        assert_handled(post(gateway, raw=raw.replace('"auto"', f'"auto", "stream": {json.dumps(stream)}').encode()))


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"model": "auto", "messages": [{"role": "user", "content": "\xff"}]}', id="ff"),
        pytest.param(b'{"model": "auto", "messages": [{"role": "user", "content": "\xe2\x82"}]}', id="truncated"),
        pytest.param(b'{"model": "auto", "messages": [{"role": "user", "content": "\xc0\xaf"}]}', id="overlong"),
        pytest.param(
            b'{"model": "auto", "messages": [{"role": "user", "content": "\xed\xa0\x80"}]}', id="surrogate-bytes"),
        pytest.param(b'\xff\xfe\x00\x00garbage', id="garbage"),
    ],
)
def test_invalid_utf8_gets_400(gateway: LiveGateway, raw: bytes) -> None:
    assert_openai_error(post(gateway, raw=raw), 400)


@pytest.mark.parametrize("stream", [False, True])
def test_lone_surrogate_escape_is_handled(gateway: LiveGateway, stream: bool) -> None:
    raw = b'{"model": "auto", "stream": %s, "messages": [{"role": "user", "content": "\\ud800 \\udfff"}]}'
    resp = post(gateway, raw=raw % json.dumps(stream).encode())
    assert resp.status_code == 200, resp.text


def test_utf16_json_is_handled(gateway: LiveGateway) -> None:
    assert_handled(post(gateway, raw=json.dumps(GOOD).encode("utf-16")))


@pytest.mark.parametrize("raw", [b"", b"   ", b"null", b'""', b"0", b"{}", b"[]", b"{", b'{"model": "auto"}}'])
def test_empty_and_trivial_bodies_get_400(gateway: LiveGateway, raw: bytes) -> None:
    assert_openai_error(post(gateway, raw=raw), 400)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_tokens_get_400(gateway: LiveGateway, token: str) -> None:
    raw = '{"model": "auto", "temperature": %s, "messages": [{"role": "user", "content": "hi"}]}' % token
    assert_openai_error(post(gateway, raw=raw.encode()), 400)


# -- content types and methods --------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/xml", "application/octet-stream", "image/png"])
def test_wrong_content_type_gets_415(gateway: LiveGateway, content_type: str) -> None:
    assert_openai_error(post(gateway, GOOD, headers={"Content-Type": content_type}), 415)


def test_real_form_and_multipart_posts_get_415(gateway: LiveGateway) -> None:
    url = f"{gateway.url}/v1/chat/completions"
    form = httpx.post(url, data={"model": "auto", "messages": "hi"}, timeout=10)
    multipart = httpx.post(url, files={"file": ("body.json", json.dumps(GOOD).encode(), "application/json")},
                           timeout=10)
    assert_openai_error(form, 415)
    assert_openai_error(multipart, 415)


def test_missing_content_type_is_handled(gateway: LiveGateway) -> None:
    resp = httpx.post(f"{gateway.url}/v1/chat/completions", content=json.dumps(GOOD).encode(), timeout=15)
    assert resp.status_code in (200, 415), resp.text
    assert_handled(resp)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/chat/completions"), ("PUT", "/v1/chat/completions"), ("DELETE", "/v1/chat/completions"),
     ("POST", "/v1/models"), ("DELETE", "/v1/models/auto"), ("POST", "/healthz"), ("POST", "/readyz"),
     ("GET", "/admin/refresh"), ("DELETE", "/admin/pool")],
)
def test_method_not_allowed_gets_405(gateway: LiveGateway, method: str, path: str) -> None:
    resp = httpx.request(method, f"{gateway.url}{path}", timeout=10)
    assert_openai_error(resp, 405)
    assert resp.headers.get("allow")


# -- fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "status", "param"),
    [
        ("model", 400, "model"),
        ("messages", 400, "messages"),
        ("stream", 200, None),
        ("tools", 200, None),
        ("tool_choice", 200, None),
        ("response_format", 200, None),
        ("max_tokens", 200, None),
        ("max_completion_tokens", 200, None),
        ("temperature", 200, None),
        ("top_p", 200, None),
        ("n", 200, None),
        ("stop", 200, None),
        ("seed", 200, None),
        ("user", 200, None),
        ("stream_options", 200, None),
    ],
)
def test_each_top_level_field_null(gateway: LiveGateway, field: str, status: int, param: str | None) -> None:
    resp = post(gateway, {**GOOD, field: None})
    if status == 200:
        assert_completed(resp)
    else:
        assert_openai_error(resp, status, param=param)


@pytest.mark.parametrize(
    ("message", "status", "param"),
    [
        ({"role": None, "content": "hi"}, 400, "messages[0].role"),
        ({"role": "user", "content": None}, 400, "messages[0].content"),
        ({"role": "system", "content": None}, 400, "messages[0].content"),
        ({"role": None, "content": None}, 400, "messages[0].role"),
        ({"role": "user", "content": [None]}, 400, "messages[0].content[0]"),
        ({"role": "user", "content": [{"type": None, "text": "hi"}]}, 400, "messages[0].content[0]"),
        ({"role": "user", "content": [{"type": "text", "text": None}]}, 400, None),
        ({"role": "user", "content": "hi", "name": None}, 200, None),
        ({"role": "user", "content": "hi", "tool_calls": None}, 200, None),
    ],
)
def test_message_fields_null(gateway: LiveGateway, message: dict, status: int, param: str | None) -> None:
    resp = post(gateway, {"model": "auto", "messages": [message]})
    if status == 200:
        assert_completed(resp)
    else:
        assert_openai_error(resp, status, param=param)


def test_assistant_content_null_is_allowed(gateway: LiveGateway) -> None:
    messages = [*HI, {"role": "assistant", "content": None}, {"role": "user", "content": "again"}]
    assert_completed(post(gateway, {"model": "auto", "messages": messages}))


def test_null_message_and_null_tool_get_400(gateway: LiveGateway) -> None:
    assert_openai_error(post(gateway, {"model": "auto", "messages": [None]}), 400, param="messages[0]")
    assert_openai_error(post(gateway, {**GOOD, "tools": [None]}), 400, param="tools")


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", "10"), ("max_completion_tokens", "10"), ("temperature", "0.5"), ("top_p", "1"),
     ("presence_penalty", "0"), ("frequency_penalty", "0"), ("n", "1"), ("stream", "true"), ("stream", "false"),
     ("max_tokens", 10.0), ("max_tokens", 0), ("n", 0), ("max_tokens", True), ("temperature", True)],
)
def test_numbers_as_strings_and_wrong_numbers_get_400(gateway: LiveGateway, field: str, value: Any) -> None:
    assert_openai_error(post(gateway, {**GOOD, field: value}), 400, param=field)


@pytest.mark.parametrize(("field", "value"), [("seed", "1"), ("stop", 5), ("logit_bias", "x"), ("user", 7),
                                              ("max_tokens", 10**4000), ("temperature", 1e308)])
def test_unvalidated_odd_values_are_handled(gateway: LiveGateway, field: str, value: Any) -> None:
    assert_handled(post(gateway, {**GOOD, field: value}))


@pytest.mark.parametrize(
    "content",
    [
        [["hi"]],
        [[{"type": "text", "text": "hi"}]],
        [{"type": "text", "text": ["hi"]}],
        [{"type": "text", "text": [["hi"]]}],
        [{"type": "text", "text": {"nested": "hi"}}],
        [[[[[[]]]]]],
        [{"type": ["text"], "text": "hi"}],
        {"type": "text", "text": "hi"},
        ["hi", "there"],
    ],
)
def test_nested_arrays_in_content_get_400(gateway: LiveGateway, content: Any) -> None:
    assert_openai_error(post(gateway, {"model": "auto", "messages": [{"role": "user", "content": content}]}), 400)


@pytest.mark.parametrize("model", ["vision", "auto"])
@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": "garbage"},
        {"type": "image_url", "image_url": None},
        {"type": "image_url"},
        {"type": "image_url", "image_url": {"url": None}},
        {"type": "image_url", "image_url": {"url": 12}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,!!!not-base64!!!"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}},
        {"type": "image_url", "image_url": {"url": "javascript:alert(1)", "detail": ["high"]}},
        {"type": "image_url", "image_url": [1, 2, 3]},
        {"type": "input_image", "image_url": "garbage"},
        {"type": "hologram", "data": None},
    ],
    ids=lambda p: json.dumps(p)[:60],
)
def test_garbage_image_parts_are_handled(gateway: LiveGateway, model: str, part: dict) -> None:
    content = [{"type": "text", "text": "what is this?"}, part]
    assert_handled(post(gateway, {"model": model, "messages": [{"role": "user", "content": content}]}))


# -- models that cannot answer ---------------------------------------------------------


@pytest.mark.parametrize("model", ["dead-litellm", "dead-openai"])
@pytest.mark.parametrize("stream", [True, False])
def test_stream_on_a_dead_static_deployment_gets_a_prompt_error(gateway: LiveGateway, model: str,
                                                                stream: bool) -> None:
    started = time.monotonic()
    resp = post(gateway, {"model": model, "messages": HI, "stream": stream}, timeout=20)
    assert time.monotonic() - started < 10
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    error = assert_openai_error(resp, (429, 502, 503, 504))  # 429 once the first failure benched it
    assert "Traceback" not in error["message"]
    if resp.status_code == 429:
        assert int(resp.headers["retry-after"]) >= 1
    assert_healthy(gateway)


# -- misbehaving connections -----------------------------------------------------------


def test_content_length_longer_than_the_body_does_not_hang_the_server(gateway: LiveGateway) -> None:
    before = gateway_tasks(gateway)
    stalled = socket.create_connection(("127.0.0.1", gateway.port), timeout=2)
    try:
        stalled.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + b'{"model": "auto"')
        try:
            stalled.recv(1024)  # the server may wait for the rest; it must not block anyone else
        except TimeoutError:
            pass
        started = time.monotonic()
        assert_healthy(gateway)
        assert time.monotonic() - started < 5
    finally:
        stalled.close()
    assert_healthy(gateway)
    assert wait_for(lambda: gateway_tasks(gateway) <= before, within=5), (before, gateway_tasks(gateway))


def test_many_stalled_uploads_do_not_block_others(gateway: LiveGateway) -> None:
    before = gateway_tasks(gateway)
    stalled = []
    try:
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=2)
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 999999\r\n\r\n{")
            stalled.append(sock)
        assert_healthy(gateway)
    finally:
        for sock in stalled:
            sock.close()
    assert_healthy(gateway)
    assert wait_for(lambda: gateway_tasks(gateway) <= before, within=5), (before, gateway_tasks(gateway))


def test_abandoned_upload_is_not_logged_as_a_server_error(gateway: LiveGateway,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    before = gateway_tasks(gateway)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=2) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{")
        time.sleep(0.2)
    assert wait_for(lambda: gateway_tasks(gateway) <= before, within=5)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [f"{r.name}: {r.getMessage()}" for r in errors]


def test_client_disconnect_mid_stream_closes_the_upstream(gateway: LiveGateway, sandbox: Any) -> None:
    sandbox.server.set_plan(FaultPlan(models={STALLING: ModelFaults(stream_stall_after=1)}))
    port = sandbox_port(sandbox)
    before_tasks = gateway_tasks(gateway)
    body = {"model": STALLING, "messages": HI, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=10) as resp:
        assert resp.status_code == 200 and resp.headers["x-turnout-model"] == STALLING
        lines = resp.iter_lines()  # keep the iterator: dropping it closes the connection
        assert '"choices"' in next(line for line in lines if line.startswith("data:"))
        during, _ = tcp_states(port)  # the stalled stream's connection, plus idle pooled ones
        assert during >= 1
    # The upstream stalls forever (stream_idle_s is 30 s): only the client's leaving can end it.
    closed = wait_for(lambda: tcp_states(port)[0] <= during - 1 and tcp_states(port)[1] == 0, within=3)
    assert closed, f"upstream connection still open after the client left: {tcp_states(port)} (during: {during})"
    assert wait_for(lambda: gateway_tasks(gateway) <= before_tasks, within=3), (before_tasks, gateway_tasks(gateway))
    assert_healthy(gateway)


@pytest.mark.parametrize(("stream", "model"), [(False, "z-ai/glm-5.2:free"), (True, "google/gemma-4-31b-it:free")])
def test_client_disconnect_before_the_first_byte_cancels_the_upstream_call(gateway: LiveGateway, sandbox: Any,
                                                                           stream: bool, model: str) -> None:
    sandbox.server.set_plan(FaultPlan(models={model: ModelFaults(hang_rate=1.0)}))
    port = sandbox_port(sandbox)
    before_tasks = gateway_tasks(gateway)
    baseline, _ = tcp_states(port)
    with pytest.raises(httpx.ReadTimeout):
        post(gateway, {"model": model, "messages": HI, "stream": stream}, timeout=1)
    # first_byte_s is 3 s; a gateway that cancels on disconnect lets go well before that.
    released = wait_for(lambda: tcp_states(port)[0] <= baseline and tcp_states(port)[1] == 0
                        and gateway_tasks(gateway) <= before_tasks,
                        within=1.5)
    leftover = (tcp_states(port), gateway_tasks(gateway))
    wait_for(lambda: gateway_tasks(gateway) <= before_tasks, within=10)  # let the orphan finish before the next test
    assert released, f"upstream call kept running for nobody: (conns, close_wait), tasks = {leftover}; " \
                     f"baseline {baseline}, {before_tasks} tasks"
