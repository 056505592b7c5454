"""The failover scorecard (issue 11): sixteen upstream failures, each driven through the running
gateway by a streaming client, each held to the verdict rule.

    pass     the client gets the whole answer (every model gives the same scripted answer to
             the same conversation, so "whole" is checked exactly), no error frame, `[DONE]`,
             within the row's time bound
    partial  the whole answer, but too late
    safe     a clean error (an error status, or one error frame and `[DONE]`)
    fail     anything else: a hang, or a truncated answer shown as success

Every row must pass. Durations are the scorecard's times scaled by `TURNOUT_SCORECARD_SCALE`
(default 0.2, so the suite stays fast; 1 runs the scorecard's own times: a 2 s Retry-After, a
20 s first token against a 30 s first-token timeout, a 60 s outage). Scaling keeps each row's
relations: the hedge delay is under the first-token timeout, the idle timeout under the stall,
the bound at the scorecard's (15 s for S07, 45 s for S09, both scaled).

Upstreams are the real sandbox, the gateway runs under real uvicorn (tests/conftest.py's
`chain`: group `primary` (model A) falls back to `backup` (model B)).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CHAIN_BACKUP as B
from tests.conftest import CHAIN_PRIMARY as A
from turnout.sandbox import FaultPlan, ModelFaults
from turnout.sandbox.completions import scripted_answer
from turnout.sandbox.scenarios import ANSWER_WORDS, Timing, scorecard_plan

SCALE = float(os.environ.get("TURNOUT_SCORECARD_SCALE", "0.2"))
MESSAGES = [{"role": "user", "content": "Tell me about the rivers of the world, please."}]
FULL = scripted_answer(MESSAGES, ANSWER_WORDS)
TIMING = Timing(retry_after_s=2 * SCALE, first_token_s=20 * SCALE, outage_s=60 * SCALE, long_retry_after_s=60)
# The gateway as the scorecard runs it: a 30 s first-token timeout, the default hedge delay and idle timeout.
CONFIG: dict[str, Any] = {
    "timeouts": {"first_byte_s": 60 * SCALE, "stream_first_token_s": 30 * SCALE, "stream_idle_s": 20 * SCALE,
                 "request_deadline_s": 180 * SCALE},
    "streams": {"hedge_after_s": 8 * SCALE},
}
SLACK_S = 2.0  # room for a loaded two-core machine on top of every bound
QUICK_S = 5 * SCALE + SLACK_S  # rows where nothing has to wait


@dataclass
class Streamed:
    """What a streaming client saw."""

    status: int
    headers: httpx.Headers
    elapsed: float
    chunks: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    done: bool = False

    @property
    def text(self) -> str:
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in self.chunks if c.get("choices"))

    @property
    def usage(self) -> dict[str, Any]:
        found = [c["usage"] for c in self.chunks if c.get("usage")]
        return found[-1] if found else {}

    def verdict(self, bound_s: float) -> str:
        if self.status != 200 or (self.errors and self.done):
            return "safe"
        if self.errors or not self.done or self.text != FULL:
            return "fail"
        return "pass" if self.elapsed <= bound_s else "partial"


def stream(gw: Any, body: dict[str, Any] | None = None) -> Streamed:
    body = body or {"model": "primary", "messages": MESSAGES, "stream": True,
                    "stream_options": {"include_usage": True}}
    started = time.monotonic()
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=60) as resp:
        seen = Streamed(status=resp.status_code, headers=resp.headers, elapsed=0.0)
        for line in resp.iter_lines():
            if line.startswith(":"):
                seen.comments.append(line)
            elif line == "data: [DONE]":
                seen.done = True
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                (seen.errors if "error" in data else seen.chunks).append(data)
    seen.elapsed = time.monotonic() - started
    return seen


def attempts(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """(model, outcome) of every attempt in the last request's log line."""
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "turnout.requests"]
    return [(a["model"], a["outcome"]) for a in lines[-1]["attempts"]]


def last_log(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "turnout.requests"]
    return lines[-1]


def metric(gw: Any, name: str, **labels: str) -> float:
    text = httpx.get(f"{gw.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@pytest.fixture
def row(chain: Callable[..., Any], sandbox: Any, caplog: pytest.LogCaptureFixture,
        scorecard: dict[str, tuple[str, float, str]]) -> Callable[..., tuple[Any, Streamed]]:
    """Run one scorecard row: start the gateway, break model A the row's way, stream once."""
    caplog.set_level(logging.INFO, logger="turnout.requests")

    def run(name: str, *, bound_s: float = QUICK_S, plan: FaultPlan | None = None,
            **config: Any) -> tuple[Any, Streamed]:
        gw = chain(**{**CONFIG, **config})
        sandbox.server.set_plan(plan or scorecard_plan(name, primary=A, fallback=B, timing=TIMING))
        seen = stream(gw)
        verdict = seen.verdict(bound_s)
        scorecard[name] = (verdict, seen.elapsed, " ".join(f"{m}:{o}" for m, o in attempts(caplog)))
        return gw, seen

    return run


def passed(seen: Streamed, bound_s: float = QUICK_S) -> None:
    assert seen.errors == [] and seen.done, (seen.errors, seen.done)
    assert seen.text == FULL
    assert seen.verdict(bound_s) == "pass", f"{seen.elapsed:.2f} s against a bound of {bound_s:.2f} s"
    assert len({c["id"] for c in seen.chunks}) == 1  # one stream, one id


# -- S01: a short Retry-After from the only deployment of the tier is waited out ----------------


def test_s01_short_retry_after_is_waited_out_on_the_same_deployment(row: Any, sandbox: Any,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    _, seen = row("S01", bound_s=TIMING.retry_after_s + SLACK_S)
    passed(seen, TIMING.retry_after_s + SLACK_S)
    assert seen.elapsed >= TIMING.retry_after_s
    assert attempts(caplog) == [("primary", "rate_limited"), ("primary", "ok")]
    assert seen.headers["x-turnout-model"] == "primary" and seen.headers["x-turnout-attempts"] == "2"
    assert sandbox.server.calls_for(B) == []


def test_s01_with_a_peer_in_the_tier_fails_over_at_once(start_gateway: Callable[..., Any], sandbox: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_UPSTREAM_KEY", "sk-static-test-key")
    common = {"api_base": sandbox.base_url, "wire": "openai", "api_key_env": "SANDBOX_UPSTREAM_KEY"}
    gw = start_gateway(deployments=[{"name": "pair", "model": f"openai/{A}", "weight": 100, **common},
                                    {"name": "pair", "model": f"openai/{B}", "weight": 1, **common}],
                       pool={"health": {"enabled": False}}, retries={"backoff_base_s": 0.01}, **CONFIG)
    retry_after = 3.0  # under the cap: only the peer keeps the gateway from waiting
    # A (picked first by weight) is rate limited once; its peer B is healthy.
    sandbox.server.set_plan(FaultPlan(answer_words=ANSWER_WORDS, models={
        A: ModelFaults(fail_next=1, fail_next_code=429, retry_after_s=retry_after)}))
    seen = stream(gw, {"model": "pair", "messages": MESSAGES, "stream": True})
    assert seen.text == FULL and seen.done
    assert seen.elapsed < retry_after
    assert [c.outcome for c in sandbox.server.calls_for(A)] in (["429"], [])


# -- S02..S05, S15, S16: failures before the first byte ----------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("S02", [("primary", "rate_limited"), ("primary", "rate_limited"), ("backup", "ok")]),
    ("S03", [("primary", "server_error"), ("primary", "ok")]),
    ("S04", [("primary", "server_error"), ("primary", "server_error"), ("backup", "ok")]),
    ("S05", [("primary", "connection_error"), ("primary", "ok")]),
    ("S16", [("primary", "rate_limited"), ("backup", "ok")]),
])
def test_failures_before_the_first_byte_fail_over(row: Any, caplog: pytest.LogCaptureFixture, name: str,
                                                   expected: list[tuple[str, str]]) -> None:
    _, seen = row(name)
    passed(seen)
    assert attempts(caplog) == expected
    assert seen.headers["x-turnout-attempts"] == str(len(expected))


def test_s15_outage_window_fails_over_then_recovers(row: Any, caplog: pytest.LogCaptureFixture) -> None:
    gw, seen = row("S15")
    passed(seen)
    assert attempts(caplog)[-1] == ("backup", "ok")
    time.sleep(max(0.0, TIMING.outage_s - seen.elapsed) + 0.1)  # the sandbox's window is wall-clock time
    again = stream(gw)
    assert again.text == FULL and again.headers["x-turnout-model"] == "primary"


# -- S06, S07: silence and a slow first token ---------------------------------------------------


def test_s06_silent_deployment_is_hedged_and_never_retried(row: Any, sandbox: Any,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    bound = 15 * SCALE + SLACK_S
    _, seen = row("S06", bound_s=bound)
    passed(seen, bound)
    assert attempts(caplog) == [("primary", "cancelled"), ("backup", "ok")]
    assert len(sandbox.server.calls_for(A)) == 1


def test_s06_without_hedging_a_silent_deployment_is_not_asked_twice(row: Any, sandbox: Any,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    first_byte = 1.0
    _, seen = row("S06-nohedge", plan=scorecard_plan("S06", primary=A, fallback=B, timing=TIMING),
                  bound_s=first_byte + SLACK_S, streams={"hedge_after_s": None},
                  timeouts={**CONFIG["timeouts"], "first_byte_s": first_byte})
    passed(seen, first_byte + SLACK_S)
    assert attempts(caplog) == [("primary", "timeout"), ("backup", "ok")]
    assert len(sandbox.server.calls_for(A)) == 1


def test_s07_slow_first_token_is_hedged(row: Any, caplog: pytest.LogCaptureFixture) -> None:
    assert CONFIG["streams"]["hedge_after_s"] < CONFIG["timeouts"]["stream_first_token_s"]
    assert TIMING.first_token_s < CONFIG["timeouts"]["stream_first_token_s"]  # no timeout would fire
    bound = 15 * SCALE + SLACK_S * SCALE  # the scorecard's 15 s, scaled: below the slow first token
    assert bound < TIMING.first_token_s
    gw, seen = row("S07", bound_s=bound)
    passed(seen, bound)
    assert seen.elapsed >= CONFIG["streams"]["hedge_after_s"]
    assert attempts(caplog) == [("primary", "cancelled"), ("backup", "ok")]
    assert seen.headers["x-turnout-model"] == "backup"
    assert metric(gw, "turnout_upstream_attempts_total", model="primary", outcome="cancelled") == 1


# -- S08, S09, S14: mid-stream continuation -----------------------------------------------------


def test_s08_cut_stream_is_continued_with_prefill(row: Any, sandbox: Any, caplog: pytest.LogCaptureFixture) -> None:
    gw, seen = row("S08")
    passed(seen)
    assert attempts(caplog) == [("primary", "ok"), ("primary", "stream_broken"), ("backup", "ok")]
    continued = sandbox.server.calls_for(B)[0].body["messages"]
    assert continued[:-1] == MESSAGES and continued[-1]["role"] == "assistant"
    said = FULL.split(" ")
    assert continued[-1]["content"] == " ".join(said[:40])  # exactly what the client had (trailing space stripped)
    assert seen.usage["completion_tokens"] == ANSWER_WORDS  # 40 estimated for the cut leg + 20 reported
    assert {c["model"] for c in seen.chunks if c.get("choices")} == {A, B}  # each chunk names who wrote it
    log = last_log(caplog)
    assert [(leg["model"], leg["mode"], leg["chars"]) for leg in log["legs"]] == [
        ("primary", "first", len(" ".join(said[:40])) + 1), ("backup", "prefill", len(FULL) - len(" ".join(said[:40])) - 1)]
    assert any(c.startswith(": x-turnout-legs ") for c in seen.comments)
    assert metric(gw, "turnout_stream_resumes_total", outcome="prefill") == 1
    assert metric(gw, "turnout_upstream_attempts_total", model="primary", outcome="stream_broken") == 1


def test_s09_stalled_stream_is_detected_and_continued(row: Any, caplog: pytest.LogCaptureFixture) -> None:
    idle = CONFIG["timeouts"]["stream_idle_s"]
    bound = 45 * SCALE + SLACK_S
    _, seen = row("S09", bound_s=bound)
    passed(seen, bound)
    assert seen.elapsed >= idle
    assert attempts(caplog) == [("primary", "ok"), ("primary", "stream_broken"), ("backup", "ok")]
    assert seen.usage["completion_tokens"] == ANSWER_WORDS


def test_s14_prefill_refused_restarts_and_splices(row: Any, sandbox: Any, caplog: pytest.LogCaptureFixture) -> None:
    gw, seen = row("S14")
    passed(seen)
    assert attempts(caplog) == [("primary", "ok"), ("primary", "stream_broken"), ("backup", "prefill_unsupported"),
                                ("backup", "ok")]
    calls = sandbox.server.calls_for(B)
    assert [c.outcome for c in calls] == ["400_prefill", "ok"]
    assert calls[1].body["messages"] == MESSAGES  # restarted without prefill
    assert metric(gw, "turnout_stream_resumes_total", outcome="restart") == 1
    assert seen.usage["completion_tokens"] >= ANSWER_WORDS  # the restart was billed in full


def test_s14_restart_that_diverges_ends_with_one_clear_error(row: Any, sandbox: Any) -> None:
    # Without scripted answers each model names itself: the restarted answer cannot match.
    plan = FaultPlan(models={A: ModelFaults(stream_cut_after=4), B: ModelFaults(prefill="refuse")})
    gw, seen = row("S14-diverge", plan=plan)
    assert seen.verdict(QUICK_S) == "safe"
    assert len(seen.errors) == 1 and seen.done
    assert "different answer" in seen.errors[0]["error"]["message"]
    assert seen.text.startswith(f"Hello from {A}")  # what the client had, and nothing stitched after it
    assert B not in seen.text
    assert metric(gw, "turnout_stream_resumes_total", outcome="diverged") == 1


def test_continuation_through_the_openai_sdk(chain: Callable[..., Any], sandbox: Any) -> None:
    from openai import OpenAI

    gw = chain(**CONFIG)
    sandbox.server.set_plan(scorecard_plan("S08", primary=A, fallback=B, timing=TIMING))
    client = OpenAI(base_url=f"{gw.url}/v1", api_key="unused", max_retries=0)
    parts = [chunk.choices[0].delta.content or ""
             for chunk in client.chat.completions.create(model="primary", messages=MESSAGES,  # type: ignore[arg-type]
                                                         stream=True) if chunk.choices]
    assert "".join(parts) == FULL


# -- S10, S11: a garbled event, a missing [DONE] ------------------------------------------------


def test_s10_malformed_event_is_skipped_and_counted(row: Any, caplog: pytest.LogCaptureFixture) -> None:
    gw, seen = row("S10")
    passed(seen)
    assert attempts(caplog) == [("primary", "ok")]
    assert metric(gw, "turnout_stream_malformed_frames_total", model="primary") == 1


def test_s11_finished_stream_without_done_is_a_success(row: Any, caplog: pytest.LogCaptureFixture) -> None:
    gw, seen = row("S11")
    passed(seen)
    assert attempts(caplog) == [("primary", "ok")]
    assert seen.usage["completion_tokens"] == ANSWER_WORDS
    assert last_log(caplog)["unterminated"] == "stream_broken"
    assert metric(gw, "turnout_upstream_attempts_total", model="primary", outcome="stream_broken") == 0


# -- S12, S13: refusals one model makes and another does not ------------------------------------


@pytest.mark.parametrize(("name", "kind"), [("S12", "context_overflow"), ("S13", "content_filter")])
def test_refusals_route_to_the_fallback(row: Any, sandbox: Any, caplog: pytest.LogCaptureFixture, name: str,
                                        kind: str) -> None:
    _, seen = row(name)
    passed(seen)
    assert attempts(caplog) == [("primary", kind), ("backup", "ok")]
    assert len(sandbox.server.calls_for(A)) == 1  # a refusal is not retried on the same model


def test_content_policy_refusal_everywhere_is_a_clean_400(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain(**CONFIG)
    sandbox.server.set_plan(FaultPlan(default=ModelFaults(content_policy_error=True)))
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "primary", "messages": MESSAGES}, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "content_filter"


# -- beyond the table: tool calls, cut JSON bodies ------------------------------------------------

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
    "required": ["city", "unit"]}}}]


def test_break_inside_tool_call_arguments_is_retried_invisibly(chain: Callable[..., Any], sandbox: Any,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="turnout.requests")
    gw = chain(**CONFIG)
    # role chunk, the call's head, one piece of its arguments: then the connection drops
    sandbox.server.set_plan(FaultPlan(models={A: ModelFaults(stream_cut_after=3)}))
    seen = stream(gw, {"model": "primary", "messages": MESSAGES, "stream": True, "tools": TOOLS})
    assert seen.errors == [] and seen.done
    deltas = [d for c in seen.chunks if c.get("choices") for d in c["choices"][0]["delta"].get("tool_calls") or ()]
    ids = {d["id"] for d in deltas if d.get("id")}
    assert len(ids) == 1  # one call reached the client: the second model's
    arguments = json.loads("".join(d["function"].get("arguments") or "" for d in deltas))
    assert set(arguments) == {"city", "unit"}
    assert [c["choices"][0]["finish_reason"] for c in seen.chunks if c["choices"][0].get("finish_reason")] == [
        "tool_calls"]
    assert attempts(caplog) == [("primary", "ok"), ("primary", "stream_broken"), ("backup", "ok")]


def test_json_body_cut_short_is_retried(chain: Callable[..., Any], sandbox: Any,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="turnout.requests")
    gw = chain(**CONFIG)
    sandbox.server.set_plan(FaultPlan(answer_words=ANSWER_WORDS, models={A: ModelFaults(truncate_json=True)}))
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "primary", "messages": MESSAGES}, timeout=30)
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == FULL
    assert attempts(caplog)[-1] == ("backup", "ok")
    assert all(outcome == "connection_error" for _, outcome in attempts(caplog)[:-1])
