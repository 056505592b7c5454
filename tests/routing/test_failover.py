"""Upstream failure modes against the sandbox: what the client sees, and how fast.

Most tests use two static deployments on the sandbox so the chain is deterministic:
`primary` (model A) falls back to `backup` (model B).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import CHAIN_BACKUP as B
from tests.conftest import CHAIN_PRIMARY as A
from turnout.sandbox import FaultPlan, ModelFaults
from turnout.sandbox.completions import scripted_answer

HELLO = [{"role": "user", "content": "hello"}]


def plan(sandbox: Any, **models: ModelFaults) -> None:
    sandbox.server.set_plan(FaultPlan(models={A if k == "A" else B: v for k, v in models.items()}))


def chat(gw: Any, model: str = "primary", *, timeout: float = 30, **extra: Any) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"model": model, "messages": HELLO, **extra},
                      timeout=timeout)


def stream_lines(gw: Any, model: str = "primary") -> tuple[httpx.Response, list[str]]:
    body = {"model": model, "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=30) as resp:
        lines = [line for line in resp.iter_lines() if line]
    return resp, lines


def content_of(resp: httpx.Response) -> str:
    return str(resp.json()["choices"][0]["message"]["content"])


def test_500_once_is_retried_and_succeeds(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain()
    plan(sandbox, A=ModelFaults(fail_next=1, fail_next_code=500))
    resp = chat(gw)
    assert resp.status_code == 200
    assert resp.headers["x-turnout-attempts"] == "2"
    assert f"Hello from {A}" in content_of(resp)
    assert [c.outcome for c in sandbox.server.calls_for(A)] == ["500", "ok"]


def test_429_with_retry_after_benches_the_deployment(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain()
    plan(sandbox, A=ModelFaults(rate_limit_rate=1.0, retry_after_s=30))
    first = chat(gw)
    assert first.status_code == 200 and first.headers["x-turnout-fallback"] == "true"
    assert first.headers["x-turnout-model"] == "backup"
    for _ in range(3):
        assert chat(gw).status_code == 200
    assert len(sandbox.server.calls_for(A)) == 1


def test_429_everywhere_answers_429_with_retry_after(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain()
    plan(sandbox, A=ModelFaults(rate_limit_rate=1.0, retry_after_s=5), B=ModelFaults(rate_limit_rate=1.0, retry_after_s=7))
    started = time.monotonic()
    resp = chat(gw)
    assert time.monotonic() - started < 3
    assert resp.status_code == 429
    assert 1 <= int(resp.headers["retry-after"]) <= 7
    assert resp.json()["error"]["code"] == "rate_limited"


def test_persistent_503_cools_down_then_recovers(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain(retries={"cooldown_s": 1.0, "allowed_fails": 1})
    plan(sandbox, A=ModelFaults(error_rate=1.0, error_codes=[503]))
    for _ in range(6):
        resp = chat(gw)
        assert resp.status_code == 200 and resp.headers["x-turnout-model"] == "backup"
    assert len(sandbox.server.calls_for(A)) <= 3  # benched after allowed_fails + 1 failures
    sandbox.server.set_plan(FaultPlan())
    time.sleep(1.2)
    assert chat(gw).headers["x-turnout-model"] == "primary"


def test_connection_reset_falls_back_at_once(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain()
    plan(sandbox, A=ModelFaults(reset_rate=1.0))
    started = time.monotonic()
    resp = chat(gw)
    assert resp.status_code == 200 and resp.headers["x-turnout-model"] == "backup"
    assert time.monotonic() - started < 2


def test_hung_upstream_is_abandoned_after_the_timeout(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain(timeouts={"first_byte_s": 0.5})
    plan(sandbox, A=ModelFaults(hang_rate=1.0))
    started = time.monotonic()
    resp = chat(gw)
    elapsed = time.monotonic() - started
    assert resp.status_code == 200 and resp.headers["x-turnout-model"] == "backup"
    assert 0.5 <= elapsed < 2.5


def test_overall_deadline_bounds_the_request(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain(timeouts={"first_byte_s": 5, "request_deadline_s": 1.0})
    plan(sandbox, A=ModelFaults(hang_rate=1.0), B=ModelFaults(hang_rate=1.0))
    started = time.monotonic()
    resp = chat(gw)
    assert time.monotonic() - started < 1.8
    assert resp.status_code == 504


def test_slow_first_token_stream_fails_over(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain(timeouts={"stream_first_token_s": 0.5})
    plan(sandbox, A=ModelFaults(first_token_delay_ms=3000))
    started = time.monotonic()
    resp, lines = stream_lines(gw)
    assert time.monotonic() - started < 2.5
    assert resp.headers["x-turnout-model"] == "backup"
    assert lines[-1] == "data: [DONE]" and B in "".join(lines)


@pytest.mark.parametrize("faults", [ModelFaults(stream_cut_after=0), ModelFaults(stream_error_after=0),
                                    ModelFaults(malformed_after=0), ModelFaults(error_200_rate=1.0)])
def test_stream_failing_before_first_byte_fails_over_transparently(
    chain: Callable[..., Any], sandbox: Any, faults: ModelFaults
) -> None:
    gw = chain()
    plan(sandbox, A=faults)
    resp, lines = stream_lines(gw)
    assert resp.status_code == 200 and resp.headers["x-turnout-model"] == "backup"
    assert lines[-1] == "data: [DONE]"
    assert not any('"error"' in line for line in lines)


BROKEN_AFTER_BYTES = [ModelFaults(stream_cut_after=2), ModelFaults(stream_error_after=2),
                      ModelFaults(malformed_after=2), ModelFaults(stream_stall_after=2)]


@pytest.mark.parametrize("faults", BROKEN_AFTER_BYTES)
def test_stream_broken_after_bytes_is_continued_by_the_fallback(
    chain: Callable[..., Any], sandbox: Any, faults: ModelFaults
) -> None:
    gw = chain(timeouts={"stream_idle_s": 0.5})
    sandbox.server.set_plan(FaultPlan(answer_words=12, models={A: faults}))
    started = time.monotonic()
    resp, lines = stream_lines(gw)
    assert time.monotonic() - started < 3
    assert resp.headers["x-turnout-model"] == "primary"  # the headers name the first leg
    assert lines[-1] == "data: [DONE]"
    assert not any('"error"' in line for line in lines)
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert text == scripted_answer(HELLO, 12)
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert [c.outcome for c in sandbox.server.calls_for(B)] == ["ok"]
    assert sandbox.server.calls_for(B)[0].body["messages"][-1]["role"] == "assistant"


def test_finished_stream_without_done_is_a_success(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain()
    plan(sandbox, A=ModelFaults(no_done=True))
    resp, lines = stream_lines(gw)
    assert lines[-1] == "data: [DONE]"
    assert not any('"error"' in line for line in lines)
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert text == f"Hello from {A}. You said: hello"
    assert sandbox.server.calls_for(B) == []


@pytest.mark.parametrize("faults", BROKEN_AFTER_BYTES)
def test_stream_broken_after_bytes_without_resumes_ends_with_one_error_frame(
    chain: Callable[..., Any], sandbox: Any, faults: ModelFaults
) -> None:
    gw = chain(timeouts={"stream_idle_s": 0.5}, streams={"max_resumes": 0})
    plan(sandbox, A=faults)
    started = time.monotonic()
    resp, lines = stream_lines(gw)
    assert time.monotonic() - started < 3
    assert resp.headers["x-turnout-model"] == "primary"
    assert lines[-1] == "data: [DONE]"
    errors = [json.loads(line[6:]) for line in lines[:-1] if '"error"' in line]
    assert len(errors) == 1 and errors[0]["error"]["type"] == "upstream_error"
    assert lines[-2].startswith('data: {"error"')


def test_error_inside_http_200_is_treated_as_an_error(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain()
    plan(sandbox, A=ModelFaults(error_200_rate=1.0))
    resp = chat(gw)
    assert resp.status_code == 200 and resp.headers["x-turnout-model"] == "backup"


def test_invalid_request_is_returned_at_once(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain()
    plan(sandbox, A=ModelFaults(error_rate=1.0, error_codes=[400]))
    resp = chat(gw)
    assert resp.status_code == 400
    assert len(sandbox.server.calls_for(A)) == 1 and sandbox.server.calls_for(B) == []


def test_context_overflow_goes_to_the_larger_context_group(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(
        aliases={"small": {"tiers": ["free"], "size": {"free": 3}, "context_window_fallbacks": ["big"]},
                 "big": {"tiers": ["paid"], "size": {"paid": 1}, "sort_by": "context"}},
        pool={"health": {"enabled": False}},
    )
    sandbox.server.set_plan(FaultPlan(free_models=ModelFaults(context_length=50)))
    resp = httpx.post(f"{gw.url}/v1/chat/completions", timeout=30,
                      json={"model": "small", "messages": [{"role": "user", "content": "word " * 200}]})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-turnout-group"] == "big"
    free_calls = [c for c in sandbox.server.calls if c.model.endswith(":free")]
    assert len(free_calls) == 1  # no retry inside the group that overflowed


def test_upstream_401_is_not_retried_and_hides_the_key(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    from tests.conftest import OPENROUTER_TEST_KEY

    gw = start_gateway(pool={"health": {"enabled": False}})
    sandbox.server.set_plan(FaultPlan(default=ModelFaults(error_rate=1.0, error_codes=[401]),
                                      free_models=ModelFaults(error_rate=1.0, error_codes=[401])))
    for calls in (1, 2):  # one attempt per request: the rest of the pool shares the failing credential
        resp = chat(gw, "auto")
        assert resp.status_code == 502
        assert resp.json()["error"]["code"] == "upstream_auth"
        assert OPENROUTER_TEST_KEY not in resp.text
        assert len(sandbox.server.calls) == calls
    # two distinct requests saw it: now every deployment on the credential is benched
    assert chat(gw, "auto").status_code in (429, 503)
    assert len(sandbox.server.calls) == 2


def test_content_filter_is_reported_as_openai_does(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}})
    sandbox.server.set_plan(FaultPlan(free_models=ModelFaults(content_filter=True)))
    resp = chat(gw, "free")
    assert resp.status_code == 200
    assert resp.json()["choices"][0]["finish_reason"] == "content_filter"


def test_content_policy_fallback_when_configured(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(
        aliases={"strict": {"tiers": ["free"], "size": {"free": 2}, "content_policy_fallbacks": ["lenient"]},
                 "lenient": {"tiers": ["paid"], "size": {"paid": 1}}},
        pool={"health": {"enabled": False}},
    )
    sandbox.server.set_plan(FaultPlan(free_models=ModelFaults(content_filter=True)))
    resp = chat(gw, "strict")
    assert resp.status_code == 200 and resp.headers["x-turnout-group"] == "lenient"
    assert resp.json()["choices"][0]["finish_reason"] == "stop"
    assert len([c for c in sandbox.server.calls if c.model.endswith(":free")]) == 1


def test_paid_fallbacks_are_capped_and_can_be_switched_off(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}, "paid_max_tokens": 512})
    resp = httpx.post(f"{gw.url}/v1/chat/completions", timeout=30,
                      json={"model": "paid", "messages": HELLO, "max_tokens": 100_000})
    assert resp.status_code == 200
    assert sandbox.server.calls[-1].body["max_tokens"] == 512
    free_only = start_gateway(pool={"health": {"enabled": False}, "allow_paid": False})
    pool = free_only.state.holder.current.pool
    assert pool.groups["paid"].members == ()
    assert all(pool.deployments[m.deployment_id].tier == "free" for m in pool.groups["auto"].members)


def test_upstream_402_names_the_cause_and_is_not_retried(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}})
    sandbox.server.set_plan(FaultPlan(default=ModelFaults(error_rate=1.0, error_codes=[402]),
                                      free_models=ModelFaults(error_rate=1.0, error_codes=[402])))
    resp = chat(gw, "auto")
    assert resp.status_code == 502 and resp.json()["error"]["code"] == "upstream_payment"
    assert len(sandbox.server.calls) == 1


def test_answer_only_in_reasoning_stays_visible(start_gateway: Callable[..., Any], sandbox: Any) -> None:
    gw = start_gateway(pool={"health": {"enabled": False}})
    model = gw.state.holder.current.pool.deployments[
        gw.state.holder.current.pool.groups["free"].members[0].deployment_id].model
    sandbox.server.set_plan(FaultPlan(models={model: ModelFaults(reasoning_only=True)}))
    resp = chat(gw, model)
    assert f"Hello from {model}" in resp.json()["choices"][0]["message"]["content"]
    body = {"model": model, "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=30) as streamed:
        lines = [line for line in streamed.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    # Streams keep OpenRouter's `delta.reasoning` as it comes (content cannot be known to stay empty).
    reasoning = "".join(json.loads(line[6:])["choices"][0]["delta"].get("reasoning") or ""
                        for line in lines[:-1] if json.loads(line[6:]).get("choices"))
    assert f"Hello from {model}" in reasoning
