"""The account-wide free-tier budget: minute and day windows, headroom, the daily-quota stop."""

from __future__ import annotations

from turnout.config import FreeTierSettings
from turnout.routing.free_tier import FreeTierBudget

DAY = 86400.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_minute_window_keeps_headroom_and_rolls() -> None:
    clock = Clock(100 * DAY + 10)
    budget = FreeTierBudget(FreeTierSettings(requests_per_minute=5, headroom=2), clock=clock)
    admitted = 0
    while budget.available():
        budget.record()
        admitted += 1
        clock.now += 1
    assert admitted == 3
    assert 0 < budget.retry_after() <= 60
    assert budget.remaining_minute() == 2
    clock.now += 60
    assert budget.available() and budget.remaining_minute() == 5


def test_the_day_window_resets_at_the_utc_day() -> None:
    clock = Clock(100 * DAY + 3600)
    budget = FreeTierBudget(FreeTierSettings(requests_per_minute=0, requests_per_day=4, headroom=1), clock=clock)
    for _ in range(3):
        assert budget.available()
        budget.record()
    assert not budget.available()
    assert budget.remaining_day() == 1
    assert budget.retry_after() == DAY - 3600
    clock.now = 101 * DAY
    assert budget.available() and budget.remaining_day() == 4


def test_the_daily_quota_429_stops_free_traffic_until_its_reset() -> None:
    clock = Clock(100 * DAY)
    budget = FreeTierBudget(FreeTierSettings(), clock=clock)
    budget.exhaust(clock.now + 600)
    assert not budget.available() and budget.retry_after() == 600
    budget.exhaust(clock.now + 60)  # an earlier reset never shortens it
    clock.now += 599
    assert not budget.available()
    clock.now += 1
    assert budget.available() and budget.exhausted_until is None


def test_learned_limits_replace_the_configured_ones() -> None:
    clock = Clock(100 * DAY)
    budget = FreeTierBudget(FreeTierSettings(requests_per_minute=20, headroom=0), clock=clock)
    budget.learn_limits(per_day=2)
    budget.record()
    budget.record()
    assert not budget.available() and budget.remaining_day() == 0
