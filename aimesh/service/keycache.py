"""Verified API keys, kept per process so a request costs no database read to authenticate.

An entry holds the key's HMAC, so only the exact key matches it. Revoking a key evicts it
at once in this process and, through Redis pub/sub, in every other; entries also expire
after ``ttl_s`` seconds, so a lost message cannot keep a revoked key alive for longer.
"""

import asyncio
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aimesh.store.keys import hash_key, parse_key, verify_key
from aimesh.store.tables import utcnow

REVOKED_CHANNEL = "aimesh:keys:revoked"


@dataclass(frozen=True)
class KeyRecord:
    """What authentication needs of a live key."""

    key_id: str
    tenant: str
    user_id: str
    role: str
    scopes: frozenset[str]
    secret_hash: str
    expires_at: datetime | None


class KeyCache:
    """Verify keys against the database once, then from memory until evicted or stale.

    Args:
        sessions: Session factory of the database.
        secret: HMAC secret of the keys.
        redis: Where revocations are announced.
        ttl_s: Seconds an entry is trusted without a database read.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secret: bytes,
        redis: Redis,
        ttl_s: float = 60.0,
    ) -> None:
        self.sessions = sessions
        self.secret = secret
        self.redis = redis
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, KeyRecord]] = {}

    async def verify(self, api_key: str) -> KeyRecord | None:
        """The live key ``api_key`` is, or None (malformed, unknown, wrong, revoked, expired)."""
        key_id = parse_key(api_key)
        if key_id is None:
            return None
        cached = self._entries.get(key_id)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            record = cached[1]
            if not hmac.compare_digest(record.secret_hash, hash_key(self.secret, api_key)):
                return None
        else:
            async with self.sessions() as session:
                row = await verify_key(session, self.secret, api_key)
            if row is None:
                return None
            record = KeyRecord(
                row.id,
                row.tenant,
                row.user_id,
                row.role,
                frozenset(row.scopes),
                row.secret_hash,
                row.expires_at,
            )
            self._entries[key_id] = (time.monotonic(), record)
        if record.expires_at is not None and record.expires_at <= utcnow():
            return None
        return record

    async def revoked(self, key_id: str) -> None:
        """Forget ``key_id`` here and tell every other process to."""
        self._entries.pop(key_id, None)
        await self.redis.publish(REVOKED_CHANNEL, key_id)

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Evict keys revoked by other processes while the block runs."""

        async def listen() -> None:
            async with self.redis.pubsub() as pubsub:
                await pubsub.subscribe(REVOKED_CHANNEL)
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        self._entries.pop(message["data"].decode(), None)

        job = asyncio.create_task(listen())
        try:
            yield
        finally:
            job.cancel()
