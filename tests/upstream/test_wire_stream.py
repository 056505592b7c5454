"""WireStream against a real SSE server on loopback: bursts, byte-checked frames, the idle deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from turnout.upstream.failures import AttemptError
from turnout.upstream.openai_wire import OpenAIWire, WireStream

PLAIN = b'{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}'
USAGE = b'{"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
NULL_FP = b'{"id":"c","choices":[{"index":0,"delta":{}}],"system_fingerprint":null}'
ERROR = b'{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"error"}]}'

Script = list[tuple[float, bytes]]  # (seconds to wait, bytes to send)


def _run(script: Script, check: Callable[[WireStream], Awaitable[None]]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for pause, data in script:
            await asyncio.sleep(pause)
            await resp.write(data)
        return resp

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as session:
            wire = OpenAIWire(session, connect_s=2)
            stream = await wire.stream(url=f"http://127.0.0.1:{port}/v1/chat/completions", api_key=None,
                                       body={"stream": True}, timeout_s=2, model="m")
            try:
                await check(stream)
            finally:
                stream.close()
            assert wire.in_flight == 0
        await runner.cleanup()

    asyncio.run(main())


def _frames(*raws: bytes) -> bytes:
    return b"".join(b"data: " + raw + b"\n\n" for raw in raws)


def test_a_burst_is_read_once_and_plain_frames_are_not_parsed() -> None:
    async def check(stream: WireStream) -> None:
        first = await stream.next(2)
        assert first is not None and first.data is None and first.raw == PLAIN
        assert stream.ready()
        second = await stream.next(2)
        assert second is not None and second.data is None
        usage = await stream.next(2)
        assert usage is not None and usage.data is not None and usage.data["usage"]["total_tokens"] == 3
        fingerprint = await stream.next(2)
        assert fingerprint is not None and fingerprint.data == {
            "id": "c", "choices": [{"index": 0, "delta": {}}], "system_fingerprint": None}
        assert await stream.next(2) is None
        assert not stream.ready()

    _run([(0, b": comment\n\n" + _frames(PLAIN, PLAIN, USAGE, NULL_FP, b"[DONE]"))], check)


def test_frames_split_across_reads_are_joined() -> None:
    body = _frames(PLAIN, b"[DONE]")
    cut = len(body) // 2

    async def check(stream: WireStream) -> None:
        frame = await stream.next(2)
        assert frame is not None and frame.raw == PLAIN
        assert await stream.next(2) is None

    _run([(0, body[:cut]), (0.05, body[cut:])], check)


def test_an_error_finish_reason_breaks_the_stream() -> None:
    async def check(stream: WireStream) -> None:
        await stream.next(2)
        with pytest.raises(AttemptError) as caught:
            await stream.next(2)
        assert caught.value.kind == "server_error"

    _run([(0, _frames(PLAIN, ERROR, b"[DONE]"))], check)


def test_a_stalled_upstream_breaks_the_stream_after_the_idle_timeout() -> None:
    async def check(stream: WireStream) -> None:
        await stream.next(2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(AttemptError) as caught:
            await stream.next(0.3)
        assert caught.value.kind == "stream_broken" and "stalled" in caught.value.message
        assert 0.25 < loop.time() - started < 1.5

    _run([(0, _frames(PLAIN)), (5, _frames(b"[DONE]"))], check)


def test_time_spent_with_the_client_does_not_count_as_upstream_idle() -> None:
    async def check(stream: WireStream) -> None:
        await stream.next(0.3)
        await asyncio.sleep(0.4)  # a slow client: the deadline passes while nobody reads
        frame: Any = await stream.next(0.3)
        assert frame is not None and frame.raw == PLAIN
        assert await stream.next(0.3) is None

    _run([(0, _frames(PLAIN)), (0.5, _frames(PLAIN, b"[DONE]"))], check)


def test_an_upstream_that_ends_without_done_breaks_the_stream() -> None:
    async def check(stream: WireStream) -> None:
        await stream.next(2)
        with pytest.raises(AttemptError) as caught:
            await stream.next(2)
        assert "without [DONE]" in caught.value.message

    _run([(0, _frames(PLAIN))], check)


def test_a_malformed_event_is_skipped_and_counted() -> None:
    garbled = b'{"id":"c","choices":[{"index":0,"delta":{"cont'

    async def check(stream: WireStream) -> None:
        first = await stream.next(2)
        second = await stream.next(2)
        assert first is not None and second is not None and second.raw == PLAIN
        assert stream.malformed == 1
        assert await stream.next(2) is None

    _run([(0, _frames(PLAIN, garbled, PLAIN, b"[DONE]"))], check)


def test_a_frame_cut_like_json_is_never_forwarded_unparsed() -> None:
    # Compact enough to pass the byte checks, but not a whole object: parsed, found bad, skipped.
    cut = b'{"id":"c","choices":[{"index":0,"delta":{"content":"h'

    async def check(stream: WireStream) -> None:
        assert await stream.next(2) is None
        assert stream.malformed == 1

    _run([(0, _frames(cut, b"[DONE]"))], check)


@pytest.mark.parametrize(("status", "message", "raw", "kind"), [
    (400, "Provider returned error",
     '{"type":"error","error":{"type":"invalid_request_error","message":"This model does not support assistant '
     'message prefill. The conversation must end with a user message."}}', "prefill_unsupported"),
    (400, "Expected last role User or Tool (or Assistant with prefix True) for serving but got assistant", "",
     "prefill_unsupported"),
    (400, "Provider returned error", '{"error":{"message":"The response was filtered due to the prompt triggering '
     'Azure OpenAI\'s content management policy.","code":"content_filter"}}', "content_filter"),
    (400, "Invalid value for 'temperature'", "", "bad_request"),
    (403, "Input flagged by moderation", "", "content_filter"),
])
def test_refusals_are_classified(status: int, message: str, raw: str, kind: str) -> None:
    from turnout.upstream.failures import classify_error

    payload = {"error": {"code": status, "message": message, "metadata": {"raw": raw}}}
    assert classify_error(status=status, payload=payload, model="m").kind == kind
