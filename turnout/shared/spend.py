"""Named keys' spend and rpm windows shared by every replica (`routing.tenants.SpendStore`).

Each replica keeps its own `InProcessSpend` as well: it answers whenever Redis is away (no
request waits on Redis beyond `op_timeout_s`), keeps `data_dir/usage.json` current, and is
the floor of what Redis says (a write lost while Redis was down is still counted here).

    {prefix}spend:{day}     hash  key -> USD spent that UTC day (every replica's answers)
    {prefix}usage:{day}     hash  "key|tenant|model|field" -> requests, cost, tokens
    {prefix}rpm:{key}       zset  one member per request of the last 60 s (atomic Lua)
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

import redis.exceptions

from turnout.routing.tenants import InProcessSpend, Totals, UsageKey
from turnout.shared.link import RedisLink, SharedStateDown

DAY_TTL_S = 9 * 86400  # /admin/usage reports this ISO week; a day older than that is not asked for
_FIELDS = ("requests", "cost_usd", "prompt_tokens", "completion_tokens")

# Count one request in the key's sliding minute unless `limit` are there already; then answer
# the seconds until the oldest leaves the window (as a string: Lua numbers become integers).
_TAKE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + 60 - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], 61000)
return false
"""


class RedisSpend:
    def __init__(self, link: RedisLink, local: InProcessSpend) -> None:
        self._link = link
        self.local = local

    async def add(self, usage: UsageKey, totals: Totals) -> None:
        await self.local.add(usage, totals)
        day, key, tenant, model = usage
        spend_key, usage_key = self._link.key("spend", day), self._link.key("usage", day)
        prefix = "|".join(part.replace("|", "/") for part in (key, tenant, model))
        values = totals.as_json()

        async def write(client: Any) -> None:
            pipe = client.pipeline(transaction=False)
            pipe.hincrbyfloat(spend_key, key, totals.cost_usd)
            for name in _FIELDS:
                pipe.hincrbyfloat(usage_key, f"{prefix}|{name}", values[name])
            pipe.expire(spend_key, DAY_TTL_S)
            pipe.expire(usage_key, DAY_TTL_S)
            await pipe.execute()

        self._link.spawn(write)

    async def spent(self, day: str, key: str) -> float:
        here = await self.local.spent(day, key)
        try:
            raw = await self._link.call(lambda client: client.hget(self._link.key("spend", day), key))
        except (SharedStateDown, redis.exceptions.RedisError):  # no Redis error reaches a request
            return here
        return max(here, float(raw) if raw is not None else 0.0)

    async def take(self, key: str, *, now: float, limit: int) -> float | None:
        zkey, member = self._link.key("rpm", key), f"{now:.6f}-{uuid.uuid4().hex[:8]}"
        try:
            wait = await self._link.call(lambda client: client.eval(_TAKE, 1, zkey, now, limit, member))
        except (SharedStateDown, redis.exceptions.RedisError):
            return await self.local.take(key, now=now, limit=limit)
        return None if wait is None else max(0.0, float(wait))

    async def rows(self, days: Collection[str]) -> list[tuple[UsageKey, Totals]]:
        found: dict[UsageKey, Totals] = {}
        try:
            for day in days:
                usage_key = self._link.key("usage", day)

                async def read(client: Any, usage_key: str = usage_key) -> Any:
                    return await client.hgetall(usage_key)

                raw = await self._link.call(read)
                for field, value in raw.items():
                    name = field.decode() if isinstance(field, bytes) else str(field)
                    key, tenant, model, metric = name.rsplit("|", 3) if name.count("|") >= 3 else ("", "", "", "")
                    if metric not in _FIELDS:
                        continue
                    totals = found.setdefault((day, key, tenant, model), Totals())
                    number = float(value)
                    if metric == "cost_usd":
                        totals.cost_usd = number
                    else:
                        setattr(totals, metric, int(number))
        except (SharedStateDown, redis.exceptions.RedisError, ValueError):
            return await self.local.rows(days)
        return list(found.items())
