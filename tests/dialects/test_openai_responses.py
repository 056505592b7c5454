"""OpenAI Responses <-> chat completions, as plain tables (no server)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from turnout.dialects import openai_responses as orr
from turnout.errors import InvalidRequest

REQUESTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("string input and instructions", {"input": "hi", "instructions": "Be brief."},
     {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}),
    ("message items: developer is a system message, parts joined, history kept",
     {"input": [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
                {"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
                {"type": "reasoning", "summary": [], "encrypted_content": "x"}]},
     {"messages": [{"role": "system", "content": "rules"}, {"role": "user", "content": "ab"},
                   {"role": "assistant", "content": "ok"}]}),
    ("image parts", {"input": [{"role": "user", "content": [
        {"type": "input_text", "text": "what?"}, {"type": "input_image", "image_url": "data:image/png;base64,AA",
                                                 "detail": "high"}]}]},
     {"messages": [{"role": "user", "content": [
         {"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA",
                                                                             "detail": "high"}}]}]}),
    ("function calls grouped into one assistant turn, outputs as tool messages",
     {"input": [{"role": "user", "content": "go"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"a":1}'},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]}]},
     {"messages": [{"role": "user", "content": "go"},
                   {"role": "assistant", "content": None, "tool_calls": [
                       {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                       {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}}]},
                   {"role": "tool", "tool_call_id": "c1", "content": "one"},
                   {"role": "tool", "tool_call_id": "c2", "content": "two"}]}),
    ("tools, hosted ones dropped, namespace flattened, options mapped",
     {"input": "x", "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False},
                              {"type": "web_search"},
                              {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "g"}]}],
      "tool_choice": {"type": "function", "name": "f"}, "parallel_tool_calls": False, "max_output_tokens": 50,
      "temperature": 0.1, "reasoning": {"effort": "high", "summary": "auto"}, "prompt_cache_key": "k", "user": "u",
      "store": False, "include": ["reasoning.encrypted_content"], "stream": True,
      "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}}},
     {"messages": [{"role": "user", "content": "x"}],
      "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": False}},
                {"type": "function", "function": {"name": "ns__g", "parameters": {"type": "object", "properties": {}}}}],
      "tool_choice": {"type": "function", "function": {"name": "f"}}, "parallel_tool_calls": False,
      "max_tokens": 50, "temperature": 0.1, "reasoning": {"effort": "high"}, "prompt_cache_key": "k", "user": "u",
      "stream": True, "response_format": {"type": "json_schema", "json_schema": {
          "name": "w", "schema": {"type": "object"}, "strict": True}}}),
    ("a namespaced call in the history", {"input": [
        {"role": "user", "content": "x"},
        {"type": "function_call", "call_id": "c", "name": "g", "namespace": "ns", "arguments": "{}"}]},
     {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": None, "tool_calls": [
         {"id": "c", "type": "function", "function": {"name": "ns__g", "arguments": "{}"}}]}]}),
]


@pytest.mark.parametrize(("name", "body", "expected"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_requests(name: str, body: dict[str, Any], expected: dict[str, Any]) -> None:
    chat, _ = orr.to_chat({"model": "auto", **body})
    assert chat == {"model": "auto", **expected}


def test_hosted_tools_are_named_as_dropped() -> None:
    _, dropped = orr.to_chat({"model": "auto", "input": "x", "tools": [
        {"type": "web_search"}, {"type": "file_search", "vector_store_ids": []}, {"type": "function", "name": "f"}]})
    assert dropped == ["web_search", "file_search"]


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
    ({"input": "x", "conversation": "conv_1"}, "conversation"),
    ({"input": "x", "background": True}, "background"),
    ({"input": "x", "prompt": {"id": "pmpt_1"}}, "prompt"),
    ({"input": 3}, "input"),
    ({"input": [{"role": "system", "content": "only rules"}]}, "input"),
    ({"input": [{"type": "function_call", "name": "f"}]}, "input[0]"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}, "input[0].content[0].image_url"),
    ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input[0].content[0].type"),
    ({"input": "x", "tools": "all"}, "tools"),
    ({"input": "x", "tool_choice": 3, "tools": [{"type": "function", "name": "f"}]}, "tool_choice"),
    ({"input": "x", "temperature": "warm"}, "temperature"),
    ({"input": "x", "text": "json"}, "text"),
    ({"input": "x", "stream": "yes"}, "stream"),
])
def test_bad_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        orr.to_chat({"model": "auto", **body})
    assert info.value.param == param


def echo(**body: Any) -> orr.Echo:
    return orr.Echo.of({"model": "auto", "input": "x", **body}, model="m/1")


def test_answer_with_reasoning_text_and_a_namespaced_call() -> None:
    payload = {"choices": [{"finish_reason": "tool_calls", "message": {
        "content": "Let me look.", "reasoning": "plan",
        "tool_calls": [{"id": "c1", "function": {"name": "ns__g", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16,
                  "prompt_tokens_details": {"cached_tokens": 8}, "completion_tokens_details": {"reasoning_tokens": 2}}}
    found = orr.from_chat(payload, echo(tools=[{"type": "namespace", "name": "ns", "tools": [
        {"type": "function", "name": "g"}]}], max_output_tokens=99))
    assert [item["type"] for item in found["output"]] == ["reasoning", "message", "function_call"]
    assert found["output"][1]["content"][0]["text"] == "Let me look."
    call = found["output"][2]
    assert (call["name"], call["namespace"], call["call_id"], call["status"]) == ("g", "ns", "c1", "completed")
    assert found["usage"] == {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 8}, "output_tokens": 4,
                              "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 16}
    assert found["status"] == "completed" and found["max_output_tokens"] == 99 and found["model"] == "m/1"


def test_a_cut_answer_is_incomplete() -> None:
    payload = {"choices": [{"finish_reason": "length", "message": {"content": "par"}}]}
    found = orr.from_chat(payload, echo())
    assert found["status"] == "incomplete" and found["incomplete_details"] == {"reason": "max_output_tokens"}


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


def test_stream_event_sequence() -> None:
    events = orr.ResponseEvents(echo())
    raw = b"".join([
        events.chunk(chunk({"role": "assistant", "content": ""})),
        events.chunk(chunk({"reasoning": "think"})),
        events.chunk(chunk({"content": "Hel"})),
        events.chunk(chunk({"content": "lo"})),
        events.chunk(chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{"}}]})),
        events.chunk(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]})),
        events.chunk(chunk({}, "tool_calls")),
        events.chunk({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}),
        events.end(),
    ])
    found = events_of(raw)
    assert [e["type"] for e in found] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in found] == list(range(len(found)))
    done = found[-1]["response"]
    assert [item["type"] for item in done["output"]] == ["reasoning", "message", "function_call"]
    assert done["output"][1]["content"][0]["text"] == "Hello" and done["output"][2]["arguments"] == "{}"
    assert done["usage"]["output_tokens"] == 2
    assert [e["output_index"] for e in found if e["type"] == "response.output_item.added"] == [0, 1, 2]


def test_stream_failure_is_response_failed() -> None:
    events = orr.ResponseEvents(echo())
    found = events_of(events.chunk(chunk({"content": "par"})) + events.fail("cut", code="stream_broken"))
    assert found[-1]["type"] == "response.failed"
    assert found[-1]["response"]["status"] == "failed"
    assert found[-1]["response"]["error"] == {"code": "stream_broken", "message": "cut"}
