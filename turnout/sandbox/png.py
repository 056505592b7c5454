"""A small real PNG, made with zlib and struct: what the sandbox's image models draw.

The picture is a 32x32 RGB gradient whose colours come from a hash of the prompt, so the
same prompt always gives the same bytes and different prompts give different images.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib

SIDE = 32
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(prompt: str, *, side: int = SIDE) -> bytes:
    seed = hashlib.sha256(prompt.encode()).digest()
    (r0, g0, b0), (r1, g1, b1) = seed[0:3], seed[3:6]
    rows = []
    for y in range(side):
        row = bytearray(b"\x00")  # filter type 0 (none) for every scanline
        for x in range(side):
            t = (x + y) / (2 * (side - 1))
            row += bytes((round(r0 + (r1 - r0) * t), round(g0 + (g1 - g0) * t), round(b0 + (b1 - b0) * t)))
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"".join(rows)))
            + _chunk(b"IEND", b""))


def png_data_url(prompt: str) -> str:
    """As OpenRouter returns generated images: `data:image/png;base64,...`."""
    return "data:image/png;base64," + base64.b64encode(png(prompt)).decode()
