"""A static group whose every deployment fails is visible (/readyz, status page), and what the
client reads about it carries no Python repr."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from turnout.upstream.failures import AttemptError, client_text

HELLO = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("raw", "clean"), [
    ("Cannot connect to host 127.0.0.1:11434 ssl:<ssl.SSLContext object at 0x7f3a2c1d5e50> [Connect call failed]",
     "Cannot connect to host 127.0.0.1:11434 [Connect call failed]"),
    ("Cannot connect to host 127.0.0.1:11434 ssl:default [Connection refused]",
     "Cannot connect to host 127.0.0.1:11434 [Connection refused]"),
    ("session <aiohttp.client.ClientSession object at 0xdeadbeef> closed", "session aiohttp.client.ClientSession closed"),
    ("upstream 429: Rate limit exceeded", "upstream 429: Rate limit exceeded"),
])
def test_client_text_drops_object_reprs(raw: str, clean: str) -> None:
    assert client_text(raw) == clean
    assert AttemptError("connection_error", f"fast: {raw}").message == f"fast: {clean}"


def test_a_dead_static_group_shows_in_readyz_and_the_status_page(start_gateway: Callable[..., Any]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: an Ollama that is not running
    gw = start_gateway(pool={"health": {"enabled": False}}, retries={"backoff_base_s": 0.01},
                       deployments=[{"name": "fast", "model": "ollama/llama3.1", "api_base": dead}])
    ready = httpx.get(f"{gw.url}/readyz").json()
    assert ready["status"] == "ready" and "failing_groups" not in ready
    for _ in range(2):
        resp = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "fast", "messages": HELLO}, timeout=60)
        assert resp.status_code == 502
        message = resp.json()["error"]["message"]
        assert "object at 0x" not in message and "ssl:" not in message, message
    ready = httpx.get(f"{gw.url}/readyz").json()
    assert ready["status"] == "degraded" and ready["failing_groups"] == ["fast"], ready
    assert "static group(s) fast is failing" in ready["reason"]
    assert "static group(s) fast is failing" in httpx.get(f"{gw.url}/status").text
    # The rest of the pool still answers, and its groups are not reported.
    assert httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "auto", "messages": HELLO},
                      timeout=60).status_code == 200
    assert httpx.get(f"{gw.url}/readyz").json()["failing_groups"] == ["fast"]
