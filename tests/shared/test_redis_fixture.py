"""The fixture's server is real: the asyncio client talks to it, and it is gone after stop."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from tests.shared.conftest import RedisProcess


@pytest.mark.asyncio
async def test_a_real_redis_answers_and_stops(redis_server: RedisProcess) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        assert await client.ping() is True
        await client.set("k", "v")
        assert await client.get("k") == b"v"
    finally:
        await client.aclose()
    redis_server.stop()
    client = aioredis.Redis.from_url(redis_server.url, socket_connect_timeout=0.5)
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.ping()
    finally:
        await client.aclose()
