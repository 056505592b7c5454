"""The account's free quota and each deployment's rpm/tpm, decided across replicas.

One Lua script per attempt checks and counts atomically: the daily-quota stop, the free
minute window (a sorted set of request times: OpenRouter's window slides), today's free
count, and the deployment's rpm (requests) and tpm (tokens) windows. N replicas together
stay under the account's limit because no two can both take the last slot. The reply
carries the account's counts, copied into the local `FreeTierBudget` (status page, metrics,
`available()`). While Redis is away, `LocalAdmission` decides alone and the local counts
go on; when it is back, today's count is pushed as a maximum (`resync`).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from typing import Any

import redis.exceptions

from turnout.pool.model import Deployment
from turnout.routing.admission import LocalAdmission, Refusal
from turnout.routing.free_tier import FreeTierBudget
from turnout.shared.link import RedisLink, SharedStateDown

_WINDOW_MS = 61_000
_DAY_TTL_S = 2 * 86400

# KEYS: free minute zset, free day counter, daily-quota stop, deployment rpm zset, tpm zset
# ARGV: now, member, free (0/1), per minute (0: none), per day (-1: none), rpm (0), tpm (0), day end
# Seconds until the oldest entry of a 60 s window leaves it (both scripts start with this; `now`
# is each script's first local).
_WAIT_FOR = """
local function wait_for(key, now)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if oldest[2] == nil then return '1' end
  -- replicas' clocks differ a little: never more than the window, never negative
  return tostring(math.max(0, math.min(60, tonumber(oldest[2]) + 60 - now)))
end
"""

_ADMIT = _WAIT_FOR + """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local free = ARGV[3] == '1'
local per_min, per_day = tonumber(ARGV[4]), tonumber(ARGV[5])
local rpm, tpm = tonumber(ARGV[6]), tonumber(ARGV[7])
local cutoff = now - 60
if free then
  local stop = tonumber(redis.call('GET', KEYS[3]) or '0')
  if stop > now then return {0, 'free', tostring(stop - now), tostring(stop)} end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  if per_min > 0 and redis.call('ZCARD', KEYS[1]) >= per_min then
    return {0, 'free', wait_for(KEYS[1], now), '0'}
  end
  local day = tonumber(redis.call('GET', KEYS[2]) or '0')
  if per_day >= 0 and day >= per_day then return {0, 'free', tostring(tonumber(ARGV[8]) - now), '0'} end
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', cutoff)
  if redis.call('ZCARD', KEYS[4]) >= rpm then return {0, 'limit', wait_for(KEYS[4], now), '0'} end
end
if tpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', cutoff)
  local sum = 0
  for _, m in ipairs(redis.call('ZRANGE', KEYS[5], 0, -1)) do
    sum = sum + tonumber(string.match(m, ':(%d+)$') or '0')
  end
  if sum >= tpm then return {0, 'limit', wait_for(KEYS[5], now), '0'} end
end
if rpm > 0 then
  redis.call('ZADD', KEYS[4], now, member)
  redis.call('PEXPIRE', KEYS[4], 61000)
end
if not free then return {1} end
redis.call('ZADD', KEYS[1], now, member)
redis.call('PEXPIRE', KEYS[1], 61000)
local day = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 172800)
local out = {1, tostring(day)}
for _, v in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')) do out[#out + 1] = v end
return out
"""

# A deployment that is not free: only its rpm / tpm windows (fewer keys and arguments to
# encode on every attempt). KEYS: rpm zset, tpm zset. ARGV: now, member, rpm (0), tpm (0)
_ADMIT_LIMITED = _WAIT_FOR + """
local now, member = tonumber(ARGV[1]), ARGV[2]
local rpm, tpm = tonumber(ARGV[3]), tonumber(ARGV[4])
local cutoff = now - 60
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  if redis.call('ZCARD', KEYS[1]) >= rpm then return {0, 'limit', wait_for(KEYS[1], now)} end
end
if tpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
  local sum = 0
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    sum = sum + tonumber(string.match(m, ':(%d+)$') or '0')
  end
  if sum >= tpm then return {0, 'limit', wait_for(KEYS[2], now)} end
end
if rpm > 0 then
  redis.call('ZADD', KEYS[1], now, member)
  redis.call('PEXPIRE', KEYS[1], 61000)
end
return {1}
"""

# KEYS: day counter, daily-quota stop. ARGV: today's count (a floor), stop until (0: none), now
_PUSH = """
local day = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > day then redis.call('SET', KEYS[1], ARGV[1], 'EX', 172800) end
local until_ = tonumber(ARGV[2])
local stop = tonumber(redis.call('GET', KEYS[2]) or '0')
if until_ > stop and until_ > tonumber(ARGV[3]) then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', math.floor((until_ - tonumber(ARGV[3])) * 1000) + 1)
end
return tonumber(redis.call('GET', KEYS[1]) or '0')
"""


class SharedAdmission:
    def __init__(self, link: RedisLink, local: LocalAdmission, *, clock: Callable[[], float] = time.time) -> None:
        self._link = link
        self.local = local
        self.budget: FreeTierBudget = local.budget
        self._clock = clock
        self._admit = link.script(_ADMIT)
        self._push = link.script(_PUSH)
        self._limited = link.script(_ADMIT_LIMITED)
        self._limit_keys: dict[str, list[str]] = {}
        self._ids = itertools.count()
        self._salt = f"{link.name}:{random.getrandbits(32):08x}"
        link.on_resync(self.resync)

    def needs(self, dep: Deployment) -> bool:
        return self.local.needs(dep)

    def _day_key(self, now: float) -> str:
        return self._link.key("free", "day", str(int(now // 86400)))

    async def admit(self, dep: Deployment) -> Refusal | None:
        if dep.tier != "free":
            return await self._admit_limited(dep)
        now = self._clock()
        free = True
        budget = self.budget
        per_day = budget.per_day
        keys = [self._link.key("free", "minute"), self._day_key(now), self._link.key("free", "stop"),
                self._link.key("rpm", dep.id), self._link.key("tpm", dep.id)]
        args = [repr(now), f"{self._salt}:{next(self._ids)}", "1" if free else "0", budget.per_minute,
                -1 if per_day is None else per_day, dep.rpm or 0, dep.tpm or 0, (int(now // 86400) + 1) * 86400]
        try:
            reply: list[Any] = await self._link.call(
                lambda client: self._link.lane.command("EVALSHA", self._admit.sha, 5, *keys, *args))
        except redis.exceptions.NoScriptError:  # Redis restarted empty: the script object loads it again
            try:
                reply = await self._link.call(lambda client: self._admit(keys=keys, args=args, client=client))
            except (SharedStateDown, redis.exceptions.RedisError):
                return self.local.admit_now(dep)
        except (SharedStateDown, redis.exceptions.RedisError):  # no Redis error reaches a request
            return self.local.admit_now(dep)
        if int(reply[0]) == 1:
            if free:
                times = [float(v) for v in reply[3::2]]
                budget.sync(minute=times, day_count=int(reply[1]), exhausted_until=None, now=now)
            return None
        wait = max(0.0, float(reply[2]))
        if reply[1] in (b"free", "free"):
            stop = float(reply[3])
            if stop > now:
                budget.exhaust(stop)
            else:
                budget.hold(now + wait)
            return Refusal("free_quota", wait)
        return Refusal("deployment_limit", wait)

    async def _admit_limited(self, dep: Deployment) -> Refusal | None:
        keys = self._limit_keys.get(dep.id)
        if keys is None:
            keys = self._limit_keys[dep.id] = [self._link.key("rpm", dep.id), self._link.key("tpm", dep.id)]
        args = [repr(self._clock()), f"{self._salt}:{next(self._ids)}", dep.rpm or 0, dep.tpm or 0]
        try:
            reply: list[Any] = await self._link.call(
                lambda client: self._link.lane.command("EVALSHA", self._limited.sha, 2, *keys, *args))
        except redis.exceptions.NoScriptError:  # Redis restarted empty: the script object loads it again
            try:
                reply = await self._link.call(lambda client: self._limited(keys=keys, args=args, client=client))
            except (SharedStateDown, redis.exceptions.RedisError):
                return self.local.admit_now(dep)
        except (SharedStateDown, redis.exceptions.RedisError):
            return self.local.admit_now(dep)
        if int(reply[0]) == 1:
            return None
        return Refusal("deployment_limit", max(0.0, float(reply[2])))

    def spend_tokens(self, dep: Deployment, tokens: int) -> None:
        self.local.spend_tokens(dep, tokens)
        if dep.tpm is None or tokens <= 0:
            return
        key, now = self._link.key("tpm", dep.id), self._clock()
        member = f"{self._salt}:{next(self._ids)}:{tokens}"

        async def write(client: Any) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {member: now})
                pipe.pexpire(key, _WINDOW_MS)
                await pipe.execute()

        self._link.spawn(write)

    def exhaust(self, until: float) -> None:
        self.local.exhaust(until)
        self._link.spawn(lambda client: self._push_state(client))

    async def _push_state(self, client: Any) -> Any:
        now = self._clock()
        until = self.budget.exhausted_until or 0.0
        return await self._push(keys=[self._day_key(now), self._link.key("free", "stop")],
                                args=[self.budget.day_count(), repr(until), repr(now)], client=client)

    async def resync(self) -> None:
        """Push today's count (as a floor) and the daily stop; adopt the account's count."""
        count = await self._link.call(self._push_state)
        self.budget.seed_day(int(count))
