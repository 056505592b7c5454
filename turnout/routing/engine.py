"""Failover: walk a request through its group, the group's tiers and its fallbacks.

The LiteLLM Router picks every deployment (weights, tiers as `order`, cooldowns; through
`picker.Picker`, which skips the Router's per-request passes over the whole pool); the
engine decides what to exclude for this request (already tried, cannot serve it, free
quota spent), runs the attempt on the lean or the translated path, and reports the
outcome back into the Router's cooldowns.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from turnout.config import Settings
from turnout.errors import GatewayError, InvalidRequest, UpstreamFailed
from turnout.pool.model import Deployment
from turnout.routing.cooldowns import CooldownPolicy
from turnout.routing.free_tier import FreeTierBudget
from turnout.routing.request import ChatRequest
from turnout.routing.snapshot import Snapshot
from turnout.routing.sticky import InProcessPins, KeySource, Pin, StickySessions
from turnout.upstream import litellm_call as translate
from turnout.upstream.failures import AttemptError
from turnout.upstream.openai_wire import OpenAIWire

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    deployment_id: str
    model: str
    group: str
    tier: str
    outcome: str
    status: int | None
    latency_s: float
    message: str = ""


@dataclass(slots=True)
class Outcome(Generic[T]):
    value: T
    deployment: Deployment
    group: str
    requested_group: str
    attempts: list[AttemptRecord]
    pin: str | None = None  # sticky sessions: pinned, new or moved

    @property
    def fallback(self) -> bool:
        return self.group != self.requested_group


@dataclass(slots=True)
class _Walk:
    """The mutable state of one request's walk through the chain."""

    request: ChatRequest
    snapshot: Snapshot
    deadline: float
    attempts: list[AttemptRecord] = field(default_factory=list)
    tried: set[str] = field(default_factory=set)
    retried: set[str] = field(default_factory=set)
    unfit: set[str] = field(default_factory=set)
    last_error: AttemptError | None = None
    context_overflow: bool = False
    content_refused: bool = False
    pin: Pin | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


class AttemptObserver:
    """Hook for metrics and passive health; the default does nothing."""

    def on_attempt(self, record: AttemptRecord) -> None:
        return None

    def on_cooldown(self, deployment: Deployment, seconds: float, kind: str) -> None:
        return None


class Engine:
    def __init__(
        self,
        *,
        settings: Settings,
        wire: OpenAIWire,
        budget: FreeTierBudget,
        observer: AttemptObserver | None = None,
        sessions: StickySessions | None = None,
    ) -> None:
        self._settings = settings
        self._wire = wire
        self._budget = budget
        self._cooldowns = CooldownPolicy(settings.retries)
        self._observer = observer or AttemptObserver()
        self._rng = random.Random()
        self.sessions = sessions or StickySessions(
            settings=settings, store=InProcessPins(max_entries=settings.sessions.max_entries))

    # -- public -------------------------------------------------------------------------

    @property
    def upstream_in_flight(self) -> int:
        """Upstream calls on the lean path open right now (streams count until closed)."""
        return self._wire.in_flight

    async def complete(self, request: ChatRequest, snapshot: Snapshot, *,
                       session: KeySource | None = None) -> Outcome[dict[str, Any]]:
        first_byte_s = self._settings.timeouts.first_byte_s

        async def call(dep: Deployment, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
            if dep.wire == "openai":
                return await self._wire.complete(
                    url=snapshot.url(dep), api_key=snapshot.api_key(dep), body=body,
                    first_byte_s=first_byte_s, timeout_s=timeout_s, model=dep.model,
                )
            return await translate.complete(
                params=self._litellm_params(dep, snapshot), body=body, timeout_s=timeout_s, model=dep.model
            )

        return await self._run(request, snapshot, call, session)

    async def open_stream(self, request: ChatRequest, snapshot: Snapshot, *,
                          session: KeySource | None = None) -> Outcome[tuple[Any, Any]]:
        """Open a stream and read its first frame; failures before that fail over transparently."""
        timeouts = self._settings.timeouts

        async def call(dep: Deployment, body: dict[str, Any], timeout_s: float) -> tuple[Any, Any]:
            if dep.wire == "openai":
                source: Any = await self._wire.stream(
                    url=snapshot.url(dep), api_key=snapshot.api_key(dep),
                    body=body, timeout_s=min(timeouts.first_byte_s, timeout_s), model=dep.model,
                )
            else:
                source = await translate.stream(
                    params=self._litellm_params(dep, snapshot), body=body, timeout_s=timeout_s, model=dep.model
                )
            try:
                first = await source.next(min(timeouts.stream_first_token_s, timeout_s))
                if first is None:
                    raise AttemptError("stream_broken", f"{dep.model}: stream ended before any data")
            except BaseException:
                source.close()
                raise
            return source, first

        return await self._run(request, snapshot, call, session)

    def report_stream_failure(self, snapshot: Snapshot, outcome: Outcome[Any], error: AttemptError) -> None:
        """A stream broke after bytes reached the client: count it and bench as usual."""
        self._record(outcome.deployment, outcome.group, error.kind, error.status, 0.0, error.message,
                     outcome.attempts)
        self._bench(snapshot, outcome.deployment, error, time.monotonic())

    # -- the walk -----------------------------------------------------------------------

    async def _run(
        self,
        request: ChatRequest,
        snapshot: Snapshot,
        call: Callable[[Deployment, dict[str, Any], float], Awaitable[T]],
        session: KeySource | None = None,
    ) -> Outcome[T]:
        start_group = snapshot.resolve(request.model)
        walk = _Walk(request=request, snapshot=snapshot,
                     deadline=time.monotonic() + self._settings.timeouts.request_deadline_s)
        walk.unfit = snapshot.fitness.unfit(tools=request.needs_tools, vision=request.needs_vision,
                                            prompt_tokens=request.prompt_tokens_estimate)
        walk.pin = await self.sessions.open(start_group, session)
        queue = [start_group]
        visited: list[str] = []
        while queue:
            group = queue.pop(0)
            if group in visited or group not in snapshot.pool.groups:
                continue
            visited.append(group)
            result = await self._try_group(walk, group, call)
            if result is not None:
                dep, value = result
                return Outcome(value=value, deployment=dep, group=group, requested_group=start_group,
                               attempts=walk.attempts, pin=await self.sessions.settle(walk.pin, dep.id))
            spec = snapshot.pool.groups[group]
            nexts = list(spec.context_window_fallbacks) if walk.context_overflow else []
            if walk.content_refused:
                nexts = list(spec.content_policy_fallbacks)
            walk.context_overflow = walk.content_refused = False
            nexts += list(spec.fallbacks)
            budget = self._settings.retries.max_fallbacks - (len(visited) - 1)
            queue.extend(g for g in nexts if g not in visited and g not in queue)
            del queue[max(0, budget):]
        raise self._final_error(walk, start_group)

    async def _try_group(
        self,
        walk: _Walk,
        group: str,
        call: Callable[[Deployment, dict[str, Any], float], Awaitable[T]],
    ) -> tuple[Deployment, T] | None:
        snapshot = walk.snapshot
        for order in snapshot.orders.get(group, ()):
            tries = 0
            while tries < self._settings.retries.attempts_per_group:
                if walk.remaining() <= 0.05:
                    return None
                dep = await self._pick(walk, group, order)
                if dep is None:
                    break
                tries += 1
                if walk.attempts:
                    await self._backoff(walk, len(walk.attempts))
                body = self._upstream_body(walk.request, dep)
                if dep.tier == "free":
                    self._budget.record()
                started = time.monotonic()
                try:
                    value = await call(dep, body, max(0.05, walk.remaining()))
                except AttemptError as error:
                    self._after_failure(walk, dep, group, error, started)
                    if error.kind == "context_overflow":
                        walk.context_overflow = True
                        return None
                    if error.kind == "content_filter":
                        walk.content_refused = True
                        return None
                    continue
                if _filtered(value) and snapshot.pool.groups[group].content_policy_fallbacks:
                    # The answer was withheld by a content filter and the group names where to try instead.
                    self._record(dep, group, "content_filter", 200, time.monotonic() - started, "", walk.attempts)
                    walk.last_error = AttemptError("content_filter", f"{dep.model}: answer withheld by a content filter")
                    walk.content_refused = True
                    return None
                self._record(dep, group, "ok", 200, time.monotonic() - started, "", walk.attempts)
                self._cooldowns.record_success(dep.id)
                return dep, value
        return None

    async def _pick(self, walk: _Walk, group: str, order: int) -> Deployment | None:
        """Ask the Router for a deployment; prefer untried ones, allow a retry of a tried one."""
        snapshot = walk.snapshot
        base = walk.unfit | snapshot.fitness.free if not self._budget.available() else walk.unfit
        pinned = walk.pin.deployment_id if walk.pin is not None else None
        if pinned is not None and pinned not in walk.tried and \
                await snapshot.picker.pinned(group, order, pinned, exclude=base) is not None:
            return snapshot.deployment(pinned)
        # A tried deployment gets one more chance, only when nothing untried is left.
        for exclude in (base | walk.tried, base | walk.retried):
            entry = await self._router_pick(snapshot, group, order, exclude)
            if entry is not None:
                return snapshot.deployment(entry)
            if not walk.tried:
                break
        return None

    async def _router_pick(self, snapshot: Snapshot, group: str, order: int, exclude: set[str]) -> str | None:
        chosen = await snapshot.picker.pick(group, order, exclude)
        if not chosen:
            return None
        info = chosen.get("model_info") or {}
        return info.get("deployment")

    # -- outcomes -----------------------------------------------------------------------

    def _after_failure(self, walk: _Walk, dep: Deployment, group: str, error: AttemptError, started: float) -> None:
        self._record(dep, group, error.kind, error.status, time.monotonic() - started, error.message, walk.attempts)
        walk.last_error = error
        if dep.id in walk.tried:
            walk.retried.add(dep.id)
        walk.tried.add(dep.id)
        has_policy_fallback = bool(walk.snapshot.pool.groups[group].content_policy_fallbacks)
        if error.kind == "bad_request" or (error.kind == "content_filter" and not has_policy_fallback):
            raise UpstreamFailed(
                _client_message(error), status=error.status or 400, code=error.kind,
            )
        if error.kind == "daily_quota" and error.reset_at is not None:
            self._budget.exhaust(error.reset_at)
        self._bench(walk.snapshot, dep, error, started)

    def _bench(self, snapshot: Snapshot, dep: Deployment, error: AttemptError, started: float) -> None:
        seconds = self._cooldowns.cooldown_for(dep.id, error, started_at=started)
        if not seconds:
            return
        targets = [dep]
        if self._cooldowns.shares_credential(error):
            targets = [d for d in snapshot.pool.deployments.values() if d.credential == dep.credential]
        for target in targets:
            for eid in snapshot.entries.get(target.id, ()):
                snapshot.router.cooldown_cache.add_deployment_to_cooldown(
                    model_id=eid, original_exception=error, exception_status=error.status or 500, cooldown_time=seconds
                )
            self._observer.on_cooldown(target, seconds, error.kind)

    def _record(
        self, dep: Deployment, group: str, outcome: str, status: int | None, latency: float, message: str,
        attempts: list[AttemptRecord],
    ) -> None:
        record = AttemptRecord(deployment_id=dep.id, model=dep.model, group=group, tier=dep.tier,
                               outcome=outcome, status=status, latency_s=latency, message=message)
        attempts.append(record)
        self._observer.on_attempt(record)

    def _final_error(self, walk: _Walk, start_group: str) -> GatewayError:
        error = walk.last_error
        if error is None:
            return self._nothing_available(walk, start_group)
        message = _client_message(error)
        if error.kind == "context_overflow":
            return InvalidRequest(message, param="messages", code="context_length_exceeded")
        if error.kind == "content_filter":
            return InvalidRequest(f"Every answer was withheld by a content filter. {message}", code="content_filter")
        if error.kind in {"rate_limited", "daily_quota"}:
            retry = max(1, round(error.retry_after or self._min_cooldown(walk, start_group) or 1))
            return UpstreamFailed(f"All deployments for '{start_group}' are rate limited. {message}",
                                  status=429, code="rate_limited", headers={"Retry-After": str(retry)})
        if error.kind == "timeout":
            return UpstreamFailed(f"No deployment answered in time. {message}", status=504, code="upstream_timeout")
        if error.kind in {"auth", "payment"}:
            return UpstreamFailed(f"The upstream refused the gateway's credentials. {message}", status=502,
                                  code=f"upstream_{error.kind}")
        return UpstreamFailed(f"Every deployment for '{start_group}' failed. {message}", status=502,
                              code="upstream_error")

    def _nothing_available(self, walk: _Walk, start_group: str) -> GatewayError:
        request = walk.request
        pool = walk.snapshot.pool
        members = pool.groups[start_group].members
        if members and all(m.deployment_id in walk.unfit for m in members):
            needs = [n for n, on in (("tools", request.needs_tools), ("image input", request.needs_vision)) if on]
            what = " and ".join(needs) or f"a prompt of ~{request.prompt_tokens_estimate} tokens"
            code = "context_length_exceeded" if not needs else "unsupported_request"
            return InvalidRequest(f"No deployment behind '{start_group}' supports {what}.", param="model", code=code)
        if not members:
            return UpstreamFailed(f"'{start_group}' has no deployments right now.", status=503, code="no_deployments")
        cooling = self._min_cooldown(walk, start_group)
        if not self._budget.available() and all(
            walk.snapshot.pool.deployments[m.deployment_id].tier == "free" for m in members
        ):
            wait = self._budget.retry_after()
            return UpstreamFailed(
                f"The account-wide free-model quota is spent; '{start_group}' has only free models. "
                f"Retry in {wait:.0f}s or use a group with paid models.",
                status=429, code="free_quota_exhausted", headers={"Retry-After": str(max(1, round(wait)))},
            )
        return UpstreamFailed(
            f"Every deployment for '{start_group}' is cooling down; retry shortly.",
            status=429 if cooling else 503,
            code="no_deployments_available",
            headers={"Retry-After": str(max(1, round(cooling or 1)))},
        )

    def _min_cooldown(self, walk: _Walk, group: str) -> float | None:
        snapshot = walk.snapshot
        ids = [eid for m in snapshot.pool.groups[group].members for eid in snapshot.entries.get(m.deployment_id, ())]
        if not ids:
            return None
        active = snapshot.router.cooldown_cache.get_active_cooldowns(model_ids=ids, parent_otel_span=None)
        now = time.time()
        remaining = [v["timestamp"] + v["cooldown_time"] - now for _, v in active]
        return min(remaining) if remaining else None

    # -- helpers ------------------------------------------------------------------------

    def _upstream_body(self, request: ChatRequest, dep: Deployment) -> dict[str, Any]:
        body = dict(request.body)
        body["model"] = dep.upstream_model
        cap = self._settings.pool.paid_max_tokens if dep.tier == "paid" else None
        if cap is not None:
            key = "max_completion_tokens" if "max_completion_tokens" in body and "max_tokens" not in body else "max_tokens"
            body[key] = min(request.max_tokens or cap, cap)
        if request.stream and dep.wire == "openai":
            options = dict(body.get("stream_options") or {})
            options["include_usage"] = True
            body["stream_options"] = options
        return body

    def _litellm_params(self, dep: Deployment, snapshot: Snapshot) -> dict[str, Any]:
        params: dict[str, Any] = {"model": dep.upstream_model}
        if dep.api_base:
            params["api_base"] = dep.api_base
        key = snapshot.api_key(dep)
        if key:
            params["api_key"] = key
        return params

    async def _backoff(self, walk: _Walk, attempt: int) -> None:
        retries = self._settings.retries
        delay = min(retries.backoff_max_s, retries.backoff_base_s * (2 ** min(attempt - 1, 10)))
        delay *= 0.5 + self._rng.random() / 2
        delay = min(delay, max(0.0, walk.remaining() - 0.1))
        if delay > 0:
            await asyncio.sleep(delay)


def _filtered(value: Any) -> bool:
    """A non-stream answer whose first choice ended in `content_filter`."""
    if not isinstance(value, dict):
        return False
    choices = value.get("choices")
    return bool(choices) and isinstance(choices[0], dict) and choices[0].get("finish_reason") == "content_filter"


def _client_message(error: AttemptError) -> str:
    return error.message
