"""Item 3: nothing in a request's content benches a deployment; credential-wide benches need distinct requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.security.recorder import Recorder
from turnout.config import Retries
from turnout.routing.cooldowns import Bench, CooldownPolicy
from turnout.upstream import litellm_internals
from turnout.upstream.failures import AttemptError

UNREADABLE_IMAGE = [{"role": "user", "content": [{"type": "text", "text": "x"},
                                                 {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]


def test_litellm_failing_on_the_request_benches_nothing(start_gateway: Callable[..., Any], upstream: Recorder,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Gemini's converter raises APIConnectionError for a file:// image before any upstream call."""
    monkeypatch.setenv("GEMINI_TEST_KEY", "gemini-test-key")
    gw = start_gateway(deployments=[{"name": "g", "model": "gemini/gemini-pro", "api_base": upstream.base_url,
                                     "wire": "litellm", "vision": True, "api_key_env": "GEMINI_TEST_KEY"}],
                       retries={"allowed_fails": 0, "backoff_base_s": 0.0}, pool={"health": {"enabled": False}})
    for _ in range(4):
        resp = httpx.post(f"{gw.url}/v1/chat/completions", timeout=60,
                          json={"model": "g", "messages": UNREADABLE_IMAGE})
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == "invalid_request"
    assert upstream.seen == []  # it failed locally
    snapshot = gw.state.holder.current
    ids = [eid for entries in snapshot.entries.values() for eid in entries]
    assert litellm_internals.active_cooldowns(snapshot.router, ids) == []
    resp = httpx.post(f"{gw.url}/v1/chat/completions", timeout=60,
                      json={"model": "g", "messages": [{"role": "user", "content": "hi"}]})
    assert len(upstream.seen) == 1, resp.text(upstream.seen) == 1  # the clean request reached the deployment


def test_a_refused_connection_still_counts_as_a_connection_error() -> None:
    import litellm

    from turnout.upstream.litellm_call import to_attempt_error

    try:
        try:
            raise httpx.ConnectError("refused")
        except httpx.ConnectError as inner:
            raise litellm.APIConnectionError(message="down", llm_provider="ollama", model="x") from inner
    except litellm.APIConnectionError as exc:
        assert to_attempt_error(exc, model="x").kind == "connection_error"
    local = litellm.APIConnectionError(message="Invalid image received", llm_provider="gemini", model="x")
    assert to_attempt_error(local, model="x").kind == "refused_locally"


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("kind", ["auth", "payment"])
def test_credential_wide_benching_is_bounded_and_needs_distinct_requests(kind: str) -> None:
    clock = Clock()
    policy = CooldownPolicy(Retries(cooldown_s=30), clock=clock)
    error = AttemptError(kind, "x")  # type: ignore[arg-type]

    def fail(request: str, credential: str | None = "env:KEY") -> Bench | None:
        return policy.after_failure("d", error, started_at=clock.now, credential=credential, request_id=request)

    assert fail("r1") == Bench(30, credential_wide=False)
    assert fail("r1") == Bench(30, credential_wide=False)  # the same request again: still one strike
    assert fail("r2") == Bench(30, credential_wide=True)  # bounded: cooldown_s, not ten times it
    for request in ("a", "b", "c"):
        assert fail(request, credential=None) == Bench(30, credential_wide=False)  # keyless: no shared credential
