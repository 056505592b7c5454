"""Small things at the edge a client sees: error spacing, alias fallbacks, header values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx


def test_a_hosted_tool_type_with_control_characters_still_gets_its_answer(start_gateway: Callable[..., Any]) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}})
    resp = httpx.post(f"{gw.url}/v1/responses", timeout=30,
                      json={"model": "auto", "input": "hi", "tools": [{"type": "web\bsearch\u00e9"}]})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-turnout-dropped-tools"] == "web%08search%C3%A9"  # printable ASCII, the rest percent-encoded


def test_404_for_an_unknown_path_is_spaced_like_every_other_error(start_gateway: Callable[..., Any]) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}})
    unknown = httpx.get(f"{gw.url}/v1/nowhere")
    invalid = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "auto"})
    assert (unknown.status_code, invalid.status_code) == (404, 400)
    for resp in (unknown, invalid):
        assert resp.content.startswith(b'{"error":{"message":"'), resp.content
    assert unknown.json()["error"]["message"] == "No route for GET /v1/nowhere."


def test_auto_lists_its_fallbacks_of_each_kind_and_the_status_page_renders_code(
        start_gateway: Callable[..., Any]) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}})
    auto = httpx.get(f"{gw.url}/v1/models/auto").json()
    assert auto["context_window_fallbacks"] == ["long"]
    assert auto["fallbacks"] == [] and auto["content_policy_fallbacks"] == []
    page = httpx.get(f"{gw.url}/status").text
    assert "`" not in page
    assert "<code>auto</code> falls back here on context overflow" in page


def test_headers_the_server_refuses_still_end_in_an_error_response() -> None:
    """uvicorn raises from `send` for a header value it cannot write; the reply must then still
    answer (a 500 in the API's shape), not leave the client waiting for headers forever."""
    import asyncio

    from turnout.api.asgi import Reply
    from turnout.errors import GatewayError
    from turnout.observability.metrics import Metrics

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and any(b"\n" in v for _, v in message["headers"]):
            raise RuntimeError("Invalid HTTP header value")  # what uvicorn's httptools protocol raises
        sent.append(message)

    async def scenario() -> None:
        reply = Reply(send, Metrics(version="test").open_request())
        try:
            await reply.start(200, [(b"x-bad", b"one\ntwo")])
        except RuntimeError:
            await reply.error(GatewayError("The gateway failed unexpectedly."), "req_1")

    asyncio.run(scenario())
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 500 and b"unexpectedly" in sent[1]["body"]
