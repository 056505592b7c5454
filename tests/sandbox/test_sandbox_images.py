"""The sandbox's image models answer `modalities: ["image", "text"]` with a real PNG, as OpenRouter does."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import httpx

from turnout.sandbox.png import png

IMAGE_MODEL = "google/gemini-3.1-flash-image"


def _chat(sandbox: Any, model: str, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "a red fox"}], **extra}
    return httpx.post(f"{sandbox.base_url}/chat/completions", json=body, timeout=10,
                      headers={"Authorization": "Bearer sk-test"})


def test_png_is_a_valid_rgb_image() -> None:
    data = png("a red fox")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (kind, length, width, height, depth, colour) == (b"IHDR", 13, 32, 32, 8, 2)
    idat_len = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    assert len(zlib.decompress(data[41:41 + idat_len])) == 32 * (1 + 3 * 32)
    assert data.endswith(b"IEND\xaeB`\x82") and png("a red fox") == data != png("a blue whale")


def test_image_model_answers_with_message_images(sandbox: Any) -> None:
    response = _chat(sandbox, IMAGE_MODEL, modalities=["image", "text"])
    assert response.status_code == 200
    message = response.json()["choices"][0]["message"]
    url = message["images"][0]["image_url"]["url"]
    assert base64.b64decode(url.removeprefix("data:image/png;base64,")) == png("a red fox")
    assert response.json()["usage"]["completion_tokens_details"]["image_tokens"] > 0


def test_text_model_refuses_image_output_and_image_model_without_modalities_writes_text(sandbox: Any) -> None:
    refused = _chat(sandbox, "qwen/qwen3-14b", modalities=["image", "text"])
    assert refused.status_code == 404 and "output modalities" in refused.json()["error"]["message"]
    text = _chat(sandbox, IMAGE_MODEL)
    assert text.status_code == 200 and "images" not in text.json()["choices"][0]["message"]
