"""OpenRouter's error bodies, in the wording the real service uses.

Every error leaves as `{"error": {"code", "message", "metadata"?}}`; errors
attributed to an account also carry a top-level `user_id`.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

SANDBOX_USER_ID = "user_sandbox"

_MESSAGES = {
    400: "Bad Request",
    401: "User not found.",
    402: "This request requires more credits, or fewer max_tokens. "
    "To increase, visit https://openrouter.ai/settings/credits and add more credits",
    403: "Input flagged by moderation",
    408: "Request timed out",
    500: "Internal Server Error",
    503: "No available model provider that meets your routing requirements",
}
_PROVIDER_CODES = frozenset({502, 504, 520, 521, 522, 524, 529})


def error_body(
    code: int, message: str, *, metadata: dict[str, Any] | None = None, user: bool = False
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if metadata is not None:
        error["metadata"] = metadata
    body: dict[str, Any] = {"error": error}
    if user:
        body["user_id"] = SANDBOX_USER_ID
    return body


def http_error(code: int, *, model_id: str, provider: str) -> dict[str, Any]:
    """A failure injected by the plan (`error_codes`, `fail_next_code`)."""
    if code == 429:
        return provider_rate_limited(model_id=model_id, provider=provider)
    if code in _PROVIDER_CODES:
        metadata = {"raw": f"{code} {_phrase(code)}", "provider_name": provider}
        return error_body(code, "Provider returned error", metadata=metadata, user=True)
    return error_body(code, _message(code), user=True)


def provider_rate_limited(*, model_id: str, provider: str) -> dict[str, Any]:
    raw = (
        f"{model_id} is temporarily rate-limited upstream. Please retry shortly, "
        "or add your own key to accumulate your rate limits: "
        "https://openrouter.ai/settings/integrations"
    )
    metadata = {"raw": raw, "provider_name": provider}
    return error_body(429, "Provider returned error", metadata=metadata, user=True)


def free_tier_limited(*, per_day: bool, limit: int, reset_ms: int, paid: bool) -> dict[str, Any]:
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(reset_ms),
    }
    if not per_day:
        message = "Rate limit exceeded: free-models-per-min. "
        return error_body(429, message, metadata={"headers": headers, "provider_name": None})
    message = "Rate limit exceeded: free-models-per-day. "
    if not paid:
        message += "Add 10 credits to unlock 1000 free model requests per day"
    metadata = {"headers": headers, "limit_source": "openrouter_free_tier_daily"}
    return error_body(429, message, metadata=metadata, user=True)


def context_too_long(*, limit: int, prompt_tokens: int, max_tokens: int | None) -> dict[str, Any]:
    requested = prompt_tokens + (max_tokens or 0)
    parts = f"{prompt_tokens} of text input"
    if max_tokens:
        parts += f", {max_tokens} in the output"
    message = (
        f"This endpoint's maximum context length is {limit} tokens. "
        f"However, you requested about {requested} tokens ({parts}). "
        "Please reduce the length of either one, or use the \"middle-out\" transform "
        "to compress your prompt automatically."
    )
    return error_body(400, message, metadata={"provider_name": None}, user=True)


def _message(code: int) -> str:
    return _MESSAGES.get(code) or _phrase(code)


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return f"Error {code}"


# Anthropic's wording (newer Claude models take no prefill); OpenRouter relays it in `metadata.raw`.
PREFILL_REFUSED = (
    "This model does not support assistant message prefill. The conversation must end with a user message."
)
# Azure OpenAI's safety filter, as OpenRouter relays it.
CONTENT_POLICY = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry."
)


def prefill_refused(*, provider: str) -> dict[str, Any]:
    raw = {"type": "error", "error": {"type": "invalid_request_error", "message": PREFILL_REFUSED}}
    metadata = {"raw": json.dumps(raw), "provider_name": provider}
    return error_body(400, "Provider returned error", metadata=metadata, user=True)


def content_policy_refused(*, provider: str) -> dict[str, Any]:
    raw = {"error": {"message": CONTENT_POLICY, "type": None, "param": "prompt", "code": "content_filter",
                     "status": 400}}
    metadata = {"raw": json.dumps(raw), "provider_name": provider}
    return error_body(400, "Provider returned error", metadata=metadata, user=True)
