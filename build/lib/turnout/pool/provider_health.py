"""Provider health: active reads of OpenRouter's `/endpoints`, passive stats from our traffic.

Active health of one model, from its endpoints (`parse_endpoints` -> `health_score`)::

    gated  when the model has no endpoint, when no endpoint serves (every status known
           and none is 0), or when the best uptime is below `health.min_uptime`
    U = clip((best_uptime - min_uptime) / (100 - min_uptime), 0, 1)
    L = 1 / (1 + best_p50_latency_ms / 2000)         (2 s -> 0.5)
    T = best_p50_throughput / (best_p50_throughput + 50)   (50 tok/s -> 0.5)
    score = (0.6*U + 0.2*L + 0.2*T) / (weights of the terms present), or None when no
            term is present (unknown health)

Best values come from the endpoints that serve (status 0) or whose status is unknown.
An endpoint's uptime is `uptime_last_30m`, else `uptime_last_1d`, else `uptime_last_5m`;
latency and throughput are null unless the read is authenticated.

Passive health (`PassiveStats`) is a rolling window per deployment of our own outcomes;
`passive_factor` turns it into a multiplier in [0, 1] that selection applies to the
blended score.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import quote

import httpx

from turnout.config import HealthSettings

UPTIME_KEYS = ("uptime_last_30m", "uptime_last_1d", "uptime_last_5m")
HEALTH_WEIGHTS = {"uptime": 0.6, "latency": 0.2, "throughput": 0.2}
LATENCY_REF_MS = 2000.0
THROUGHPUT_REF_TPS = 50.0


@dataclass(frozen=True, slots=True)
class HealthReading:
    endpoints: int
    serving: int
    unknown_status: int
    best_uptime: float | None
    best_latency_ms: float | None
    best_throughput_tps: float | None


@dataclass(frozen=True, slots=True)
class HealthScore:
    score: float | None
    gated: bool = False
    reason: str | None = None
    reading: HealthReading | None = None
    read_at: float | None = None


@dataclass(frozen=True, slots=True)
class HealthCycle:
    """One round of active reads: a score per model id, and what went wrong."""

    scores: Mapping[str, HealthScore]
    failed: Mapping[str, str]
    stale: bool
    read_at: float


# --- parsing and scoring -------------------------------------------------------------


def parse_endpoints(payload: Mapping[str, Any]) -> HealthReading:
    """A reading from an `/endpoints` response (or a bare `endpoints[]` element)."""
    endpoints = [e for e in _endpoint_list(payload) or [] if isinstance(e, Mapping)]
    statuses = [_status(e) for e in endpoints]
    usable = [e for e, s in zip(endpoints, statuses, strict=True) if s is None or s == 0] or endpoints
    return HealthReading(
        endpoints=len(endpoints),
        serving=sum(1 for s in statuses if s == 0),
        unknown_status=sum(1 for s in statuses if s is None),
        best_uptime=_best(_uptime(e) for e in usable),
        best_latency_ms=_best((_p50(e.get("latency_last_30m")) for e in usable), lowest=True),
        best_throughput_tps=_best(_p50(e.get("throughput_last_30m")) for e in usable),
    )


def _endpoint_list(payload: Mapping[str, Any]) -> list[Any] | None:
    """The endpoints array, or None when `payload` holds none."""
    if not isinstance(payload, Mapping):
        return None
    data = payload.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("endpoints"), list):
        return list(data["endpoints"])
    if isinstance(payload.get("endpoints"), list):
        return list(payload["endpoints"])
    if "provider_name" in payload or "status" in payload:
        return [payload]
    return None


def _status(endpoint: Mapping[str, Any]) -> int | None:
    raw = endpoint.get("status")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    return int(raw)


def _uptime(endpoint: Mapping[str, Any]) -> float | None:
    return next((v for v in (_num(endpoint.get(k)) for k in UPTIME_KEYS) if v is not None), None)


def _p50(raw: Any) -> float | None:
    return _num(raw.get("p50")) if isinstance(raw, Mapping) else None


def _num(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    return float(raw)


def _best(values: Iterable[float | None], *, lowest: bool = False) -> float | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return min(present) if lowest else max(present)


def health_score(reading: HealthReading, *, settings: HealthSettings) -> HealthScore:
    """Gate or score a reading (formula in the module docstring)."""
    reason = _gate_reason(reading, settings=settings)
    if reason is not None:
        return HealthScore(score=None, gated=True, reason=reason, reading=reading)
    terms = {
        "uptime": _uptime_term(reading.best_uptime, min_uptime=settings.min_uptime),
        "latency": None if reading.best_latency_ms is None else 1 / (1 + reading.best_latency_ms / LATENCY_REF_MS),
        "throughput": None
        if reading.best_throughput_tps is None
        else reading.best_throughput_tps / (reading.best_throughput_tps + THROUGHPUT_REF_TPS),
    }
    present = {name: value for name, value in terms.items() if value is not None}
    if not present:
        return HealthScore(score=None, reading=reading)
    weight = sum(HEALTH_WEIGHTS[name] for name in present)
    score = sum(HEALTH_WEIGHTS[name] * value for name, value in present.items()) / weight
    return HealthScore(score=round(score, 6), reading=reading)


def _gate_reason(reading: HealthReading, *, settings: HealthSettings) -> str | None:
    if reading.endpoints == 0:
        return "no endpoints"
    if reading.serving == 0 and reading.unknown_status == 0:
        return f"no endpoint serving (0 of {reading.endpoints})"
    if reading.best_uptime is not None and reading.best_uptime < settings.min_uptime:
        return f"best uptime {reading.best_uptime:.1f}% below {settings.min_uptime:g}%"
    return None


def _uptime_term(uptime: float | None, *, min_uptime: float) -> float | None:
    if uptime is None:
        return None
    if min_uptime >= 100:
        return 1.0 if uptime >= 100 else 0.0
    return min(1.0, max(0.0, (uptime - min_uptime) / (100 - min_uptime)))


# --- active reads --------------------------------------------------------------------


def endpoints_url(base_url: str, model_id: str) -> str:
    """`{base}/models/{author}/{slug}/endpoints`, each part quoted, `:free` kept."""
    author, sep, slug = model_id.partition("/")
    if not sep or not author or not slug:
        raise ValueError(f"model id {model_id!r} is not author/slug")
    return f"{base_url.rstrip('/')}/models/{quote(author, safe='')}/{quote(slug, safe=':')}/endpoints"


async def read_health(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    api_key: str | None,
    model_ids: Sequence[str],
    settings: HealthSettings,
    previous: Mapping[str, HealthScore],
) -> HealthCycle:
    """Read `/endpoints` for `model_ids`; a failed read keeps `previous[id]`.

    When more than `settings.keep_previous_when_failed_share` of the reads fail, the
    whole `previous` mapping comes back with `stale=True`: an outage of the health API
    must not gate the pool.
    """
    semaphore = asyncio.Semaphore(settings.concurrency)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    ids = list(dict.fromkeys(model_ids))

    async def one(model_id: str) -> tuple[str, HealthScore | None, str | None]:
        async with semaphore:
            return await _read_one(client, base_url=base_url, model_id=model_id, headers=headers, settings=settings)

    results = await asyncio.gather(*(one(model_id) for model_id in ids))
    read_at = time.time()
    failed = {model_id: error for model_id, _, error in results if error is not None}
    if ids and len(failed) / len(ids) > settings.keep_previous_when_failed_share:
        return HealthCycle(
            scores=MappingProxyType(dict(previous)), failed=MappingProxyType(failed), stale=True, read_at=read_at
        )
    scores: dict[str, HealthScore] = {}
    for model_id, score, _ in results:
        kept = score if score is not None else previous.get(model_id)
        if kept is not None:
            scores[model_id] = kept
    return HealthCycle(scores=MappingProxyType(scores), failed=MappingProxyType(failed), stale=False, read_at=read_at)


async def _read_one(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    model_id: str,
    headers: Mapping[str, str],
    settings: HealthSettings,
) -> tuple[str, HealthScore | None, str | None]:
    try:
        url = endpoints_url(base_url, model_id)
    except ValueError as exc:
        return model_id, None, str(exc)
    try:
        async with asyncio.timeout(settings.timeout_s):  # total, not per phase as httpx's
            response = await client.get(url, headers=dict(headers), timeout=settings.timeout_s)
    except (TimeoutError, httpx.TimeoutException):
        return model_id, None, "timeout"
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return model_id, None, type(exc).__name__
    if response.status_code != 200:
        return model_id, None, f"HTTP {response.status_code}"
    try:
        payload = response.json()
    except ValueError:
        return model_id, None, "response is not JSON"
    if _endpoint_list(payload) is None:
        return model_id, None, "response has no endpoints list"
    score = health_score(parse_endpoints(payload), settings=settings)
    return model_id, dataclasses.replace(score, read_at=time.time()), None


# --- passive health ------------------------------------------------------------------

Outcome = Literal["success", "rate_limited", "error"]
_OUTCOME_ALIASES: Mapping[str, Outcome] = {
    "success": "success",
    "ok": "success",
    "rate_limited": "rate_limited",
    "429": "rate_limited",
    "error": "error",
}
PASSIVE_MIN_SAMPLES = 5
PASSIVE_FULL_CONFIDENCE = 20
RATE_LIMIT_COST = 0.5  # a 429 says "busy", weaker evidence than an error


@dataclass(frozen=True, slots=True)
class PassiveHealth:
    samples: int
    success_rate: float
    rate_limited_rate: float
    error_rate: float
    p50_latency_s: float | None


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    outcome: Outcome
    latency_s: float


class PassiveStats:
    """Rolling window of our own outcomes per deployment: the last `window` samples not
    older than `max_age_s`. Mutable, owned by the app; `snapshot()` is immutable."""

    def __init__(self, *, window: int = 50, max_age_s: float = 600.0) -> None:
        if window < 1 or max_age_s <= 0:
            raise ValueError("window must be >= 1 and max_age_s > 0")
        self._window = window
        self._max_age_s = max_age_s
        self._samples: dict[str, deque[_Sample]] = {}

    def record(self, deployment_id: str, outcome: str, *, latency_s: float, now: float | None = None) -> None:
        """`outcome` is "success", "rate_limited" (or "429") or "error"."""
        kind = _OUTCOME_ALIASES.get(outcome)
        if kind is None:
            raise ValueError(f"unknown outcome {outcome!r}; expected one of {sorted(_OUTCOME_ALIASES)}")
        at = time.time() if now is None else now
        window = self._samples.setdefault(deployment_id, deque(maxlen=self._window))
        window.append(_Sample(at=at, outcome=kind, latency_s=max(0.0, latency_s)))

    def snapshot(self, now: float | None = None) -> Mapping[str, PassiveHealth]:
        """Per-deployment stats over the samples still inside the window."""
        cutoff = (time.time() if now is None else now) - self._max_age_s
        result: dict[str, PassiveHealth] = {}
        for deployment, window in list(self._samples.items()):
            while window and window[0].at < cutoff:
                window.popleft()
            if not window:
                del self._samples[deployment]
                continue
            result[deployment] = _summarise(list(window))
        return MappingProxyType(result)


def _summarise(samples: Sequence[_Sample]) -> PassiveHealth:
    n = len(samples)
    count = {kind: sum(1 for s in samples if s.outcome == kind) for kind in ("success", "rate_limited", "error")}
    latencies = [s.latency_s for s in samples if s.outcome == "success"]
    return PassiveHealth(
        samples=n,
        success_rate=count["success"] / n,
        rate_limited_rate=count["rate_limited"] / n,
        error_rate=count["error"] / n,
        p50_latency_s=statistics.median(latencies) if latencies else None,
    )


def passive_factor(ph: PassiveHealth | None) -> float:
    """A multiplier in [0, 1]: 1.0 below 5 samples, full weight from 20 samples on::

    factor = 1 - confidence * (error_rate + 0.5 * rate_limited_rate)
    confidence = min(1, samples / 20)
    """
    if ph is None or ph.samples < PASSIVE_MIN_SAMPLES:
        return 1.0
    confidence = min(1.0, ph.samples / PASSIVE_FULL_CONFIDENCE)
    badness = ph.error_rate + RATE_LIMIT_COST * ph.rate_limited_rate
    return min(1.0, max(0.0, 1.0 - confidence * badness))
