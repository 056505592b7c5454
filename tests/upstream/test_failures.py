"""The failure table and the classification that feeds it: plain tables, no servers."""

from __future__ import annotations

import email.utils
from typing import Any

import pytest

from turnout.upstream.failures import FAILURES, classify_error, parse_retry_after

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("status", "payload", "kind"), [
    (429, {"error": {"message": "Provider returned error", "metadata": {"raw": "temporarily rate-limited"}}},
     "rate_limited"),
    (429, {"error": {"message": "Rate limit exceeded: free-models-per-day. Add 10 credits"}}, "daily_quota"),
    (429, {"error": {"message": "x", "metadata": {"limit_source": "openrouter_free_tier_daily"}}}, "daily_quota"),
    (400, {"error": {"message": "This model's maximum context length is 8192 tokens"}}, "context_overflow"),
    (400, {"error": {"message": "Provider error", "metadata": {"raw": "prompt is too long"}}}, "context_overflow"),
    (403, {"error": {"message": "Input flagged by moderation"}}, "content_filter"),
    (401, {"error": {"message": "User not found."}}, "auth"),
    (403, {"error": {"message": "Forbidden"}}, "auth"),
    (402, {"error": {"message": "requires more credits"}}, "payment"),
    (404, {"error": {"message": "No endpoints found that support tool use"}}, "unsupported"),
    (400, {"error": {"message": "openai/x is not a valid model ID"}}, "unsupported"),
    (408, {"error": {"message": "timeout"}}, "timeout"),
    (500, {"error": {"message": "boom"}}, "server_error"),
    (503, None, "server_error"),
    (200, {"error": {"message": "upstream failed", "code": 502}}, "server_error"),
    (200, {"error": {"message": "no credit", "code": 402}}, "payment"),
    (400, {"error": {"message": "messages: invalid"}}, "bad_request"),
    (422, "not json at all", "bad_request"),
])
def test_classification(status: int, payload: Any, kind: str) -> None:
    error = classify_error(status=status, payload=payload, model="m", now=NOW)
    assert error.kind == kind
    assert error.message.startswith("m: upstream ")


def test_daily_quota_reset_comes_from_the_rate_limit_header_in_ms_or_s_else_the_utc_day() -> None:
    def reset(headers: dict[str, Any] | None) -> float | None:
        meta = {"headers": headers} if headers is not None else {}
        body = {"error": {"message": "Rate limit exceeded: free-models-per-day", "metadata": meta}}
        return classify_error(status=429, payload=body, now=NOW).reset_at

    assert reset({"X-RateLimit-Reset": "1800003600000"}) == 1_800_003_600.0
    assert reset({"X-RateLimit-Reset": 1_800_003_600}) == 1_800_003_600.0
    assert reset({"X-RateLimit-Reset": "soon"}) == NOW - NOW % 86400 + 86400
    assert reset(None) == NOW - NOW % 86400 + 86400


@pytest.mark.parametrize(("header", "seconds"), [
    (None, None), ("", None), ("2", 2.0), (" 1.5 ", 1.5), ("-3", 0.0), ("99999999", 86400.0), ("nan", None),
    ("soon", None), (email.utils.formatdate(NOW + 30, usegmt=True), 30.0),
    (email.utils.formatdate(NOW - 30, usegmt=True), 0.0),
])
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_retry_after_header_reaches_the_error() -> None:
    assert classify_error(status=429, payload=None, retry_after_header="7", now=NOW).retry_after == 7.0
    assert classify_error(status=503, payload=None, retry_after_header="3", now=NOW).retry_after == 3.0


@pytest.mark.parametrize(("kind", "walk", "bench", "passive", "status"), [
    ("rate_limited", "elsewhere", "hint", "rate_limited", 429),
    ("daily_quota", "elsewhere", "no", None, 429),
    ("server_error", "elsewhere", "streak", "error", 502),
    ("timeout", "elsewhere", "streak", "error", 504),
    ("connection_error", "elsewhere", "streak", "error", 502),
    ("stream_broken", "elsewhere", "streak", "error", 502),
    ("context_overflow", "context", "no", None, 400),
    ("content_filter", "policy", "no", None, 400),
    ("bad_request", "client", "no", None, 400),
    ("unsupported", "elsewhere", "no", None, 502),
    ("auth", "elsewhere", "credential", "error", 502),
    ("payment", "elsewhere", "credential", "error", 502),
    ("refused_locally", "elsewhere", "no", None, 400),
])
def test_the_failure_table(kind: str, walk: str, bench: str, passive: str | None, status: int) -> None:
    failure = FAILURES[kind]  # type: ignore[index]
    assert (failure.walk, failure.bench, failure.passive, failure.status) == (walk, bench, passive, status)
    assert failure.colour.startswith("#") and failure.meaning and failure.code


def test_every_kind_has_a_row() -> None:
    from typing import get_args

    from turnout.upstream.failures import Kind

    assert set(FAILURES) == set(get_args(Kind))
