"""The free-tier counts and the daily-quota stop, kept in `data_dir` so a restart remembers them.

Without this a restarted gateway would believe the account had spent nothing today and
send free requests the upstream then refuses. Written atomically, at most once a second and
only when something changed, off the event loop; once more at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

from turnout.encoding import dumps
from turnout.routing.free_tier import FreeTierBudget

log = logging.getLogger("turnout.shared")
FILE_NAME = "free_tier.json"


class BudgetFile:
    def __init__(self, directory: Path, budget: FreeTierBudget) -> None:
        self.path = directory / FILE_NAME
        self._budget = budget
        self._written: dict[str, Any] | None = None

    def load(self) -> None:
        try:
            state = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("free-tier state unreadable, starting from zero: %s", exc)
            return
        if isinstance(state, dict):
            self._budget.restore(state)
            self._written = self._budget.state()

    def save(self) -> None:
        state = self._budget.state()
        if state == self._written:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(dumps(state))
            os.replace(tmp, self.path)
            self._written = state
        except OSError as exc:
            log.warning("could not persist %s: %s", self.path.name, exc)

    async def run(self, every_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            if self._budget.state() != self._written:
                await asyncio.to_thread(self.save)
