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
        "n": {"type": "integer", "minimum": 1},
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
