"""Item 5: every field that bounds a paid answer's output is capped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from turnout.routing.engine import cap_output

HELLO = [{"role": "user", "content": "hi"}]


def test_no_output_field_escapes_the_paid_cap(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}, "paid_max_tokens": 512})
    resp = httpx.post(f"{gw.url}/v1/chat/completions", timeout=30,
                      json={"model": "paid", "messages": HELLO, "max_tokens": 10,
                            "max_completion_tokens": 1_000_000, "reasoning": {"max_tokens": 1_000_000}})
    assert resp.status_code == 200, resp.text
    body = sandbox.server.calls[-1].body
    assert (body["max_tokens"], body["max_completion_tokens"], body["reasoning"]["max_tokens"]) == (10, 512, 512)
    calls = len(sandbox.server.calls)
    resp = httpx.post(f"{gw.url}/v1/chat/completions", timeout=30,
                      json={"model": "paid", "messages": HELLO, "n": 8})
    # n > 1 cannot multiply the cap: it is refused at the edge (issue 14), before any upstream call
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "n", resp.text
    assert len(sandbox.server.calls) == calls


def test_cap_output_table() -> None:
    cases = [
        ({}, {"max_tokens": 100}),
        ({"max_completion_tokens": 5000}, {"max_completion_tokens": 100}),
        ({"n": 4, "max_tokens": 1000}, {"n": 4, "max_tokens": 25}),
        ({"n": 1000}, {"n": 100, "max_tokens": 1}),
        ({"thinking": {"type": "enabled", "budget_tokens": 9999}},
         {"max_tokens": 100, "thinking": {"type": "enabled", "budget_tokens": 100}}),
    ]
    for given, expected in cases:
        body = dict(given)
        cap_output(body, 100)
        assert body == expected, given
