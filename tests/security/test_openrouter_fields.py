"""Item 2: OpenRouter's own routing fields cannot escape the pool or the operator's cost settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

MODEL = "z-ai/glm-5.2:free"


def _post(gw: Any, **extra: Any) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", timeout=60,
                      json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **extra})


@pytest.mark.parametrize(("extra", "param"), [
    ({"models": ["openai/o1-pro"]}, "models"),
    ({"route": "fallback"}, "route"),
    ({"preset": "@preset/expensive"}, "preset"),
    ({"plugins": [{"id": "web"}]}, "plugins[0].id"),
    ({"provider": {"allow_fallbacks": True}}, "provider.allow_fallbacks"),
    ({"provider": {"max_price": {"prompt": "lots"}}}, "provider.max_price"),
])
def test_routing_fields_are_refused_before_any_upstream_call(start_gateway: Callable[..., Any], sandbox: Any,
                                                            extra: dict[str, Any], param: str) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}})
    before = len(sandbox.server.calls_for(MODEL))
    resp = _post(gw, **extra)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param
    assert len(sandbox.server.calls_for(MODEL)) == before


def test_allowed_plugins_and_provider_preferences_pass_and_max_price_is_clamped(
        start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}, "allowed_plugins": ["web"],
                             "max_price": {"prompt": 1.0, "completion": 2.0}})
    resp = _post(gw, plugins=[{"id": "web"}], transforms=["middle-out"],
                 provider={"order": ["x"], "allow_fallbacks": False, "max_price": {"prompt": 5, "completion": 0.5}})
    assert resp.status_code == 200, resp.text
    body = sandbox.server.calls_for(MODEL)[-1].body
    assert body["plugins"] == [{"id": "web"}] and body["transforms"] == ["middle-out"]
    assert body["provider"]["order"] == ["x"] and body["provider"]["allow_fallbacks"] is False
    assert body["provider"]["max_price"] == {"prompt": 1.0, "completion": 0.5}
    assert _post(gw).status_code == 200  # the operator's ceiling goes even when the client sets none
    assert sandbox.server.calls_for(MODEL)[-1].body["provider"]["max_price"] == {"prompt": 1.0, "completion": 2.0}
