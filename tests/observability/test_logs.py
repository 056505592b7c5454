"""`turnout serve`'s log handler: JSON lines, written in batches, never lost."""

from __future__ import annotations

import io
import json
import logging

import pytest

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


def test_request_lines_go_straight_to_the_serve_handler_and_through_logging_when_others_listen(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The direct path writes the line `logging` would have written; with another handler on the
    root (a capture, say) it declines and the caller logs the usual way."""
    import sys

    from turnout.observability import logs

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        logs.configure_logging("INFO")
        [handler] = root.handlers
        assert logs.write_request_line(logging.INFO, '{"event":"request","status":200}')
        assert logs.write_request_line(logging.WARNING, '{"event":"request","status":502}')  # a warning flushes
        direct = stream.getvalue().splitlines()
        logging.getLogger("turnout.requests").warning('{"event":"request","status":503}')
        via_logging = stream.getvalue().splitlines()[len(direct):]
        assert [json.loads(x)["level"] for x in direct] == ["info", "warning"]
        assert [list(json.loads(x)) for x in direct + via_logging] == [["ts", "level", "event", "status"]] * 3
        assert direct[1][:7] == via_logging[0][:7] and len(json.loads(direct[1])["ts"]) == 24  # same ts format
        root.addHandler(logging.NullHandler())
        assert not logs.write_request_line(logging.INFO, '{"event":"request"}')
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        logs._configured.clear()
        handler.close()
