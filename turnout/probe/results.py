"""A probe's results: one `ProbeResult` per model, the JSON report, its summary, and resuming.

Report (`Report.to_json`)::

    {"version": 1, "via": "openrouter" | "gateway", "base_url": ..., "stream": bool,
     "started_at": epoch s, "finished_at": epoch s, "interrupted": bool,
     "results": [ProbeResult...], "summary": Summary}

A result with `skipped` set was not called (free quota spent, `--max-requests`, or carried
over by `--resume` is not that: carried results keep their own fields and `probed_at`).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

REPORT_VERSION = 1
FASTEST = 5


@dataclass(frozen=True, slots=True)
class ProbeResult:
    model: str
    tier: str
    ok: bool
    status: int | None = None
    kind: str | None = None  # a `turnout.upstream.failures.Kind` when the call failed
    error: str | None = None
    latency_s: float | None = None
    ttft_s: float | None = None  # time to the first content token (`--stream` only)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    served_by: str | None = None  # through a gateway: the model that answered
    probed_at: float = field(default_factory=time.time)
    skipped: str | None = None
    retry_after_s: float | None = None

    @property
    def tested(self) -> bool:
        return self.skipped is None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProbeResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True)
class Summary:
    tested: int
    succeeded: int
    failed: int
    failed_by_reason: Mapping[str, int]
    skipped_by_reason: Mapping[str, int]
    success_rate: float | None
    average_latency_s: float | None
    total_time_s: float
    fastest: Sequence[tuple[str, float]]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fastest"] = [{"model": m, "latency_s": s} for m, s in self.fastest]
        return data


def summarise(results: Iterable[ProbeResult], *, total_time_s: float) -> Summary:
    results = list(results)
    tested = [r for r in results if r.tested]
    good = [r for r in tested if r.ok]
    latencies = [r.latency_s for r in good if r.latency_s is not None]
    fastest = sorted(((r.model, r.latency_s) for r in good if r.latency_s is not None), key=lambda p: (p[1], p[0]))
    return Summary(
        tested=len(tested),
        succeeded=len(good),
        failed=len(tested) - len(good),
        failed_by_reason=dict(Counter(r.kind or "unknown" for r in tested if not r.ok).most_common()),
        skipped_by_reason=dict(Counter(r.skipped for r in results if r.skipped).most_common()),
        success_rate=round(len(good) / len(tested), 4) if tested else None,
        average_latency_s=round(sum(latencies) / len(latencies), 3) if latencies else None,
        total_time_s=round(total_time_s, 3),
        fastest=[(m, round(s, 3)) for m, s in fastest[:FASTEST]],
    )


@dataclass(slots=True)
class Report:
    via: str
    base_url: str
    stream: bool
    started_at: float
    results: list[ProbeResult] = field(default_factory=list)
    finished_at: float | None = None
    interrupted: bool = False

    def summary(self) -> Summary:
        end = self.finished_at if self.finished_at is not None else time.time()
        return summarise(self.results, total_time_s=end - self.started_at)

    def to_json(self) -> dict[str, Any]:
        return {"version": REPORT_VERSION, "via": self.via, "base_url": self.base_url, "stream": self.stream,
                "started_at": self.started_at, "finished_at": self.finished_at, "interrupted": self.interrupted,
                "results": [r.to_json() for r in self.results], "summary": self.summary().to_json()}

    def write(self, path: Path) -> None:
        """Atomically: an interrupted write never leaves half a report behind."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def fresh_results(path: Path, *, ttl_s: float, now: float) -> dict[str, ProbeResult]:
    """`--resume`: the models an earlier report probed (called, not skipped) less than `ttl_s` ago."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ValueError(f"{path}: not a probe report (no 'results' list)")
    kept: dict[str, ProbeResult] = {}
    for raw in data["results"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("model"), str):
            continue
        result = ProbeResult.from_json(raw)
        if result.tested and now - float(result.probed_at) < ttl_s:
            kept[result.model] = result
    return kept
