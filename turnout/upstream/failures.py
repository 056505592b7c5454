"""One upstream attempt's failure, classified so the engine knows what to do next.

Kinds (also the `outcome` label in metrics):
    rate_limited      429 from a provider: cool this deployment, try another
    daily_quota       OpenRouter's account-wide free quota is spent: stop all free traffic until reset
    server_error      5xx, or HTTP 200 carrying an error: retry elsewhere
    timeout           no answer (or no first token) in time: retry elsewhere
    connection_error  reset / refused: retry elsewhere
    stream_broken     stream cut, stalled or malformed: retry elsewhere if nothing was sent yet
    context_overflow  prompt too long for this model: go to the larger-context group
    bad_request       the request itself is wrong: return it to the client at once
    unsupported       this model cannot serve this request (e.g. no tool support): try another
    auth              401/403 from the upstream: the gateway's credential is bad
    payment           402: no credits behind the gateway's credential
    content_filter    a moderation or content-policy refusal (403, or a 400 naming the policy)
    prefill_unsupported  400 refusing a request that ends with the assistant's message: continue
                      a broken stream on this deployment without prefill, or elsewhere
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any, Literal

Kind = Literal[
    "rate_limited", "daily_quota", "server_error", "timeout", "connection_error", "stream_broken",
    "context_overflow", "bad_request", "unsupported", "auth", "payment", "content_filter", "prefill_unsupported",
]

RETRYABLE: frozenset[str] = frozenset(
    {"rate_limited", "daily_quota", "server_error", "timeout", "connection_error", "stream_broken",
     "unsupported", "auth", "payment", "prefill_unsupported"}
)

_CONTEXT_MARKERS = ("context length", "context_length", "context window", "maximum context", "too many tokens",
                    "prompt is too long", "reduce the length")
# Anthropic: "does not support assistant message prefill. The conversation must end with a user
# message."; Mistral: "Expected last role User or Tool (or Assistant with prefix True)".
_PREFILL_MARKERS = ("prefill", "assistant with prefix", "must end with a user message")
_POLICY_MARKERS = ("content management policy", "content_policy", "content policy", "safety system",
                   "content_filter")


class AttemptError(Exception):
    """An upstream attempt failed. `message` never carries a credential."""

    def __init__(
        self,
        kind: Kind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        reset_at: float | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: Kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.reset_at = reset_at
        self.body = body

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return None
        seconds = when - (time.time() if now is None else now)
    return max(0.0, min(seconds, 24 * 3600.0))


def classify_error(
    *,
    status: int,
    payload: Any,
    retry_after_header: str | None = None,
    model: str = "",
) -> AttemptError:
    """Turn an upstream error response (any status, or a 200 with an `error`) into an AttemptError."""
    error = payload.get("error") if isinstance(payload, Mapping) else None
    if not isinstance(error, Mapping):
        error = {}
    message = str(error.get("message") or _status_text(status))
    code = error.get("code")
    metadata = error.get("metadata") if isinstance(error.get("metadata"), Mapping) else {}
    effective = status if status >= 400 else (code if isinstance(code, int) and code >= 400 else 502)
    retry_after = parse_retry_after(retry_after_header)
    lowered = message.lower()
    raw = str(metadata.get("raw") or "").lower()
    text = f"{model}: upstream {effective}: {message}"[:500]

    if effective == 429:
        reset_at = _daily_reset(message, metadata)
        if reset_at is not None:
            return AttemptError("daily_quota", text, status=429, retry_after=retry_after, reset_at=reset_at)
        return AttemptError("rate_limited", text, status=429, retry_after=retry_after)
    if any(marker in lowered or marker in raw for marker in _CONTEXT_MARKERS):
        return AttemptError("context_overflow", text, status=400)
    if effective == 400 and (code == "invalid_prefill" or any(m in lowered or m in raw for m in _PREFILL_MARKERS)):
        return AttemptError("prefill_unsupported", text, status=400)
    if effective == 400 and any(marker in lowered or marker in raw for marker in _POLICY_MARKERS):
        return AttemptError("content_filter", text, status=400)
    if effective in (401, 403):
        if "moderation" in lowered or "flagged" in lowered:
            return AttemptError("content_filter", text, status=403)
        return AttemptError("auth", text, status=effective)
    if effective == 402:
        return AttemptError("payment", text, status=402)
    if effective == 404:
        return AttemptError("unsupported", text, status=404)
    if effective == 408:
        return AttemptError("timeout", text, status=408)
    if effective >= 500 or status == 200:
        return AttemptError("server_error", text, status=effective, retry_after=retry_after)
    if "is not a valid model id" in lowered:
        return AttemptError("unsupported", text, status=effective)
    return AttemptError("bad_request", text, status=effective, body=payload if isinstance(payload, Mapping) else None)


def _daily_reset(message: str, metadata: Mapping[str, Any]) -> float | None:
    """OpenRouter's daily free quota 429: return its reset time (epoch seconds)."""
    daily = "free-models-per-day" in message or metadata.get("limit_source") == "openrouter_free_tier_daily"
    if not daily:
        return None
    headers = metadata.get("headers") if isinstance(metadata.get("headers"), Mapping) else {}
    reset = headers.get("X-RateLimit-Reset")
    try:
        reset_ms = float(reset)
    except (TypeError, ValueError):
        now = time.time()
        return now - (now % 86400) + 86400
    return reset_ms / 1000.0 if reset_ms > 1e11 else reset_ms


def _status_text(status: int) -> str:
    return {429: "rate limited", 500: "internal error", 502: "bad gateway", 503: "unavailable",
            504: "gateway timeout"}.get(status, f"HTTP {status}")
