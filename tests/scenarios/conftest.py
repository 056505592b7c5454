"""The scorecard's table, printed after the run: one line per row with its verdict and time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

_ROWS: dict[str, tuple[str, float, str]] = {}


@pytest.fixture
def scorecard() -> Iterator[dict[str, tuple[str, float, str]]]:
    yield _ROWS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _ROWS:
        return
    terminalreporter.write_sep("-", "failover scorecard (verdict, client time, attempts)")
    for row in sorted(_ROWS):
        verdict, elapsed, attempts = _ROWS[row]
        terminalreporter.write_line(f"{row:<12} {verdict:<8} {elapsed:6.2f} s   {attempts}")
