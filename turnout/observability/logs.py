"""Logging for `turnout serve`: one JSON object per line on stderr, written in batches.

A request's log line is the one write a request would otherwise make to a pipe or a file
(a system call each, ~5% of a request's CPU). `BatchingHandler` gathers lines and writes
them together: as soon as a line at WARNING or above arrives, when 64 KiB are waiting, when
`interval_s` has passed since the last write, and from the lifespan's flush task, so an
INFO line is written at most `interval_s` late (0.2 s) even when traffic stops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from typing import IO, Any

FLUSH_INTERVAL_S = 0.2


_second: list[Any] = [None, ""]  # the last second stamped, and its "YYYY-MM-DDTHH:MM:SS"


def _timestamp(created: float) -> str:
    """`created` as the lines' UTC timestamp, to the millisecond (strftime once per second)."""
    second = int(created)
    if _second[0] != second:
        _second[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_second[1]}.{int((created - second) * 1000):03d}Z"


def _json_line(created: float, levelname: str, message: str) -> str:
    """A request line, already JSON: ts and level go in front, without re-encoding it."""
    return f'{{"ts":"{_timestamp(created)}","level":"{levelname}",{message[1:]}'


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("{") and record.name == "turnout.requests":
            return _json_line(record.created, record.levelname.lower(), message)
        ts = _timestamp(record.created)
        entry: dict[str, Any] = {
            "ts": ts,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": message,
        }
        if record.exc_info:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry)


class BatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes lines in batches (see the module docstring)."""

    def __init__(self, stream: IO[str], *, interval_s: float = FLUSH_INTERVAL_S, limit: int = 64 * 1024) -> None:
        super().__init__(stream)
        self._interval_s = interval_s
        self._limit = limit
        self._pending: list[str] = []
        self._size = 0
        self._written_at = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._add(line, record.levelno)

    def _add(self, line: str, levelno: int) -> None:
        self._pending.append(line)
        self._size += len(line)
        if levelno >= logging.WARNING or self._size >= self._limit or \
                time.monotonic() - self._written_at >= self._interval_s:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created in Handler.__init__
            if self._pending:
                with contextlib.suppress(Exception):  # a closed or broken stream must not break the caller
                    self.stream.write("".join(self._pending))
                self._pending.clear()
                self._size = 0
            self._written_at = time.monotonic()
            super().flush()


def configure_logging(level: str) -> None:
    # Fields no Turnout log line shows; skipping them (and the caller's frame lookup) is a
    # quarter of what logging costs per request (the logging HOWTO's "Optimization").
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    handler = BatchingHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    _configured[:] = [handler]


_LEVEL_NAMES = {logging.INFO: "info", logging.WARNING: "warning"}
_configured: list[BatchingHandler] = []  # the handler `configure_logging` installed


def write_request_line(levelno: int, message: str) -> bool:
    """Hand a request's JSON line straight to the handler `configure_logging` installed, when it
    is still the only one: the same line as through `logging`, without a LogRecord, the
    logger's handler walk and the formatter (a third of what a request's log line cost).
    False when anything else listens (a test's capture handler, say): log it the usual way."""
    handlers = logging.root.handlers
    if not _configured or len(handlers) != 1 or handlers[0] is not _configured[0]:
        return False
    handler = _configured[0]
    name = _LEVEL_NAMES.get(levelno) or logging.getLevelName(levelno).lower()
    line = _json_line(time.time(), name, message) + "\n"
    with handler.lock:  # type: ignore[union-attr]  # created in Handler.__init__
        handler._add(line, levelno)
    return True


def flush_logs() -> None:
    """Write what the root handlers hold (the lifespan calls this every `FLUSH_INTERVAL_S`)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
