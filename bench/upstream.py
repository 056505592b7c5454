"""The instant upstream: nginx on loopback answering every call from files it never recomputes.

Routes (all POSTs answer 200 from a static file through `error_page 405 =200`, because
nginx's static handler refuses POST):

    POST /v1/chat/completions, /api/v1/chat/completions   fixed OpenAI chat.completion JSON
    POST /s<N>/v1/chat/completions                         fixed SSE body of N chunks + [DONE]
    GET  /api/v1/models                                    the bundled catalogue snapshot
    GET  /api/v1/key                                       a paid key (1,000 free requests a day)
    GET  /api/v1/models/<author>/<slug>/endpoints          one healthy endpoint

A streaming deployment is pointed at `/s<N>/v1` so the chunk count is chosen by URL: nginx
cannot read the request body to see `"stream": true`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CATALOGUE = REPO / "turnout" / "data" / "openrouter" / "models-2026-08-19.json"
CREATED = 1763700000

CHAT_RESPONSE = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": CREATED,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23},
}
KEY_RESPONSE = {"data": {"label": "bench", "is_free_tier": False, "limit": None, "usage": 0}}
ENDPOINTS_RESPONSE = {
    "data": {
        "id": "bench/model",
        "endpoints": [
            {
                "provider_name": "Bench",
                "status": 0,
                "uptime_last_30m": 99.5,
                "latency_last_30m": {"p50": 400},
                "throughput_last_30m": {"p50": 90},
            }
        ],
    }
}


def sse_body(chunks: int) -> bytes:
    """`chunks` content frames (the first carries the role, the last finish_reason and usage), then [DONE]."""
    frames = []
    for i in range(chunks):
        delta: dict[str, str] = {"content": f"tok{i} "}
        if i == 0:
            delta["role"] = "assistant"
        choice = {"index": 0, "delta": delta, "finish_reason": "stop" if i == chunks - 1 else None}
        frame: dict[str, object] = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED,
                                    "model": "m", "choices": [choice]}
        if i == chunks - 1:
            frame["usage"] = {"prompt_tokens": 14, "completion_tokens": chunks, "total_tokens": 14 + chunks}
        frames.append(b"data: " + json.dumps(frame, separators=(",", ":")).encode() + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return b"".join(frames)


def write_site(root: Path, *, port: int, stream_chunks: tuple[int, ...]) -> Path:
    """Write nginx's config and files under `root`; return the config path."""
    files = root / "files"
    for sub in ("files", "tmp", "logs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (files / "chat.json").write_text(json.dumps(CHAT_RESPONSE, separators=(",", ":")))
    (files / "key.json").write_text(json.dumps(KEY_RESPONSE))
    (files / "endpoints.json").write_text(json.dumps(ENDPOINTS_RESPONSE))
    shutil.copyfile(CATALOGUE, files / "models.json")
    streams = []
    for n in stream_chunks:
        (files / f"s{n}.sse").write_bytes(sse_body(n))
        streams.append(_post_location(f"/s{n}/v1/chat/completions", f"s{n}.sse", "text/event-stream"))
    conf = root / "nginx.conf"
    conf.write_text(_CONF.format(
        root=root, port=port, files=files,
        chat=_post_location("/v1/chat/completions", "chat.json", "application/json"),
        chat_api=_post_location("/api/v1/chat/completions", "chat.json", "application/json"),
        streams="\n".join(streams),
    ))
    return conf


def _post_location(path: str, file: str, content_type: str) -> str:
    return (f"    location = {path} {{ default_type {content_type}; "
            f"error_page 405 =200 /__files/{file}; return 405; }}")


_CONF = """\
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {root}/tmp;
  proxy_temp_path {root}/tmp;
  fastcgi_temp_path {root}/tmp;
  uwsgi_temp_path {root}/tmp;
  scgi_temp_path {root}/tmp;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  etag off;
  types {{ application/json json; text/event-stream sse; }}
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
{chat}
{chat_api}
{streams}
    location = /api/v1/models {{ default_type application/json; alias {files}/models.json; }}
    location = /api/v1/key {{ default_type application/json; alias {files}/key.json; }}
    location ~ ^/api/v1/models/.+/endpoints$ {{ default_type application/json; alias {files}/endpoints.json; }}
    location /__files/ {{ internal; alias {files}/; }}
  }}
}}
"""
