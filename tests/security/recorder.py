"""A loopback listener standing in for an upstream: it records what reaches it and answers as told."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Recorder:
    """Answers every POST with `status` and `payload` (an OpenAI chat completion by default)."""

    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    status: int = 200
    payload: Any = None
    echo_credential: bool = False  # answer `status` with an error that quotes the Authorization header
    burst: int = 1  # a stream's content chunks, all sent in one write

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.seen.append(Seen(request.path, {k.lower(): v for k, v in request.headers.items()}, body))
        if self.echo_credential:
            quoted = request.headers.get("Authorization", "")
            return web.json_response({"error": {"message": f"Rejected credential {quoted!r} for this request",
                                                "code": self.status}}, status=self.status)
        if self.payload is not None or self.status != 200:
            return web.json_response(self.payload or {}, status=self.status)
        model = body.get("model", "m") if isinstance(body, dict) else "m"
        if isinstance(body, dict) and body.get("stream"):
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            frames = [{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model,
                       "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hello" if self.burst == 1 else f"hello{i}"},
                                    "finish_reason": "stop" if i == self.burst - 1 else None}]}
                      for i in range(self.burst)]
            await resp.write(b"".join(b"data: " + json.dumps(f).encode() + b"\n\n" for f in frames)
                             + b"data: [DONE]\n\n")
            await resp.write_eof()
            return resp
        return web.json_response({
            "id": "c1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })


@contextmanager
def recording_upstream() -> Iterator[Recorder]:
    recorder = Recorder()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner_box: list[web.AppRunner] = []

    async def start() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", recorder.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        recorder.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        runner_box.append(runner)
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield recorder
    finally:
        asyncio.run_coroutine_threadsafe(runner_box[0].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
