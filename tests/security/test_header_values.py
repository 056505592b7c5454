"""Item 9: a model id outside Latin-1 (or with CR/LF) is served, and cannot inject a header."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

import turnout
from turnout.api.asgi import header_value

EVIL = "evil/模型-x:free"


def test_a_catalogue_id_outside_latin_1_is_served(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    snapshot = json.loads((Path(turnout.__file__).parent / "data/openrouter/models-2026-08-19.json").read_text())
    template = next(m for m in snapshot["data"] if m["id"] == "z-ai/glm-5.2:free")
    sandbox.server.add_model({**template, "id": EVIL, "canonical_slug": "evil/模型-x", "created": int(time.time())})
    gw = start_gateway(pool={"health": {"enabled": False}})
    assert EVIL in gw.state.holder.current.pool.groups
    body = {"model": EVIL, "messages": [{"role": "user", "content": "hi"}]}
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    assert unquote(resp.headers["x-turnout-model"]) == EVIL
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json={**body, "stream": True}, timeout=30) as stream:
        assert stream.status_code == 200
        lines = [line for line in stream.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"


@pytest.mark.parametrize(("text", "expected"), [
    ("z-ai/glm-5.2:free", b"z-ai/glm-5.2:free"),
    (EVIL, b"evil/%E6%A8%A1%E5%9E%8B-x:free"),
    ("a\r\nset-cookie: x", b"a%0D%0Aset-cookie: x"),
])
def test_header_value(text: str, expected: bytes) -> None:
    assert header_value(text) == expected
