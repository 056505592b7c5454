"""Failover: walk a request through its group, the group's tiers and its fallbacks.

The LiteLLM Router picks every deployment (weights, tiers as `order`, cooldowns; through
`picker.Picker`, which skips the Router's per-request passes over the whole pool); the
engine decides what to exclude for this request (already tried, cannot serve it, free
quota spent), runs the attempt on the lean or the translated path, and reports the
outcome back into the Router's cooldowns.

Streams add two things, each in its own module: a stream slow to its first token is
hedged (`hedge.race`), and every stream is wrapped in a `continuation.ResumingStream`
that continues a broken stream by walking the same request again (`_StreamWalk`).
A short Retry-After from the only deployment of a tier is waited out (`retry_wait`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from turnout.config import Settings
from turnout.errors import AllAttemptsFailed, AttemptRecord, GatewayError, InvalidRequest, UpstreamFailed
from turnout.pool.model import OPENROUTER_CREDENTIAL, Deployment
from turnout.routing.admission import Admission, LocalAdmission
from turnout.routing.continuation import Opened, PrefillMemory, ResumingStream
from turnout.routing.cooldowns import CooldownPolicy
from turnout.routing.credits import PaidCredits
from turnout.routing.free_tier import FreeTierBudget
from turnout.routing.hedge import CallFailed, HedgedCall, race
from turnout.routing.openrouter_fields import clamp_max_price
from turnout.routing.request import ChatRequest
from turnout.routing.retry_wait import retry_after_wait
from turnout.routing.snapshot import Snapshot, SnapshotHolder
from turnout.routing.sticky import InProcessPins, KeySource, Pin, StickySessions
from turnout.routing.strategies import StrategyFeed
from turnout.upstream import litellm_call as translate
from turnout.upstream import litellm_internals
from turnout.upstream.failures import AttemptError
from turnout.upstream.openai_wire import Frame, OpenAIWire

log = logging.getLogger("turnout.engine")

T = TypeVar("T")


@dataclass(slots=True)
class Outcome(Generic[T]):
    value: T
    deployment: Deployment
    group: str
    requested_group: str
    attempts: list[AttemptRecord]
    walk: _Walk | None = field(default=None, repr=False)
    pin: str | None = None  # sticky sessions: pinned, new or moved

    @property
    def fallback(self) -> bool:
        return self.group != self.requested_group


@dataclass(frozen=True, slots=True)
class _Hedge:
    """Hedging for this walk's attempts: the delay, and how to close an answer not kept."""

    delay_s: float
    discard: Callable[[Any], None]


@dataclass(slots=True)
class _Walk:
    """The mutable state of one request's walk through the chain."""

    request: ChatRequest
    snapshot: Snapshot
    deadline: float
    attempts: list[AttemptRecord]  # the request's record of attempts (the caller's list, when it gave one)
    tried: set[str] = field(default_factory=set)
    retried: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)  # timed out without a word: never asked again
    waited: set[str] = field(default_factory=set)  # a Retry-After was waited out for these
    unfit: set[str] = field(default_factory=set)
    visited: list[str] = field(default_factory=list)
    last_error: AttemptError | None = None
    next_groups: str = ""  # after a group gave up: "context" / "policy" fallbacks first
    token: str = field(default_factory=lambda: f"{random.getrandbits(64):016x}")  # distinct requests, for strikes
    hedge: _Hedge | None = None
    # A continuation asks each deployment for its own request (prefill, or not).
    request_for: Callable[[Deployment], ChatRequest] | None = None
    pin: Pin | None = None
    limited: dict[str, float] = field(default_factory=dict)  # at their rpm/tpm limit: seconds until not
    free_refused: float | None = None  # the free quota refused an attempt: seconds until it may not

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def request_of(self, dep: Deployment) -> ChatRequest:
        return self.request if self.request_for is None else self.request_for(dep)


class AttemptObserver:
    """Hook for metrics and passive health; the default does nothing."""

    def on_attempt(self, record: AttemptRecord) -> None:
        return None

    def on_cooldown(self, deployment: Deployment, seconds: float, kind: str) -> None:
        return None

    def on_resume(self, outcome: str) -> None:
        """A broken stream was continued (`prefill`, `restart`, `retry`) or could not be."""
        return None

    def on_malformed(self, deployment: Deployment, count: int) -> None:
        """`count` stream events from `deployment` were skipped: their JSON did not parse."""
        return None


class Engine:
    def __init__(
        self,
        *,
        settings: Settings,
        wire: OpenAIWire,
        budget: FreeTierBudget,
        holder: SnapshotHolder,
        observer: AttemptObserver | None = None,
        sessions: StickySessions | None = None,
        admission: Admission | None = None,
        on_bench: Callable[[list[str], float, int, str], None] | None = None,
        credits: PaidCredits | None = None,
    ) -> None:
        self.credits = credits or PaidCredits()
        self._settings = settings
        self._holder = holder
        self._wire = wire
        self._admission: Admission = admission or LocalAdmission(budget)
        self._budget = self._admission.budget
        self._on_bench = on_bench  # shared state: tell the other replicas (ids, seconds, status, kind)
        self._cooldowns = CooldownPolicy(settings.retries)
        self._observer = observer or AttemptObserver()
        self._rng = random.Random()
        self._prefill = PrefillMemory(settings.streams.no_prefill)
        self._strategies = StrategyFeed(holder)
        self.sessions = sessions or StickySessions(
            settings=settings, store=InProcessPins(max_entries=settings.sessions.max_entries))

    # -- public -------------------------------------------------------------------------

    @property
    def upstream_in_flight(self) -> int:
        """Upstream calls on the lean path open right now (streams count until closed)."""
        return self._wire.in_flight

    async def complete(self, request: ChatRequest, snapshot: Snapshot, *, session: KeySource | None = None,
                       attempts: list[AttemptRecord] | None = None) -> Outcome[dict[str, Any]]:
        """Answer `request`; every attempt is appended to `attempts` (the request's record), when given."""
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

        return await self._run(request, snapshot, call, session=session, attempts=attempts)

    async def open_stream(self, request: ChatRequest, snapshot: Snapshot, *, session: KeySource | None = None,
                          attempts: list[AttemptRecord] | None = None) -> Outcome[tuple[Any, Any]]:
        """Open a stream and read its first frame; failures before that fail over transparently.

        `attempts` gets every attempt, as for `complete`: hedged ones, and those of the
        stream's continuations after a break."""
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

        delay = self._settings.streams.hedge_after_s
        hedge = _Hedge(delay_s=delay, discard=_close_opened) if delay is not None else None
        outcome = await self._run(request, snapshot, call, hedge=hedge, session=session, attempts=attempts)
        assert outcome.walk is not None
        source, first = outcome.value
        opened = Opened(deployment=outcome.deployment, group=outcome.group, source=source, first=first)
        stream = ResumingStream(walk=_StreamWalk(self, outcome.walk, call), opened=opened, request=request,
                                settings=self._settings.streams, memory=self._prefill)
        try:
            head = await stream.next(timeouts.stream_first_token_s)
        except AttemptError as error:  # held tool-call frames, then a break nothing could continue
            stream.close()
            raise UpstreamFailed(f"The stream failed before it started: {error.message}", status=502,
                                 code="upstream_error") from None
        if head is None:
            raise UpstreamFailed(f"{outcome.deployment.model}: the stream ended before any data", status=502,
                                 code="upstream_error")
        outcome.value = (stream, head)
        return outcome

    # -- the walk -----------------------------------------------------------------------

    async def _run(
        self,
        request: ChatRequest,
        snapshot: Snapshot,
        call: Callable[[Deployment, dict[str, Any], float], Awaitable[T]],
        *,
        hedge: _Hedge | None = None,
        walk: _Walk | None = None,
        session: KeySource | None = None,
        attempts: list[AttemptRecord] | None = None,
    ) -> Outcome[T]:
        """Walk the request's chain; a given `walk` (a stream's continuation) keeps what it tried."""
        start_group = snapshot.resolve(request.model)
        if walk is None:
            walk = _Walk(request=request, snapshot=snapshot, hedge=hedge, attempts=[] if attempts is None else attempts,
                         deadline=time.monotonic() + self._settings.timeouts.request_deadline_s)
            walk.unfit = snapshot.fitness.unfit(tools=request.needs_tools, vision=request.needs_vision,
                                                prompt_tokens=request.prompt_tokens_estimate,
                                                image_output=request.needs_image_output)
            walk.pin = await self.sessions.open(start_group, session)
        queue = [start_group]
        visited = walk.visited = []
        while queue:
            group = queue.pop(0)
            if group in visited or group not in snapshot.pool.groups:
                continue
            visited.append(group)
            result = await self._try_group(walk, group, call)
            if result is not None:
                dep, answered, value = result
                return Outcome(value=value, deployment=dep, group=answered, requested_group=start_group,
                               attempts=walk.attempts, walk=walk, pin=await self.sessions.settle(walk.pin, dep.id))
            spec = snapshot.pool.groups[group]
            nexts = {"context": list(spec.context_window_fallbacks),
                     "policy": list(spec.content_policy_fallbacks)}.get(walk.next_groups, [])
            walk.next_groups = ""
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
    ) -> tuple[Deployment, str, T] | None:
        snapshot = walk.snapshot
        for order in snapshot.orders.get(group, ()):
            tries = 0
            again: Deployment | None = None  # asked again after its Retry-After
            while tries < self._settings.retries.attempts_per_group:
                if walk.remaining() <= 0.05:
                    return None
                dep = again or await self._pick(walk, group, order)
                if dep is None:
                    break
                if not await self._admit(walk, dep):
                    again = None
                    continue  # skipped like a cooled-down one; it is excluded from the next pick
                tries += 1
                if walk.attempts and again is None:
                    await self._backoff(walk, len(walk.attempts))
                again = None
                try:
                    dep, group, started, value = await self._attempt(walk, group, order, dep, call)
                except CallFailed as failed:
                    error = failed.error
                    self._after_failure(walk, failed.deployment, failed.group, error, failed.started)
                    if error.failure.walk in ("context", "policy"):
                        walk.next_groups = error.failure.walk
                        return None
                    again = await self._wait_out(walk, group, order, failed.deployment, error)
                    continue
                if _filtered(value) and snapshot.pool.groups[group].content_policy_fallbacks:
                    # The answer was withheld by a content filter and the group names where to try instead.
                    self._record(dep, group, "content_filter", 200, time.monotonic() - started, "", walk.attempts)
                    walk.last_error = AttemptError("content_filter", f"{dep.model}: answer withheld by a content filter")
                    walk.next_groups = "policy"
                    return None
                self._record(dep, group, "ok", 200, time.monotonic() - started, "", walk.attempts)
                self._cooldowns.record_success(dep.id)
                if dep.tpm is not None:
                    self._admission.spend_tokens(dep, _tokens_used(value, walk.request))
                return dep, group, value
        return None

    async def _attempt(
        self, walk: _Walk, group: str, order: int, dep: Deployment,
        call: Callable[[Deployment, dict[str, Any], float], Awaitable[T]],
    ) -> tuple[Deployment, str, float, T]:
        """One attempt, hedged when the walk hedges: (who answered, its group, when it started, the answer)."""
        started = time.monotonic()
        task = self._start(walk, group, dep, call)
        if walk.hedge is None:
            try:
                return dep, group, started, await task
            except AttemptError as error:
                raise CallFailed(deployment=dep, group=group, started=started, error=error) from None
        first = HedgedCall(deployment=dep, group=group, started=started, task=asyncio.ensure_future(task))
        winner, value = await race(first, delay_s=walk.hedge.delay_s,
                                   events=_HedgeEvents(self, walk, group=group, order=order, call=call,
                                                       current=dep))
        return winner.deployment, winner.group, winner.started, value

    def _start(self, walk: _Walk, group: str, dep: Deployment,
               call: Callable[[Deployment, dict[str, Any], float], Awaitable[T]]) -> Awaitable[T]:
        body = self._upstream_body(walk.request_of(dep), dep)
        attempt = call(dep, body, max(0.05, walk.remaining()))
        strategy = walk.snapshot.strategies.get(group)
        if strategy is None:
            return attempt
        return self._strategies.fed(group, strategy, dep, attempt, stream=walk.request.stream)

    async def _wait_out(self, walk: _Walk, group: str, order: int, dep: Deployment,
                        error: AttemptError) -> Deployment | None:
        """After a 429 with a short Retry-After and no peer in the tier: wait, and ask `dep` again."""
        if error.kind != "rate_limited" or error.retry_after is None or dep.id in walk.waited:
            return None
        peer = await self._router_pick(walk.snapshot, group, order, self._excluded(walk) | walk.tried,
                                       stream=walk.request.stream)
        wait = retry_after_wait(kind=error.kind, retry_after=error.retry_after,
                                cap_s=self._settings.retries.retry_after_wait_max_s, has_peer=peer is not None,
                                remaining_s=walk.remaining(), waited=dep.id in walk.waited)
        if wait is None:
            return None
        walk.waited.add(dep.id)
        await asyncio.sleep(wait)
        return dep

    async def _next_candidate(self, walk: _Walk, group: str, order: int,
                              exclude: set[str]) -> tuple[Deployment, str] | None:
        """Who the walk would ask next: the rest of this group's tiers, then its fallbacks."""
        snapshot = walk.snapshot
        base = self._excluded(walk) | walk.tried | exclude
        orders = snapshot.orders.get(group, ())
        chain = [(group, o) for o in orders[orders.index(order):]] if order in orders else []
        for fallback in snapshot.pool.groups[group].fallbacks:
            if fallback not in walk.visited and fallback in snapshot.pool.groups:
                chain += [(fallback, o) for o in snapshot.orders.get(fallback, ())]
        for candidate_group, candidate_order in chain:
            entry = await self._router_pick(snapshot, candidate_group, candidate_order, base,
                                            stream=walk.request.stream)
            if entry is not None:
                return snapshot.deployment(entry), candidate_group
        return None

    def _excluded(self, walk: _Walk) -> set[str]:
        """Deployments this request may not use: unfit, at their rpm/tpm limit, or free while the free quota is spent."""
        excluded = walk.unfit | walk.limited.keys() if walk.limited else walk.unfit
        if self.credits.out:
            excluded = excluded | walk.snapshot.fitness.paid_openrouter
        if walk.free_refused is not None or not self._budget.available():
            return excluded | walk.snapshot.fitness.free
        return excluded

    async def _admit(self, walk: _Walk, dep: Deployment) -> bool:
        """The free quota and the deployment's rpm/tpm let this attempt go (at most one shared-state call)."""
        if not self._admission.needs(dep):
            return True
        refusal = await self._admission.admit(dep)
        if refusal is None:
            return True
        if refusal.reason == "free_quota":
            walk.free_refused = refusal.retry_after_s
        else:
            walk.limited[dep.id] = refusal.retry_after_s
        return False

    async def _pick(self, walk: _Walk, group: str, order: int) -> Deployment | None:
        """Ask the Router for a deployment; prefer untried ones, allow a retry of a tried one."""
        snapshot = walk.snapshot
        base = self._excluded(walk)
        pinned = walk.pin.deployment_id if walk.pin is not None else None
        if pinned is not None and pinned not in walk.tried and \
                await snapshot.picker.pinned(group, order, pinned, exclude=base) is not None:
            return snapshot.deployment(pinned)
        # A tried deployment gets one more chance, only when nothing untried is left, and
        # never one that timed out without a word (it would most likely do it again).
        for exclude in (base | walk.tried, base | walk.retried | walk.silent):
            entry = await self._router_pick(snapshot, group, order, exclude, stream=walk.request.stream)
            if entry is not None:
                return snapshot.deployment(entry)
            if not walk.tried:
                break
        return None

    async def _router_pick(self, snapshot: Snapshot, group: str, order: int, exclude: set[str], *,
                           stream: bool = False) -> str | None:
        chosen = await snapshot.picker.pick(group, order, exclude, stream=stream)
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
        if error.kind == "timeout":
            walk.silent.add(dep.id)
        # A content-policy refusal is one provider's policy: the group's policy fallbacks and
        # fallbacks may answer; when none does, the final error says it was refused.
        if error.failure.walk == "client":
            raise self._final_error(walk, group)
        if error.kind == "daily_quota" and error.reset_at is not None:
            self._admission.exhaust(error.reset_at)
        if error.kind == "payment" and dep.id in walk.snapshot.fitness.paid_openrouter:
            # No credits: paid OpenRouter models are off until a refresh finds credit; free ones
            # (same credential) still answer, so the credential is not benched.
            if not self.credits.out:
                log.warning("OpenRouter answered 402 (no credits) for %s: paid OpenRouter models are not used "
                            "until a refresh finds credit", dep.model)
            self.credits.refused()
            return  # _excluded leaves them out from here on
        if error.failure.bench == "credential" and dep.credential is not None:
            # the same credential fails the same way for this request: do not spend attempts on it
            walk.unfit |= {d.id for d in walk.snapshot.pool.deployments.values() if d.credential == dep.credential}
        self._bench(walk, dep, error, started)

    def _bench(self, walk: _Walk, dep: Deployment, error: AttemptError, started: float) -> None:
        bench = self._cooldowns.after_failure(dep.id, error, started_at=started, credential=dep.credential,
                                              request_id=walk.token)
        if bench is None:
            return
        targets = [dep]
        if bench.credential_wide:
            targets = [d for d in walk.snapshot.pool.deployments.values() if d.credential == dep.credential]
        ids = [t.id for t in targets]
        self._holder.bench(ids, seconds=bench.seconds, reason=error, status=error.status or 500)
        if self._on_bench is not None:
            self._on_bench(ids, bench.seconds, error.status or 500, error.kind)
        for target in targets:
            self._observer.on_cooldown(target, bench.seconds, error.kind)

    def _record(
        self, dep: Deployment, group: str, outcome: str, status: int | None, latency: float, message: str,
        attempts: list[AttemptRecord],
    ) -> None:
        record = AttemptRecord(deployment_id=dep.id, model=dep.model, group=group, tier=dep.tier,
                               outcome=outcome, status=status, latency_s=latency, message=message)
        attempts.append(record)
        self._observer.on_attempt(record)

    def _final_error(self, walk: _Walk, start_group: str) -> GatewayError:
        """The request's final failure: every attempt, with status and code from the failure table."""
        error = walk.last_error
        if error is None:
            return self._nothing_available(walk, start_group)
        failure = error.failure
        attempts = tuple(walk.attempts)
        tried = f" ({len(attempts)} attempt{'s' if len(attempts) != 1 else ''}; last: {error.message})"
        if failure.walk == "client":
            return AllAttemptsFailed(f"The upstream refused the request: {error.message}", attempts=attempts,
                                     status=error.status or failure.status, code=failure.code,
                                     type_="invalid_request_error")
        if error.kind == "context_overflow":
            return AllAttemptsFailed(f"The prompt does not fit any deployment's context window{tried}.",
                                     attempts=attempts, status=failure.status, code=failure.code, param="messages",
                                     type_="invalid_request_error")
        if error.kind == "content_filter":
            return AllAttemptsFailed(f"Every answer was withheld by a content filter{tried}.", attempts=attempts,
                                     status=failure.status, code=failure.code, type_="invalid_request_error")
        if failure.status == 429:
            retry = error.retry_after or self._min_cooldown(walk, start_group) or 1.0
            return AllAttemptsFailed(f"All deployments for '{start_group}' are rate limited{tried}.",
                                     attempts=attempts, status=429, code="rate_limited", retry_after=retry)
        if error.kind == "timeout":
            return AllAttemptsFailed(f"No deployment answered in time{tried}.", attempts=attempts,
                                     status=failure.status, code=failure.code)
        if failure.bench == "credential":
            return AllAttemptsFailed(f"The upstream refused the gateway's credentials{tried}.", attempts=attempts,
                                     status=failure.status, code=failure.code)
        return AllAttemptsFailed(f"Every deployment for '{start_group}' failed{tried}.", attempts=attempts,
                                 status=failure.status, code=failure.code)

    def _nothing_available(self, walk: _Walk, start_group: str) -> GatewayError:
        request = walk.request
        pool = walk.snapshot.pool
        members = pool.groups[start_group].members
        if members and all(m.deployment_id in walk.unfit for m in members):
            needs = [n for n, on in (("tools", request.needs_tools), ("image input", request.needs_vision),
                                     ("image output", request.needs_image_output)) if on]
            what = " and ".join(needs) or f"a prompt of ~{request.prompt_tokens_estimate} tokens"
            code = "context_length_exceeded" if not needs else "unsupported_request"
            return InvalidRequest(f"No deployment behind '{start_group}' supports {what}.", param="model", code=code)
        if not members:
            return UpstreamFailed(f"'{start_group}' has no deployments right now.", status=503, code="no_deployments")
        cooling = self._min_cooldown(walk, start_group)
        limited = [walk.limited[m.deployment_id] for m in members if m.deployment_id in walk.limited]
        free_out = walk.free_refused is not None or not self._budget.available()
        if limited and all(m.deployment_id in walk.limited or m.deployment_id in walk.unfit or (
                free_out and m.deployment_id in walk.snapshot.fitness.free) for m in members):
            wait = min(limited)
            return UpstreamFailed(
                f"Every deployment for '{start_group}' is at its rpm/tpm limit; retry in {wait:.0f}s.",
                status=429, code="rate_limited", headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if self.credits.out and all(m.deployment_id in walk.snapshot.fitness.paid_openrouter for m in members):
            return UpstreamFailed(f"OpenRouter answered 402 (no credits) for paid models; '{start_group}' has only "
                                  "paid models. Add credits, or use a group with free models.",
                                  status=502, code="upstream_payment")
        if free_out and all(
            walk.snapshot.pool.deployments[m.deployment_id].tier == "free" for m in members
        ):
            wait = walk.free_refused or self._budget.retry_after()
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
        now = time.time()
        ends = litellm_internals.cooldown_ends(litellm_internals.active_cooldowns(snapshot.router, ids))
        return min(ends.values()) - now if ends else None

    # -- helpers ------------------------------------------------------------------------

    def _upstream_body(self, request: ChatRequest, dep: Deployment) -> dict[str, Any]:
        body = dict(request.body)
        body["model"] = dep.upstream_model
        cap = self._settings.pool.paid_max_tokens if dep.tier == "paid" else None
        if cap is not None:
            cap_output(body, cap)
        if dep.credential == OPENROUTER_CREDENTIAL and self._settings.pool.max_price:
            clamp_max_price(body, self._settings.pool.max_price)
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


def cap_output(body: dict[str, Any], cap: int) -> None:
    """Bound every field that bounds a paid answer's output: `n` choices of at most `cap // n`
    tokens each (so `n` cannot multiply the cap), whichever of `max_tokens` /
    `max_completion_tokens` the client sent (an upstream may read either), and the reasoning
    budgets (OpenRouter's `reasoning.max_tokens`, Anthropic's `thinking.budget_tokens`)."""
    n = body.get("n")
    choices = min(n, cap) if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    if choices > 1:
        body["n"] = choices
    per_choice = max(1, cap // choices)
    sent = [key for key in ("max_tokens", "max_completion_tokens") if isinstance(body.get(key), int)]
    for key in sent or ["max_tokens"]:
        body[key] = min(body.get(key) or per_choice, per_choice)
    for field_name, budget in (("reasoning", "max_tokens"), ("thinking", "budget_tokens")):
        section = body.get(field_name)
        if isinstance(section, dict) and isinstance(section.get(budget), (int, float)):
            body[field_name] = {**section, budget: min(section[budget], per_choice)}


def _tokens_used(value: Any, request: ChatRequest) -> int:
    """Tokens an answer spent, for tpm limits: its usage when it reports one, else the prompt's estimate."""
    usage = value.get("usage") if isinstance(value, dict) else None
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    return int(total) if isinstance(total, int) else request.prompt_tokens_estimate


def _filtered(value: Any) -> bool:
    """A non-stream answer whose first choice ended in `content_filter`."""
    if not isinstance(value, dict):
        return False
    choices = value.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return False
    return choices[0].get("finish_reason") == "content_filter"


def _close_opened(value: Any) -> None:
    source, _ = value
    source.close()


class _HedgeEvents:
    """`hedge.HedgeEvents` for one attempt of a walk."""

    def __init__(self, engine: Engine, walk: _Walk, *, group: str, order: int,
                 call: Callable[[Deployment, dict[str, Any], float], Awaitable[Any]], current: Deployment) -> None:
        self._engine = engine
        self._walk = walk
        self._group = group
        self._order = order
        self._call = call
        self._current = current

    async def start_next(self) -> HedgedCall[Any] | None:
        walk = self._walk
        while True:
            found = await self._engine._next_candidate(walk, self._group, self._order, {self._current.id})
            if found is None:
                return None
            dep, group = found
            if await self._engine._admit(walk, dep):
                break
        walk.tried.add(dep.id)
        task = asyncio.ensure_future(self._engine._start(walk, group, dep, self._call))
        return HedgedCall(deployment=dep, group=group, started=time.monotonic(), task=task)

    def failed(self, call: HedgedCall[Any], error: AttemptError) -> None:
        self._engine._after_failure(self._walk, call.deployment, call.group, error, call.started)

    def cancelled(self, call: HedgedCall[Any]) -> None:
        self._engine._record(call.deployment, call.group, "cancelled", None, time.monotonic() - call.started,
                             "hedged: another attempt answered first", self._walk.attempts)

    def discard(self, value: Any) -> None:
        assert self._walk.hedge is not None
        self._walk.hedge.discard(value)


class _StreamWalk:
    """`continuation.StreamWalk`: a broken stream's continuation runs the same walk again."""

    def __init__(self, engine: Engine, walk: _Walk,
                 call: Callable[[Deployment, dict[str, Any], float], Awaitable[tuple[Any, Frame]]]) -> None:
        self._engine = engine
        self._walk = walk
        self._call = call

    async def resume(self, request_for: Callable[[Deployment], ChatRequest]) -> Opened:
        walk = self._walk
        walk.request_for = request_for
        outcome = await self._engine._run(walk.request, walk.snapshot, self._call, walk=walk)
        source, first = outcome.value
        return Opened(deployment=outcome.deployment, group=outcome.group, source=source, first=first)

    def broke(self, deployment: Deployment, group: str, error: AttemptError, latency_s: float) -> None:
        walk, engine = self._walk, self._engine
        engine._record(deployment, group, error.kind, error.status, latency_s, error.message, walk.attempts)
        walk.tried.add(deployment.id)
        walk.retried.add(deployment.id)  # a stream that broke is not asked to go on with itself
        engine._bench(walk, deployment, error, time.monotonic() - latency_s)

    def resumed(self, outcome: str) -> None:
        self._engine._observer.on_resume(outcome)

    def malformed(self, deployment: Deployment, count: int) -> None:
        self._engine._observer.on_malformed(deployment, count)

    def refused_prefill(self) -> set[str]:
        return {a.deployment_id for a in self._walk.attempts if a.outcome == "prefill_unsupported"}
