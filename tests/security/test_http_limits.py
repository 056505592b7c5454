"""Item 4: header size, time to complete the head and the body, and load shedding, on raw sockets
against a real uvicorn server running the gateway with `turnout serve`'s options."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import free_port
from turnout.api.http_limits import uvicorn_options
from turnout.config import Settings

BODY = b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}'
WAIT_S = 30.0  # how long a test waits for the server to act: far above the limits configured below


class Served:
    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from turnout.main import create_app

        self.port = free_port()
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_config=None,
                                access_log=False, lifespan="on", **uvicorn_options(settings))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=WAIT_S)
        return sock


@pytest.fixture
def serve(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Served]]:
    running: list[Served] = []

    def start(**server: Any) -> Served:
        limits = {"header_timeout_s": 1.0, "body_timeout_s": 1.5, "max_header_bytes": 16 * 1024, **server}
        served = Served(make_settings(server=limits, pool={"health": {"enabled": False}})).__enter__()
        running.append(served)
        return served

    yield start
    for served in running:
        served.__exit__()


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (or WAIT_S passes: then the test fails on what it got)."""
    chunks = []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def test_an_unterminated_header_is_refused_before_memory_grows(serve: Callable[..., Served]) -> None:
    served = serve()
    before = rss_bytes()
    with served.connect() as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        chunk = b"a" * (1024 * 1024)
        try:
            for _ in range(200):  # 200 MB, never terminated
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert rss_bytes() - before < 64 * 1024 * 1024


def test_an_idle_connection_is_closed(serve: Callable[..., Served]) -> None:
    with serve().connect() as sock:
        started = time.monotonic()
        answer = read_all(sock)
    assert time.monotonic() - started < WAIT_S
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_a_trickling_head_gets_408(serve: Callable[..., Served]) -> None:
    served = serve()
    with served.connect() as sock:
        sock.settimeout(0.3)
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"b" * 200
        got = b""
        deadline = time.monotonic() + WAIT_S
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                got += sock.recv(65536)
            except TimeoutError:
                continue
            if got or time.monotonic() > deadline:
                break
        sock.settimeout(WAIT_S)
        got += read_all(sock)
    assert got.startswith(b"HTTP/1.1 408"), got[:200]


def test_a_stalled_body_gets_408_and_no_upstream_call(serve: Callable[..., Served], sandbox: Any) -> None:
    served = serve()
    before = len(sandbox.server.calls)
    with served.connect() as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY[:10])
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert len(sandbox.server.calls) == before


def test_keep_alive_outlives_the_header_timeout(serve: Callable[..., Served]) -> None:
    served = serve(header_timeout_s=0.5)
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
    with served.connect() as sock:
        for _ in range(2):
            sock.sendall(request)
            answer = read_response(sock)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            time.sleep(1.0)  # idle longer than the header timeout, shorter than keep-alive (30 s)


def test_beyond_max_connections_requests_get_503(serve: Callable[..., Served]) -> None:
    served = serve(max_connections=3, header_timeout_s=WAIT_S)
    idle = [served.connect() for _ in range(3)]
    try:
        with served.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
    finally:
        for sock in idle:
            sock.close()
