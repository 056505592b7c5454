"""What an upstream attempt's failure is, and what each kind of failure means: one table.

`classify_error` (OpenAI-wire answers) and `litellm_call.to_attempt_error` (LiteLLM's
exceptions) turn a failure into an `AttemptError` of one `Kind`. `FAILURES` says, for each
kind, everything the rest of the gateway decides from it:

    walk          what the request does next: try another deployment (`elsewhere`), go to the
                  group's context-window or content-policy fallbacks (`context` / `policy`), or
                  return the error to the client at once (`client`)
    bench         whether the deployment is benched: `streak` (after `retries.allowed_fails`
                  consecutive failures, escalating), `hint` (for exactly the upstream's
                  Retry-After, else as `streak`), `credential` (this deployment now; every
                  deployment on the same credential once distinct requests saw it), or `no`
    passive       what passive health counts it as (`error`, `rate_limited`), or None: the
                  failure says something about the request, not about the deployment
    status, code  the client's status and error code when it is the request's final failure
    colour        how the status page draws it

The table is the only place these decisions are made: the engine, the cooldown policy,
passive health, the final error and the status page all read it.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

Kind = Literal[
    "rate_limited", "daily_quota", "server_error", "timeout", "connection_error", "stream_broken",
    "context_overflow", "bad_request", "unsupported", "auth", "payment", "content_filter", "prefill_unsupported",
    "cancelled", "refused_locally",
]
Walk = Literal["elsewhere", "context", "policy", "client"]
Bench = Literal["no", "streak", "hint", "credential"]
Passive = Literal["error", "rate_limited"]


@dataclass(frozen=True, slots=True)
class Failure:
    """What one kind of failure means (see the module docstring)."""

    walk: Walk
    bench: Bench
    passive: Passive | None
    status: int
    code: str
    colour: str
    meaning: str


FAILURES: Mapping[Kind, Failure] = MappingProxyType({
    "rate_limited": Failure("elsewhere", "hint", "rate_limited", 429, "rate_limited", "#e0a100",
                            "429 from a provider"),
    "daily_quota": Failure("elsewhere", "no", None, 429, "free_quota_exhausted", "#f97316",
                           "OpenRouter's account-wide daily free quota is spent (all free traffic stops until reset)"),
    "server_error": Failure("elsewhere", "streak", "error", 502, "upstream_error", "#d33a2c",
                            "5xx, or HTTP 200 carrying an error"),
    "timeout": Failure("elsewhere", "streak", "error", 504, "upstream_timeout", "#8b5cf6",
                       "no answer, or no first token, in time"),
    "connection_error": Failure("elsewhere", "streak", "error", 502, "upstream_error", "#db2777",
                                "connection reset or refused"),
    "stream_broken": Failure("elsewhere", "streak", "error", 502, "upstream_error", "#a16207",
                             "stream cut, stalled or malformed"),
    "context_overflow": Failure("context", "no", None, 400, "context_length_exceeded", "#0d9488",
                                "the prompt is too long for this model"),
    "content_filter": Failure("policy", "no", None, 400, "content_filter", "#0ea5e9",
                              "refused or withheld by a content filter"),
    "bad_request": Failure("client", "no", None, 400, "bad_request", "#64748b",
                           "the upstream says the request itself is wrong"),
    "unsupported": Failure("elsewhere", "no", None, 502, "upstream_error", "#94a3b8",
                           "this model cannot serve this request (404, unknown model, no tool support)"),
    "auth": Failure("elsewhere", "credential", "error", 502, "upstream_auth", "#7f1d1d",
                    "401/403: the upstream refused the gateway's credential"),
    "payment": Failure("elsewhere", "credential", "error", 502, "upstream_payment", "#be123c",
                       "402: no credits behind the gateway's credential"),
    "prefill_unsupported": Failure("elsewhere", "no", None, 502, "upstream_error", "#6366f1",
                                   "400 refusing a request that ends with the assistant's message: a broken stream "
                                   "is continued on it without prefill, or elsewhere"),
    "refused_locally": Failure("elsewhere", "no", None, 400, "invalid_request", "#475569",
                               "LiteLLM failed on the request itself before any upstream answer (an image it "
                               "cannot read, a message it cannot convert): says nothing about the deployment"),
    "cancelled": Failure("elsewhere", "no", None, 502, "upstream_error", "#cbd5e1",
                         "a hedged attempt that lost the race to another deployment's first token"),
})

_CONTEXT_MARKERS = ("context length", "context_length", "context window", "maximum context", "too many tokens",
                    "prompt is too long", "reduce the length")
# Anthropic: "does not support assistant message prefill. The conversation must end with a user
# message."; Mistral: "Expected last role User or Tool (or Assistant with prefix True)".
_PREFILL_MARKERS = ("prefill", "assistant with prefix", "must end with a user message")
_POLICY_MARKERS = ("content management policy", "content_policy", "content policy", "safety system",
                   "content_filter")


_SSL_REPR = re.compile(r"\s*ssl:(?:<[^<>]*>|default|None|True|False)")
_OBJECT_REPR = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")


def client_text(message: str) -> str:
    """An upstream library's message as a client may read it: without Python object reprs
    (aiohttp's "Cannot connect to host h:p ssl:<ssl.SSLContext object at 0x...>")."""
    return _OBJECT_REPR.sub(r"\1", _SSL_REPR.sub("", message))


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
    ) -> None:
        message = client_text(message)
        super().__init__(message)
        self.kind: Kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.reset_at = reset_at

    @property
    def failure(self) -> Failure:
        return FAILURES[self.kind]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped at a day."""
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
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, 24 * 3600.0))


def classify_error(
    *,
    status: int,
    payload: Any,
    retry_after_header: str | None = None,
    model: str = "",
    now: float | None = None,
) -> AttemptError:
    """Turn an upstream error response (any status, or a 200 with an `error`) into an AttemptError."""
    error = _mapping(payload.get("error") if isinstance(payload, Mapping) else None)
    message = str(error.get("message") or _status_text(status))
    code = error.get("code")
    metadata = _mapping(error.get("metadata"))
    effective = status if status >= 400 else (code if isinstance(code, int) and code >= 400 else 502)
    retry_after = parse_retry_after(retry_after_header, now=now)
    lowered = message.lower()
    raw = str(metadata.get("raw") or "").lower()
    text = f"{model}: upstream {effective}: {message}"[:500]

    if effective == 429:
        reset_at = _daily_reset(message, metadata, now=time.time() if now is None else now)
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
    return AttemptError("bad_request", text, status=effective)


def _daily_reset(message: str, metadata: Mapping[str, Any], *, now: float) -> float | None:
    """OpenRouter's daily free quota 429: its reset time (epoch seconds); else None."""
    daily = "free-models-per-day" in message or metadata.get("limit_source") == "openrouter_free_tier_daily"
    if not daily:
        return None
    reset = _mapping(metadata.get("headers")).get("X-RateLimit-Reset")
    try:
        reset_at = float(reset) if reset is not None else None
    except (TypeError, ValueError):
        reset_at = None
    if reset_at is None or reset_at != reset_at:
        return now - (now % 86400) + 86400  # the UTC day's end
    return reset_at / 1000.0 if reset_at > 1e11 else reset_at


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _status_text(status: int) -> str:
    return {429: "rate limited", 500: "internal error", 502: "bad gateway", 503: "unavailable",
            504: "gateway timeout"}.get(status, f"HTTP {status}")
