"""Circuit breakers per chain link (``provider/model``), shared by every process through Redis.

A link that failed ``failures`` times in a row is *open*: the chain skips it for
``cooldown`` seconds. Then it is *half-open*: one caller (across all processes) probes it;
a success closes it, a failure opens it for another cooldown. :class:`LocalBreaker` keeps
the same state in the process, for runs without Redis (the CLI).
"""

import time
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis

KEY_PREFIX = "aimesh:breaker:"

# KEYS[1] = link hash; ARGV = now (s), cooldown (s). Returns 1 when the caller may call.
_ALLOW = """
local opened_until = tonumber(redis.call('HGET', KEYS[1], 'opened_until') or '0')
if opened_until == 0 then return 1 end
local now = tonumber(ARGV[1])
if now < opened_until then return 0 end
if redis.call('HSETNX', KEYS[1], 'probe', ARGV[1]) == 1 then return 1 end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probe'))
if now - probe >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'probe', ARGV[1])
  return 1
end
return 0
"""
# KEYS[1] = link hash; ARGV = now (s), cooldown (s), failures to open. Returns 1 if opened.
_FAILURE = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local half_open = redis.call('HEXISTS', KEYS[1], 'probe') == 1
if half_open or failures >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'opened_until', tonumber(ARGV[1]) + tonumber(ARGV[2]))
  redis.call('HDEL', KEYS[1], 'probe')
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 10))
  return 1
end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 10))
return 0
"""


class Breaker(Protocol):
    """What the chain asks of a circuit breaker."""

    async def allow(self, link: str) -> bool:
        """Whether ``link`` may be called now (closed, or this caller is the half-open probe)."""
        ...

    async def success(self, link: str) -> None:
        """Close ``link``'s breaker."""
        ...

    async def failure(self, link: str) -> bool:
        """Count a failure of ``link``; True when that opened its breaker."""
        ...


@dataclass
class RedisBreaker:
    """Breakers kept in Redis hashes ``aimesh:breaker:{provider/model}``, updated by Lua scripts.

    Attributes:
        redis: Client of the shared Redis (``decode_responses`` either way).
        failures: Consecutive failures that open a breaker.
        cooldown: Seconds an open breaker skips its link before one probe is let through.
    """

    redis: Redis
    failures: int = 3
    cooldown: float = 30.0

    async def allow(self, link: str) -> bool:
        """See :meth:`Breaker.allow`."""
        allowed = await self.redis.eval(_ALLOW, 1, KEY_PREFIX + link, time.time(), self.cooldown)
        return bool(allowed)

    async def success(self, link: str) -> None:
        """See :meth:`Breaker.success`."""
        await self.redis.delete(KEY_PREFIX + link)

    async def failure(self, link: str) -> bool:
        """See :meth:`Breaker.failure`."""
        args = (time.time(), self.cooldown, self.failures)
        opened = await self.redis.eval(_FAILURE, 1, KEY_PREFIX + link, *args)
        return bool(opened)


@dataclass
class _State:
    failures: int = 0
    opened_until: float = 0.0
    probe: float | None = None


@dataclass
class LocalBreaker:
    """The same breakers as :class:`RedisBreaker`, in this process only."""

    failures: int = 3
    cooldown: float = 30.0
    _states: dict[str, _State] = field(default_factory=dict)

    async def allow(self, link: str) -> bool:
        """See :meth:`Breaker.allow`."""
        state, now = self._states.get(link), time.time()
        if state is None or state.opened_until == 0:
            return True
        if now < state.opened_until:
            return False
        if state.probe is None or now - state.probe >= self.cooldown:
            state.probe = now
            return True
        return False

    async def success(self, link: str) -> None:
        """See :meth:`Breaker.success`."""
        self._states.pop(link, None)

    async def failure(self, link: str) -> bool:
        """See :meth:`Breaker.failure`."""
        state = self._states.setdefault(link, _State())
        state.failures += 1
        if state.probe is not None or state.failures >= self.failures:
            state.opened_until, state.probe = time.time() + self.cooldown, None
            return True
        return False
