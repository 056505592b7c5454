"""Helpers shared by the sandbox tests."""

from __future__ import annotations

import json
from typing import Any

import httpx

PAID_MODEL = "openai/gpt-4o"  # tools + images, $2.5 / $10 per M tokens
FREE_MODEL = "openai/gpt-oss-20b:free"
TEXT_ONLY_MODEL = "deepseek/deepseek-chat-v3.1"  # tools, no images
NO_TOOLS_MODEL = "writer/palmyra-x5"


def chat_body(model: str, text: str = "Hi there", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def post_chat(client: httpx.AsyncClient, model: str, **extra: Any) -> httpx.Response:
    return await client.post("/chat/completions", json=chat_body(model, **extra))


async def read_sse(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """Raw SSE lines and the decoded `data:` payloads ("[DONE]" kept as a string)."""
    lines: list[str] = []
    async with client.stream("POST", "/chat/completions", json={**body, "stream": True}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        async for line in resp.aiter_lines():
            if line:
                lines.append(line)
    return lines, [_decode(line[6:]) for line in lines if line.startswith("data: ")]


def _decode(data: str) -> Any:
    if data == "[DONE]":
        return data
    try:
        return json.loads(data)
    except ValueError:
        return {"malformed": data}
