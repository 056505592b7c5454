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
    assert resp.headers["x-turnout-dropped-tools"] == "web?search?"
