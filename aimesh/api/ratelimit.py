"""Requests per API key, with the ``limits`` library (moving window).

In memory per process by default; in Redis (shared by every process) when
``AIMESH_REDIS_URL`` is set.
"""

import math
import time

from limits import parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string


class RateLimit:
    """One limit, e.g. ``"600/minute"``, applied to each key separately.

    Args:
        limit: The limit in the ``limits`` notation.
        redis_url: Redis server to share the counts through; None = this process only.

    Raises:
        ValueError: ``limit`` is not in the ``limits`` notation.
    """

    def __init__(self, limit: str, redis_url: str | None = None) -> None:
        self.item = parse(limit)
        storage = (
            storage_from_string(f"async+{redis_url}", implementation="redispy")
            if redis_url
            else MemoryStorage()
        )
        if not isinstance(storage, Storage):
            raise ValueError(f"no async rate-limit storage for {redis_url!r}")
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(self.storage)

    async def hit(self, key: str) -> float | None:
        """Count one request for ``key``; None if allowed, else seconds until it would be."""
        if await self.limiter.hit(self.item, key):
            return None
        stats = await self.limiter.get_window_stats(self.item, key)
        return max(0.0, stats.reset_time - time.time())


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
