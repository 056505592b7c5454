"""What a chat request asks for: validated fields, and the needs that constrain routing.

The body is kept as the client's own dict: on the OpenAI wire it passes to the upstream
as sent, on the LiteLLM path only its OpenAI fields do (`litellm_call.OPENAI_CHAT_FIELDS`).
Fields that would let a client choose where traffic goes or with which credentials are
refused with 400 on both.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from turnout.errors import InvalidRequest
from turnout.routing.openrouter_fields import check_openrouter_fields

VALID_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

# LiteLLM honours these per request; on the gateway they would redirect traffic, swap
# credentials, fake answers or rewrite accounting.
FORBIDDEN_FIELDS = frozenset(
    {
        "api_base", "base_url", "api_key", "api_version", "api_type", "custom_llm_provider",
        "mock_response", "mock_tool_calls", "mock_timeout", "mock_delay", "mock_testing_fallbacks",
        "organization", "deployment_id", "extra_headers", "headers", "model_list", "fallbacks",
        "context_window_fallbacks", "content_policy_fallbacks", "num_retries", "max_retries",
        "input_cost_per_token", "output_cost_per_token", "input_cost_per_second",
        "output_cost_per_second", "specific_deployment", "model_info", "proxy_server_request",
        "secret_fields", "user_api_key", "client", "http_client", "ssl_verify", "callbacks",
        "success_callback", "failure_callback", "logger_fn", "timeout", "stream_timeout",
        "region_name", "vertex_project", "vertex_location", "vertex_credentials",
        "azure_ad_token", "azure_ad_token_provider", "tenant_id", "client_id", "client_secret",
        "azure_username", "azure_password", "max_parallel_requests", "cooldown_time", "rpm",
        "tpm", "order", "weight", "hf_model_name", "preset_cache_key", "caching", "cache",
        "no-log", "user_config", "acompletion", "messages_redacted",
    }
)
FORBIDDEN_PREFIXES = ("litellm", "aws_", "vertex_", "azure_", "watsonx_", "_")


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat completion request and what it needs from a deployment."""

    body: Mapping[str, Any]
    model: str
    stream: bool
    include_usage: bool
    needs_tools: bool
    needs_vision: bool
    prompt_tokens_estimate: int
    max_tokens: int | None
    needs_image_output: bool = False  # `modalities` has "image" (OpenRouter's image generation)


def parse_chat_request(body: Any, *, max_messages: int, allowed_plugins: Collection[str] = ()) -> ChatRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    _refuse_routing_fields(body)
    check_openrouter_fields(body, allowed_plugins=allowed_plugins)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model", code="invalid_model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages", code="invalid_messages")
    if len(messages) > max_messages:
        raise InvalidRequest(
            f"'messages' has {len(messages)} entries; the limit is {max_messages}.",
            param="messages",
            code="too_many_messages",
        )
    size, vision = _check_messages(messages)
    stream = _optional_bool(body, "stream")
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
    include_usage = bool(stream_options and stream_options.get("include_usage") is True)
    tools = body.get("tools")
    if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)):
        raise InvalidRequest("'tools' must be an array of objects.", param="tools")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and not isinstance(tool_choice, (str, dict)):
        raise InvalidRequest("'tool_choice' must be a string or an object.", param="tool_choice")
    response_format = body.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, dict) or not isinstance(response_format.get("type"), str)
    ):
        raise InvalidRequest("'response_format' must be an object with a 'type'.", param="response_format")
    max_tokens = _max_tokens(body)
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        _optional_number(body, name)
    modalities = body.get("modalities")
    if modalities is not None and (not isinstance(modalities, list) or not all(isinstance(m, str) for m in modalities)):
        raise InvalidRequest("'modalities' must be an array of strings, e.g. [\"image\", \"text\"].",
                             param="modalities")
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise InvalidRequest("'n' must be a positive integer.", param="n")
    if n is not None and n > 1:
        # OpenRouter (and most providers behind it) answer one choice whatever `n` says; a 200 with
        # fewer choices than asked for would look like a success.
        raise InvalidRequest(f"'n' is {n}: the gateway answers one choice per request, as its upstreams do; "
                             "send n separate requests (or omit n).", param="n", code="unsupported_n")
    return ChatRequest(
        body=body,
        model=model.strip(),
        stream=stream,
        include_usage=include_usage,
        needs_tools=bool(tools),
        needs_vision=vision,
        prompt_tokens_estimate=size // 4 + 4 * len(messages),
        max_tokens=max_tokens,
        needs_image_output=bool(modalities and "image" in modalities),
    )


def _refuse_routing_fields(body: Mapping[str, Any]) -> None:
    for key in body:
        if key in FORBIDDEN_FIELDS or key.startswith(FORBIDDEN_PREFIXES):
            raise InvalidRequest(
                f"The field '{key}' is not allowed: the gateway decides where requests go and with which credentials.",
                param=key,
                code="forbidden_field",
            )


def _check_messages(messages: list[Any]) -> tuple[int, bool]:
    """Validate each message; return (approximate prompt size in characters, has images)."""
    size = 0
    vision = False
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"'{where}' must be an object.", param=where)
        role = message.get("role")
        if role not in VALID_ROLES:
            raise InvalidRequest(
                f"'{where}.role' must be one of {sorted(VALID_ROLES)}; got {role!r}.",
                param=f"{where}.role",
                code="invalid_role",
            )
        content = message.get("content")
        if isinstance(content, str):
            size += len(content)
        elif isinstance(content, list):
            part_size, part_vision = _check_parts(content, where)
            size += part_size
            vision = vision or part_vision
        elif content is None:
            if role in {"user", "system", "developer"}:
                raise InvalidRequest(f"'{where}.content' is required for role {role!r}.", param=f"{where}.content")
        else:
            raise InvalidRequest(f"'{where}.content' must be a string or an array of parts.", param=f"{where}.content")
        tool_calls = message.get("tool_calls")
        if tool_calls is not None:
            if not isinstance(tool_calls, list):
                raise InvalidRequest(f"'{where}.tool_calls' must be an array.", param=f"{where}.tool_calls")
            size += sum(len(str(call)) for call in tool_calls)
    return size, vision


def _check_parts(parts: list[Any], where: str) -> tuple[int, bool]:
    size = 0
    vision = False
    for index, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InvalidRequest(
                f"'{where}.content[{index}]' must be an object with a 'type'.", param=f"{where}.content[{index}]"
            )
        kind = part["type"]
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidRequest(f"'{where}.content[{index}].text' must be a string.", param=f"{where}.content")
            size += len(text)
        elif kind in {"image_url", "input_image"}:
            vision = True
            size += 3000  # ~765 tokens for a detailed image tile set
    return size, vision


def _optional_bool(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{name}' must be a boolean.", param=name)
    return value


def _optional_number(body: Mapping[str, Any], name: str) -> None:
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise InvalidRequest(f"'{name}' must be a number.", param=name)


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    found: int | None = None
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"'{name}' must be a positive integer.", param=name)
        found = value if found is None else min(found, value)
    return found
