"""A burst of upstream frames: the first frame goes to the client at once, the rest together."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.security.recorder import Recorder, recording_upstream


@pytest.fixture
def upstream() -> Iterator[Recorder]:
    with recording_upstream() as recorder:
        yield recorder


def chunked_body(port: int, body: bytes) -> list[bytes]:
    """POST `body` over a raw socket; the response's HTTP chunks, one per write the gateway made."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower(), head
    chunks = []
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        chunks.append(rest[:size])
        rest = rest[size + 2:]
    return chunks


def test_the_first_frame_of_a_burst_is_written_alone(start_gateway: Callable[..., Any], upstream: Recorder) -> None:
    upstream.burst = 12  # the whole answer in one upstream write, as a fast or buffering upstream sends it
    gw = start_gateway(deployments=[{"name": "burst", "model": "openai/burst", "api_base": upstream.base_url,
                                     "wire": "openai"}], pool={"health": {"enabled": False}})
    port = int(gw.url.rsplit(":", 1)[1])
    body = json.dumps({"model": "burst", "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
    chunks = chunked_body(port, body)
    frames = [[line for line in c.split(b"\n") if line.startswith(b"data: ")] for c in chunks]
    assert len(frames[0]) == 1 and b"hello0" in frames[0][0], "the first frame waited for the rest of the burst"
    contents = [json.loads(f[6:])["choices"][0]["delta"].get("content") for c in frames for f in c if f != b"data: [DONE]"]
    assert contents == [f"hello{i}" for i in range(12)]
    assert frames[-1][-1] == b"data: [DONE]"
    assert len(chunks) <= 4, f"the rest of the burst went out frame by frame ({len(chunks)} writes)"
