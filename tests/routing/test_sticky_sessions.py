"""Sticky sessions: the pin store, the session key, and a conversation kept on (and moved off) its deployment."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import pytest

from tests.observability.test_metrics import value
from turnout.routing.sticky import InProcessPins, session_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pins_expire_after_their_ttl_and_the_store_is_bounded() -> None:
    clock = Clock()
    pins = InProcessPins(max_entries=2, clock=clock)

    async def run() -> list[str | None]:
        await pins.set("a", "dep-1", 10)
        clock.now += 9.9
        kept = await pins.get("a")
        clock.now += 0.2
        gone = await pins.get("a")
        await pins.set("x", "d", 60)
        await pins.set("y", "d", 60)
        await pins.get("x")
        await pins.set("z", "d", 60)  # the least recently used of the three (y) goes
        await pins.delete("z")
        return [kept, gone, await pins.get("x"), await pins.get("y"), await pins.get("z")]

    assert asyncio.run(run()) == ["dep-1", None, "d", None, None]
    assert len(pins) == 1


BODY = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "first"},
                     {"role": "assistant", "content": "a"}, {"role": "user", "content": "later"}]}


@pytest.mark.parametrize(("headers", "body", "expected"), [
    ({b"x-turnout-session": "mine", b"x-claude-code-session-id": "cc"}, {"user": "u"}, "h:mine"),
    ({b"x-claude-code-session-id": "cc", b"session-id": "cx"}, {"user": "u"}, "h:cc"),
    ({b"session-id": "cx"}, {"prompt_cache_key": "pk"}, "h:cx"),
    ({}, {"prompt_cache_key": "pk", "user": "u"}, "b:pk"),
    ({}, {"user": "u"}, "b:u"),
])
def test_session_key_order(headers: dict[bytes, str], body: dict[str, Any], expected: str) -> None:
    assert session_key(headers.get, body) == expected


def test_session_key_falls_back_to_the_conversation_start() -> None:
    later_turn = session_key({}.get, BODY)
    first_turn = session_key({}.get, {"messages": BODY["messages"][:2]})
    other = session_key({}.get, {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "x"}]})
    assert later_turn == first_turn != other and later_turn.startswith("c:")


def turn(url: str, session: str | None, text: str) -> httpx.Response:
    headers = {"X-Turnout-Session": session} if session else {}
    resp = httpx.post(f"{url}/v1/chat/completions", headers=headers, timeout=30,
                      json={"model": "auto", "messages": [{"role": "user", "content": text}]})
    assert resp.status_code == 200, resp.text
    return resp


def test_a_session_stays_pinned_for_five_turns_and_moves_when_its_deployment_fails(
        start_gateway: Callable[..., Any], sandbox: Any) -> None:
    from turnout.sandbox import FaultPlan, ModelFaults

    gw = start_gateway(retries={"backoff_base_s": 0.01})
    first = turn(gw.url, "conv-1", "turn 0")
    pinned_model = first.headers["x-turnout-model"]
    assert first.headers["x-turnout-pin"] == "new"
    for index in range(1, 5):
        later = turn(gw.url, "conv-1", f"turn {index}")
        assert later.headers["x-turnout-pin"] == "pinned"
        assert later.headers["x-turnout-model"] == pinned_model
    # Another conversation is drawn by weight, not stuck to the first one's deployment.
    others = {turn(gw.url, f"other-{i}", "hi").headers["x-turnout-model"] for i in range(12)}
    assert len(others) > 1

    sandbox.server.set_plan(FaultPlan(models={pinned_model: ModelFaults(error_rate=1.0, error_codes=[503])}))
    moved = turn(gw.url, "conv-1", "turn 5")
    assert moved.headers["x-turnout-pin"] == "moved"
    assert moved.headers["x-turnout-model"] != pinned_model
    assert int(moved.headers["x-turnout-attempts"]) >= 2
    again = turn(gw.url, "conv-1", "turn 6")
    assert again.headers["x-turnout-pin"] == "pinned"
    assert again.headers["x-turnout-model"] == moved.headers["x-turnout-model"]
    counts = {result: value(gw, "turnout_session_pins_total", result=result) for result in ("new", "pinned", "moved")}
    assert counts == {"new": 13, "pinned": 5, "moved": 1}


def test_claude_code_style_session_over_messages_stays_on_one_deployment(
        start_gateway: Callable[..., Any]) -> None:
    gw = start_gateway()
    seen = set()
    messages: list[Any] = []
    with anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0,
                             default_headers={"X-Claude-Code-Session-Id": "cc-session-1"}) as client:
        for index in range(5):
            messages.append({"role": "user", "content": f"turn {index}"})
            raw = client.messages.with_raw_response.create(model="auto", max_tokens=50, messages=messages)
            seen.add(raw.headers["x-turnout-deployment"])
            messages.append({"role": "assistant", "content": raw.parse().content[0].text})
            assert raw.headers["x-turnout-pin"] == ("new" if index == 0 else "pinned")
    assert len(seen) == 1


def test_pins_are_per_alias_and_can_be_switched_off(start_gateway: Callable[..., Any]) -> None:
    gw = start_gateway()
    assert "x-turnout-pin" not in turn_on(gw.url, "free").headers  # `free` does not pin by default
    off = start_gateway(sessions={"enabled": False})
    assert "x-turnout-pin" not in turn_on(off.url, "auto").headers
    custom = start_gateway(aliases={"mine": {"tiers": ["free"], "sticky": True}})
    assert turn_on(custom.url, "mine").headers["x-turnout-pin"] == "new"


def turn_on(url: str, model: str) -> httpx.Response:
    resp = httpx.post(f"{url}/v1/chat/completions", timeout=30,
                      json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200, resp.text
    return resp
