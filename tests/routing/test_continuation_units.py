"""The pure parts of mid-stream continuation: plain tables, no network."""

from __future__ import annotations

from typing import Any

import pytest

from turnout.pool.model import Capabilities, Deployment
from turnout.routing.continuation import (
    Delivered,
    PrefillMemory,
    continuation_mode,
    prefill_request,
    sum_usage,
)
from turnout.routing.request import parse_chat_request

HELLO = [{"role": "user", "content": "hello"}]


def chat(**body: Any) -> Any:
    return parse_chat_request({"model": "auto", "messages": HELLO, **body}, max_messages=100)


@pytest.mark.parametrize(("body", "mode"), [
    ({}, "prefill"),
    ({"n": 1}, "prefill"),
    ({"n": 2}, None),  # several choices cannot share one prefill
    ({"response_format": {"type": "text"}}, "prefill"),
    ({"response_format": {"type": "json_object"}}, "restart"),
    ({"response_format": {"type": "json_schema", "json_schema": {}}}, "restart"),
    ({"tool_choice": "auto"}, "prefill"),
    ({"tool_choice": "required"}, "restart"),
    ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "restart"),
])
def test_continuation_mode(body: dict[str, Any], mode: str | None) -> None:
    assert continuation_mode(body) == mode


def test_prefill_request_appends_what_the_client_has_and_lowers_the_limits() -> None:
    request = chat(max_tokens=100, max_completion_tokens=80)
    continued = prefill_request(request, "Once upon a ", tokens=3)
    assert continued is not None
    assert continued.body["messages"] == [*HELLO, {"role": "assistant", "content": "Once upon a"}]
    assert continued.body["max_tokens"] == 97 and continued.body["max_completion_tokens"] == 77
    assert continued.max_tokens == 77
    assert request.body["messages"] == HELLO  # the original is untouched


def test_prefill_request_extends_the_clients_own_prefill() -> None:
    request = parse_chat_request({"model": "auto", "messages": [*HELLO, {"role": "assistant", "content": "Sure: "}]},
                                 max_messages=100)
    continued = prefill_request(request, "one two ", tokens=2)
    assert continued is not None
    assert continued.body["messages"][-1] == {"role": "assistant", "content": "Sure: one two"}
    assert len(continued.body["messages"]) == 2


@pytest.mark.parametrize(("limit", "tokens", "continues"), [(10, 9, True), (10, 10, False), (10, 12, False)])
def test_prefill_request_when_the_output_limit_is_spent(limit: int, tokens: int, continues: bool) -> None:
    assert (prefill_request(chat(max_tokens=limit), "x", tokens=tokens) is not None) is continues


@pytest.mark.parametrize(("usages", "total"), [
    ([{"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14},
      {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18, "cost": 0.5}],
     {"prompt_tokens": 22, "completion_tokens": 10, "total_tokens": 32, "cost": 0.5}),
    ([{"completion_tokens_details": {"reasoning_tokens": 2}}, {"completion_tokens_details": {"reasoning_tokens": 3}}],
     {"completion_tokens_details": {"reasoning_tokens": 5}}),
    ([{"is_byok": False, "prompt_tokens": 1}, {"is_byok": False, "prompt_tokens": 2}],
     {"is_byok": False, "prompt_tokens": 3}),
    ([{"prompt_tokens": None}, {"prompt_tokens": 2}], {"prompt_tokens": 2}),
    ([], {}),
])
def test_sum_usage(usages: list[dict[str, Any]], total: dict[str, Any]) -> None:
    assert sum_usage(usages) == total


def frame(content: str | None = None, *, finish: str | None = None, index: int = 0, **delta: Any) -> bytes:
    import json

    body: dict[str, Any] = {"id": "gen-1", "created": 7, "choices": [
        {"index": index, "delta": {"content": content, **delta}, "finish_reason": finish}]}
    return json.dumps(body).encode()


def test_delivered_reads_text_finish_and_identity_lazily() -> None:
    delivered = Delivered()
    delivered.frames += [frame("", role="assistant"), frame("one "), frame("two "), b"garbage", frame("x", index=1)]
    delivered.read()
    assert (delivered.text, delivered.content_frames, delivered.finished) == ("one two ", 2, False)
    assert delivered.identity == {"id": "gen-1", "created": 7}
    delivered.frames.append(frame("", finish="stop"))
    delivered.read()  # only the new frames are read
    assert delivered.text == "one two " and delivered.finished


def dep(model: str, upstream: str = "") -> Deployment:
    return Deployment(id=f"id-{model}", model=model, provider="openrouter", upstream_model=upstream or model,
                      wire="openai", api_base="", credential=None, tier="free", context_length=None,
                      prompt_price=0.0, completion_price=0.0, capabilities=Capabilities())


def test_prefill_memory_knows_patterns_and_learns_refusals() -> None:
    memory = PrefillMemory(["anthropic/claude-opus-4.6*", "*:thinking"])
    assert memory.refuses(dep("anthropic/claude-opus-4.6"))
    assert memory.refuses(dep("x/y:thinking"))
    assert not memory.refuses(dep("z-ai/glm-5.2:free"))
    memory.learn({"id-z-ai/glm-5.2:free"})
    assert memory.refuses(dep("z-ai/glm-5.2:free"))
