"""Anthropic Messages <-> chat completions, as plain tables (no server)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from turnout.dialects import anthropic_messages as am
from turnout.errors import InvalidRequest

BASE = {"model": "auto", "max_tokens": 100}

REQUESTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("string system and text", {"system": "Be brief.", "messages": [{"role": "user", "content": "hi"}]},
     {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}),
    ("system blocks joined when nothing is cached",
     {"system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
      "messages": [{"role": "user", "content": "hi"}]},
     {"messages": [{"role": "system", "content": "a\n\nb"}, {"role": "user", "content": "hi"}]}),
    ("cache_control kept on system and user parts",
     {"system": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}],
      "messages": [{"role": "user", "content": [{"type": "text", "text": "q", "cache_control": {"type": "ephemeral"}}]}]},
     {"messages": [{"role": "system", "content": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}]},
                   {"role": "user", "content": [{"type": "text", "text": "q", "cache_control": {"type": "ephemeral"}}]}]}),
    ("image as a data url",
     {"messages": [{"role": "user", "content": [
         {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
         {"type": "text", "text": "what?"}]}]},
     {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                                                {"type": "text", "text": "what?"}]}]}),
    ("tool_use and tool_result, tool messages first, thinking dropped",
     {"messages": [
         {"role": "user", "content": "weather?"},
         {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                                           {"type": "text", "text": "Checking."},
                                           {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"c": "P"}}]},
         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
             {"type": "text", "text": "sunny"}]}, {"type": "text", "text": "and now?"}]}]},
     {"messages": [{"role": "user", "content": "weather?"},
                   {"role": "assistant", "content": "Checking.", "tool_calls": [
                       {"id": "toolu_1", "type": "function", "function": {"name": "get", "arguments": '{"c":"P"}'}}]},
                   {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
                   {"role": "user", "content": "and now?"}]}),
    ("tool error flagged", {"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": "boom", "is_error": True}]}]},
     {"messages": [{"role": "tool", "tool_call_id": "t", "content": "[tool error] boom"}]}),
    ("tools, choice any, no parallel, stops, sampling, user, thinking budget",
     {"messages": [{"role": "user", "content": "x"}], "tools": [
         {"name": "get", "description": "d", "input_schema": {"type": "object"}},
         {"type": "web_search_20250305", "name": "web_search"}],
      "tool_choice": {"type": "any", "disable_parallel_tool_use": True}, "stop_sequences": ["END"],
      "temperature": 0.2, "top_k": 5, "metadata": {"user_id": "u-1"}, "stream": True,
      "thinking": {"type": "enabled", "budget_tokens": 2048}},
     {"messages": [{"role": "user", "content": "x"}],
      "tools": [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}, "description": "d"}}],
      "tool_choice": "required", "parallel_tool_calls": False, "stop": ["END"], "temperature": 0.2, "top_k": 5,
      "user": "u-1", "stream": True, "reasoning": {"max_tokens": 2048}}),
    ("a named tool", {"messages": [{"role": "user", "content": "x"}], "tools": [
        {"name": "get", "input_schema": {"type": "object"}}], "tool_choice": {"type": "tool", "name": "get"}},
     {"messages": [{"role": "user", "content": "x"}],
      "tools": [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}],
      "tool_choice": {"type": "function", "function": {"name": "get"}}}),
    ("a system turn inside messages (Claude Code)", {"messages": [
        {"role": "user", "content": "x"}, {"role": "system", "content": [{"type": "text", "text": "reminder"}]}]},
     {"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "reminder"}]}),
]


@pytest.mark.parametrize(("name", "body", "expected"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_requests(name: str, body: dict[str, Any], expected: dict[str, Any]) -> None:
    chat, _ = am.to_chat({**BASE, **body})
    assert chat == {"model": "auto", "max_tokens": 100, **expected}


def test_server_tools_are_named_as_dropped() -> None:
    _, dropped = am.to_chat({**BASE, "messages": [{"role": "user", "content": "x"}],
                             "tools": [{"type": "web_search_20250305", "name": "web_search"},
                                       {"type": "code_execution_20250522", "name": "code_execution"}]})
    assert dropped == ["web_search", "code_execution"]


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "model": ""}, "model"),
    ({"max_tokens": 5, "messages": "x"}, "messages"),
    ({"max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": 7}]}, "messages.0.content"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]},
     "messages.0.content.0.source"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
     "messages.0.content.0.tool_use_id"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": [{"name": "t"}]},
     "tools.0.input_schema"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": [
        {"name": "t", "input_schema": {}}], "tool_choice": {"type": "sometimes"}}, "tool_choice"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "stop_sequences": "END"}, "stop_sequences"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "container": "c1"}, "container"),
])
def test_bad_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        am.to_chat({"model": "auto", **body})
    assert info.value.param == param


ANSWERS: list[tuple[str, dict[str, Any], list[dict[str, Any]], str]] = [
    ("text", {"content": "hello"}, [{"type": "text", "text": "hello"}], "end_turn"),
    ("reasoning then text", {"content": "42", "reasoning": "think"},
     [{"type": "thinking", "thinking": "think", "signature": ""}, {"type": "text", "text": "42"}], "end_turn"),
    ("tool call with broken arguments", {"content": None, "tool_calls": [
        {"id": "c1", "function": {"name": "f", "arguments": "{oops"}}]},
     [{"type": "tool_use", "id": "c1", "name": "f", "input": {"_arguments": "{oops"}}], "tool_use"),
]


@pytest.mark.parametrize(("name", "message", "content", "stop"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_answers(name: str, message: dict[str, Any], content: list[dict[str, Any]], stop: str) -> None:
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    payload = {"choices": [{"message": {"role": "assistant", **message}, "finish_reason": finish}],
               "usage": {"prompt_tokens": 10, "completion_tokens": 3}}
    answer = am.from_chat(payload, model="m", message_id="msg_1")
    assert answer["content"] == content and answer["stop_reason"] == stop
    assert answer["usage"] == {"input_tokens": 10, "output_tokens": 3}


@pytest.mark.parametrize(("finish", "stop"), [("length", "max_tokens"), ("content_filter", "refusal"),
                                               ("tool_calls", "tool_use"), ("stop", "end_turn")])
def test_stop_reasons(finish: str, stop: str) -> None:
    payload = {"choices": [{"message": {"content": "x"}, "finish_reason": finish}]}
    assert am.from_chat(payload, model="m", message_id="i")["stop_reason"] == stop


def test_cached_tokens_come_back_as_anthropic_counts() -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 5,
             "prompt_tokens_details": {"cached_tokens": 800, "cache_write_tokens": 150}}
    assert am.usage_of(usage) == {"input_tokens": 50, "output_tokens": 5, "cache_read_input_tokens": 800,
                                  "cache_creation_input_tokens": 150}


def events_of(raw: bytes) -> list[dict[str, Any]]:
    found = []
    for frame in raw.decode().split("\n\n"):
        if frame:
            name, data = frame.split("\n")
            event = json.loads(data.removeprefix("data: "))
            assert event["type"] == name.removeprefix("event: ")
            found.append(event)
    return found


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_stream_of_reasoning_text_and_two_tool_calls() -> None:
    events = am.MessageEvents(model="m", message_id="msg_1")
    raw = b"".join([
        events.chunk(chunk({"role": "assistant", "content": ""})),
        events.chunk(chunk({"reasoning": "hmm"})),
        events.chunk(chunk({"content": "Hi "})),
        events.chunk(chunk({"content": "there"})),
        events.chunk(chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "a", "arguments": ""}}]})),
        events.chunk(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]})),
        events.chunk(chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"arguments": "1}"}}]})),
        events.chunk(chunk({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "b", "arguments": "{}"}}]})),
        events.chunk(chunk({}, "tool_calls")),
        events.chunk({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 9}}),
        events.end(),
    ])
    found = events_of(raw)
    kinds = [(e["type"], e.get("index"), (e.get("delta") or e.get("content_block") or {}).get("type")) for e in found]
    assert kinds == [
        ("message_start", None, None), ("ping", None, None),
        ("content_block_start", 0, "thinking"), ("content_block_delta", 0, "thinking_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"), ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 1, "text_delta"), ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"), ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"), ("content_block_stop", 2, None),
        ("content_block_start", 3, "tool_use"), ("content_block_delta", 3, "input_json_delta"),
        ("content_block_stop", 3, None),
        ("message_delta", None, None), ("message_stop", None, None)]
    assert "".join(e["delta"]["partial_json"] for e in found if e.get("index") == 2 and "delta" in e) == '{"x":1}'
    assert found[-2]["delta"]["stop_reason"] == "tool_use"
    assert found[-2]["usage"] == {"input_tokens": 7, "output_tokens": 9}


def test_stream_failure_is_an_error_event() -> None:
    events = am.MessageEvents(model="m", message_id="msg_1")
    raw = events.chunk(chunk({"content": "par"})) + events.fail("upstream cut", type_="api_error")
    found = events_of(raw)
    assert found[-1] == {"type": "error", "error": {"type": "api_error", "message": "upstream cut"}}
    assert "message_stop" not in [e["type"] for e in found]
