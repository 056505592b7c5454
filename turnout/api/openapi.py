"""Wire schemas for the OpenAPI document (the handlers validate by hand, for speed)."""

from __future__ import annotations

from typing import Any

_CONTENT_PART: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": ["text", "image_url", "input_audio", "file"]},
        "text": {"type": "string"},
        "image_url": {"type": "object", "properties": {"url": {"type": "string"}, "detail": {"type": "string"}}},
    },
}

_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool", "function"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": _CONTENT_PART}, {"type": "null"}]},
        "name": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
        "tool_call_id": {"type": "string"},
    },
}

CHAT_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages"],
    "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "description": "An alias (auto, free, paid, ...), a pool model id or a static deployment name."},
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "tools": {"type": "array", "items": {"type": "object"}},
        "tool_choice": {"anyOf": [{"type": "string"}, {"type": "object"}]},
        "response_format": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number"},
        "top_p": {"type": "number"},
        "n": {"type": "integer", "minimum": 1, "maximum": 1,
              "description": "One choice per request; n > 1 is refused with a 400 naming n."},
        "seed": {"type": "integer"},
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    },
}

_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type"], "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}},
}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


# POST /v1/chat/completions is served outside FastAPI's router (turnout.api.gateway), so its
# operation is declared here rather than derived from a route.
CHAT_OPERATION: dict[str, Any] = {
    "summary": "Create a chat completion (OpenAI-compatible)",
    "operationId": "chat_completions_v1_chat_completions_post",
    "requestBody": {"required": True, "content": {"application/json": {"schema": CHAT_REQUEST_SCHEMA}}},
    "responses": {
        "200": {"description": "A chat.completion object, or with `stream: true` an SSE stream of "
                               "chat.completion.chunk frames ending in `data: [DONE]`.",
                "content": {"application/json": {"schema": {"type": "object"}},
                            "text/event-stream": {"schema": {"type": "string"}}}},
        "400": _error_response("Invalid request (bad JSON, wrong types, a forbidden routing field)."),
        "401": _error_response("Missing or wrong gateway key."),
        "404": _error_response("Unknown model name."),
        "405": _error_response("Not POST."),
        "413": _error_response("Body over `max_body_bytes`."),
        "415": _error_response("Body is not JSON."),
        "429": _error_response("Every deployment is rate limited or the free quota is spent (see Retry-After)."),
        "502": _error_response("Every upstream attempt failed."),
        "503": _error_response("No routable pool yet, or no deployment available."),
        "504": _error_response("No deployment answered in time."),
    },
}


_ANTHROPIC_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {"type": {"type": "string", "enum": ["error"]}, "error": {
        "type": "object", "required": ["type", "message"],
        "properties": {"type": {"type": "string"}, "message": {"type": "string"}}}},
}

_ANTHROPIC_BLOCK: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": ["text", "image", "tool_use", "tool_result", "thinking", "document"]},
        "text": {"type": "string"},
        "source": {"type": "object"},
        "id": {"type": "string"}, "name": {"type": "string"}, "input": {"type": "object"},
        "tool_use_id": {"type": "string"},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "cache_control": {"type": "object"},
    },
}

MESSAGES_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages", "max_tokens"],
    "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "description": "An alias (auto, free, paid, ...), a pool model id or a static "
                                                   "deployment name."},
        "max_tokens": {"type": "integer", "minimum": 1},
        "messages": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["role", "content"],
            "properties": {"role": {"type": "string", "enum": ["user", "assistant"]},
                           "content": {"anyOf": [{"type": "string"},
                                                 {"type": "array", "items": _ANTHROPIC_BLOCK}]}}}},
        "system": {"anyOf": [{"type": "string"}, {"type": "array", "items": _ANTHROPIC_BLOCK}]},
        "tools": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "description": {"type": "string"}, "input_schema": {"type": "object"}}}},
        "tool_choice": {"type": "object", "required": ["type"], "properties": {
            "type": {"type": "string", "enum": ["auto", "any", "tool", "none"]}, "name": {"type": "string"}}},
        "stop_sequences": {"type": "array", "items": {"type": "string"}},
        "stream": {"type": "boolean"},
        "temperature": {"type": "number"},
        "top_p": {"type": "number"},
        "top_k": {"type": "integer"},
        "metadata": {"type": "object", "properties": {"user_id": {"type": "string"}}},
        "thinking": {"type": "object"},
    },
}

COUNT_TOKENS_REQUEST_SCHEMA: dict[str, Any] = {
    **MESSAGES_REQUEST_SCHEMA, "required": ["model", "messages"],
    "properties": {k: v for k, v in MESSAGES_REQUEST_SCHEMA["properties"].items() if k != "max_tokens"},
}

_RESPONSES_ITEM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["message", "function_call", "function_call_output", "reasoning"]},
        "role": {"type": "string", "enum": ["user", "assistant", "system", "developer"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "call_id": {"type": "string"}, "name": {"type": "string"}, "arguments": {"type": "string"},
        "output": {"type": "string"},
    },
}

RESPONSES_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["model", "input"],
    "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "description": "An alias (auto, free, paid, ...), a pool model id or a static "
                                                   "deployment name."},
        "input": {"anyOf": [{"type": "string", "minLength": 1}, {"type": "array", "minItems": 1,
                                                                  "items": _RESPONSES_ITEM}]},
        "instructions": {"type": "string"},
        "tools": {"type": "array", "items": {"type": "object", "required": ["type"], "properties": {
            "type": {"type": "string"}, "name": {"type": "string"}, "parameters": {"type": "object"}}}},
        "tool_choice": {"anyOf": [{"type": "string", "enum": ["auto", "none", "required"]}, {"type": "object"}]},
        "max_output_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number"},
        "top_p": {"type": "number"},
        "stream": {"type": "boolean"},
        "store": {"type": "boolean"},
        "reasoning": {"type": "object", "properties": {"effort": {"type": "string"}}},
        "text": {"type": "object", "properties": {"format": {"type": "object"}}},
        "parallel_tool_calls": {"type": "boolean"},
        "prompt_cache_key": {"type": "string"},
        "user": {"type": "string"},
    },
}


def _anthropic_error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ANTHROPIC_ERROR}}}


def _operation(*, summary: str, operation_id: str, schema: dict[str, Any], answer: str,
               error: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "operationId": operation_id,
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "responses": {
            "200": {"description": answer, "content": {"application/json": {"schema": {"type": "object"}},
                                                       "text/event-stream": {"schema": {"type": "string"}}}},
            "400": error("Invalid request (bad JSON, wrong types, a field the gateway cannot honour)."),
            "401": error("Missing or wrong gateway key."),
            "404": error("Unknown model name."),
            "429": error("Every deployment is rate limited (see Retry-After)."),
            "502": error("Every upstream attempt failed."),
        },
    }


MESSAGES_OPERATION = _operation(
    summary="Create a message (Anthropic Messages API)", operation_id="messages_v1_messages_post",
    schema=MESSAGES_REQUEST_SCHEMA, error=_anthropic_error_response,
    answer="A `message`, or with `stream: true` Anthropic's SSE events (message_start ... message_stop).")
COUNT_TOKENS_OPERATION = _operation(
    summary="Count a message's input tokens (Anthropic Messages API)",
    operation_id="count_tokens_v1_messages_count_tokens_post", schema=COUNT_TOKENS_REQUEST_SCHEMA,
    error=_anthropic_error_response, answer="`{\"input_tokens\": N}`.")
RESPONSES_OPERATION = _operation(
    summary="Create a response (OpenAI Responses API, stateless)", operation_id="responses_v1_responses_post",
    schema=RESPONSES_REQUEST_SCHEMA, error=_error_response,
    answer="A `response`, or with `stream: true` the Responses SSE events (response.created ... "
           "response.completed).")
