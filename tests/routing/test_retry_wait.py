"""When a Retry-After is waited out: a plain table over `retry_wait.retry_after_wait`."""

from __future__ import annotations

import pytest

from turnout.routing.retry_wait import retry_after_wait

BASE = {"kind": "rate_limited", "retry_after": 2.0, "cap_s": 4.0, "has_peer": False, "remaining_s": 60.0,
        "waited": False}


@pytest.mark.parametrize(("change", "expected"), [
    ({}, 2.05),  # the only deployment of its tier said "2 s": wait, a little past it
    ({"has_peer": True}, None),  # a peer is untried: fail over at once
    ({"retry_after": 4.0}, 4.05),  # at the cap
    ({"retry_after": 4.5}, None),  # past the cap: fail over
    ({"retry_after": None}, None),  # no hint: nothing to wait for
    ({"retry_after": 0.0}, 0.05),
    ({"kind": "server_error"}, None),
    ({"kind": "daily_quota"}, None),  # the free quota's reset is hours away: never waited
    ({"waited": True}, None),  # once per deployment and request
    ({"remaining_s": 2.5}, None),  # the wait would leave no time for the retry
    ({"remaining_s": 3.1}, 2.05),
    ({"cap_s": 0.0}, None),  # waits switched off
])
def test_retry_after_wait(change: dict[str, object], expected: float | None) -> None:
    got = retry_after_wait(**{**BASE, **change})  # type: ignore[arg-type]
    assert got == (pytest.approx(expected) if expected is not None else None)
