"""Fixtures: a real sandbox on loopback and an httpx client pointed at it.

Named `sandbox_server`/`sb_client` so they do not shadow the suite-wide
session `sandbox` fixture in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from turnout.sandbox import SandboxServer


@pytest_asyncio.fixture
async def sandbox_server() -> AsyncIterator[SandboxServer]:
    server = SandboxServer(seed=7)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def sb_client(sandbox_server: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=sandbox_server.base_url, headers={"Authorization": "Bearer sk-test"}, timeout=5.0
    ) as http:
        yield http
