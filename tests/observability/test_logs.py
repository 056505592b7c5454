"""`turnout serve`'s log handler: JSON lines, written in batches, never lost."""

from __future__ import annotations

import io
import json
import logging

from turnout.observability.logs import BatchingHandler, JsonFormatter


def handler_on(stream: io.StringIO, **kwargs: int | float) -> tuple[logging.Logger, BatchingHandler]:
    handler = BatchingHandler(stream, **kwargs)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"turnout.test.{id(stream)}")
    logger.propagate = False
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    return logger, handler


def test_info_lines_wait_for_the_batch_and_a_warning_writes_them_all() -> None:
    stream = io.StringIO()
    logger, _ = handler_on(stream, interval_s=3600)
    logger.info("first")
    logger.info("second")
    assert stream.getvalue() == ""
    logger.warning("third")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["level"], x["msg"]) for x in lines] == [("info", "first"), ("info", "second"), ("warning", "third")]


def test_a_full_batch_is_written_without_waiting() -> None:
    stream = io.StringIO()
    logger, handler = handler_on(stream, interval_s=3600, limit=1000)  # lines are ~150 chars
    for i in range(10):
        logger.info("line %d with some padding to fill the batch", i)
    written = stream.getvalue().splitlines()
    assert 0 < len(written) < 10, "a full batch is written at once, the rest waits"
    handler.flush()
    assert [json.loads(x)["msg"][:6] for x in stream.getvalue().splitlines()] == [f"line {i}" for i in range(10)]


def test_flush_writes_what_is_waiting_and_request_lines_keep_their_fields_after_ts_and_level() -> None:
    stream = io.StringIO()
    logger, handler = handler_on(stream, interval_s=3600)
    logging.getLogger("turnout.requests").handlers[:] = []
    request_log = logging.getLogger("turnout.requests")
    request_log.propagate = False
    request_log.handlers[:] = [handler]
    request_log.setLevel(logging.INFO)
    request_log.info('{"event":"request","status":200}')
    logger.info("plain")
    handler.flush()
    first, second = stream.getvalue().splitlines()
    assert first.startswith('{"ts":"') and first.endswith('","level":"info","event":"request","status":200}')
    assert list(json.loads(first)) == ["ts", "level", "event", "status"]
    assert json.loads(second)["msg"] == "plain"
    request_log.handlers[:] = []
    request_log.propagate = True
