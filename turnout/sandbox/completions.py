"""Chat requests in, deterministic answers out.

`parse_chat` validates the wire body (never raising anything but
`BadRequest`); `build_answer` decides what the model says; `completion_body`
and `stream_chunks` shape it like OpenRouter's JSON and SSE responses.

Prefill: a request whose last message is the assistant's (without tool calls)
is a prefill. The model works out its whole answer to the conversation before
that message and sends only what comes after the prefilled text, as providers
that support prefill do; when the prefill is not how its answer begins, it
answers in full (as a model that ignores the prefill would).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from turnout.sandbox.model_list import ModelInfo
from turnout.sandbox.png import png_data_url
from turnout.sandbox.schemas import fill_object

# One token per word; leading whitespace joins the word after it (a continuation starts with " word").
_WORDS = re.compile(r"\s*\S+\s*|\s+")
_ECHO_CHARS = 40
IMAGE_TOKENS = 1290  # what OpenRouter counts for one generated image (Gemini's image models)
_VOCABULARY = (
    "amber", "basin", "cedar", "delta", "ember", "fjord", "grove", "harbor", "island", "juniper", "kelp",
    "lagoon", "meadow", "nectar", "orchid", "prairie", "quartz", "river", "summit", "tundra", "upland",
    "valley", "willow", "yarrow", "zephyr", "anchor", "beacon", "canyon", "dune", "estuary", "falcon",
    "glacier",
)


class BadRequest(Exception):
    """The request cannot be served; `code` and `message` go to the client."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    model_id: str
    messages: list[dict[str, Any]]
    stream: bool
    max_tokens: int | None
    tools: list[dict[str, Any]]
    tool_choice: Any
    response_format: dict[str, Any] | None
    has_images: bool
    prompt_tokens: int
    prefill: str | None = None  # the text of a trailing assistant message, when there is one
    wants_image: bool = False  # `modalities` has "image": OpenRouter's image generation


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str

    def wire(self) -> dict[str, Any]:
        function = {"name": self.name, "arguments": self.arguments}
        return {"id": self.id, "type": "function", "function": function}


@dataclass(frozen=True, slots=True)
class Answer:
    content: str | None
    reasoning: str | None
    tool_call: ToolCall | None
    finish_reason: str
    completion_tokens: int
    reasoning_tokens: int = 0
    images: tuple[str, ...] = ()  # data: URLs, as OpenRouter's `message.images[].image_url.url`


@dataclass(frozen=True, slots=True)
class ResponseMeta:
    """What every JSON body and every chunk of one response shares."""

    model_id: str
    provider: str
    id: str = field(default_factory=lambda: f"gen-{uuid.uuid4().hex[:24]}")
    created: int = 0

    def base(self, obj: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "model": self.model_id,
            "object": obj,
            "created": self.created,
            "system_fingerprint": None,
        }


def parse_chat(body: object) -> CompletionRequest:
    if not isinstance(body, dict):
        raise BadRequest(400, "Request body must be a JSON object")
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise BadRequest(400, "No model specified: 'model' must be a non-empty string")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(400, "'messages' must be a non-empty array")
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise BadRequest(400, "every message must be an object with a string 'role'")
    response_format = body.get("response_format")
    last = messages[-1]
    prefill = None
    if last.get("role") == "assistant" and not last.get("tool_calls"):
        prefill = text_of(last.get("content"))
    return CompletionRequest(
        model_id=model_id,
        messages=messages,
        stream=body.get("stream") is True,
        max_tokens=_max_tokens(body),
        tools=_tools(body.get("tools")),
        tool_choice=body.get("tool_choice", "auto"),
        response_format=response_format if isinstance(response_format, dict) else None,
        has_images=any(_has_image(m.get("content")) for m in messages),
        prompt_tokens=max(1, sum(_message_chars(m) for m in messages) // 4),
        prefill=prefill,
        wants_image=_wants_image(body.get("modalities")),
    )


def check_capabilities(request: CompletionRequest, model: ModelInfo) -> None:
    if request.tools and not model.supports_tools:
        raise BadRequest(404, "No endpoints found that support tool use")
    if request.has_images and not model.accepts_images:
        raise BadRequest(404, "No endpoints found that support image input")
    if request.wants_image and not model.outputs_images:
        raise BadRequest(404, "No endpoints found that support the requested output modalities: image, text")


def build_answer(
    request: CompletionRequest,
    *,
    reasoning_only: bool = False,
    content_filter: bool = False,
    words: int | None = None,
) -> Answer:
    """What the model says when no prompt directive decides it (the caller asks `directives`
    first); `words` switches to the scripted answer (see `scripted_answer`)."""
    if content_filter:
        return Answer(content="", reasoning=None, tool_call=None,
                      finish_reason="content_filter", completion_tokens=0)
    if request.wants_image:
        prompt = _last_user_text(request.messages)
        return Answer(content="Here is the image you asked for.", reasoning=None, tool_call=None,
                      finish_reason="stop", completion_tokens=IMAGE_TOKENS, images=(png_data_url(prompt),))
    tool = _tool_to_call(request) if not request.prefill else None
    if tool is not None:
        call = ToolCall(
            id=f"call_{uuid.uuid4().hex[:24]}",
            name=tool["function"]["name"],
            arguments=json.dumps(fill_object(tool["function"].get("parameters"))),
        )
        tokens = max(1, (len(call.name) + len(call.arguments)) // 4)
        return Answer(content=None, reasoning=None, tool_call=call,
                      finish_reason="tool_calls", completion_tokens=tokens)
    text = _answer_text(request, words)
    if request.prefill and text.startswith(request.prefill):
        text = text[len(request.prefill):]
    pieces = _WORDS.findall(text)
    finish = "stop"
    if request.max_tokens is not None and len(pieces) > request.max_tokens:
        pieces, finish = pieces[: request.max_tokens], "length"
        pieces[-1:] = [pieces[-1].rstrip()] if pieces else []
    text = "".join(pieces)
    if reasoning_only:
        return Answer(content="", reasoning=text, tool_call=None, finish_reason=finish,
                      completion_tokens=len(pieces), reasoning_tokens=len(pieces))
    return Answer(content=text, reasoning=None, tool_call=None, finish_reason=finish,
                  completion_tokens=len(pieces))


def usage_body(request: CompletionRequest, answer: Answer, model: ModelInfo) -> dict[str, Any]:
    prompt, completion = request.prompt_tokens, answer.completion_tokens
    prompt_cost = prompt * model.prompt_price
    completion_cost = completion * model.completion_price
    cost = prompt_cost + completion_cost
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost": cost,
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "cost_details": {
            "upstream_inference_cost": cost,
            "upstream_inference_prompt_cost": prompt_cost,
            "upstream_inference_completions_cost": completion_cost,
        },
        "completion_tokens_details": {
            "reasoning_tokens": answer.reasoning_tokens,
            "image_tokens": completion if answer.images else 0,
        },
    }


def completion_body(meta: ResponseMeta, answer: Answer, usage: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.content,
        "refusal": None,
        "reasoning": answer.reasoning,
    }
    if answer.tool_call is not None:
        message["tool_calls"] = [answer.tool_call.wire()]
    if answer.images:
        message["images"] = _image_parts(answer)
    choice = {
        "logprobs": None,
        "finish_reason": answer.finish_reason,
        "native_finish_reason": answer.finish_reason,
        "index": 0,
        "message": message,
    }
    return {**meta.base("chat.completion"), "choices": [choice], "usage": usage}


def stream_chunks(
    meta: ResponseMeta, answer: Answer, usage: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every `data:` payload of a successful stream, in order (no `[DONE]`)."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    if answer.tool_call is not None:
        deltas.extend(_tool_deltas(answer.tool_call))
    elif answer.reasoning:
        deltas.extend(
            {"role": "assistant", "content": "", "reasoning": piece}
            for piece in _WORDS.findall(answer.reasoning)
        )
    elif answer.content:
        deltas.extend(
            {"role": "assistant", "content": piece} for piece in _WORDS.findall(answer.content)
        )
    if answer.images:  # OpenRouter streams the picture as one delta after the text
        deltas.append({"role": "assistant", "content": "", "images": _image_parts(answer)})
    chunks = [_chunk(meta, delta) for delta in deltas]
    finish = {"role": "assistant", "content": ""}
    chunks.append(_chunk(meta, finish, finish_reason=answer.finish_reason))
    chunks.append({**meta.base("chat.completion.chunk"), "choices": [], "usage": usage})
    return chunks


def error_chunk(meta: ResponseMeta, error: dict[str, Any]) -> dict[str, Any]:
    """An error after the stream started: HTTP 200, top-level `error`."""
    chunk = _chunk(meta, {"role": "assistant", "content": ""}, finish_reason="error")
    chunk["error"] = error
    return chunk


def _chunk(
    meta: ResponseMeta, delta: dict[str, Any], *, finish_reason: str | None = None
) -> dict[str, Any]:
    choice = {
        "index": 0,
        "delta": delta,
        "finish_reason": finish_reason,
        "native_finish_reason": finish_reason,
        "logprobs": None,
    }
    return {**meta.base("chat.completion.chunk"), "choices": [choice]}


def _image_parts(answer: Answer) -> list[dict[str, Any]]:
    return [{"type": "image_url", "image_url": {"url": url}, "index": i} for i, url in enumerate(answer.images)]


def _wants_image(modalities: object) -> bool:
    return isinstance(modalities, list) and "image" in modalities


def _tool_deltas(call: ToolCall) -> list[dict[str, Any]]:
    head = {"index": 0, "id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": ""}}
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": None, "tool_calls": [head]}]
    step = max(1, len(call.arguments) // 3 + 1)
    for start in range(0, len(call.arguments), step):
        piece = {"index": 0, "function": {"arguments": call.arguments[start : start + step]}}
        deltas.append({"role": "assistant", "content": None, "tool_calls": [piece]})
    return deltas


def scripted_answer(messages: list[dict[str, Any]], words: int) -> str:
    """The answer every model gives to `messages` when the plan sets `answer_words`.

    A pure function of the conversation (role and text of each message, a trailing
    assistant prefill left out), never of the model: a test computes it to know the whole
    answer a stream must add up to, whichever deployments produced its parts.
    """
    if messages and messages[-1].get("role") == "assistant" and not messages[-1].get("tool_calls"):
        messages = messages[:-1]
    seed = json.dumps([[m.get("role"), text_of(m.get("content"))] for m in messages]).encode()
    stream = b""
    counter = 0
    while len(stream) < words:
        stream += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    chosen = [_VOCABULARY[byte % len(_VOCABULARY)] for byte in stream[:words]]
    return " ".join(chosen) + "."


def _answer_text(request: CompletionRequest, words: int | None = None) -> str:
    messages = request.messages[:-1] if request.prefill is not None else request.messages
    last = messages[-1] if messages else request.messages[-1]
    if last.get("role") == "tool":
        return f"The tool returned: {text_of(last.get('content'))}"
    response_format = request.response_format or {}
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return json.dumps(fill_object(schema))
    if words is not None:
        return scripted_answer(request.messages, words)
    echo = _last_user_text(request.messages)[:_ECHO_CHARS]
    said = f"Hello from {request.model_id}. You said: {echo}"
    if kind == "json_object":
        return json.dumps({"model": request.model_id, "answer": said})
    return said


def _tool_to_call(request: CompletionRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if not request.tools or choice == "none" or request.messages[-1].get("role") == "tool":
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        for tool in request.tools:
            if tool["function"]["name"] == wanted:
                return tool
    return request.tools[0]


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


def text_of(content: object) -> str:
    """The text of a message's `content` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (p.get("text") for p in content if isinstance(p, dict))
        return "".join(t for t in texts if isinstance(t, str))
    return ""


def _message_chars(message: dict[str, Any]) -> int:
    chars = len(text_of(message.get("content")))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        chars += sum(len(json.dumps(call)) for call in calls)
    return chars


def _has_image(content: object) -> bool:
    if not isinstance(content, list):
        return False
    return any(isinstance(p, dict) and p.get("type") == "image_url" for p in content)


def _max_tokens(body: dict[str, Any]) -> int | None:
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise BadRequest(400, f"'{name}' must be at least 1")
            return value
    return None


def _tools(value: object) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(400, "'tools' must be an array")
    for tool in value:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequest(400, "every tool needs a 'function' with a string 'name'")
    return value
