"""Cooldown escalation and credential strikes, on an injected clock."""

from __future__ import annotations

from turnout.config import Retries
from turnout.routing.cooldowns import Bench, CooldownPolicy
from turnout.upstream.failures import AttemptError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def policy(clock: Clock, **retries: float) -> CooldownPolicy:
    return CooldownPolicy(Retries(**{"allowed_fails": 2, "cooldown_min_s": 2, "cooldown_s": 30, **retries}),
                          clock=clock)


def fail(p: CooldownPolicy, clock: Clock, kind: str = "server_error", *, retry_after: float | None = None,
         credential: str | None = "openrouter", request: str = "r1", dep: str = "d") -> Bench | None:
    error = AttemptError(kind, "x", retry_after=retry_after)  # type: ignore[arg-type]
    return p.after_failure(dep, error, started_at=clock.now, credential=credential, request_id=request)


def test_a_streak_benches_after_allowed_fails_and_doubles_up_to_the_cap() -> None:
    clock = Clock()
    p = policy(clock)
    seen = []
    for _ in range(18):
        clock.now += 0.1
        bench = fail(p, clock)
        seen.append(bench.seconds if bench else None)
    assert seen == [None, None, 2, None, None, 4, None, None, 8, None, None, 16, None, None, 30, None, None, 30]


def test_a_success_resets_the_streak() -> None:
    clock = Clock()
    p = policy(clock)
    for _ in range(3):
        fail(p, clock)
    p.record_success("d")
    assert [fail(p, clock) for _ in range(3)][-1] == Bench(2)


def test_attempts_started_before_the_bench_do_not_count_toward_the_next() -> None:
    clock = Clock()
    p = policy(clock)
    started = clock.now
    for _ in range(3):
        fail(p, clock)
    clock.now += 1
    late = p.after_failure("d", AttemptError("timeout", "x"), started_at=started, credential=None, request_id="r")
    assert late is None


def test_a_429_with_retry_after_benches_for_exactly_that_long_and_without_it_like_a_streak() -> None:
    clock = Clock()
    p = policy(clock)
    assert fail(p, clock, "rate_limited", retry_after=7) == Bench(7)
    assert [fail(p, clock, "rate_limited") for _ in range(3)] == [None, None, Bench(2)]


def test_failures_about_the_request_never_bench() -> None:
    clock = Clock()
    p = policy(clock)
    for kind in ("context_overflow", "content_filter", "bad_request", "unsupported", "daily_quota"):
        assert all(fail(p, clock, kind) is None for _ in range(5)), kind


def test_an_auth_failure_benches_the_credential_only_after_distinct_requests() -> None:
    clock = Clock()
    p = policy(clock)
    assert fail(p, clock, "auth", request="r1") == Bench(30)
    assert fail(p, clock, "auth", request="r1", dep="e") == Bench(30)  # the same request again: no strike
    assert fail(p, clock, "payment", request="r2") == Bench(30, credential_wide=True)
    assert fail(p, clock, "auth", request="r3") == Bench(30)  # the count starts over


def test_strikes_expire_and_keyless_deployments_share_no_credential() -> None:
    clock = Clock()
    p = policy(clock)
    assert fail(p, clock, "auth", request="r1") == Bench(30)
    clock.now += 31
    assert fail(p, clock, "auth", request="r2") == Bench(30)  # the first strike is older than cooldown_s
    for request in ("a", "b", "c"):
        assert fail(p, clock, "auth", credential=None, request=request) == Bench(30)
