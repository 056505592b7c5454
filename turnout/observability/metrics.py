"""Every Prometheus metric Turnout exports, declared once, on the app's own registry.

The lifespan builds one `Metrics` per app (never at import time) and feeds it from four
places:

    MetricsObserver    the engine's AttemptObserver: attempts, cooldowns
    RefreshMetrics     the PoolManager's RefreshObserver: pool gauges on every publish, refreshes
    RequestMeter       one per client request, opened and closed by `turnout.api.chat.serve`
                       (the flow every API surface shares), told the outcome and usage by the
                       request log; holds the request's attempts, appended by the engine's walk
    RuntimeCollector   read at scrape time: free-tier budget, catalogue, cooldowns,
                       upstream calls open now

Label values are bounded. `alias` is a configured alias or static deployment name, `model`
(a pool model asked for by its id) or `other` (an unknown name, or a request that never got
that far). `model` is a model id in the current pool, else `other`; the series of a model
that leaves the pool are removed. `outcome` is `ok` or an `AttemptError` kind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from turnout.errors import AttemptRecord
from turnout.observability.activity import RecentActivity
from turnout.observability.usage import Cost, usage_tokens
from turnout.pool.model import Deployment, Pool
from turnout.pool.refresh import RefreshObserver
from turnout.routing.engine import AttemptObserver
from turnout.routing.sticky import PIN_RESULTS, PinResult
from turnout.upstream import litellm_internals

if TYPE_CHECKING:
    from turnout.pool.refresh import PoolManager
    from turnout.routing.engine import Engine, Outcome
    from turnout.routing.free_tier import FreeTierBudget
    from turnout.routing.snapshot import Snapshot, SnapshotHolder

OTHER = "other"
DIRECT_MODEL = "model"
TOKEN_KINDS = ("prompt", "completion", "reasoning")  # the order usage_tokens returns
RESUME_OUTCOMES = ("prefill", "restart", "retry", "diverged", "failed", "exhausted", "ineligible")
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
_TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)
_OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_REFRESH_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else OTHER


def cooling_down(snapshot: Snapshot, now: float | None = None) -> dict[str, float]:
    """Deployment id -> seconds of cooldown left, read from the Router's cooldown cache."""
    owner = {eid: dep_id for dep_id, eids in snapshot.entries.items() for eid in eids}
    if not owner:
        return {}
    ends = litellm_internals.cooldown_ends(litellm_internals.active_cooldowns(snapshot.router, list(owner)))
    now = time.time() if now is None else now
    left: dict[str, float] = {}
    for eid, end in ends.items():
        dep_id = owner.get(eid)
        if dep_id is not None:
            left[dep_id] = max(left.get(dep_id, 0.0), end - now)
    return {k: v for k, v in left.items() if v > 0}


class Labelled:
    """A labelled metric family whose children are cached: `labels()` validates and locks on every call."""

    __slots__ = ("_children", "family", "names")

    def __init__(self, family: Any, names: tuple[str, ...]) -> None:
        self.family = family
        self.names = names
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.family.labels(*values)
        return child

    def clear(self) -> None:
        self._children.clear()
        self.family.clear()

    def forget(self, name: str, value: str) -> None:
        """Remove every series whose label `name` is `value` (all series are made through `__call__`)."""
        index = self.names.index(name)
        for key in [k for k in self._children if k[index] == value]:
            del self._children[key]
            self.family.remove(*key)


class Metrics:
    """The registry and every metric family Turnout exports."""

    def __init__(self, *, version: str = "") -> None:
        self.registry = r = CollectorRegistry()
        self.activity = RecentActivity()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        Info("turnout_build", "Turnout's version.", registry=r).info({"version": version})

        def counter(name: str, doc: str, *labels: str) -> Labelled:
            return Labelled(Counter(name, doc, labels, registry=r), labels)

        def gauge(name: str, doc: str, *labels: str) -> Labelled:
            return Labelled(Gauge(name, doc, labels, registry=r), labels)

        def histogram(name: str, doc: str, buckets: tuple[float, ...], *labels: str) -> Labelled:
            return Labelled(Histogram(name, doc, labels, buckets=buckets, registry=r), labels)

        # -- client requests (POST /v1/chat/completions) -----------------------------------
        self.requests = counter("turnout_requests_total", "Client requests (chat, messages, responses).",
                                "api", "alias", "status_class", "stream")
        self.request_duration = histogram(
            "turnout_request_duration_seconds", "Client request time, to the end of the response body.",
            _LATENCY_BUCKETS, "api", "alias", "stream")
        self.time_to_first_token = histogram(
            "turnout_time_to_first_token_seconds", "Streams: request start to the first SSE frame sent.",
            _TTFT_BUCKETS, "api", "alias")
        self.in_flight = Gauge("turnout_requests_in_flight", "Client chat requests being served now.",
                               registry=r)
        self.overhead = Histogram(
            "turnout_gateway_overhead_seconds",
            "Answered requests: time not spent waiting on upstream attempts (includes retry backoff).",
            buckets=_OVERHEAD_BUCKETS, registry=r)
        self.retries = counter("turnout_retries_total", "Upstream attempts after a request's first.", "alias")
        self.session_pins = counter("turnout_session_pins_total",
                                    "Sticky sessions: requests that kept their pinned deployment (pinned), had "
                                    "none yet (new) or were re-pinned after it failed or left (moved).", "result")
        for result in PIN_RESULTS:
            self.session_pins(result)
        self.fallbacks = counter("turnout_fallbacks_total",
                                 "Requests answered by a fallback group instead of the requested one.",
                                 "from_group", "to_group")

        # -- upstream ----------------------------------------------------------------------
        self.attempts = counter("turnout_upstream_attempts_total", "Upstream attempts by outcome.",
                                "model", "tier", "outcome")
        self.attempt_duration = histogram(
            "turnout_upstream_attempt_duration_seconds",
            "Time one upstream attempt took (streams: until the first frame).",
            _LATENCY_BUCKETS, "tier", "result")
        self.cooldowns = counter("turnout_cooldowns_total", "Deployments benched (cooldown entered).",
                                 "model", "tier", "reason")
        self.stream_resumes = counter(
            "turnout_stream_resumes_total",
            "Streams that broke after they started: continued (prefill, restart, retry) or not (diverged, "
            "failed, exhausted, ineligible).", "outcome")
        for outcome in RESUME_OUTCOMES:
            self.stream_resumes(outcome)
        self.malformed_frames = counter("turnout_stream_malformed_frames_total",
                                        "Stream events skipped because their JSON did not parse.", "model", "tier")

        # -- usage -------------------------------------------------------------------------
        self.tokens = counter("turnout_tokens_total",
                              "Tokens from upstream usage; reasoning tokens are part of completion tokens.",
                              "model", "tier", "kind")
        self.cost = counter("turnout_cost_usd_total",
                            "USD spent: upstream usage.cost, else tokens x catalogue prices.", "model", "tier")

        # -- the pool, set on every publish --------------------------------------------------
        self.pool_deployments = gauge("turnout_pool_deployments", "Members of each alias by tier.",
                                      "alias", "tier")
        self.pool_models = gauge("turnout_pool_models", "Distinct deployments in the pool by tier.", "tier")
        self.deployment_health = gauge("turnout_deployment_health",
                                       "Active health score (0-1) of each pool model, where it was read.",
                                       "model", "tier")
        self.deployment_score = gauge("turnout_deployment_score",
                                      "Ranking score (0-1) of each pool model: static score blended with health.",
                                      "model", "tier")
        self.pool_built = Gauge("turnout_pool_built_timestamp_seconds", "When the live pool was built.",
                                registry=r)
        self.pool_degraded = Gauge("turnout_pool_degraded",
                                   "1 when the live pool is persisted or static-only (see /readyz).", registry=r)
        self.refreshes = counter("turnout_pool_refreshes_total", "Pool refreshes by kind and outcome.",
                                 "kind", "outcome")
        self.refresh_duration = histogram("turnout_pool_refresh_duration_seconds", "Pool refresh time.",
                                          _REFRESH_BUCKETS, "kind")

        self.active = 0  # client chat requests being served; the in-flight gauge reads it
        self.in_flight.set_function(lambda: self.active)
        self._groups: Mapping[str, str] = {}
        self._groups_lower: Mapping[str, str] = {}
        self._models: Mapping[str, str] = {}

    def busy(self) -> bool:
        """Client requests are being served (a pool rebuild then yields most of the core)."""
        return self.active > 0

    # -- labels --------------------------------------------------------------------------

    def group_label(self, name: str | None) -> str:
        if not name:
            return OTHER
        found = self._groups.get(name)
        return found if found is not None else self._groups_lower.get(name.lower(), OTHER)

    def model_label(self, model: str) -> str:
        return model if model in self._models else OTHER

    # -- feeds ---------------------------------------------------------------------------

    def attempt(self, record: AttemptRecord) -> None:
        self.attempts(self.model_label(record.model), record.tier, record.outcome).inc()
        self.attempt_duration(record.tier, "ok" if record.outcome == "ok" else "error").observe(record.latency_s)
        self.activity.attempt(record.model, record.outcome)

    def cooldown(self, deployment: Deployment, kind: str) -> None:
        self.cooldowns(self.model_label(deployment.model), deployment.tier, kind).inc()

    def usage(self, deployment: Deployment, usage: Any, cost: Cost | None) -> None:
        model, tier = self.model_label(deployment.model), deployment.tier
        for kind, count in zip(TOKEN_KINDS, usage_tokens(usage), strict=True):
            if count:
                self.tokens(model, tier, kind).inc(count)
        if cost is not None and cost.usd > 0:
            self.cost(model, tier).inc(cost.usd)

    def publish(self, pool: Pool) -> None:
        """A new pool is live: relabel, reset the pool gauges, drop the series of models that left."""
        self._groups = {name: (name if g.kind != "model" else DIRECT_MODEL) for name, g in pool.groups.items()}
        self._groups_lower = {name.lower(): label for name, label in self._groups.items()}
        models = {d.model: d.tier for d in pool.deployments.values()}
        for gone in set(self._models) - set(models):
            for family in (self.attempts, self.cooldowns, self.tokens, self.cost, self.malformed_frames):
                family.forget("model", gone)
        self._models = models
        self._set_pool_gauges(pool)

    def _set_pool_gauges(self, pool: Pool) -> None:
        for family in (self.pool_deployments, self.pool_models, self.deployment_health, self.deployment_score):
            family.clear()
        by_tier: dict[str, int] = {}
        for dep in pool.deployments.values():
            by_tier[dep.tier] = by_tier.get(dep.tier, 0) + 1
        for tier, count in by_tier.items():
            self.pool_models(tier).set(count)
        health: dict[tuple[str, str], float] = {}
        score: dict[tuple[str, str], float] = {}
        for group in pool.groups.values():
            counts: dict[str, int] = {}
            for member in group.members:
                dep = pool.deployments[member.deployment_id]
                counts[dep.tier] = counts.get(dep.tier, 0) + 1
                key = (dep.model, dep.tier)
                score[key] = max(score.get(key, 0.0), member.score)
                if member.health is not None:
                    health[key] = max(health.get(key, 0.0), member.health)
            if group.kind != "model":
                for tier, count in counts.items():
                    self.pool_deployments(group.name, tier).set(count)
        for (model, tier), value in health.items():
            self.deployment_health(model, tier).set(value)
        for (model, tier), value in score.items():
            self.deployment_score(model, tier).set(value)
        self.pool_built.set(pool.built_at)
        self.pool_degraded.set(1 if pool.degraded_reason else 0)

    def refreshed(self, *, kind: str, outcome: str, duration_s: float) -> None:
        self.refreshes(kind, outcome).inc()
        self.refresh_duration(kind).observe(duration_s)

    def pinned(self, result: PinResult) -> None:
        self.session_pins(result).inc()

    def open_request(self, *, api: str = "chat") -> RequestMeter:
        self.active += 1
        meter = RequestMeter(self)
        meter.api = api
        return meter

    def close_request(self, meter: RequestMeter) -> None:
        now = time.monotonic()
        self.active -= 1
        alias = self.group_label(meter.group or meter.requested)
        stream = "true" if meter.stream else "false"
        klass = status_class(meter.status or 500)
        self.requests(meter.api, alias, klass, stream).inc()
        self.request_duration(meter.api, alias, stream).observe(now - meter.started)
        if meter.stream and meter.first_byte_at is not None and klass == "2xx":
            self.time_to_first_token(meter.api, alias).observe(meter.first_byte_at - meter.started)
        # Attempts after the reply started (a stream continued after a break) are neither
        # retries nor time the client waited before the first byte.
        attempts = meter.attempts
        count = len(attempts) if meter.status is None else meter.before_reply
        if count > meter.calls:
            self.retries(alias).inc(count - meter.calls)
        # Parallel calls' upstream times overlap: the sum says nothing of the gateway's own time.
        if meter.answered and count and meter.calls == 1:
            upstream_s = 0.0
            for index in range(count):
                upstream_s += attempts[index].latency_s
            until = meter.first_byte_at if meter.stream and meter.first_byte_at is not None else now
            self.overhead.observe(max(0.0, until - meter.started - upstream_s))
        self.activity.request(klass, api=meter.api)

    def watch(self, *, budget: FreeTierBudget, manager: PoolManager, holder: SnapshotHolder, engine: Engine,
              shared: Callable[[], Mapping[str, Any]] | None = None) -> None:
        """Register the scrape-time collector over the lifespan's live objects."""
        self.registry.register(RuntimeCollector(metrics=self, budget=budget, manager=manager, holder=holder,
                                                engine=engine, shared=shared))


class RequestMeter:
    """What one client request did, gathered while it runs; recorded once, when it ends."""

    __slots__ = (
        "_metrics",
        "answered",
        "api",
        "attempts",
        "before_reply",
        "calls",
        "first_byte_at",
        "group",
        "requested",
        "started",
        "status",
        "stream",
    )

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self.api = "chat"
        self.started = time.monotonic()
        self.requested: str | None = None
        self.group: str | None = None
        self.stream = False
        self.status: int | None = None
        self.first_byte_at: float | None = None
        # Every attempt of this request, hedged and continued ones too: the engine's walk
        # appends to this list (`Engine.complete(attempts=...)`); the log line lists it.
        self.attempts: list[AttemptRecord] = []
        self.before_reply = 0  # how many of them were made before the reply started
        self.answered = False
        self.calls = 1  # engine calls made in parallel (`n` images): the first attempt of each is no retry

    def begin(self, *, requested: str, stream: bool, calls: int = 1) -> None:
        self.requested, self.stream, self.calls = requested, stream, calls

    def replied(self, status: int) -> None:
        """The reply starts with `status` (or an error does)."""
        self.status = status
        self.before_reply = len(self.attempts)

    def finished(self, outcome: Outcome[Any], *, usage: Any, cost: Cost | None) -> None:
        self.answered = True
        self.group = outcome.requested_group
        metrics = self._metrics
        if outcome.fallback:
            metrics.fallbacks(metrics.group_label(outcome.requested_group), metrics.group_label(outcome.group)).inc()
        metrics.usage(outcome.deployment, usage, cost)


class MetricsObserver(AttemptObserver):
    """The engine's attempts and cooldowns into metrics (the request's own attempts reach its
    meter through the walk, not through here)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def on_attempt(self, record: AttemptRecord) -> None:
        self._metrics.attempt(record)

    def on_cooldown(self, deployment: Deployment, seconds: float, kind: str) -> None:
        self._metrics.cooldown(deployment, kind)

    def on_resume(self, outcome: str) -> None:
        self._metrics.stream_resumes(outcome).inc()

    def on_malformed(self, deployment: Deployment, count: int) -> None:
        self._metrics.malformed_frames(self._metrics.model_label(deployment.model), deployment.tier).inc(count)


class RefreshMetrics(RefreshObserver):
    """The PoolManager's publishes and refresh outcomes into metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def on_publish(self, pool: Pool) -> None:
        self._metrics.publish(pool)

    def on_refresh(self, *, kind: str, outcome: str, duration_s: float) -> None:
        self._metrics.refreshed(kind=kind, outcome=outcome, duration_s=duration_s)


class RuntimeCollector(Collector):
    """Values that are cheapest read when Prometheus asks: budget, catalogue, cooldowns now."""

    def __init__(self, *, metrics: Metrics, budget: FreeTierBudget, manager: PoolManager,
                 holder: SnapshotHolder, engine: Engine,
                 shared: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self._shared = shared
        self._metrics = metrics
        self._engine = engine
        self._budget = budget
        self._manager = manager
        self._holder = holder

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        budget = self._budget
        exhausted = not budget.available() and budget.exhausted_until is not None
        remaining = GaugeMetricFamily("turnout_free_tier_remaining_requests",
                                      "Free-model requests left in Turnout's account-wide budget.",
                                      labels=("window",))
        remaining.add_metric(("minute",), budget.remaining_minute())
        day = budget.remaining_day()
        if day is not None:
            remaining.add_metric(("day",), day)
        yield remaining
        yield GaugeMetricFamily("turnout_free_tier_exhausted",
                                "1 while OpenRouter's daily free quota is spent (until its reset).",
                                value=1 if exhausted else 0)
        status = self._manager.status()
        yield GaugeMetricFamily("turnout_catalogue_models", "Models in the last catalogue read.",
                                value=status["catalogue_models"])
        last = status["last_success_at"]
        if last is not None:
            yield GaugeMetricFamily("turnout_pool_last_success_timestamp_seconds",
                                    "When the last pool refresh succeeded.", value=last)
        yield GaugeMetricFamily("turnout_pool_refresh_consecutive_failures",
                                "Pool refreshes failed in a row (0 once one succeeds); retried with backoff.",
                                value=status["consecutive_failures"])
        yield GaugeMetricFamily("turnout_health_gated_models",
                                "Candidate models kept out of the pool by active health (no serving endpoint, "
                                "low uptime).", value=len(self._manager.gated()))
        cycle = self._manager.health_cycle  # None until a cycle ran (or with active health off): 0 then
        yield GaugeMetricFamily("turnout_health_reads_failed",
                                "Models whose /endpoints read failed in the last active health cycle.",
                                value=len(cycle.failed) if cycle else 0)
        yield GaugeMetricFamily("turnout_health_stale",
                                "1 when most reads of the last health cycle failed and the previous "
                                "cycle's results were kept.", value=1 if cycle and cycle.stale else 0)
        yield GaugeMetricFamily("turnout_upstream_requests_in_flight",
                                "Upstream calls open right now on the lean OpenAI-wire path (streams until closed).",
                                value=self._engine.upstream_in_flight)
        yield self._cooling()
        if self._shared is not None:  # only with shared_state configured
            shared = self._shared()
            yield GaugeMetricFamily("turnout_shared_state_up",
                                    "1 while Redis (the state replicas share) answers; 0 while this replica "
                                    "serves from its local state.", value=1 if shared.get("up") else 0)
            yield GaugeMetricFamily("turnout_shared_state_leader",
                                    "1 on the replica that leads the pool refresh.",
                                    value=1 if shared.get("leader") else 0)
            yield GaugeMetricFamily("turnout_shared_pool_version", "The shared pool version this replica serves.",
                                    value=float(shared.get("pool_version") or 0))

    def _cooling(self) -> Metric:
        family = GaugeMetricFamily("turnout_deployment_cooling_down",
                                   "1 while a pool model is benched in the Router (429, failures, bad credential).",
                                   labels=("model", "tier"))
        snapshot = self._holder.current
        if snapshot is None:
            return family
        cooling = cooling_down(snapshot)
        state: dict[tuple[str, str], int] = {}
        for dep in snapshot.pool.deployments.values():
            key = (self._metrics.model_label(dep.model), dep.tier)
            state[key] = max(state.get(key, 0), 1 if dep.id in cooling else 0)
        for (model, tier), value in state.items():
            family.add_metric((model, tier), value)
        return family
