"""`n` > 1: refused with a 400 naming `n`, never a 200 with fewer choices than asked for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

HELLO = [{"role": "user", "content": "hi"}]


def test_n_above_one_is_refused_naming_n_and_n_one_answers(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}})
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="auto", messages=HELLO, n=2, stream=stream)  # type: ignore[call-overload]
        error = refused.value.body
        assert isinstance(error, dict) and error["param"] == "n" and error["code"] == "unsupported_n"
        assert "'n' is 2" in error["message"]
    assert sandbox.server.calls == [], "refused before any upstream call"
    one = client.chat.completions.create(model="auto", messages=HELLO, n=1)
    assert len(one.choices) == 1
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "auto", "messages": HELLO, "n": 3}, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "n"
