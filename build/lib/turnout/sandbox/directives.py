"""Prompt directives: a test tells the sandbox model exactly what to answer.

Agent CLIs offer a dozen tools on every turn, so the sandbox's default (call the first tool
offered) would never let them finish a turn. A user message may carry one directive:

    sandbox:say <text>             answer exactly <text> (to the end of the line), no tool call
    sandbox:call <tool> <json>     call the offered tool <tool> with the JSON object as arguments

Once a tool result follows the message that carried the directive, the answer is the
text "The tool returned: ..." (the follow-up turn), so a tool round trip always ends.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from turnout.sandbox.completions import Answer, CompletionRequest, ToolCall, text_of

_DIRECTIVE = re.compile(r"sandbox:(say|call)[ \t]+")
_WORDS = re.compile(r"\S+\s*|\s+")


def directed(request: CompletionRequest) -> Answer | None:
    """The answer a directive asks for, or None when the conversation carries none."""
    tool_result: str | None = None
    for message in reversed(request.messages):
        role = message.get("role")
        if role == "tool" and tool_result is None:
            tool_result = text_of(message.get("content"))
        if role != "user":
            continue
        text = text_of(message.get("content"))
        found = _DIRECTIVE.search(text)
        if found is None:
            continue
        if tool_result is not None:
            return _text(f"The tool returned: {tool_result}")
        rest = text[found.end():]
        return _say(rest) if found.group(1) == "say" else _call(request, rest)
    return None


def _say(rest: str) -> Answer:
    return _text(rest.splitlines()[0].strip() if rest.strip() else "")


def _call(request: CompletionRequest, rest: str) -> Answer:
    name, _, tail = rest.partition(" ")
    offered = {t["function"]["name"] for t in request.tools}
    if name not in offered:
        return _text(f"sandbox: the tool {name!r} was not offered")
    try:
        arguments, _ = json.JSONDecoder().raw_decode(tail.strip())
    except ValueError:
        return _text("sandbox: the directive's arguments are not a JSON object")
    if not isinstance(arguments, dict):
        return _text("sandbox: the directive's arguments are not a JSON object")
    call = ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=name, arguments=json.dumps(arguments))
    return Answer(content=None, reasoning=None, tool_call=call, finish_reason="tool_calls",
                  completion_tokens=max(1, len(call.arguments) // 4))


def _text(text: str) -> Answer:
    pieces: list[Any] = _WORDS.findall(text)
    return Answer(content=text, reasoning=None, tool_call=None, finish_reason="stop",
                  completion_tokens=max(1, len(pieces)))
