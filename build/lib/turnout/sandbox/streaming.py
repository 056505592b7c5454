"""Writing SSE streams, and breaking connections on purpose.

A stream fault triggers after N `data:` chunks (N capped at the number of
chunks, so "after 99" on a short answer means "just before `[DONE]`").  When
several are set the smallest N wins; ties go cut, stall, error, malformed.
`malformed_event_at` is not one of them: it slips one invalid-JSON event in
before chunk N and lets the stream go on.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from turnout.sandbox.faults import ModelFaults

PROCESSING = b": OPENROUTER PROCESSING\n\n"
MALFORMED = b'data: {"id": "gen-broken", "choices": [{"delta": {"cont\n\n'
DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
_COMMENT_EVERY_MS = 1000.0

Pause = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StreamFault:
    kind: str  # "ok", "no_done", "stream_cut", "stream_stall", "stream_error", "malformed"
    after: int


def stream_fault(faults: ModelFaults, total_chunks: int) -> StreamFault:
    candidates = (
        ("stream_cut", faults.stream_cut_after),
        ("stream_stall", faults.stream_stall_after),
        ("stream_error", faults.stream_error_after),
        ("malformed", faults.malformed_after),
    )
    chosen: StreamFault | None = None
    for kind, after in candidates:
        if after is None:
            continue
        effective = min(after, total_chunks)
        if chosen is None or effective < chosen.after:
            chosen = StreamFault(kind, effective)
    if chosen is not None:
        return chosen
    return StreamFault("no_done" if faults.no_done else "ok", total_chunks)


def frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


@dataclass(frozen=True, slots=True)
class StreamPlan:
    chunks: list[dict[str, Any]]
    fault: StreamFault
    faults: ModelFaults
    error_chunk: dict[str, Any]  # sent by a "stream_error" fault


async def write_stream(
    request: web.Request,
    plan: StreamPlan,
    *,
    pause: Pause,
    wait_stopped: Callable[[], Awaitable[None]],
) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers=SSE_HEADERS)
    await response.prepare(request)
    await response.write(PROCESSING)
    await _first_token_wait(response, plan.faults.first_token_delay_ms, pause)
    frames = [frame(chunk) for chunk in plan.chunks[: plan.fault.after]]
    garble_at = plan.faults.malformed_event_at
    if garble_at is not None:
        frames.insert(min(garble_at, len(frames)), MALFORMED)
    await _write_frames(response, frames, plan.faults.chunk_delay_ms, pause)
    kind = plan.fault.kind
    if kind == "stream_cut":
        close_connection(request)
    elif kind == "stream_stall":
        await wait_stopped()
        close_connection(request, reset=True)
    elif kind == "malformed":
        await response.write(MALFORMED)
    elif kind == "stream_error":
        await response.write(frame(plan.error_chunk) + (b"" if plan.faults.no_done else DONE))
    elif kind == "ok":
        await response.write(DONE)
    return response


async def _first_token_wait(response: web.StreamResponse, delay_ms: float, pause: Pause) -> None:
    # Like OpenRouter, keep the connection warm with comments while waiting.
    while delay_ms > 0:
        step = min(delay_ms, _COMMENT_EVERY_MS)
        await pause(step)
        delay_ms -= step
        if delay_ms > 0:
            await response.write(PROCESSING)


async def _write_frames(
    response: web.StreamResponse, frames: list[bytes], delay_ms: float, pause: Pause
) -> None:
    if delay_ms <= 0:
        if frames:
            await response.write(b"".join(frames))
        return
    for index, data in enumerate(frames):
        if index:
            await pause(delay_ms)
        await response.write(data)


def close_connection(request: web.BaseRequest, *, reset: bool = False) -> None:
    """Drop the client's connection; with `reset`, send a TCP RST, not a FIN.

    Afterwards aiohttp's attempt to finish the response fails quietly, as if
    the client had gone away.
    """
    transport = request.transport
    if transport is None:
        return
    if not reset:
        transport.close()  # flushes what was written, then FIN
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
