from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.recorder import Recorder, recording_upstream


@pytest.fixture
def upstream() -> Iterator[Recorder]:
    with recording_upstream() as recorder:
        yield recorder
