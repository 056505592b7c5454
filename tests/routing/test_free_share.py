"""Every free model fails half its calls: `auto` still answers, mostly from free models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.free_share import measure


def test_half_failing_free_models_keep_most_traffic_free(sandbox: Any, tmp_path: Path) -> None:
    figures = measure(requests=150, concurrency=8, rate=30.0, sandbox=sandbox, data_dir=tmp_path)
    assert figures.success_rate >= 0.99, figures.statuses
    assert figures.free_share > 0.40, f"free share {figures.free_share:.1%}"
