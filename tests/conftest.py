"""Shared fixtures: a real sandbox OpenRouter and a real Turnout (uvicorn, lifespan on), both on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest

from turnout.config import Settings

OPENROUTER_TEST_KEY = "sk-or-v1-test-secret-0123456789abcdef"
# The two sandbox models behind the `chain` fixture's static groups.
CHAIN_PRIMARY = "poolside/laguna-s-2.1:free"
CHAIN_BACKUP = "z-ai/glm-5.2:free"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveGateway:
    """Turnout under real uvicorn in a background thread."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from turnout.api.http_limits import uvicorn_options
        from turnout.main import create_app

        self.settings = settings
        self.app = create_app(settings)
        self.port = free_port()
        # `turnout serve`'s protocol and limits (keep-alive 30 s: no idle-close race)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_config=None, access_log=False,
                                lifespan="on", timeout_graceful_shutdown=5, **uvicorn_options(settings))
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self.server.serve())
        except BaseException as exc:  # surfaced by start()
            self.error = exc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> Any:
        return self.app.state.turnout

    def start(self) -> LiveGateway:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if self.error is not None or not self._thread.is_alive():
                raise RuntimeError(f"gateway failed to start: {self.error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("gateway did not start within 60 s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Any]:
    from turnout.sandbox import SandboxThread

    with SandboxThread() as sb:
        sb.original_catalogue = sb.server.catalogue  # restored after every test (see _reset_sandbox)
        yield sb


@pytest.fixture(autouse=True)
def _reset_sandbox(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sandbox" in request.fixturenames:
        from turnout.sandbox import FaultPlan

        sb = request.getfixturevalue("sandbox")
        sb.server.set_plan(FaultPlan())
        sb.server.reset()
        sb.server.catalogue = sb.original_catalogue


@pytest.fixture
def make_settings(sandbox: Any, tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "sandbox": "off",
            "openrouter_base_url": sandbox.base_url,
            "openrouter_api_key": OPENROUTER_TEST_KEY,
            "data_dir": tmp_path / "data",
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def start_gateway(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., LiveGateway]]:
    started: list[LiveGateway] = []

    def start(settings: Settings | None = None, **overrides: Any) -> LiveGateway:
        gateway = LiveGateway(settings or make_settings(**overrides)).start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def chain(start_gateway: Callable[..., LiveGateway], sandbox: Any,
          monkeypatch: pytest.MonkeyPatch) -> Callable[..., LiveGateway]:
    """A deterministic chain: static group `primary` (CHAIN_PRIMARY) falls back to `backup` (CHAIN_BACKUP)."""
    monkeypatch.setenv("SANDBOX_UPSTREAM_KEY", "sk-static-test-key")
    common = {"api_base": sandbox.base_url, "wire": "openai", "api_key_env": "SANDBOX_UPSTREAM_KEY"}

    def start(**overrides: Any) -> LiveGateway:
        settings: dict[str, Any] = {
            "deployments": [
                {"name": "primary", "model": f"openai/{CHAIN_PRIMARY}", **common},
                {"name": "backup", "model": f"openai/{CHAIN_BACKUP}", **common},
            ],
            "fallbacks": {"primary": ["backup"]},
            "retries": {"backoff_base_s": 0.01, "cooldown_s": 30},
            "pool": {"health": {"enabled": False}},
        }
        for key, value in overrides.items():
            settings[key] = {**settings[key], **value} if isinstance(settings.get(key), dict) else value
        return start_gateway(**settings)

    return start


@contextmanager
def tcp_listener() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback listener that records anything that connects to it."""
    received: list[bytes] = []
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.5)
                try:
                    received.append(conn.recv(65536) or b"<connected>")
                except OSError:
                    received.append(b"<connected>")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()
