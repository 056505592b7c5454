"""`SandboxThread`: a `SandboxServer` on its own event loop, for sync code."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import TracebackType

from turnout.sandbox.faults import FaultPlan
from turnout.sandbox.server import SandboxServer

_START_TIMEOUT_S = 10.0


class SandboxThread:
    """Run a sandbox in a daemon thread: `with SandboxThread() as sb: sb.base_url`."""

    def __init__(
        self,
        catalogue_path: Path | None = None,
        plan: FaultPlan | None = None,
        require_key: str | None = None,
        seed: int = 0,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.server = SandboxServer(
            catalogue_path=catalogue_path, plan=plan, require_key=require_key, seed=seed
        )
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(loop, started), name="sandbox-openrouter", daemon=True
        )
        self._thread.start()
        start = asyncio.run_coroutine_threadsafe(
            self.server.start(host=self._host, port=self._port), loop
        )
        started.wait()
        try:
            start.result(timeout=_START_TIMEOUT_S)
        except BaseException:
            self._shutdown_loop()
            raise

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), loop).result(_START_TIMEOUT_S)
        finally:
            self._shutdown_loop()

    def _run(self, loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def _shutdown_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=_START_TIMEOUT_S)

    def __enter__(self) -> SandboxThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
