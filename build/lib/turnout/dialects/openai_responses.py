"""OpenAI Responses <-> chat completions, stateless.

    to_chat(body)            a Responses request -> (chat body, hosted tools dropped)
    from_chat(payload, ...)  a chat.completion -> a `response` object
    ResponseEvents           chat.completion.chunk dicts -> Responses SSE events

`input` items map to chat messages: `message` items (and bare `{role, content}`) to
messages, `function_call` items to the assistant's `tool_calls` (consecutive calls share one
assistant message), `function_call_output` to `tool` messages; `reasoning` items are the
model's own and are not sent back. A `namespace` tool (Codex groups its sub-agent tools so)
becomes its function tools, named `<namespace>__<name>` upstream and split back into `name`
and `namespace` on the way out. Hosted tools (`web_search`, `file_search`,
`code_interpreter`, ...) need OpenAI's servers: they are dropped from what goes upstream and
named in a response header and the request log. Fields that only work with stored
responses (`previous_response_id`, `conversation`, `background`, `item_reference` items,
`prompt` templates) are refused with a 400 naming them: an answer without them would be wrong.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from turnout.encoding import dumps
from turnout.errors import InvalidRequest

_STATEFUL = {
    "previous_response_id": "this gateway stores no responses; send the whole conversation in 'input'",
    "conversation": "this gateway stores no conversations; send the whole conversation in 'input'",
    "background": "background responses need stored responses, which this gateway does not keep",
    "prompt": "stored prompt templates live on OpenAI's side",
}
_MESSAGE_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_PASSED = ("temperature", "top_p")
NAMESPACE_JOIN = "__"
# The request fields a `response` object echoes back.
_ECHOED = ("instructions", "max_output_tokens", "parallel_tool_calls", "prompt_cache_key", "reasoning",
           "temperature", "text", "tool_choice", "top_p", "truncation", "user", "metadata", "service_tier")


def new_id(prefix: str) -> str:
    return f"{prefix}_{random.getrandbits(128):032x}"


# -- requests ---------------------------------------------------------------------------


def to_chat(body: Any) -> tuple[dict[str, Any], list[str]]:
    """The chat body for a Responses request, and the hosted tools left out."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    for name, why in _STATEFUL.items():
        if body.get(name):
            raise InvalidRequest(f"'{name}' is not supported: {why}.", param=name, code="unsupported_parameter")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model",
                             code="invalid_model")
    messages = _instructions(body.get("instructions")) + chat_messages(body.get("input"))
    chat: dict[str, Any] = {"model": model, "messages": messages}
    tools, dropped = _tools(body.get("tools"))
    if tools:
        chat["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            chat["tool_choice"] = choice
        if isinstance(body.get("parallel_tool_calls"), bool):
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    _copy_options(body, chat)
    return chat, dropped


def _instructions(instructions: Any) -> list[dict[str, Any]]:
    if instructions is None or instructions == "":
        return []
    if not isinstance(instructions, str):
        raise InvalidRequest("'instructions' must be a string.", param="instructions")
    return [{"role": "system", "content": instructions}]


def chat_messages(items: Any) -> list[dict[str, Any]]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise InvalidRequest("'input' must be a non-empty string or array of input items.", param="input")
    out: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"'{where}' must be an object.", param=where)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            out.append(_message(item, where))
        elif kind == "function_call":
            _function_call(item, where, out)
        elif kind == "function_call_output":
            out.append(_call_output(item, where))
        elif kind == "reasoning":
            continue  # the model's own scratch work: chat upstreams take none back
        elif kind == "item_reference":
            raise InvalidRequest(f"'{where}': item references need stored responses, which this gateway does "
                                 "not keep; send the item itself.", param=where, code="unsupported_parameter")
        else:
            raise InvalidRequest(f"'{where}.type' {kind!r} is not an input item this gateway can send upstream "
                                 "(message, function_call, function_call_output, reasoning).",
                                 param=f"{where}.type")
    if not any(m["role"] != "system" for m in out):
        raise InvalidRequest("'input' has no message to answer.", param="input")
    return out


def _message(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    role = _MESSAGE_ROLES.get(item.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise InvalidRequest(f"'{where}.role' must be one of user, assistant, system, developer.",
                             param=f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(f"'{where}.content' must be a string or an array of content parts.",
                             param=f"{where}.content")
    parts = [_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)]
    if role != "user" or all(p["type"] == "text" for p in parts):
        return {"role": role, "content": "".join(p.get("text", "") for p in parts)}
    return {"role": role, "content": parts}


def _part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise InvalidRequest(f"'{where}' must be an object with a 'type'.", param=where)
    kind = part.get("type")
    if kind in {"input_text", "output_text", "text"}:
        if not isinstance(part.get("text"), str):
            raise InvalidRequest(f"'{where}.text' must be a string.", param=f"{where}.text")
        return {"type": "text", "text": part["text"]}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise InvalidRequest(f"'{where}.image_url' is required (file_id needs OpenAI's file store).",
                                 param=f"{where}.image_url")
        image: dict[str, Any] = {"url": url}
        if isinstance(part.get("detail"), str) and part["detail"] != "auto":
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if not isinstance(part.get("file_data"), str):
            raise InvalidRequest(f"'{where}.file_data' is required (file_id needs OpenAI's file store).",
                                 param=f"{where}.file_data")
        return {"type": "file", "file": {"filename": str(part.get("filename") or "file"),
                                         "file_data": part["file_data"]}}
    raise InvalidRequest(f"'{where}.type' {kind!r} is not a content part this gateway knows.",
                         param=f"{where}.type")


def _function_call(item: Mapping[str, Any], where: str, out: list[dict[str, Any]]) -> None:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise InvalidRequest(f"'{where}' needs a string 'call_id' and 'name'.", param=where)
    if isinstance(item.get("namespace"), str) and item["namespace"]:
        name = f"{item['namespace']}{NAMESPACE_JOIN}{name}"
    arguments = item.get("arguments")
    call = {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else "{}"}}
    if out and out[-1]["role"] == "assistant":  # calls right after the assistant's text belong to its turn
        out[-1].setdefault("tool_calls", []).append(call)
        return
    out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _call_output(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    call_id = item.get("call_id")
    if not isinstance(call_id, str):
        raise InvalidRequest(f"'{where}.call_id' must be a string.", param=f"{where}.call_id")
    output = item.get("output")
    if isinstance(output, list):
        output = "".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
    elif not isinstance(output, str):
        output = dumps(output).decode()
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def _tools(tools: Any) -> tuple[list[dict[str, Any]], list[str]]:
    if tools is None:
        return [], []
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array.", param="tools")
    out: list[dict[str, Any]] = []
    dropped: list[str] = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise InvalidRequest(f"'{where}' must be an object with a 'type'.", param=where)
        if tool["type"] == "function":
            out.append(_function_tool(tool, where, prefix=""))
        elif tool["type"] == "namespace" and isinstance(tool.get("name"), str) and isinstance(tool.get("tools"), list):
            prefix = tool["name"] + NAMESPACE_JOIN
            for inner, member in enumerate(tool["tools"]):
                if isinstance(member, dict) and member.get("type") == "function":
                    out.append(_function_tool(member, f"{where}.tools[{inner}]", prefix=prefix))
                else:
                    dropped.append(f"{tool['name']}.{member.get('type') if isinstance(member, dict) else '?'}")
        else:
            dropped.append(tool["type"])  # hosted: web_search, file_search, code_interpreter, mcp, ...
    return out, dropped


def _function_tool(tool: Mapping[str, Any], where: str, *, prefix: str) -> dict[str, Any]:
    if not isinstance(tool.get("name"), str):
        raise InvalidRequest(f"'{where}.name' must be a string.", param=f"{where}.name")
    function: dict[str, Any] = {"name": prefix + tool["name"],
                                "parameters": tool.get("parameters") or {"type": "object", "properties": {}}}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def namespaced(tools: Any) -> dict[str, tuple[str, str]]:
    """Upstream name -> (namespace, name) for the functions of every namespace tool."""
    found: dict[str, tuple[str, str]] = {}
    for tool in tools if isinstance(tools, list) else ():
        if isinstance(tool, dict) and tool.get("type") == "namespace" and isinstance(tool.get("tools"), list):
            for member in tool["tools"]:
                if isinstance(member, dict) and isinstance(member.get("name"), str):
                    found[f"{tool['name']}{NAMESPACE_JOIN}{member['name']}"] = (str(tool["name"]), member["name"])
    return found


def _tool_choice(choice: Any) -> Any:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    if isinstance(choice, dict):
        return "auto"  # a hosted tool or an allowed_tools list: the function tools that remain, the model's pick
    raise InvalidRequest("'tool_choice' must be auto, none, required or an object.", param="tool_choice")


def _copy_options(body: Mapping[str, Any], chat: dict[str, Any]) -> None:
    for name in _PASSED:
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidRequest(f"'{name}' must be a number.", param=name)
            chat[name] = value
    limit = body.get("max_output_tokens")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidRequest("'max_output_tokens' must be a positive integer.", param="max_output_tokens")
        chat["max_tokens"] = limit
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    if stream:
        chat["stream"] = True
    for name in ("user", "prompt_cache_key"):
        if isinstance(body.get(name), str):
            chat[name] = body[name]
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str) and reasoning["effort"] != "none":
        chat["reasoning"] = {"effort": reasoning["effort"]}
    text = body.get("text")
    if text is not None and not isinstance(text, dict):
        raise InvalidRequest("'text' must be an object.", param="text")
    fmt = (text or {}).get("format")
    if fmt is not None:
        chat_format = _format(fmt)
        if chat_format is not None:
            chat["response_format"] = chat_format


def _format(fmt: Any) -> dict[str, Any] | None:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema" and isinstance(fmt.get("schema"), dict):
        schema: dict[str, Any] = {"name": str(fmt.get("name") or "response"), "schema": fmt["schema"]}
        if isinstance(fmt.get("strict"), bool):
            schema["strict"] = fmt["strict"]
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest("'text.format' must be {type: text | json_object} or {type: json_schema, name, schema}.",
                         param="text.format")


# -- answers ----------------------------------------------------------------------------


def usage_of(usage: Any) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    pdetails = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), dict) else {}
    cdetails = usage.get("completion_tokens_details") \
        if isinstance(usage.get("completion_tokens_details"), dict) else {}
    return {"input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": pdetails.get("cached_tokens") or 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": cdetails.get("reasoning_tokens") or 0},
            "total_tokens": usage.get("total_tokens") or prompt + completion}


@dataclass(slots=True)
class Echo:
    """What the `response` object repeats of the request, and its identity."""

    id: str
    model: str
    created_at: int
    fields: dict[str, Any] = field(default_factory=dict)
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, body: Mapping[str, Any], *, model: str) -> Echo:
        fields = {name: body[name] for name in _ECHOED if body.get(name) is not None}
        fields["tools"] = [t for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"]
        return cls(id=new_id("resp"), model=model, created_at=int(time.time()), fields=fields,
                   namespaced=namespaced(body.get("tools")))

    def call_item(self, item_id: str, *, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
        item = _call_item(item_id, call_id=call_id, name=name, arguments=arguments, status=status)
        found = self.namespaced.get(name)
        if found is not None:
            item["namespace"], item["name"] = found
        return item

    def response(self, *, status: str, output: list[dict[str, Any]], usage: Any = None,
                 finish: str | None = None, error: dict[str, Any] | None = None) -> dict[str, Any]:
        found: dict[str, Any] = {
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "model": self.model, "output": output, "error": error, "incomplete_details": None,
            "parallel_tool_calls": True, "tool_choice": "auto", "store": False, "metadata": {},
            **self.fields,
        }
        if finish in {"length", "content_filter"}:
            found["status"] = "incomplete"
            found["incomplete_details"] = {"reason": "max_output_tokens" if finish == "length" else "content_filter"}
        if usage is not None:
            found["usage"] = usage_of(usage)
        return found


def from_chat(payload: Mapping[str, Any], echo: Echo) -> dict[str, Any]:
    choices = payload.get("choices") or [{}]
    choice: Mapping[str, Any] = choices[0] if isinstance(choices[0], dict) else {}
    message: Mapping[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning") or message.get("reasoning_content")
    text = message.get("content")
    if isinstance(reasoning, str) and reasoning and reasoning != text:
        output.append(_reasoning_item(new_id("rs"), reasoning))
    if isinstance(text, str) and text:
        output.append(_message_item(new_id("msg"), text, status="completed"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        output.append(echo.call_item(new_id("fc"), call_id=call.get("id") or new_id("call"),
                                     name=function.get("name") or "", arguments=function.get("arguments") or "",
                                     status="completed"))
    return echo.response(status="completed", output=output, usage=payload.get("usage") or {},
                         finish=choice.get("finish_reason"))


def _message_item(item_id: str, text: str, *, status: str) -> dict[str, Any]:
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [_text_part(text)] if status == "completed" else []}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _call_item(item_id: str, *, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def _reasoning_item(item_id: str, text: str | None) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": text}] if text is not None else []
    return {"type": "reasoning", "id": item_id, "summary": summary}


# -- streams ----------------------------------------------------------------------------


class ResponseEvents:
    """One Responses stream: fed chat chunks in order, returns the SSE bytes to send for each.

    One output item is open at a time (reasoning, a message, a function call); a change of
    kind finishes the open item with its `.done` events and adds the next. `end` finishes the
    last one and sends `response.completed` with every item and the usage.
    """

    __slots__ = ("_echo", "_finish", "_item", "_kind", "_output", "_parts", "_seq", "_started", "_tool_at",
                 "usage")

    def __init__(self, echo: Echo) -> None:
        self._echo = echo
        self._seq = 0
        self._started = False
        self._output: list[dict[str, Any]] = []  # finished items
        self._kind: str | None = None  # the open item's kind
        self._item: dict[str, Any] = {}
        self._parts: list[str] = []  # the open item's text or arguments so far
        self._tool_at: int | None = None
        self._finish: str | None = None
        self.usage: Any = None

    def _event(self, name: str, data: dict[str, Any]) -> bytes:
        data["type"] = name
        data["sequence_number"] = self._seq
        self._seq += 1
        return b"event: " + name.encode() + b"\ndata: " + dumps(data) + b"\n\n"

    def start(self) -> bytes:
        self._started = True
        response = self._echo.response(status="in_progress", output=[])
        return (self._event("response.created", {"response": response}) +
                self._event("response.in_progress", {"response": response}))

    def chunk(self, data: Mapping[str, Any]) -> bytes:
        if not self._started and isinstance(data.get("model"), str) and data["model"]:
            self._echo.model = data["model"]  # the model that really answered, as the chat stream says
        out = b"" if self._started else self.start()
        if data.get("usage"):
            self.usage = data["usage"]
        for choice in data.get("choices") or ():
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning") or delta.get("reasoning_content")
            if reasoning:
                out += self._reasoning(reasoning)
            text = delta.get("content")
            if text:
                out += self._text(text)
            for call in delta.get("tool_calls") or ():
                out += self._call(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out

    def _add(self, kind: str, item: dict[str, Any]) -> bytes:
        out = self._done()
        self._kind, self._item, self._parts = kind, item, []
        return out + self._event("response.output_item.added", {"output_index": len(self._output), "item": item})

    def _reasoning(self, text: str) -> bytes:
        out = b""
        if self._kind != "reasoning":
            out = self._add("reasoning", _reasoning_item(new_id("rs"), None))
            out += self._event("response.reasoning_summary_part.added", {
                "item_id": self._item["id"], "output_index": len(self._output), "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}})
        self._parts.append(text)
        return out + self._event("response.reasoning_summary_text.delta", {
            "item_id": self._item["id"], "output_index": len(self._output), "summary_index": 0, "delta": text})

    def _text(self, text: str) -> bytes:
        out = b""
        if self._kind != "message":
            out = self._add("message", _message_item(new_id("msg"), "", status="in_progress"))
            out += self._event("response.content_part.added", {
                "item_id": self._item["id"], "output_index": len(self._output), "content_index": 0,
                "part": _text_part("")})
        self._parts.append(text)
        return out + self._event("response.output_text.delta", {
            "item_id": self._item["id"], "output_index": len(self._output), "content_index": 0, "delta": text,
            "logprobs": []})

    def _call(self, call: Mapping[str, Any]) -> bytes:
        out = b""
        at = call.get("index", 0)
        function = call.get("function") or {}
        call_id = call.get("id")
        if self._kind != "function_call" or at != self._tool_at or (call_id and call_id != self._item["call_id"]):
            out = self._add("function_call", self._echo.call_item(new_id("fc"), call_id=call_id or new_id("call"),
                                                                  name=function.get("name") or "", arguments="",
                                                                  status="in_progress"))
            self._tool_at = at
        arguments = function.get("arguments")
        if arguments:
            self._parts.append(arguments)
            out += self._event("response.function_call_arguments.delta", {
                "item_id": self._item["id"], "output_index": len(self._output), "delta": arguments})
        return out

    def _done(self) -> bytes:
        """Finish the open item: its `.done` events, then into the output list."""
        kind, item = self._kind, self._item
        if kind is None:
            return b""
        index = len(self._output)
        text = "".join(self._parts)
        out = b""
        if kind == "message":
            part = _text_part(text)
            out += self._event("response.output_text.done", {"item_id": item["id"], "output_index": index,
                                                              "content_index": 0, "text": text, "logprobs": []})
            out += self._event("response.content_part.done", {"item_id": item["id"], "output_index": index,
                                                               "content_index": 0, "part": part})
            item = {**item, "status": "completed", "content": [part]}
        elif kind == "function_call":
            out += self._event("response.function_call_arguments.done", {"item_id": item["id"],
                                                                          "output_index": index, "arguments": text})
            item = {**item, "status": "completed", "arguments": text}
        else:
            summary = {"type": "summary_text", "text": text}
            out += self._event("response.reasoning_summary_text.done", {
                "item_id": item["id"], "output_index": index, "summary_index": 0, "text": text})
            out += self._event("response.reasoning_summary_part.done", {
                "item_id": item["id"], "output_index": index, "summary_index": 0, "part": summary})
            item = {**item, "summary": [summary]}
        self._output.append(item)
        self._kind, self._item, self._parts, self._tool_at = None, {}, [], None
        return out + self._event("response.output_item.done", {"output_index": index, "item": item})

    def end(self) -> bytes:
        out = (b"" if self._started else self.start()) + self._done()
        response = self._echo.response(status="completed", output=self._output, usage=self.usage or {},
                                       finish=self._finish)
        name = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return out + self._event(name, {"response": response})

    def fail(self, message: str, *, code: str = "server_error") -> bytes:
        """The stream broke after it started: `response.failed` with what was produced, then the stream ends."""
        out = b"" if self._started else self.start()
        response = self._echo.response(status="failed", output=self._output,
                                       error={"code": code, "message": message})
        return out + self._event("response.failed", {"response": response})
