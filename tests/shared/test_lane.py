"""The pipelined admission connection against a real redis-server: order, errors, a lost connection."""

from __future__ import annotations

import asyncio

import pytest
import redis.exceptions

from tests.shared.conftest import RedisProcess
from turnout.config import SharedStateSettings
from turnout.shared.lane import Lane


@pytest.mark.asyncio
async def test_concurrent_commands_get_their_own_replies(redis_server: RedisProcess) -> None:
    lane = Lane(SharedStateSettings(redis_url=redis_server.url))
    try:
        replies = await asyncio.gather(*[lane.command("ECHO", f"value-{i}") for i in range(200)])
        assert replies == [f"value-{i}".encode() for i in range(200)]
        assert await lane.command("EVAL", "return {1, 'two', {3}}", 0) == [1, b"two", [3]]
        assert await lane.command("GET", "missing") is None
        with pytest.raises(redis.exceptions.NoScriptError):
            await lane.command("EVALSHA", "0" * 40, 0)
        with pytest.raises(redis.exceptions.ResponseError):
            await lane.command("INCR", "a b", "extra")
        assert await lane.command("PING") == b"PONG"  # the connection goes on after an error reply
    finally:
        lane.close()


@pytest.mark.asyncio
async def test_a_lost_connection_fails_the_waiters_and_the_next_call_reconnects(redis_server: RedisProcess) -> None:
    lane = Lane(SharedStateSettings(redis_url=redis_server.url))
    try:
        assert await lane.command("PING") == b"PONG"
        redis_server.pause()
        waiting = asyncio.ensure_future(lane.command("PING"))
        await asyncio.sleep(0.1)
        redis_server.kill()  # SIGKILL while stopped: the PING is never answered
        with pytest.raises(redis.exceptions.ConnectionError):
            await asyncio.wait_for(waiting, timeout=10)
        redis_server.start()
        assert await lane.command("PING") == b"PONG"
    finally:
        lane.close()
