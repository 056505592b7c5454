"""The probe's pure parts: pacing under the free quota (an injected clock), the plan, the summary."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from turnout.config import FreeTierSettings
from turnout.probe.free_pacing import FreePacing, free_budget
from turnout.probe.results import ProbeResult, summarise
from turnout.probe.targets import Target, make_plan, narrow

DAY = 86400.0


class FakeTime:
    """A clock and a sleep that moves it: waits are counted, not spent."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_free_calls_wait_for_the_minute_window_not_a_fixed_sleep() -> None:
    time = FakeTime(100 * DAY + 5)
    budget = free_budget(FreeTierSettings(requests_per_minute=4, headroom=1), per_day=None, clock=time.clock)
    pacing = FreePacing(budget, max_wait_s=120, clock=time.clock, sleep=time.sleep)

    async def admit_seven() -> list[bool]:
        return [await pacing.admit() for _ in range(7)]

    assert asyncio.run(admit_seven()) == [True] * 7
    # three at once, then the window opens a minute after the first of each burst
    assert time.slept == [60.0, 60.0]
    assert time.now == 100 * DAY + 5 + 120


def test_a_spent_day_skips_instead_of_waiting() -> None:
    time = FakeTime(100 * DAY + 5)
    budget = free_budget(FreeTierSettings(requests_per_minute=20, headroom=0), per_day=2, clock=time.clock)
    pacing = FreePacing(budget, max_wait_s=120, clock=time.clock, sleep=time.sleep)

    async def admit(n: int) -> list[bool]:
        return [await pacing.admit() for _ in range(n)]

    assert asyncio.run(admit(3)) == [True, True, False]
    assert time.slept == []
    assert not pacing.closed()
    pacing.exhausted(time.now + 3600)
    assert pacing.closed()


def test_plan_order_cap_resume_and_estimate() -> None:
    targets = [Target("a/paid-1", "paid"), Target("b/free-1:free", "free"), Target("c/free-2:free", "free"),
               Target("d/paid-2", "paid")]
    plan = make_plan(targets, resumed=["a/paid-1"], max_requests=2, free_day_left=None, per_minute=1, concurrency=2)
    assert [t.model for t in plan.targets] == ["b/free-1:free", "c/free-2:free"]
    assert plan.resumed == ("a/paid-1",) and [t.model for t in plan.capped] == ["d/paid-2"]
    assert plan.estimate_s(3.0) == 63.0  # one free call a minute: the second a minute after the first
    paid = make_plan(targets[:1] + targets[3:], resumed=[], max_requests=None, free_day_left=0, per_minute=1,
                     concurrency=1)
    assert paid.estimate_s(2.0) == 4.0


def test_narrow_by_tier_substring_and_ids() -> None:
    targets = [Target("qwen/qwen3:free", "free"), Target("qwen/qwen3-max", "paid"), Target("z-ai/glm", "paid")]
    assert [t.model for t in narrow(targets, tier="paid", match=[], ids=[])] == ["qwen/qwen3-max", "z-ai/glm"]
    assert [t.model for t in narrow(targets, tier=None, match=["QWEN"], ids=[])] == ["qwen/qwen3:free",
                                                                                   "qwen/qwen3-max"]
    assert [t.model for t in narrow(targets, tier=None, match=[], ids=["z-ai/glm", "nope"])] == ["z-ai/glm"]


def test_summary_counts_reasons_and_the_five_fastest() -> None:
    results = [ProbeResult(model=f"m{i}", tier="paid", ok=True, status=200, latency_s=float(i)) for i in range(1, 8)]
    results += [ProbeResult(model="x", tier="paid", ok=False, kind="payment", status=402, latency_s=0.1),
                ProbeResult(model="y", tier="free", ok=False, kind="rate_limited", status=429, latency_s=0.1),
                ProbeResult(model="z", tier="free", ok=False, skipped="free quota spent")]
    summary = summarise(results, total_time_s=12.5)
    assert (summary.tested, summary.succeeded, summary.failed) == (9, 7, 2)
    assert summary.failed_by_reason == {"payment": 1, "rate_limited": 1}
    assert summary.skipped_by_reason == {"free quota spent": 1}
    assert summary.success_rate == round(7 / 9, 4) and summary.average_latency_s == 4.0
    assert [m for m, _ in summary.fastest] == ["m1", "m2", "m3", "m4", "m5"]


def test_the_probe_path_does_not_import_litellm() -> None:
    code = ("import sys; import turnout.cli, turnout.probe.command, turnout.probe.display, turnout.pool.report; "
            "assert 'litellm' not in sys.modules, 'litellm imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
