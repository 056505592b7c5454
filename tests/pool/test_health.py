"""Active health from real `/endpoints` responses, and passive health from our traffic."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import turnout
from turnout.config import HealthSettings
from turnout.pool.provider_health import (
    HealthReading,
    PassiveHealth,
    PassiveStats,
    endpoints_url,
    health_score,
    parse_endpoints,
    passive_factor,
)

ENDPOINTS = Path(turnout.__file__).parent / "data" / "openrouter" / "endpoints"
SETTINGS = HealthSettings()


def load(name: str) -> dict[str, Any]:
    return json.loads((ENDPOINTS / name).read_text())


def kimi_endpoint() -> dict[str, Any]:
    return copy.deepcopy(load("kimi-k3_endpoints_20260825.json")["data"]["endpoints"][0])


def with_endpoints(endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": {"id": "moonshotai/kimi-k3", "endpoints": endpoints}}


@pytest.mark.parametrize(
    ("name", "reading"),
    [
        (
            "kimi-k3_endpoints_20260825.json",
            # Two of four serve; best values come from the two serving Fireworks endpoints.
            HealthReading(endpoints=4, serving=2, unknown_status=0, best_uptime=99.82397465234993,
                          best_latency_ms=814.5, best_throughput_tps=86.0),
        ),
        (
            "deepseek-chat-v3.1_endpoints_rust_test.json",
            HealthReading(endpoints=1, serving=1, unknown_status=0, best_uptime=99.33169971040321,
                          best_latency_ms=None, best_throughput_tps=None),
        ),
        (
            "azure_claude-fable-5.1_endpoint_element.json",  # a bare element; only the 1d uptime
            HealthReading(endpoints=1, serving=1, unknown_status=0, best_uptime=99.45459503681484,
                          best_latency_ms=None, best_throughput_tps=None),
        ),
    ],
)
def test_real_endpoint_files_parse(name: str, reading: HealthReading) -> None:
    assert parse_endpoints(load(name)) == reading


def test_kimi_scores_with_uptime_latency_and_throughput() -> None:
    result = health_score(parse_endpoints(load("kimi-k3_endpoints_20260825.json")), settings=SETTINGS)
    uptime = (99.82397465234993 - 80) / 20
    latency = 1 / (1 + 814.5 / 2000)
    throughput = 86 / (86 + 50)
    assert not result.gated and result.reason is None
    assert result.score == pytest.approx(0.6 * uptime + 0.2 * latency + 0.2 * throughput, abs=1e-6)


def test_unauthenticated_reading_scores_on_uptime_alone() -> None:
    result = health_score(parse_endpoints(load("deepseek-chat-v3.1_endpoints_rust_test.json")), settings=SETTINGS)
    assert result.score == pytest.approx((99.33169971040321 - 80) / 20, abs=1e-6)


@pytest.mark.parametrize(
    ("statuses", "serving", "unknown", "gate"),
    [
        ([0], 1, 0, None),
        ([-1], 0, 0, "no endpoint serving (0 of 1)"),
        ([-2, -3, -5, -10], 0, 0, "no endpoint serving (0 of 4)"),
        ([None], 0, 1, None),
        (["missing"], 0, 1, None),
        (["missing", -1], 0, 1, None),
        ([-2, 0], 1, 0, None),
        (["ok?"], 0, 1, None),  # a non-integer status is unknown, not a crash
        ([], 0, 0, "no endpoints"),
    ],
)
def test_status_values(statuses: list[Any], serving: int, unknown: int, gate: str | None) -> None:
    endpoints = []
    for status in statuses:
        endpoint = kimi_endpoint()
        if status == "missing":
            del endpoint["status"]
        else:
            endpoint["status"] = status
        endpoints.append(endpoint)
    reading = parse_endpoints(with_endpoints(endpoints))
    result = health_score(reading, settings=SETTINGS)
    assert (reading.serving, reading.unknown_status, result.reason) == (serving, unknown, gate)
    assert result.gated is (gate is not None)


def test_best_values_ignore_endpoints_that_do_not_serve() -> None:
    down, up = kimi_endpoint(), kimi_endpoint()
    down.update(status=-1, uptime_last_30m=100.0, latency_last_30m={"p50": 10}, throughput_last_30m={"p50": 900})
    up.update(uptime_last_30m=90.0)
    reading = parse_endpoints(with_endpoints([down, up]))
    assert (reading.best_uptime, reading.best_latency_ms, reading.best_throughput_tps) == (90.0, 2687.0, 35.0)


@pytest.mark.parametrize(
    ("uptimes", "min_uptime", "gated"),
    [
        ({"uptime_last_30m": 79.9}, 80.0, True),
        ({"uptime_last_30m": 80.0}, 80.0, False),
        ({"uptime_last_30m": None, "uptime_last_1d": 70.0}, 80.0, True),
        ({"uptime_last_30m": None, "uptime_last_1d": None, "uptime_last_5m": 95.0}, 80.0, False),
        ({"uptime_last_30m": 50.0}, 40.0, False),
    ],
)
def test_uptime_below_threshold_gates(uptimes: dict[str, float | None], min_uptime: float, gated: bool) -> None:
    endpoint = kimi_endpoint()
    endpoint.update(uptimes)
    result = health_score(parse_endpoints(with_endpoints([endpoint])), settings=HealthSettings(min_uptime=min_uptime))
    assert result.gated is gated
    assert (result.reason or "").startswith("best uptime") is gated


def test_no_data_at_all_is_unknown_not_gated() -> None:
    endpoint = kimi_endpoint()
    endpoint.update(uptime_last_30m=None, uptime_last_1d=None, uptime_last_5m=None,
                    latency_last_30m=None, throughput_last_30m=None)
    result = health_score(parse_endpoints(with_endpoints([endpoint])), settings=SETTINGS)
    assert (result.gated, result.score) == (False, None)


def test_faster_endpoint_scores_higher() -> None:
    slow, fast = kimi_endpoint(), kimi_endpoint()
    fast["latency_last_30m"] = {"p50": 300}
    fast["throughput_last_30m"] = {"p50": 150}
    scores = [health_score(parse_endpoints(with_endpoints([e])), settings=SETTINGS).score for e in (slow, fast)]
    assert scores[0] is not None and scores[1] is not None and scores[1] > scores[0]


@pytest.mark.parametrize(
    ("model_id", "url"),
    [
        ("moonshotai/kimi-k3", "https://or.test/api/v1/models/moonshotai/kimi-k3/endpoints"),
        ("z-ai/glm-5.2:free", "https://or.test/api/v1/models/z-ai/glm-5.2:free/endpoints"),
        ("qwen/qwen-plus-2025-07-28:thinking", "https://or.test/api/v1/models/qwen/qwen-plus-2025-07-28:thinking/endpoints"),
        ("odd/na me?x#y", "https://or.test/api/v1/models/odd/na%20me%3Fx%23y/endpoints"),
    ],
)
def test_endpoints_url_keeps_the_slash_and_the_variant(model_id: str, url: str) -> None:
    assert endpoints_url("https://or.test/api/v1/", model_id) == url


@pytest.mark.parametrize("model_id", ["no-slash", "/slug", "author/"])
def test_endpoints_url_rejects_ids_without_author_and_slug(model_id: str) -> None:
    with pytest.raises(ValueError):
        endpoints_url("https://or.test/api/v1", model_id)


# --- passive ---------------------------------------------------------------------------


def test_passive_window_summarises_outcomes() -> None:
    stats = PassiveStats(window=10, max_age_s=60)
    for i, outcome in enumerate(["success"] * 6 + ["429", "rate_limited", "error", "success"]):
        stats.record("dep-a", outcome, latency_s=float(i), now=100.0 + i)
    snap = stats.snapshot(now=110.0)
    assert snap["dep-a"] == PassiveHealth(
        samples=10, success_rate=0.7, rate_limited_rate=0.2, error_rate=0.1, p50_latency_s=3.0
    )


def test_passive_window_drops_old_and_excess_samples() -> None:
    stats = PassiveStats(window=3, max_age_s=60)
    for i in range(5):
        stats.record("dep-a", "error", latency_s=0.1, now=float(i))
    stats.record("dep-b", "success", latency_s=0.1, now=0.0)
    assert stats.snapshot(now=10.0)["dep-a"].samples == 3
    later = stats.snapshot(now=63.5)
    assert "dep-b" not in later and later["dep-a"].samples == 1


def test_passive_snapshot_is_immutable() -> None:
    stats = PassiveStats()
    stats.record("dep-a", "success", latency_s=0.2, now=1.0)
    snap = stats.snapshot(now=2.0)
    with pytest.raises(TypeError):
        snap["dep-b"] = snap["dep-a"]  # type: ignore[index]


def test_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        PassiveStats().record("dep-a", "timeout-ish", latency_s=1.0)


@pytest.mark.parametrize(
    ("health", "factor"),
    [
        (None, 1.0),
        (PassiveHealth(samples=4, success_rate=0.0, rate_limited_rate=0.0, error_rate=1.0, p50_latency_s=None), 1.0),
        (PassiveHealth(samples=20, success_rate=1.0, rate_limited_rate=0.0, error_rate=0.0, p50_latency_s=1.0), 1.0),
        (PassiveHealth(samples=20, success_rate=0.0, rate_limited_rate=0.0, error_rate=1.0, p50_latency_s=None), 0.0),
        (PassiveHealth(samples=20, success_rate=0.5, rate_limited_rate=0.5, error_rate=0.0, p50_latency_s=1.0), 0.75),
        (PassiveHealth(samples=10, success_rate=0.5, rate_limited_rate=0.0, error_rate=0.5, p50_latency_s=1.0), 0.75),
        (PassiveHealth(samples=50, success_rate=0.8, rate_limited_rate=0.1, error_rate=0.1, p50_latency_s=1.0), 0.85),
    ],
)
def test_passive_factor(health: PassiveHealth | None, factor: float) -> None:
    assert passive_factor(health) == pytest.approx(factor)
