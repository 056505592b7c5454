"""Turnout's own Messages / Responses translation against LiteLLM's, on correctness and speed.

    python bench/translation.py            run with a Python that has the LiteLLM to compare
                                           (e.g. a venv with litellm==1.110.2) and Turnout on
                                           PYTHONPATH; prints a table, writes out/translation.json

Both sides get the same requests (a Claude Code turn and a Codex turn as those CLIs send them,
captured shapes with shortened prompts) and the same chat answers and chunks. Correctness is a
list of checks on what each side produced; speed is CPU microseconds per call, best of 5 runs.
LiteLLM's stream translators are driven over pre-built chunk objects (their construction is
not charged to LiteLLM); Turnout's parse each chunk from bytes (as they arrive on the wire).
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import orjson  # noqa: E402

from turnout.dialects import anthropic_messages as ours_am  # noqa: E402
from turnout.dialects import openai_responses as ours_or  # noqa: E402

SYSTEM = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332;"},
          {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}},
          {"type": "text", "text": "Rules. " * 400, "cache_control": {"type": "ephemeral"}}]
CC_TOOLS = [{"name": name, "description": f"The {name} tool. " * 20, "input_schema": {
    "type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
    "required": ["file_path"]}} for name in ("Agent", "Bash", "Edit", "Read", "Write", "Skill", "ToolSearch")]
CLAUDE_CODE = {
    "model": "auto", "max_tokens": 32000, "stream": True, "system": SYSTEM, "tools": [
        *CC_TOOLS, {"type": "web_search_20250305", "name": "web_search"}],
    "metadata": {"user_id": '{"session_id":"4e13"}'}, "thinking": {"type": "adaptive"},
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                                     {"type": "text", "text": "write hello.txt", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "plan", "signature": "sig"},
                                          {"type": "tool_use", "id": "toolu_1", "name": "Write",
                                           "input": {"file_path": "/tmp/hello.txt", "content": "hi"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "File created"},
                                     {"type": "text", "text": "<system-reminder>more</system-reminder>"}]},
        {"role": "system", "content": [{"type": "text", "text": "mid-conversation reminder"}]},
        {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                  "data": "iVBORw0KGgo="}},
                                     {"type": "text", "text": "and this?"}]},
    ],
}
CODEX_TOOLS = [{"type": "function", "name": name, "description": f"The {name} tool. " * 20, "strict": False,
                "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}
               for name in ("exec_command", "write_stdin", "request_user_input", "view_image", "get_goal")]
CODEX = {
    "model": "auto", "stream": True, "store": False, "tool_choice": "auto", "parallel_tool_calls": True,
    "reasoning": {"summary": "auto"}, "include": ["reasoning.encrypted_content"], "prompt_cache_key": "01a2",
    "tools": [*CODEX_TOOLS, {"type": "namespace", "name": "multi_agent_v1", "description": "sub-agents",
                             "tools": [{"type": "function", "name": "spawn_agent", "parameters": {"type": "object"}}]},
              {"type": "web_search", "external_web_access": False}],
    "instructions": "You are a coding agent. " * 400,
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "make out.txt"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
        {"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": '{"cmd":"echo hi"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "Process exited with code 0"},
    ],
}
ANSWER = {"id": "gen-1", "object": "chat.completion", "created": 1, "model": "z-ai/glm-5.2:free", "choices": [
    {"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Writing it.", "reasoning": "The user wants a file.",
        "tool_calls": [{"id": "call_9", "type": "function", "function": {
            "name": "Write", "arguments": '{"file_path": "/tmp/a.txt", "content": "x"}'}}]}}],
    "usage": {"prompt_tokens": 5000, "completion_tokens": 40, "total_tokens": 5040,
              "prompt_tokens_details": {"cached_tokens": 4000},
              "completion_tokens_details": {"reasoning_tokens": 10}}}


def chunks() -> list[dict[str, Any]]:
    base = {"id": "gen-1", "object": "chat.completion.chunk", "created": 1, "model": "z-ai/glm-5.2:free"}
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": f"word{i} "} for i in range(40)]
    deltas.append({"tool_calls": [{"index": 0, "id": "call_9", "type": "function",
                                   "function": {"name": "Write", "arguments": ""}}]})
    deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
               for piece in ('{"file_path"', ': "/tmp/a.txt"', ', "content": "x"}')]
    found = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    found.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    found.append({**base, "choices": [], "usage": ANSWER["usage"]})
    return found


def cpu_us(fn: Callable[[], Any], *, number: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(number):
            fn()
        best = min(best, (time.process_time() - start) / number)
    return best * 1e6


def sse_events(raw: Iterable[bytes]) -> list[dict[str, Any]]:
    found = []
    for block in b"".join(raw).decode().split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                found.append(json.loads(line[6:]))
    return found


# -- checks -----------------------------------------------------------------------------


def check_messages_request(chat: dict[str, Any]) -> dict[str, bool]:
    msgs = chat.get("messages") or []
    system = msgs[0] if msgs else {}
    parts = system.get("content") if isinstance(system.get("content"), list) else []
    roles = [m.get("role") for m in msgs]
    tool_at = roles.index("tool") if "tool" in roles else -1
    tools = [t.get("function", {}).get("name") for t in chat.get("tools") or []]
    image = any(isinstance(m.get("content"), list) and any(
        p.get("type") == "image_url" and p["image_url"]["url"].startswith("data:image/png;base64,")
        for p in m["content"]) for m in msgs)
    return {
        "cache_control kept on system blocks": any(p.get("cache_control") for p in parts if isinstance(p, dict)),
        "tool_result is a tool message right after the call": tool_at > 0 and roles[tool_at - 1] == "assistant",
        "mid-conversation system turn kept": roles.count("system") >= 2,
        "server tool left out, function tools kept": "web_search" not in tools and "Write" in tools,
        "image as a data URL": image,
        "metadata.user_id as user": chat.get("user") == CLAUDE_CODE["metadata"]["user_id"],
    }


def check_messages_answer(answer: dict[str, Any]) -> dict[str, bool]:
    usage = answer.get("usage") or {}
    kinds = [b.get("type") for b in answer.get("content") or []]
    call = next((b for b in answer.get("content") or [] if b.get("type") == "tool_use"), {})
    return {
        "text and tool_use blocks": "text" in kinds and call.get("input") == {"file_path": "/tmp/a.txt", "content": "x"},
        "stop_reason tool_use": answer.get("stop_reason") == "tool_use",
        "cached tokens as cache_read_input_tokens": usage.get("cache_read_input_tokens") == 4000,
        "input_tokens exclude cached": usage.get("input_tokens") == 1000,
    }


def check_messages_stream(events: list[dict[str, Any]]) -> dict[str, bool]:
    kinds = [e.get("type") for e in events]
    starts = [e for e in events if e.get("type") == "content_block_start"]
    stops = [e for e in events if e.get("type") == "content_block_stop"]
    partial = "".join(e["delta"].get("partial_json", "") for e in events
                      if e.get("type") == "content_block_delta" and e["delta"].get("type") == "input_json_delta")
    delta = next((e for e in events if e.get("type") == "message_delta"), {})
    return {
        "message_start first, message_stop last": bool(kinds) and kinds[0] == "message_start"
        and kinds[-1] == "message_stop",
        "every block started is stopped": len(starts) == len(stops) > 0,
        "tool input streams as valid JSON": bool(partial) and json.loads(partial).get("file_path") == "/tmp/a.txt",
        "message_delta carries stop_reason and output tokens": delta.get("delta", {}).get("stop_reason") == "tool_use"
        and (delta.get("usage") or {}).get("output_tokens") == 40,
    }


def check_responses_request(chat: dict[str, Any]) -> dict[str, bool]:
    msgs = chat.get("messages") or []
    names = [t.get("function", {}).get("name") for t in chat.get("tools") or []]
    calls = [m for m in msgs if m.get("tool_calls")]
    tool = [m for m in msgs if m.get("role") == "tool"]
    return {
        "instructions first as system": bool(msgs) and msgs[0].get("role") in {"system", "developer"}
        and "coding agent" in str(msgs[0].get("content")),
        "function_call -> tool_calls, output -> tool message": bool(calls) and bool(tool)
        and tool[0].get("tool_call_id") == "call_1",
        "hosted web_search left out, functions kept": "web_search" not in names and "exec_command" in names,
        "namespace tool's functions offered": any(n and "spawn_agent" in n for n in names),
        "reasoning item not sent as a message": not any("gAAA" in json.dumps(m) for m in msgs),
        "prompt_cache_key kept": chat.get("prompt_cache_key") == "01a2",
    }


def check_responses_answer(resp: dict[str, Any]) -> dict[str, bool]:
    output = resp.get("output") or []
    kinds = [o.get("type") for o in output]
    usage = resp.get("usage") or {}
    return {
        "message and function_call items": "message" in kinds and "function_call" in kinds,
        "function_call keeps call_id": any(o.get("call_id") == "call_9" for o in output),
        "cached tokens in input_tokens_details": (usage.get("input_tokens_details") or {}).get("cached_tokens") == 4000,
        "status completed": resp.get("status") == "completed",
    }


def check_responses_stream(events: list[dict[str, Any]]) -> dict[str, bool]:
    kinds = [e.get("type") for e in events]
    seq = [e.get("sequence_number") for e in events]
    done = events[-1].get("response", {}) if events else {}
    text = "".join(e.get("delta", "") for e in events if e.get("type") == "response.output_text.delta")
    args = "".join(e.get("delta", "") for e in events if e.get("type") == "response.function_call_arguments.delta")
    return {
        "created, in_progress ... completed": kinds[:2] == ["response.created", "response.in_progress"]
        and kinds[-1] == "response.completed",
        "sequence numbers 0..n": seq == list(range(len(events))),
        "text and arguments deltas complete": text.startswith("word0 ") and json.loads(args or "{}").get(
            "file_path") == "/tmp/a.txt",
        "completed response lists both items": {o.get("type") for o in done.get("output") or []} >= {
            "message", "function_call"},
    }


# -- the two sides ----------------------------------------------------------------------


def ours() -> dict[str, Any]:
    raw_chunks = [orjson.dumps(c) for c in chunks()]

    def am_stream() -> list[bytes]:
        events = ours_am.MessageEvents(model="m", message_id="msg_1")
        return [events.chunk(orjson.loads(r)) for r in raw_chunks] + [events.end()]

    def or_stream() -> list[bytes]:
        events = ours_or.ResponseEvents(ours_or.Echo.of(CODEX, model="m"))
        return [events.chunk(orjson.loads(r)) for r in raw_chunks] + [events.end()]

    return {
        "messages": {
            "request": lambda: ours_am.to_chat(copy.deepcopy(CLAUDE_CODE))[0],
            "answer": lambda: ours_am.from_chat(copy.deepcopy(ANSWER), model="m", message_id="msg_1"),
            "stream": lambda: sse_events(am_stream()), "stream_fn": am_stream,
        },
        "responses": {
            "request": lambda: ours_or.to_chat(copy.deepcopy(CODEX))[0],
            "answer": lambda: ours_or.from_chat(copy.deepcopy(ANSWER), ours_or.Echo.of(CODEX, model="m")),
            "stream": lambda: sse_events(or_stream()), "stream_fn": or_stream,
        },
    }


def litellm_side() -> dict[str, Any]:
    import litellm
    from litellm.llms.anthropic.messages.adapters.streaming_iterator import AnthropicStreamWrapper
    from litellm.llms.anthropic.messages.adapters.transformation import LiteLLMAnthropicMessagesAdapter
    from litellm.responses.litellm_completion_transformation.streaming_iterator import (
        LiteLLMCompletionStreamingIterator,
    )
    from litellm.responses.litellm_completion_transformation.transformation import LiteLLMCompletionResponsesConfig
    from litellm.types.utils import ModelResponse, ModelResponseStream

    # keep_cache_control: what LiteLLM's proxy sets for targets that honour cache markers (OpenRouter does).
    adapter = LiteLLMAnthropicMessagesAdapter(keep_cache_control=True)
    built = [ModelResponseStream(**c) for c in chunks()]

    def am_request() -> Any:
        body = copy.deepcopy(CLAUDE_CODE)
        return dict(adapter.translate_anthropic_to_openai(anthropic_message_request=body)[0])

    def am_answer() -> Any:
        out = adapter.translate_openai_response_to_anthropic(response=ModelResponse(**copy.deepcopy(ANSWER)))
        return json.loads(json.dumps(out, default=lambda o: o.model_dump() if hasattr(o, "model_dump") else str(o)))

    def am_stream() -> list[bytes]:
        wrapper = AnthropicStreamWrapper(completion_stream=iter(built), model="m")
        return list(wrapper.anthropic_sse_wrapper())

    params = {k: v for k, v in CODEX.items() if k not in {"model", "input", "stream"}}

    def or_request() -> Any:
        return LiteLLMCompletionResponsesConfig.transform_responses_api_request_to_chat_completion_request(
            model="openai/auto", input=copy.deepcopy(CODEX["input"]), responses_api_request=copy.deepcopy(params),
            custom_llm_provider="openai", stream=True)

    def or_answer() -> Any:
        out = LiteLLMCompletionResponsesConfig.transform_chat_completion_response_to_responses_api_response(
            request_input=CODEX["input"], responses_api_request=copy.deepcopy(params),
            chat_completion_response=copy.deepcopy(ANSWER))
        return json.loads(out.model_dump_json())

    def or_stream() -> list[bytes]:
        wrapper = litellm.CustomStreamWrapper(completion_stream=iter(built), model="auto",
                                              custom_llm_provider="cached_response",
                                              logging_obj=_logging(litellm))
        events = LiteLLMCompletionStreamingIterator(model="auto", litellm_custom_stream_wrapper=wrapper,
                                                    request_input=CODEX["input"],
                                                    responses_api_request=copy.deepcopy(params))
        return [b"data: " + e.model_dump_json().encode() + b"\n\n" for e in events]

    return {
        "messages": {"request": am_request, "answer": am_answer, "stream": lambda: sse_events(am_stream()),
                     "stream_fn": am_stream},
        "responses": {"request": or_request, "answer": or_answer, "stream": lambda: sse_events(or_stream()),
                      "stream_fn": or_stream},
        "version": litellm.__version__ if hasattr(litellm, "__version__") else _version(),
    }


def _logging(litellm: Any) -> Any:
    from litellm.litellm_core_utils.litellm_logging import Logging

    return Logging(model="auto", messages=[], stream=True, call_type="completion", start_time=time.time(),
                   litellm_call_id="bench", function_id="bench")


def _version() -> str:
    from importlib import metadata

    return metadata.version("litellm")


CHECKS = {"messages": (check_messages_request, check_messages_answer, check_messages_stream),
          "responses": (check_responses_request, check_responses_answer, check_responses_stream)}


def evaluate(side: dict[str, Any], api: str) -> dict[str, Any]:
    request_check, answer_check, stream_check = CHECKS[api]
    fns = side[api]
    result: dict[str, Any] = {"checks": {}, "us": {}}
    for stage, check in (("request", request_check), ("answer", answer_check), ("stream", stream_check)):
        try:
            result["checks"].update({f"{stage}: {k}": v for k, v in check(fns[stage]()).items()})
        except Exception as exc:  # a translation that raises fails every check of that stage
            result["checks"][f"{stage}: raised {type(exc).__name__}: {str(exc)[:120]}"] = False
            continue
        fn = fns["stream_fn"] if stage == "stream" else fns[stage]
        result["us"][stage] = round(cpu_us(fn, number=200 if stage != "stream" else 50), 1)
    n_chunks = len(chunks())
    if "stream" in result["us"]:
        result["us"]["per_chunk"] = round(result["us"]["stream"] / n_chunks, 2)
    return result


def main() -> int:
    import logging

    logging.disable(logging.WARNING)  # LiteLLM's provider-list banners
    sides = {"turnout": ours()}
    try:
        sides["litellm"] = litellm_side()
    except ImportError as exc:
        print(f"LiteLLM's adapters are not importable here ({exc}); run with a Python that has litellm 1.110.2")
        return 1
    results: dict[str, Any] = {"litellm_version": sides["litellm"].pop("version"), "chunks_per_stream": len(chunks())}
    for api in ("messages", "responses"):
        results[api] = {name: evaluate(side, api) for name, side in sides.items()}
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "translation.json").write_text(json.dumps(results, indent=2))
    print(render(results))
    return 0


def render(results: dict[str, Any]) -> str:
    lines = [f"LiteLLM {results['litellm_version']} vs Turnout's dialects "
             f"({results['chunks_per_stream']} chunks per stream; CPU µs, best of 5)"]
    for api in ("messages", "responses"):
        lines.append(f"\n{api}: check | turnout | litellm")
        ours_r, theirs = results[api]["turnout"], results[api]["litellm"]
        for name in dict.fromkeys([*ours_r["checks"], *theirs["checks"]]):
            lines.append(f"  {name} | {_mark(ours_r['checks'].get(name))} | {_mark(theirs['checks'].get(name))}")
        for side_name, side in (("turnout", ours_r), ("litellm", theirs)):
            passed = sum(1 for v in side["checks"].values() if v)
            lines.append(f"  {side_name}: {passed}/{len(side['checks'])} checks; µs {side['us']}")
    return "\n".join(lines)


def _mark(value: bool | None) -> str:
    return "-" if value is None else ("pass" if value else "FAIL")


if __name__ == "__main__":
    sys.exit(main())
