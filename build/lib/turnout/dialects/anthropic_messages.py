"""Anthropic Messages <-> chat completions.

    to_chat(body)             a Messages request -> (chat body, tools dropped)
    from_chat(payload, ...)   a chat.completion -> a Messages `message`
    MessageEvents             chat.completion.chunk dicts -> Messages SSE events
    count_request(body)       a count_tokens request -> the chat messages and tools to count

Content blocks map one to one where chat has the same thing: text (with `cache_control`
kept on the part, which OpenRouter passes to providers that cache), images as data or URL
parts, `tool_use` as assistant `tool_calls`, `tool_result` as `tool` messages (placed before
the rest of their user turn, as chat requires). `thinking` blocks are the model's own
signed scratch work: chat upstreams cannot take them back, so they are not sent. Server
tools (`web_search_2025...`, `code_execution_...`) run only on Anthropic: they are dropped
and named, like the Responses API's hosted tools. Usage maps OpenAI's inclusive
`prompt_tokens` to Anthropic's exclusive `input_tokens` plus the cache read/write counts.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import orjson

from turnout.encoding import dumps
from turnout.errors import InvalidRequest

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                 "function_call": "tool_use", "content_filter": "refusal"}
# Claude Code also sends `system` turns mid-conversation (its reminders): they stay system messages.
_ROLES = frozenset({"user", "assistant", "system"})
# Fields whose answer would be wrong without Anthropic's own servers behind them.
_REFUSED = {"mcp_servers": "MCP servers run on Anthropic's side; this gateway cannot connect them",
            "container": "code-execution containers run on Anthropic's side"}
_PASSED = ("temperature", "top_p", "top_k")


def message_id() -> str:
    return f"msg_{random.getrandbits(96):024x}"


# -- requests ---------------------------------------------------------------------------


def to_chat(body: Any) -> tuple[dict[str, Any], list[str]]:
    """The chat body for a Messages request, and the names of server tools left out."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    for field, why in _REFUSED.items():
        if body.get(field):
            raise InvalidRequest(f"'{field}' is not supported: {why}.", param=field)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model: Field required (a non-empty string).", param="model")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequest("max_tokens: Field required (a positive integer).", param="max_tokens")
    chat: dict[str, Any] = {"model": model, "messages": chat_messages(body), "max_tokens": max_tokens}
    dropped: list[str] = []
    tools = body.get("tools")
    if tools is not None:
        chat_tools, dropped = _tools(tools)
        if chat_tools:
            chat["tools"] = chat_tools
            choice = _tool_choice(body.get("tool_choice"))
            if choice is not None:
                chat["tool_choice"] = choice
            if isinstance(body.get("tool_choice"), dict) and body["tool_choice"].get("disable_parallel_tool_use"):
                chat["parallel_tool_calls"] = False
    _copy_options(body, chat)
    return chat, dropped


def chat_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: must be a non-empty array.", param="messages")
    out: list[dict[str, Any]] = []
    system = _system(body.get("system"))
    if system is not None:
        out.append({"role": "system", "content": system})
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise InvalidRequest(f"{where}.role: must be 'user' or 'assistant' (or 'system').", param=f"{where}.role")
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content})
        elif isinstance(content, list):
            blocks = _check_blocks(content, where)
            if message["role"] == "system":
                out.append({"role": "system", "content": _system(blocks) or ""})
            elif message["role"] == "user":
                out.extend(_user_turn(blocks, where))
            else:
                out.append(_assistant_turn(blocks, where))
        else:
            raise InvalidRequest(f"{where}.content: must be a string or an array of content blocks.",
                                 param=f"{where}.content")
    return out


def _system(system: Any) -> str | list[dict[str, Any]] | None:
    if system is None or system == "" or system == []:
        return None
    if isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise InvalidRequest("system: must be a string or an array of text blocks.", param="system")
    parts = [_text_part(block, f"system.{i}") for i, block in enumerate(_check_blocks(system, "system"))]
    if any("cache_control" in p for p in parts):
        return parts
    return "\n\n".join(p["text"] for p in parts)


def _check_blocks(blocks: list[Any], where: str) -> list[dict[str, Any]]:
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidRequest(f"{where}.content.{index}: must be an object with a 'type'.",
                                 param=f"{where}.content.{index}")
    return blocks


def _text_part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    text = block.get("text")
    if block.get("type") != "text" or not isinstance(text, str):
        raise InvalidRequest(f"{where}: must be a text block with a string 'text'.", param=where)
    part: dict[str, Any] = {"type": "text", "text": text}
    if block.get("cache_control") is not None:
        part["cache_control"] = block["cache_control"]
    return part


def _user_turn(blocks: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Tool results become `tool` messages, first (chat wants them right after the call); the rest one user message."""
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        kind = block["type"]
        here = f"{where}.content.{index}"
        if kind == "tool_result":
            tools.extend(_tool_result(block, here))
        elif kind == "text":
            parts.append(_text_part(block, here))
        elif kind == "image":
            parts.append(_image_part(block, here))
        elif kind == "document":
            parts.append(_document_part(block, here))
        elif kind in {"thinking", "redacted_thinking"}:
            continue
        else:
            raise InvalidRequest(f"{here}.type: {kind!r} is not a content block a user turn can carry.",
                                 param=f"{here}.type")
    if parts:
        plain = all(set(p) == {"type", "text"} for p in parts)
        tools.append({"role": "user", "content": "".join(p["text"] for p in parts) if plain and len(parts) == 1
                      else parts})
    return tools


def _tool_result(block: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}.tool_use_id: Field required.", param=f"{where}.tool_use_id")
    content = block.get("content")
    images: list[dict[str, Any]] = []
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        texts = []
        for index, inner in enumerate(_check_blocks(content, where)):
            if inner["type"] == "text":
                texts.append(_text_part(inner, f"{where}.content.{index}")["text"])
            elif inner["type"] == "image":
                images.append(_image_part(inner, f"{where}.content.{index}"))
        text = "\n".join(texts)
    else:
        raise InvalidRequest(f"{where}.content: must be a string or an array of blocks.", param=f"{where}.content")
    if block.get("is_error") is True:
        text = f"[tool error] {text}"
    out: list[dict[str, Any]] = [{"role": "tool", "tool_call_id": call_id, "content": text}]
    if images:  # chat's tool messages carry text only: the images follow as the user's
        out.append({"role": "user", "content": images})
    return out


def _image_part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequest(f"{where}.source: Field required.", param=f"{where}.source")
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        media = source.get("media_type") or "image/png"
        url = f"data:{media};base64,{source['data']}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise InvalidRequest(f"{where}.source: an image source is base64 data with a media_type, or a url.",
                             param=f"{where}.source")
    part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if block.get("cache_control") is not None:
        part["cache_control"] = block["cache_control"]
    return part


def _document_part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "text" and isinstance(source.get("data"), str):
        return {"type": "text", "text": source["data"]}
    if isinstance(source, dict) and source.get("type") == "base64" and isinstance(source.get("data"), str):
        media = source.get("media_type") or "application/pdf"
        return {"type": "file", "file": {"filename": block.get("title") or "document",
                                         "file_data": f"data:{media};base64,{source['data']}"}}
    raise InvalidRequest(f"{where}.source: a document source is base64 data or text.", param=f"{where}.source")


def _assistant_turn(blocks: list[dict[str, Any]], where: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        kind = block["type"]
        here = f"{where}.content.{index}"
        if kind == "text":
            texts.append(_text_part(block, here)["text"])
        elif kind == "tool_use":
            name, call_id = block.get("name"), block.get("id")
            if not isinstance(name, str) or not isinstance(call_id, str):
                raise InvalidRequest(f"{here}: a tool_use block needs a string 'id' and 'name'.", param=here)
            arguments = dumps(block.get("input") if block.get("input") is not None else {}).decode()
            calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
        elif kind in {"thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result"}:
            continue  # signed or server-side: nothing a chat upstream can take back
        else:
            raise InvalidRequest(f"{here}.type: {kind!r} is not a content block an assistant turn can carry.",
                                 param=f"{here}.type")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tools(tools: Any) -> tuple[list[dict[str, Any]], list[str]]:
    if not isinstance(tools, list):
        raise InvalidRequest("tools: must be an array.", param="tools")
    out: list[dict[str, Any]] = []
    dropped: list[str] = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise InvalidRequest(f"tools.{index}.name: Field required.", param=f"tools.{index}.name")
        kind = tool.get("type")
        if kind not in (None, "custom"):  # a server tool: web_search_20250305, bash_20250124, ...
            dropped.append(str(tool["name"]))
            continue
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise InvalidRequest(f"tools.{index}.input_schema: Field required (an object).",
                                 param=f"tools.{index}.input_schema")
        function: dict[str, Any] = {"name": tool["name"], "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out, dropped


def _tool_choice(choice: Any) -> Any:
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequest("tool_choice: must be {type: auto | any | none} or {type: tool, name}.",
                         param="tool_choice")


def _copy_options(body: Mapping[str, Any], chat: dict[str, Any]) -> None:
    for name in _PASSED:
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidRequest(f"{name}: must be a number.", param=name)
            chat[name] = value
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidRequest("stop_sequences: must be an array of strings.", param="stop_sequences")
        if stops:
            chat["stop"] = stops
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream: must be a boolean.", param="stream")
    if stream:
        chat["stream"] = True
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        if thinking.get("type") == "enabled" and isinstance(thinking.get("budget_tokens"), int):
            chat["reasoning"] = {"max_tokens": thinking["budget_tokens"]}
        elif thinking.get("type") == "adaptive":
            effort = (body.get("output_config") or {}).get("effort") if isinstance(body.get("output_config"), dict) \
                else None
            chat["reasoning"] = {"effort": effort} if isinstance(effort, str) else {"enabled": True}


def count_request(body: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chat messages and tools a count_tokens request counts."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    if not isinstance(body.get("model"), str) or not body["model"].strip():
        raise InvalidRequest("model: Field required (a non-empty string).", param="model")
    tools, _ = _tools(body["tools"]) if body.get("tools") is not None else ([], [])
    return chat_messages(body), tools


# -- answers ----------------------------------------------------------------------------


def usage_of(usage: Any) -> dict[str, int]:
    """OpenAI usage -> Anthropic usage: `input_tokens` excludes what was read from or written to the cache."""
    if not isinstance(usage, dict):
        return {"input_tokens": 0, "output_tokens": 0}
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    read = _int(details.get("cached_tokens"))
    written = _int(details.get("cache_write_tokens")) or _int(usage.get("cache_creation_input_tokens"))
    found = {"input_tokens": max(0, _int(usage.get("prompt_tokens")) - read - written),
             "output_tokens": _int(usage.get("completion_tokens"))}
    if read or written:
        found["cache_read_input_tokens"] = read
        found["cache_creation_input_tokens"] = written
    return found


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def from_chat(payload: Mapping[str, Any], *, model: str, message_id: str) -> dict[str, Any]:
    choices = payload.get("choices") or [{}]
    choice: Mapping[str, Any] = choices[0] if isinstance(choices[0], dict) else {}
    message: Mapping[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
    content: list[dict[str, Any]] = []
    reasoning = message.get("reasoning") or message.get("reasoning_content")
    text = message.get("content")
    if isinstance(reasoning, str) and reasoning and reasoning != text:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or f"toolu_{random.getrandbits(96):024x}",
                        "name": function.get("name") or "", "input": tool_input(function.get("arguments"))})
    return {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": _STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
            "stop_sequence": None, "usage": usage_of(payload.get("usage"))}


def tool_input(arguments: Any) -> Any:
    """A tool call's arguments as the object Anthropic's `input` is; broken JSON is kept, as text."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"_arguments": parsed}


# -- streams ----------------------------------------------------------------------------


def _event(name: bytes, data: Mapping[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + dumps(data) + b"\n\n"


class MessageEvents:
    """One Messages stream: fed chat chunks in order, returns the SSE bytes to send for each.

    At most one content block is open at a time: a change of kind (thinking, text, a tool
    call) closes the open block and starts the next, as Anthropic's own streams do.
    """

    __slots__ = ("_block", "_id", "_index", "_model", "_open_kind", "_started", "_stop", "_tool_at", "_tool_id",
                 "usage")

    def __init__(self, *, model: str, message_id: str) -> None:
        self._model = model
        self._id = message_id
        self._started = False
        self._index = -1  # the open content block's index
        self._open_kind: str | None = None
        self._tool_at: int | None = None  # chat's tool_calls index of the open tool_use block
        self._tool_id: str | None = None
        self._block = b""
        self._stop = "end_turn"
        self.usage: Any = None

    def start(self) -> bytes:
        self._started = True
        message: dict[str, Any] = {"id": self._id, "type": "message", "role": "assistant", "model": self._model, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}
        return _event(b"message_start", {"type": "message_start", "message": message}) + \
            b'event: ping\ndata: {"type":"ping"}\n\n'

    def chunk(self, data: Mapping[str, Any]) -> bytes:
        if not self._started and isinstance(data.get("model"), str) and data["model"]:
            self._model = data["model"]  # the model that really answered, as the chat stream says
        out = b"" if self._started else self.start()
        if data.get("usage"):
            self.usage = data["usage"]
        for choice in data.get("choices") or ():
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning") or delta.get("reasoning_content")
            if reasoning:
                out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
                out += self._delta({"type": "thinking_delta", "thinking": reasoning})
            text = delta.get("content")
            if text:
                out += self._open("text", {"type": "text", "text": ""})
                out += self._delta({"type": "text_delta", "text": text})
            for call in delta.get("tool_calls") or ():
                out += self._tool(call)
            finish = choice.get("finish_reason")
            if finish:
                self._stop = _STOP_REASONS.get(finish, "end_turn")
        return out

    def _tool(self, call: Mapping[str, Any]) -> bytes:
        out = b""
        at = call.get("index", 0)
        call_id = call.get("id")
        function = call.get("function") or {}
        # Some upstreams repeat the call's id on every delta: only a new index or id starts a block.
        if self._open_kind != "tool_use" or at != self._tool_at or (call_id and call_id != self._tool_id):
            block: dict[str, Any] = {"type": "tool_use", "id": call_id or f"toolu_{random.getrandbits(96):024x}",
                     "name": function.get("name") or "", "input": {}}
            out += self._open("tool_use", block, force=True)
            self._tool_at, self._tool_id = at, call_id
        arguments = function.get("arguments")
        if arguments:
            out += self._delta({"type": "input_json_delta", "partial_json": arguments})
        return out

    def _open(self, kind: str, block: dict[str, Any], *, force: bool = False) -> bytes:
        if self._open_kind == kind and not force:
            return b""
        out = self._close()
        self._index += 1
        self._open_kind = kind
        self._block = b'"index":' + str(self._index).encode()
        return out + _event(b"content_block_start",
                            {"type": "content_block_start", "index": self._index, "content_block": block})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return (b'event: content_block_delta\ndata: {"type":"content_block_delta",' + self._block +
                b',"delta":' + dumps(delta) + b"}\n\n")

    def _close(self) -> bytes:
        if self._open_kind is None:
            return b""
        self._open_kind = None
        self._tool_at = None
        return b'event: content_block_stop\ndata: {"type":"content_block_stop",' + self._block + b"}\n\n"

    def end(self) -> bytes:
        out = (b"" if self._started else self.start()) + self._close()
        delta = {"type": "message_delta", "delta": {"stop_reason": self._stop, "stop_sequence": None},
                 "usage": usage_of(self.usage)}
        return out + _event(b"message_delta", delta) + b'event: message_stop\ndata: {"type":"message_stop"}\n\n'

    def fail(self, message: str, *, type_: str = "api_error") -> bytes:
        """The stream broke after it started: Anthropic's `error` event, and the stream ends there."""
        out = b"" if self._started else self.start()
        return out + _event(b"error", {"type": "error", "error": {"type": type_, "message": message}})
